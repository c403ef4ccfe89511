"""Pure parts of the negatives' honesty: land-cover rules, footprints and relabel decisions, the
split pin and the state that remembers negatives and relabels."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emberwatch.common.geo import destination
from services.tiler.match_land_cover import CLASSES, UNKNOWN, LandCover, classify_blocks, judge, land_cover
from services.tiler.pin_split import SplitSettingsChanged, pin_split, split_config
from services.tiler.relabel_negatives import decide, inside_footprint
from services.tiler.state import EmittedIndex, FireRegistry, RelabelLog


def _patch(colour, rough: float = 0.0, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.broadcast_to(np.asarray(colour, np.float32), (size, size, 3)).copy()
    if rough:
        base *= (1 + rough * rng.uniform(-1, 1, (size, size, 1))).astype(np.float32)
    base += rng.uniform(-3, 3, base.shape)  # grain
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("colour,rough,expected", [
    ((30, 60, 90), 0.0, "water"),      # a lake
    ((40, 70, 35), 0.5, "forest"),     # canopy: green and rough
    ((110, 140, 60), 0.03, "open"),    # a crop field: green and smooth
    ((150, 120, 85), 0.05, "bare"),    # ploughed soil
    ((150, 146, 142), 0.4, "built"),   # roofs and streets: grey and rough
])
def test_block_rules_on_simple_patches(colour, rough, expected):
    cls = classify_blocks(_patch(colour, rough))
    assert np.bincount(cls.ravel(), minlength=UNKNOWN + 1).argmax() == CLASSES.index(expected)


def test_cloud_and_char_are_unknown_and_left_out_of_the_shares():
    for colour in ((235, 235, 238), (28, 26, 25)):
        cover = land_cover(_patch(colour))
        assert cover.unknown > 0.9 and not cover.readable
    half = np.concatenate([_patch((40, 70, 35), 0.5), _patch((28, 26, 25))], axis=1)  # forest beside a scar
    cover = land_cover(half)
    assert cover.dominant() == "forest" and cover.shares["forest"] > 0.9 and 0.4 < cover.unknown < 0.6


def test_water_specks_are_not_lakes():
    forest = _patch((40, 70, 35), 0.5, size=128)
    forest[60:64, 60:64] = (30, 60, 90)  # one block of dark blue: a shadow, not a lake
    assert land_cover(forest).shares.get("water", 0) == 0
    forest[40:88, 40:88] = (30, 60, 90)  # a pond filling the centre
    cover = land_cover(forest)
    assert cover.footprint_water > 0.9
    assert judge(None, cover, tolerance=0.35, max_water=0.25).reason == "water"


def test_judge_rejects_a_different_cover_and_accepts_the_same():
    forest = land_cover(_patch((40, 70, 35), 0.5, seed=1))
    farm = land_cover(np.concatenate([_patch((110, 140, 60), 0.03), _patch((150, 120, 85), 0.05)], axis=1))
    same = judge(forest, land_cover(_patch((40, 70, 35), 0.5, seed=2)), tolerance=0.35, max_water=0.25)
    assert same.accepted and same.distance < 0.1
    other = judge(forest, farm, tolerance=0.35, max_water=0.25)
    assert not other.accepted and other.reason == "cover" and other.distance > 0.9
    assert judge(LandCover(), farm, tolerance=0.35, max_water=0.25).accepted  # unreadable fire: land only


def test_simulated_imagery_lakes_are_water_and_farms_differ_from_forest():
    render_static = pytest.importorskip("simulators.mapbox.imagery").render_static
    covers = [land_cover(render_static(lat, lon, 12, 128, 128))
              for lat in np.arange(50.0, 56.0, 0.5) for lon in np.arange(-120.0, -100.0, 1.0)]
    readable = [c for c in covers if c.readable]
    assert len(readable) > len(covers) // 2
    assert any(c.footprint_water > 0.25 for c in covers)  # lakes exist and are seen
    assert any(c.shares.get("water", 0) == 0 for c in readable)
    dominant = {c.dominant() for c in readable}
    assert len(dominant) >= 2  # the scenes are not all one cover


@pytest.fixture(scope="module")
def mapbox_dir() -> Path:
    root = os.environ.get("EMBERWATCH_FIXTURES_DIR")
    if not root or not (Path(root) / "mapbox").is_dir():
        pytest.skip("set EMBERWATCH_FIXTURES_DIR to run the rules over real Mapbox imagery")
    return Path(root) / "mapbox"


def _block(d: Path, names: list[str], cols: int) -> np.ndarray:
    tiles = [np.asarray(Image.open(d / n).convert("RGB")) for n in names]
    rows = [np.concatenate(tiles[i:i + cols], axis=1) for i in range(0, len(tiles), cols)]
    return np.concatenate(rows, axis=0)


@pytest.mark.fixtures
def test_real_imagery_city_lake_farm_and_burn(mapbox_dir):
    chicago = land_cover(_block(mapbox_dir, [f"15-{x}-{y}.satellite.png" for y in (12177, 12178)
                                             for x in (8408, 8409)], 2))
    assert chicago.dominant() == "built" and chicago.shares["water"] > 0.15
    assert chicago.shares.get("forest", 0) + chicago.shares.get("open", 0) < 0.05
    berlin = land_cover(_block(mapbox_dir, [f"17-{x}-{y}.satellite.png" for y in (42997, 42998)
                                            for x in (70420, 70421, 70422)], 3))
    # Zoom 17, far finer than a context image: roofs, streets and courtyards, still no lake.
    assert berlin.shares["built"] > 0.35 and berlin.shares["built"] + berlin.shares["bare"] > 0.8
    assert berlin.shares.get("water", 0) < 0.15
    burn = land_cover(np.asarray(Image.open(mapbox_dir / "request_89d904d.jpg").convert("RGB")))
    assert burn.unknown > 0.25 and burn.dominant() == "bare"  # the scar is left out, the fields read
    mixed = land_cover(np.asarray(Image.open(mapbox_dir / "request_b2b5556.jpg").convert("RGB")))
    assert min(mixed.shares[c] for c in ("forest", "bare", "built")) > 0.15
    assert judge(chicago, berlin, tolerance=0.35, max_water=0.25).accepted  # a city matches a city
    assert judge(burn, mixed, tolerance=0.35, max_water=0.25).reason == "cover"  # open farmland vs woods and suburb


# --- relabels ------------------------------------------------------------------------------------
def test_footprint_is_the_tiles_square_in_web_mercator():
    lat, lon = 55.0, -115.0  # a 350-px zoom-15 tile: about 836 Mercator m, 480 m of ground, across
    assert inside_footprint(lat, lon, 15, 350, *destination(lat, lon, 90, 0.2))
    assert not inside_footprint(lat, lon, 15, 350, *destination(lat, lon, 90, 0.3))
    assert inside_footprint(lat, lon, 15, 350, *destination(lat, lon, 45, 0.3))  # the corner reaches farther
    assert not inside_footprint(lat, lon, 15, 350, *destination(lat, lon, 0, 3.0))
    assert inside_footprint(0.0, 179.9999, 15, 350, 0.0, -179.9999)  # across the antimeridian


def test_relabel_only_inside_and_started_before_the_fetch():
    fetched = datetime(2026, 7, 10, tzinfo=UTC)
    assert decide(inside=True, start_date=fetched - timedelta(days=2), fetched_at=fetched).action == "relabel"
    assert decide(inside=True, start_date=datetime(2026, 7, 1), fetched_at=fetched).action == "relabel"  # naive: UTC
    assert decide(inside=True, start_date=fetched + timedelta(hours=1), fetched_at=fetched).action == "retire"
    assert decide(inside=True, start_date=None, fetched_at=fetched).action == "retire"
    assert decide(inside=True, start_date=fetched, fetched_at=None).action == "retire"
    assert decide(inside=False, start_date=fetched, fetched_at=fetched).action == "retire"


def test_old_json_lines_state_is_imported_once_and_negatives_are_found_near_later_fires(tmp_path):
    from emberwatch.common.coordination import open_coordination
    from services.tiler.state import import_json_lines

    old = tmp_path / "tiler"
    old.mkdir()
    (old / "fires.jsonl").write_text(
        json.dumps({"fire_key": "a", "lat": 55.0, "lon": -120.0}) + "\n"
        + json.dumps({"fire_key": "a", "negatives": [[55.2, -120.3], [55.4, -119.0]]}) + "\n"
        + '{"fire_key": "torn')  # a crash mid-line
    (old / "emitted.jsonl").write_text(  # written before negatives had locations
        json.dumps({"fire_key": "a", "slot": "neg-1", "tile_id": "cd" * 32}) + "\n")
    (old / "relabelled.jsonl").write_text(
        json.dumps({"tile_id": "ef" * 32, "action": "retire", "fire_key": "b", "event_id": "e0"}) + "\n")
    engine = open_coordination(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    assert import_json_lines(engine, old) == 4
    assert import_json_lines(engine, old) == 0  # renamed *.imported: never twice
    assert sorted(p.name for p in old.iterdir()) == ["emitted.jsonl.imported", "fires.jsonl.imported",
                                                     "relabelled.jsonl.imported"]
    reg, idx = FireRegistry(engine), EmittedIndex(engine)
    assert len(reg) == 1 and reg.negatives_for("a") == [(55.2, -120.3), (55.4, -119.0)]
    at = datetime(2026, 7, 1, tzinfo=UTC)
    idx.add("a", "neg-0", "ab" * 32, lat=55.2, lon=-120.3, fetched_at=at)
    idx.add("a", "fire", "ef" * 32, lat=55.0, lon=-120.0, fetched_at=at)
    near = idx.negatives_near(55.41, -119.0, 10)
    assert [(n.tile_id, n.fetched_at) for n, _ in near] == [("cd" * 32, None)]
    assert [(n.slot, n.fetched_at) for n, _ in idx.negatives_near(55.2, -120.3, 1)] == [("neg-0", at)]
    assert idx.negatives_near(55.0, -120.0, 1) == []  # the fire tile is no negative
    log = RelabelLog(engine)
    log.add("ab" * 32, "retire", "b", "e1")
    log.add("ab" * 32, "relabel", "c", "e2")
    assert "ab" * 32 in RelabelLog(engine) and len(RelabelLog(engine)) == 2


# --- the split pin -------------------------------------------------------------------------------
def test_split_settings_are_pinned_and_a_change_refuses_to_start(tmp_path):
    from emberwatch.common.coordination import open_coordination

    engine = open_coordination(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    assert pin_split(engine, split_config(1.5, 0.15, 0.15))["cell_deg"] == 1.5
    pin_split(engine, split_config(1.5, 0.15, 0.15))  # same settings: fine
    with pytest.raises(SplitSettingsChanged) as err:
        pin_split(engine, split_config(1.0, 0.15, 0.2))
    msg = str(err.value)
    assert "\n" not in msg and "coordination database" in msg
    assert "EMBERWATCH_TILER_SPLIT_CELL_DEG is 1.0, pinned 1.5" in msg and "EMBERWATCH_TILER_SPLIT_TEST" in msg
    assert "EMBERWATCH_TILER_SPLIT_VAL" not in msg and "new EMBERWATCH_STATE_DIR" in msg


def test_an_older_tilers_split_file_becomes_the_pin(tmp_path):
    from emberwatch.common.coordination import open_coordination

    old = tmp_path / "tiler" / "split.json"
    old.parent.mkdir()
    old.write_text(json.dumps(split_config(1.0, 0.15, 0.15)))
    engine = open_coordination(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    with pytest.raises(SplitSettingsChanged, match="CELL_DEG is 1.5, pinned 1.0"):
        pin_split(engine, split_config(1.5, 0.15, 0.15), old_file=old)
    assert pin_split(engine, split_config(1.0, 0.15, 0.15))["cell_deg"] == 1.0  # pinned without the file too


# --- choosing (a stub fetcher: the images are what the test says) ------------------------------
class _Images:
    """Context images by place: the fire's forest, then the candidates' covers in their order."""

    def __init__(self, fire_image: np.ndarray, candidates: list[np.ndarray]) -> None:
        self.fire_image, self.candidates, self.calls = fire_image, list(candidates), []

    async def fetch_context(self, lat: float, lon: float, size_px: int | None = None):
        self.calls.append((lat, lon))
        image = self.fire_image if len(self.calls) == 1 else self.candidates[len(self.calls) - 2]
        return Image.fromarray(image).resize((size_px, size_px)) if size_px else Image.fromarray(image)


async def test_no_match_keeps_the_closest_land_candidate_and_counts_it(tmp_path):
    from emberwatch.contracts import FireObserved
    from services.tiler.choose_negatives import NegativeChooser
    from services.tiler.settings import TilerSettings
    from tests.services.tiler.harness import metric

    forest = _patch((40, 70, 35), 0.5, size=128)
    lake = _patch((30, 60, 90), size=128)
    farm = _patch((110, 140, 60), 0.03, size=128)
    half = farm.copy()
    half[:, :64] = forest[:, :64]  # half forest: closer to the fire's cover, still beyond 0.35
    s = TilerSettings(state_dir=tmp_path, tiler_negatives_per_fire=1, tiler_negative_cover_tries=3,
                      tiler_negative_cover_tolerance=0.35)
    images = _Images(forest, [lake, farm, half])
    chooser = NegativeChooser(s, images, lambda *_: False)
    event = FireObserved.create(producer="t", fire_key="ab:1", source="cwfis-csv", agency="ab", name="x",
                                lat=55.0, lon=-115.0, change="new", snapshot_at=datetime(2026, 7, 1, tzinfo=UTC))
    before = metric("emberwatch_tiler_negatives_chosen_total", how="fallback")
    choice = await chooser.choose(event)
    assert len(images.calls) == 4  # the fire and three candidates, no more
    assert choice.places == [images.calls[3]]  # the half-forest one: the best land candidate
    assert choice.audit["rejected"] == {"water": 1, "cover": 2} and choice.audit["fallback"] == 1
    assert 0.35 < choice.audit["cover_distance"][0] < 0.7
    assert metric("emberwatch_tiler_negatives_chosen_total", how="fallback") - before == 1
    only_water = NegativeChooser(s, _Images(forest, [lake, lake, lake]), lambda *_: False)
    assert (await only_water.choose(event)).places == []  # no land at all: fewer negatives
