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
