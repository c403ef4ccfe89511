"""Pure parts of the tiler: splits, negatives, image validation, mosaics, tile store, state."""

from __future__ import annotations

import asyncio
import io
import random
import zlib
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from emberwatch.common.geo import haversine_km, world_px
from emberwatch.common.tile_store import TileStore
from services.tiler.assign_split import assign_split, cell_of
from services.tiler.mosaic import assemble, mosaic, plan_mosaic
from services.tiler.sample_negatives import sample_negatives
from services.tiler.state import EmittedIndex, FireRegistry
from services.tiler.validate_image import ImageRejected, validate_image


def _jpeg(arr: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# --- splits --------------------------------------------------------------------------------------
def test_split_is_a_function_of_the_cell_only():
    assert cell_of(54.10, -115.40, 1.5) == cell_of(55.40, -114.10, 1.5) == (36, -77)
    same_cell = {assign_split(54.0 + i * 0.1, -115.5 + j * 0.1) for i in range(15) for j in range(15)}
    assert len(same_cell) == 1  # the whole cell has one split
    assert cell_of(55.1, -115.1, 1.0) == (55, -116)
    assert cell_of(55.1, -115.1, 1.5) == (36, -77)
    rng = random.Random(1)
    for _ in range(200):
        lat, lon = rng.uniform(42, 68), rng.uniform(-140, -55)
        assert assign_split(lat, lon) == assign_split(lat, lon)


def test_split_shares_follow_the_configured_fractions():
    cells = [assign_split(lat + 0.5, lon + 0.5, cell_deg=1.0)
             for lat in range(40, 70) for lon in range(-140, -50)]
    share = Counter(cells)
    n = len(cells)
    assert abs(share["test"] / n - 0.15) < 0.03
    assert abs(share["val"] / n - 0.15) < 0.03
    assert abs(share["train"] / n - 0.70) < 0.04
    with pytest.raises(ValueError):
        assign_split(50, -100, val=0.6, test=0.6)


def test_negatives_usually_share_their_fires_cell_at_the_default_size():
    rng = random.Random(7)
    same = total = 0
    for i in range(400):
        lat, lon = rng.uniform(49, 62), rng.uniform(-130, -70)
        for nlat, nlon in sample_negatives(f"f{i}", lat, lon, k=2, near_fire=lambda *_: False):
            total += 1
            same += cell_of(lat, lon, 1.5) == cell_of(nlat, nlon, 1.5)
    assert 0.55 < same / total < 0.8  # documented in assign_split.py (about 2 in 3)


# --- negatives -----------------------------------------------------------------------------------
def test_negatives_are_deterministic_in_range_and_avoid_known_fires():
    a = sample_negatives("bc:G80001", 55.0, -120.0, k=5, near_fire=lambda *_: False)
    b = sample_negatives("bc:G80001", 55.0, -120.0, k=5, near_fire=lambda *_: False)
    c = sample_negatives("bc:G80002", 55.0, -120.0, k=5, near_fire=lambda *_: False)
    assert a == b and a != c and len(a) == 5
    for lat, lon in a:
        assert 10.0 - 0.01 <= haversine_km(55.0, -120.0, lat, lon) <= 50.0 + 0.01
    known = [(55.2, -120.1), (54.8, -119.8), (55.0, -119.5)]

    def near(lat, lon, km):
        return any(haversine_km(lat, lon, *p) < km for p in known)

    avoided = sample_negatives("bc:G80001", 55.0, -120.0, k=5, near_fire=near, exclusion_km=15)
    assert len(avoided) == 5
    assert all(not near(lat, lon, 15) for lat, lon in avoided)
    assert sample_negatives("x", 55.0, -120.0, k=3, near_fire=lambda *_: True) == []


def state_engine(tmp_path):
    from emberwatch.common.coordination import open_coordination

    return open_coordination(f"sqlite:///{tmp_path / 'coordination.sqlite3'}")


def test_fire_registry_persists_locations_and_negatives(tmp_path):
    reg = FireRegistry(state_engine(tmp_path))
    assert reg.observe("a", 55.0, -120.0) is True
    assert reg.observe("a", 55.0, -120.0) is False
    assert reg.record_negatives("a", [(55.2, -120.3)]) == [(55.2, -120.3)]
    assert reg.record_negatives("a", [(1.0, 1.0)]) == [(55.2, -120.3)]  # the first record stands
    assert reg.near(55.05, -120.0, 10) and not reg.near(56.0, -120.0, 10)
    assert reg.near(55.0, -120.49, 35)  # across bucket edges
    assert not reg.near(55.05, -120.0, 10, other_than="a")
    assert reg.observe_many([("b", 60.0, -110.0), ("c", 60.0, -110.0), ("a", 55.0, -120.0)]) == 1
    again = FireRegistry(state_engine(tmp_path))
    assert len(again) == 2
    assert again.negatives_for("a") == [(55.2, -120.3)]
    assert again.negatives_for("b") is None


def test_emitted_index_survives_restart(tmp_path):
    idx = EmittedIndex(state_engine(tmp_path))
    idx.add("f1", "fire", "ab" * 32)
    idx.add("f1", "fire", "ab" * 32)
    assert ("f1", "fire") in EmittedIndex(state_engine(tmp_path))
    assert len(EmittedIndex(state_engine(tmp_path))) == 1
    assert ("f1", "neg-0") not in idx


# --- validation ---------------------------------------------------------------------------------
def test_a_good_jpeg_and_a_palette_png_pass():
    ok = validate_image(_jpeg(_noise(350, 350)), expected_size=(350, 350))
    assert (ok.width, ok.height, ok.format, ok.image.mode) == (350, 350, "JPEG", "RGB")
    pal = Image.fromarray(_noise()).quantize(64)
    buf = io.BytesIO()
    pal.save(buf, "PNG")
    got = validate_image(buf.getvalue(), expected_size=(64, 64))
    assert got.mode == "P" and got.image.mode == "RGB"


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b'{"message": "Not Authorized - Invalid Token"}', "error_body"),
    (b"  <html><body>Service Unavailable</body></html>", "error_body"),
    (b"GARBAGE" * 20, "not_image"),
])
def test_error_bodies_and_garbage_are_rejected(data, reason):
    with pytest.raises(ImageRejected) as err:
        validate_image(data)
    assert err.value.reason == reason


def test_truncated_wrong_size_wrong_mode_and_blank_are_rejected():
    good = _jpeg(_noise(64, 64))
    for cut in (good[: len(good) // 2], good[:-2]):
        with pytest.raises(ImageRejected) as err:
            validate_image(cut)
        assert err.value.reason == "truncated"
    png = _jpeg(_noise(64, 64), "PNG")
    with pytest.raises(ImageRejected) as err:
        validate_image(png[: len(png) - 40])
    assert err.value.reason == "truncated"
    with pytest.raises(ImageRejected) as err:
        validate_image(good, expected_size=(350, 350))
    assert err.value.reason == "wrong_size"
    with pytest.raises(ImageRejected) as err:
        validate_image(good, allowed_modes=("P",))
    assert err.value.reason == "wrong_mode"
    flat = np.full((64, 64, 3), 238, np.uint8)
    with pytest.raises(ImageRejected) as err:
        validate_image(_jpeg(flat))
    assert err.value.reason == "blank"


def test_a_decompression_bomb_is_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # Rewrite the header to claim 60000×60000 pixels (3.6 Gpx) with a valid CRC: a bomb's header.
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = (60000).to_bytes(4, "big") * 2
    data[12:29] = ihdr
    data[29:33] = zlib.crc32(bytes(ihdr)).to_bytes(4, "big")
    with pytest.raises(ImageRejected) as err:
        validate_image(bytes(data))
    assert err.value.reason == "too_large"


# --- mosaic ------------------------------------------------------------------------------------
def test_a_mosaic_crop_recovers_the_centre_of_a_world_image():
    zoom, size = 3, 350
    world = _noise(512 * 8, 512 * 8, seed=3)
    tiles = {(x, y): Image.fromarray(world[y * 512:(y + 1) * 512, x * 512:(x + 1) * 512])
             for x in range(8) for y in range(8)}
    for lat, lon in [(55.0, -115.0), (10.0, 20.0), (-30.0, 150.3)]:
        plan = plan_mosaic(lat, lon, zoom, size)
        assert 1 <= plan.cols <= 2 and 1 <= plan.rows <= 2
        crop = assemble(plan, {xy: tiles[xy] for xy in plan.tiles()})
        cx, cy = world_px(lat, lon, zoom)
        left, top = round(cx - size / 2), round(cy - size / 2)
        assert crop.size == (size, size)
        assert np.array_equal(np.asarray(crop), world[top:top + size, left:left + size])


def test_mosaic_refuses_ragged_blocks():
    t = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError):
        mosaic({(0, 0): t, (1, 0): t, (0, 1): t})


# --- store ---------------------------------------------------------------------------------------
def test_tile_store_is_content_addressed_and_idempotent(tmp_path):
    store = TileStore(tmp_path / "tiles")
    data = _jpeg(_noise())
    first = store.put(data, "jpg")
    second = store.put(data, "jpg")
    assert first.created and not second.created and first.tile_id == second.tile_id
    assert first.path.read_bytes() == data
    assert first.uri == f"file://{tmp_path}/tiles/{first.tile_id[:2]}/{first.tile_id}.jpg"
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temp files left


async def test_the_same_fire_twice_in_one_batch_is_tiled_once(tmp_path):
    """Three copies of one new fire handled concurrently: one request per tile, one event per tile."""
    from datetime import UTC, datetime

    from emberwatch.contracts import FireObserved
    from services.tiler.fetch_tile import FetchConfig, TileFetcher
    from services.tiler.handlers import Handlers
    from services.tiler.mapbox_client import ClientConfig, MapboxClient, TokenSource
    from services.tiler.settings import TilerSettings
    from tests.simulators.mapbox.helpers import running_simulator

    published: list = []

    async def publish(event):
        published.append(event)

    token = tmp_path / "token"
    token.write_text("pk.simulator")
    with running_simulator() as (url, state):
        state.latency_s = 0.05
        client = MapboxClient(ClientConfig(base_url=url), TokenSource(None, token))
        s = TilerSettings(state_dir=tmp_path, tiler_negatives_per_fire=1, tiler_negative_match_cover=False)
        tiler = Handlers(s, TileFetcher(client, FetchConfig()), TileStore(tmp_path / "tiles"),
                      FireRegistry(state_engine(tmp_path)), EmittedIndex(state_engine(tmp_path)), publish)
        event = FireObserved.create(producer="t", fire_key="ab:1", source="cwfis-csv", agency="ab", name="x",
                                    lat=55.0, lon=-115.0, change="new",
                                    snapshot_at=datetime(2026, 7, 1, tzinfo=UTC))
        try:
            await asyncio.gather(*(tiler.on_fire(event) for _ in range(3)))
        finally:
            await client.aclose()
        assert sum(state.by_status.values()) == 2
    assert len(published) == 2 and {e.label for e in published} == {"wildfire", "nowildfire"}
    assert tiler._busy == {}
