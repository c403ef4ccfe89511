"""Real Mapbox responses (opt-in: EMBERWATCH_FIXTURES_DIR) decode, validate and mosaic seamlessly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emberwatch.common.geo import px_to_lonlat
from services.tiler.mosaic import assemble, mosaic, plan_mosaic
from services.tiler.validate_image import validate_image

pytestmark = pytest.mark.fixtures


@pytest.fixture(scope="module")
def mapbox_dir() -> Path:
    root = os.environ.get("EMBERWATCH_FIXTURES_DIR")
    if not root:
        pytest.skip("set EMBERWATCH_FIXTURES_DIR to run tests over the real fixtures")
    path = Path(root) / "mapbox"
    if not path.is_dir():
        pytest.skip(f"no mapbox fixtures under {root}")
    return path


def _tile(d: Path, z: int, x: int, y: int) -> Image.Image:
    return validate_image((d / f"{z}-{x}-{y}.satellite.png").read_bytes(), expected_size=(256, 256)).image


def _seams(img: Image.Image, tile: int, axis: int) -> tuple[float, float]:
    """Mean grey step across the tile seams and one pixel inside them, along ``axis`` (1 = vertical seams)."""
    a = np.asarray(img.convert("L"), dtype=np.float32)
    if axis == 0:
        a = a.T
    cuts = range(tile, a.shape[1], tile)
    seam = np.mean([np.abs(a[:, c - 1] - a[:, c]).mean() for c in cuts])
    inner = np.mean([np.abs(a[:, c - 2] - a[:, c - 1]).mean() for c in cuts]
                    + [np.abs(a[:, c + 1] - a[:, c]).mean() for c in cuts])
    return float(seam), float(inner)


def test_every_real_response_validates(mapbox_dir):
    files = sorted(mapbox_dir.iterdir())
    assert len(files) >= 20
    for f in files:
        size = (350, 350) if f.name.startswith("request_") else (256, 256)
        got = validate_image(f.read_bytes(), expected_size=size)
        assert got.image.mode == "RGB" and got.std > 5, f.name
    for f in mapbox_dir.glob("request_*.jpg"):
        assert validate_image(f.read_bytes()).format == "JPEG"
    palette = validate_image((mapbox_dir / "17-70420-42997.satellite.png").read_bytes())
    assert palette.mode == "P"


def test_chicago_zoom15_block_mosaics_seamlessly(mapbox_dir):
    tiles = {(x, y): _tile(mapbox_dir, 15, x, y) for x in (8408, 8409) for y in (12177, 12178)}
    block = mosaic(tiles)
    assert block.size == (512, 512)
    seam, inner = _seams(block, 256, axis=1)
    assert seam < 1.6 * inner
    swapped = {(x, y): tiles[(8408 + 8409 - x, y)] for x, y in tiles}
    wrong, _ = _seams(mosaic(swapped), 256, axis=1)
    assert wrong > 1.5 * seam  # the test can tell a misplaced tile
    # The planner picks exactly this block for a 350-px footprint at its centre (256-px tiles).
    lon, lat = px_to_lonlat(8409 * 256, 12178 * 256, 15, tile_px=256)
    plan = plan_mosaic(lat, lon, 15, 350, tile_px=256)
    assert sorted(plan.tiles()) == sorted(tiles)
    crop = assemble(plan, tiles)
    assert crop.size == (350, 350)
    assert np.array_equal(np.asarray(crop), np.asarray(block)[81:431, 81:431])


def test_berlin_zoom17_palette_block_mosaics_seamlessly(mapbox_dir):
    tiles = {(x, y): _tile(mapbox_dir, 17, x, y) for x in (70420, 70421, 70422) for y in (42997, 42998)}
    block = mosaic(tiles)
    assert block.size == (768, 512) and block.mode == "RGB"
    for axis in (0, 1):
        seam, inner = _seams(block, 256, axis=axis)
        assert seam < 1.6 * inner
    swapped = {(x, y): tiles[(x, 42997 + 42998 - y)] for x, y in tiles}
    right, _ = _seams(block, 256, axis=0)
    wrong, _ = _seams(mosaic(swapped), 256, axis=0)
    assert wrong > 1.5 * right


def test_zoom1_world_quadrants_agree_between_jpeg_and_png(mapbox_dir):
    for x in (0, 1):
        for y in (0, 1):
            png = np.asarray(validate_image((mapbox_dir / f"1-{x}-{y}.satellite.png").read_bytes()).image,
                             dtype=np.float32)
            jpg = np.asarray(validate_image((mapbox_dir / f"1-{x}-{y}.satellite.jpeg").read_bytes()).image,
                             dtype=np.float32)
            assert np.abs(png - jpg).mean() < 8
    world = mosaic({(x, y): _tile(mapbox_dir, 1, x, y) for x in (0, 1) for y in (0, 1)})
    assert world.size == (512, 512)
