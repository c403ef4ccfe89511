"""A hostile STAC answer is refused with a clear error: COGs on a foreign host, a COG whose box would read
far too much."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform as warp_transform

from services.tiler.sentinel2.scenes import BandAsset, Scene, SceneRefused
from services.tiler.sentinel2.search import StacCatalogue, host_allowed, refuse_foreign_hrefs, search_scenes
from services.tiler.sentinel2.windowed_read import MAX_READ_BYTES, FireBox, ReadRefused, read_box
from tests.simulators.stac.helpers import frozen_state, running_simulator

LON, LAT = -120.3, 50.1
NOW = datetime(2026, 7, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(("href", "allowed"), [
    ("https://sentinel-cogs.s3.us-west-2.amazonaws.com/x/B12.tif", True),
    ("https://sentinel2l2a01.blob.core.windows.net/x/B12.tif?sig=1", True),
    ("http://stac.local:8084/cogs/B12.tif", True),  # the catalogue's own host
    ("http://stac.local.evil.example/B12.tif", False),
    ("https://evil.example/sentinel-cogs.s3.us-west-2.amazonaws.com/B12.tif", False),
    ("https://user:pw@sentinel-cogs.s3.us-west-2.amazonaws.com/B12.tif", False),
    ("file:///etc/passwd", False),
    ("/vsicurl/http://stac.local:8084/B12.tif", False),
    ("s3://sentinel-cogs/B12.tif", False),
])
def test_asset_hosts_are_the_catalogues_own_or_known(href: str, allowed: bool) -> None:
    assert host_allowed(href, "http://stac.local:8084/v1", StacCatalogue().asset_hosts) is allowed


def test_a_scene_with_one_foreign_band_is_refused_naming_the_host() -> None:
    band = BandAsset("https://sentinel-cogs.s3.us-west-2.amazonaws.com/a.tif", 0.0001, -0.1, 0)
    foreign = BandAsset("https://attacker.example/a.tif", 0.0001, -0.1, 0)
    scene = Scene("S2A_T10UFB_20260710T190000_L2A", "sentinel-2-c1-l2a", NOW, NOW, 1.0,
                  {"red": band, "swir22": foreign})
    with pytest.raises(SceneRefused, match="swir22 asset is on 'attacker.example'"):
        refuse_foreign_hrefs(scene, StacCatalogue())


def test_the_simulator_serving_cogs_from_another_host_gets_every_item_refused() -> None:
    with running_simulator(frozen_state(NOW)) as (url, state):
        httpx.post(f"{url}/_admin/config", json={"asset_base": "http://attacker.example"}).raise_for_status()
        result = search_scenes(StacCatalogue(url=url), LON, LAT, datetime(2026, 7, 1, tzinfo=UTC), NOW)
    assert result.scenes == [] and result.refused
    assert all("'attacker.example', outside the catalogue's host" in why for why in result.refused)


def _geotiff(path, pixel_m: float, size: int, block: int, dtype: str, compress: str | None = None) -> BandAsset:
    xs, ys = warp_transform("EPSG:4326", "EPSG:32610", [LON], [LAT])
    half = size * pixel_m / 2
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": dtype, "crs": "EPSG:32610",
               "transform": Affine(pixel_m, 0, xs[0] - half, 0, -pixel_m, ys[0] + half), "tiled": True,
               "blockxsize": block, "blockysize": block}
    if compress:
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.ones((size, size), dtype), 1)
    return BandAsset(str(path), 0.0001, -0.1, 0)


def test_a_cog_with_implausibly_small_pixels_is_not_read(tmp_path) -> None:
    asset = _geotiff(tmp_path / "tiny.tif", pixel_m=0.01, size=256, block=256, dtype="uint16", compress="deflate")
    with pytest.raises(ReadRefused, match="source pixels a side"):
        read_box(asset, FireBox(LON, LAT))


def test_a_cog_whose_box_touches_huge_blocks_is_not_read(tmp_path) -> None:
    asset = _geotiff(tmp_path / "huge.tif", pixel_m=10.0, size=2048, block=2048, dtype="float32")
    with pytest.raises(ReadRefused, match=f"at most {MAX_READ_BYTES}"):
        read_box(asset, FireBox(LON, LAT))


def test_a_plain_cog_is_read(tmp_path) -> None:
    asset = _geotiff(tmp_path / "plain.tif", pixel_m=10.0, size=512, block=256, dtype="uint16", compress="deflate")
    read = read_box(asset, FireBox(LON, LAT))
    assert read.data.shape == (224, 224) and read.bytes_read < MAX_READ_BYTES
