"""A Sentinel-2 tile's TileReady fields parse, and a TileReady without them still does."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import numpy as np
from affine import Affine

from emberwatch.contracts.events import TileReady
from services.tiler.sentinel2.composites import composite
from services.tiler.sentinel2.indices import FireEvidence
from services.tiler.sentinel2.provider import Sentinel2Tile
from services.tiler.sentinel2.scenes import Scene
from services.tiler.sentinel2.tile_fields import tile_ready_fields

TILE = hashlib.sha256(b"png").hexdigest()
BASE = dict(producer="test", tile_id=TILE, uri=f"file:///tiles/{TILE[:2]}/{TILE}.png", lat=50.1, lon=-120.3,
            zoom=15, size_px=224, label="wildfire", split="train", fire_key="bc:G80123")


def _tile() -> Sentinel2Tile:
    bands = {b: np.full((4, 4), 0.1, np.float32) for b in ("red", "green", "blue", "nir08", "swir16", "swir22")}
    swir = composite("swir", bands, "EPSG:32610", Affine(10, 0, 0, 0, -10, 0))
    scene = Scene("S2A_T10UEV_20260712T190000_L2A", "sentinel-2-c1-l2a", datetime(2026, 7, 12, 19, tzinfo=UTC),
                  datetime(2026, 7, 13, 2, tzinfo=UTC), 12.0, {})
    return Sentinel2Tile(scene, 0.031, swir, swir, 123456)


def test_fire_tile_carries_dates_scene_clouds_and_indices() -> None:
    tile = _tile()
    evidence = FireEvidence(nbr=-0.2, dnbr=0.55, hot_pixels=7, visible=True)
    event = TileReady.create(**BASE, **tile_ready_fields(tile, tile.swir, evidence, is_fire_tile=True))
    parsed = TileReady.model_validate_json(event.model_dump_json())
    assert (parsed.product, parsed.provider, parsed.scene_id) == ("sentinel2-swir", "sentinel2-stac", tile.scene.scene_id)
    assert parsed.acquired_at == tile.scene.acquired_at and parsed.catalogued_at == tile.scene.catalogued_at
    assert (parsed.cloud_fraction, parsed.dnbr, parsed.hot_pixels, parsed.visible) == (0.031, 0.55, 7, True)


def test_the_control_tile_has_no_indices_and_old_events_default_to_mapbox() -> None:
    tile = _tile()
    fields = tile_ready_fields(tile, tile.true_colour, FireEvidence(0.1, 0.0, 0, False), is_fire_tile=False)
    assert "dnbr" not in fields and fields["product"] == "sentinel2-swir"
    old = TileReady.create(**BASE, provider="mapbox-static")
    assert old.product == "mapbox" and old.acquired_at is None and old.visible is None
