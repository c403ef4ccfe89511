from services.trainer.tile_index import TileIndex

T1, T2, T3 = "a" * 64, "b" * 64, "c" * 64


def test_record_is_durable_and_idempotent(tmp_path):
    path = tmp_path / "tiles.sqlite"
    idx = TileIndex(path)
    assert idx.record(tile_id=T1, label="wildfire", split="train", uri="file:///x/1.png",
                      topic="tiles.ready.v1", partition=0, offset=7)
    assert not idx.record(tile_id=T1, label="nowildfire", split="test", uri="file:///x/other.png")
    assert idx.record(tile_id=T2, label="nowildfire", split="val", uri="file:///x/2.png")
    reopened = TileIndex(path)  # a restart
    rows = reopened.all()
    assert [r.tile_id for r in rows] == [T1, T2]
    assert rows[0].label == "wildfire" and rows[0].split == "train"  # first record kept
    assert (rows[0].topic, rows[0].partition, rows[0].offset) == ("tiles.ready.v1", 0, 7)
    assert rows[1].topic is None
    assert rows[0].lineage() == {"tile_id": T1, "label": "wildfire", "split": "train",
                                 "topic": "tiles.ready.v1", "partition": 0, "offset": 7}
    assert reopened.count() == 2


def test_new_since_training_survives_restart(tmp_path):
    idx = TileIndex(tmp_path / "t.sqlite")
    idx.record(tile_id=T1, label="wildfire", split="train", uri="file:///1")
    idx.record(tile_id=T2, label="wildfire", split="train", uri="file:///2")
    assert idx.new_since_training() == 2 and idx.last_trained_seq() == 0
    idx.mark_trained(idx.max_seq())
    idx.record(tile_id=T3, label="nowildfire", split="val", uri="file:///3")
    again = TileIndex(tmp_path / "t.sqlite")
    assert again.new_since_training() == 1
    assert again.last_trained_seq() == 2


def test_relabels_apply_whichever_arrives_first_and_a_relabel_wins_over_a_retire(tmp_path):
    import pytest

    idx = TileIndex(tmp_path / "t.sqlite")
    T4 = "d" * 64
    idx.record(tile_id=T1, label="nowildfire", split="train", uri="file:///1", lat=55.5, lon=-115.25)
    idx.record(tile_id=T2, label="nowildfire", split="val", uri="file:///2")
    assert idx.relabel(tile_id=T1, action="retire", label=None, fire_key="later")
    assert not idx.relabel(tile_id=T1, action="retire", label=None, fire_key="later")  # a replay
    assert idx.relabel(tile_id=T3, action="relabel", label="wildfire", fire_key="f")  # before its tile
    idx.record(tile_id=T3, label="nowildfire", split="test", uri="file:///3")
    assert idx.relabel(tile_id=T2, action="retire", label=None, fire_key="a")
    assert idx.relabel(tile_id=T2, action="relabel", label="wildfire", fire_key="b")  # the image shows it
    assert not idx.relabel(tile_id=T2, action="retire", label=None, fire_key="c")
    assert idx.relabel(tile_id=T4, action="retire", label=None, fire_key="x")  # tile never seen
    rows = {r.tile_id: r for r in TileIndex(tmp_path / "t.sqlite").all()}  # durable
    assert set(rows) == {T2, T3}
    assert rows[T2].label == "wildfire" and rows[T3].label == "wildfire" and rows[T3].split == "test"
    assert idx.relabel_counts() == {"retire": 1, "relabel": 2}
    assert idx.count() == 3  # the index still knows the retired tile
    with pytest.raises(ValueError):
        idx.relabel(tile_id=T1, action="relabel", label=None, fire_key="x")


def test_locations_are_kept_and_an_older_index_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # the schema before locations were recorded
    db.executescript("""CREATE TABLE tiles (seq INTEGER PRIMARY KEY AUTOINCREMENT, tile_id TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL, split TEXT NOT NULL, uri TEXT NOT NULL, fire_key TEXT NOT NULL DEFAULT '',
        topic TEXT, partition INTEGER, "offset" INTEGER, event_id TEXT,
        received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
        INSERT INTO tiles (tile_id, label, split, uri) VALUES ('""" + T1 + """', 'wildfire', 'train', 'file:///1');""")
    db.commit()
    db.close()
    idx = TileIndex(path)
    idx.record(tile_id=T2, label="nowildfire", split="train", uri="file:///2", lat=60.25, lon=-135.5)
    rows = idx.all()
    assert (rows[0].lat, rows[0].lon) == (None, None)
    assert (rows[1].lat, rows[1].lon) == (60.25, -135.5)


def test_record_many_is_one_idempotent_transaction(tmp_path):
    idx = TileIndex(tmp_path / "t.sqlite")
    idx.record(tile_id=T1, label="wildfire", split="train", uri="file:///1")
    batch = [dict(tile_id=T1, label="nowildfire", split="test", uri="file:///other"),
             dict(tile_id=T2, label="wildfire", split="train", uri="file:///2", topic="tiles.ready.v1",
                  partition=0, offset=41),
             dict(tile_id=T2, label="nowildfire", split="val", uri="file:///2b"),  # twice in one batch
             dict(tile_id=T3, label="nowildfire", split="val", uri="file:///3", lat=50.1, lon=-120.2)]
    assert idx.record_many(batch) == 2  # T1 was known, T2 counted once
    assert idx.record_many(batch) == 0  # the same batch redelivered after a crash: nothing new
    rows = {r.tile_id: r for r in TileIndex(tmp_path / "t.sqlite").all()}
    assert set(rows) == {T1, T2, T3}
    assert rows[T1].label == "wildfire" and rows[T2].split == "train"  # first records kept
    assert (rows[T2].topic, rows[T2].partition, rows[T2].offset) == ("tiles.ready.v1", 0, 41)
    assert idx.record_many([]) == 0


def test_a_persons_label_wins_the_latest_holds_and_a_redelivery_counts_once(tmp_path):
    idx = TileIndex(tmp_path / "t.sqlite")
    idx.record(tile_id=T1, label="nowildfire", split="train", uri="file:///1")
    idx.record(tile_id=T2, label="wildfire", split="val", uri="file:///2")
    assert idx.relabel(tile_id=T1, action="retire", label=None, fire_key="later")
    assert idx.record_human_label(tile_id=T1, label="wildfire", labelled_by="console:ana", event_id="e1",
                                  given_at="2026-12-03T10:00:00+00:00")
    assert not idx.record_human_label(tile_id=T1, label="wildfire", labelled_by="console:ana", event_id="e1",
                                      given_at="2026-12-03T10:00:00+00:00")  # the same event again
    assert not idx.record_human_label(tile_id=T1, label="nowildfire", labelled_by="discord:bo", event_id="e0",
                                      given_at="2026-12-03T09:00:00+00:00")  # older than the one held
    assert idx.record_human_label(tile_id=T2, label="wildfire", labelled_by="console:ana", event_id="e2",
                                  given_at="2026-12-03T10:00:00+00:00")  # agrees with the automatic label
    assert idx.record_human_label(tile_id=T3, label="nowildfire", labelled_by="console:ana", event_id="e3",
                                  given_at="2026-12-03T10:00:00+00:00")  # its tile is not known yet
    rows = {r.tile_id: r for r in TileIndex(tmp_path / "t.sqlite").all()}
    assert rows[T1].label == "wildfire"  # the person looked at the image: it counts, retired or not
    assert rows[T2].label == "wildfire" and set(rows) == {T1, T2}
    assert idx.human_label_counts() == {"human": 2, "human_changed": 1}
    idx.record(tile_id=T3, label="wildfire", split="test", uri="file:///3")
    assert {r.tile_id: r.label for r in idx.all()}[T3] == "nowildfire"
    assert idx.human_label_counts() == {"human": 3, "human_changed": 2}


def test_each_model_line_counts_and_trains_on_its_own_product(tmp_path):
    idx = TileIndex(tmp_path / "t.sqlite")
    idx.record(tile_id=T1, label="wildfire", split="train", uri="file:///1")  # Mapbox, as before products
    idx.record_many([dict(tile_id=T2, label="wildfire", split="train", uri="file:///2", product="sentinel2-swir"),
                     dict(tile_id=T3, label="nowildfire", split="val", uri="file:///3", product="sentinel2-swir")])
    assert [r.tile_id for r in idx.all("mapbox")] == [T1]
    assert [(r.tile_id, r.product) for r in idx.all("sentinel2-swir")] == [(T2, "sentinel2-swir"),
                                                                           (T3, "sentinel2-swir")]
    assert len(idx.all()) == 3 and idx.all()[0].product == "mapbox"
    assert idx.new_since_training("mapbox") == 1 and idx.new_since_training("sentinel2-swir") == 2
    idx.mark_trained(idx.max_seq(), "sentinel2-swir")  # one line's training leaves the other's count alone
    assert idx.new_since_training("sentinel2-swir") == 0 and idx.new_since_training() == 1
    assert idx.last_trained_seq() == 0 and idx.last_trained_seq("sentinel2-swir") == 3
    assert idx.product_of(T2) == "sentinel2-swir" and idx.product_of(T1) == "mapbox"
    assert idx.product_of("e" * 64) is None


def test_an_index_from_before_products_is_migrated_as_mapbox(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the first release's table: no product (nor location) column
        db.executescript("CREATE TABLE tiles (seq INTEGER PRIMARY KEY AUTOINCREMENT, tile_id TEXT NOT NULL UNIQUE, "
                         "label TEXT NOT NULL, split TEXT NOT NULL, uri TEXT NOT NULL, fire_key TEXT NOT NULL "
                         "DEFAULT '', topic TEXT, partition INTEGER, \"offset\" INTEGER, event_id TEXT, "
                         "received_at TEXT NOT NULL DEFAULT 'x');"
                         "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "INSERT INTO tiles (tile_id, label, split, uri) VALUES ('" + T1 + "', 'wildfire', 'train', "
                         "'file:///1');"
                         "INSERT INTO meta (key, value) VALUES ('last_trained_seq', '1');")
    idx = TileIndex(path)
    assert [(r.tile_id, r.product) for r in idx.all("mapbox")] == [(T1, "mapbox")]
    assert idx.last_trained_seq() == 1 and idx.new_since_training() == 0  # Mapbox's mark is the old one


def test_the_physics_of_a_sentinel2_tile_is_kept_and_mapbox_tiles_have_none(tmp_path):
    idx = TileIndex(tmp_path / "t.sqlite")
    idx.record(tile_id=T1, label="wildfire", split="train", uri="file:///1", product="sentinel2-swir", dnbr=0.04,
               hot_pixels=0, visible=False)
    idx.record_many([dict(tile_id=T2, label="wildfire", split="test", uri="file:///2", product="sentinel2-swir",
                          dnbr=0.31, hot_pixels=5, visible=True),
                     dict(tile_id=T3, label="nowildfire", split="test", uri="file:///3")])
    rows = {r.tile_id: r for r in TileIndex(tmp_path / "t.sqlite").all()}
    assert (rows[T1].dnbr, rows[T1].hot_pixels, rows[T1].visible) == (0.04, 0, False)
    assert (rows[T2].dnbr, rows[T2].hot_pixels, rows[T2].visible) == (0.31, 5, True)
    assert (rows[T3].dnbr, rows[T3].hot_pixels, rows[T3].visible) == (None, None, None)
