"""The Sentinel-2 client over real recorded responses and real COGs (opt-in: EMBERWATCH_FIXTURES_DIR).

Earth Search v1 search with paging, Collection-1 ids, a Planetary Computer item, windowed reads of B11,
B12 and SCL from the real COGs by HTTP range requests with scale and offset applied, and the legacy
v0 item refused. Everything goes over a real local HTTP server (fixture_server.py).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import from_bounds

from services.tiler.sentinel2.scenes import (
    EARTH_SEARCH_KEYS,
    SceneRefused,
    parse_scene_id,
    scene_from_item,
)
from services.tiler.sentinel2.search import StacCatalogue, search_scenes
from services.tiler.sentinel2.windowed_read import FireBox, read_box
from tests.services.tiler.sentinel2.fixture_server import serve

pytestmark = pytest.mark.fixtures

SCENE = "S2A_29RKH_20200219_0_L2A"
PC_ITEM = "planetarycomputer__item__S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"


@pytest.fixture(scope="module")
def sentinel2_dir() -> Path:
    root = os.environ.get("EMBERWATCH_FIXTURES_DIR")
    if not root:
        pytest.skip("set EMBERWATCH_FIXTURES_DIR to run tests over the real fixtures")
    path = Path(root) / "sentinel2"
    if not path.is_dir():
        pytest.skip(f"no sentinel2 fixtures under {root}")
    return path


@pytest.fixture()
def server(sentinel2_dir: Path):
    state, httpd = serve(sentinel2_dir / "stac", sentinel2_dir / "cog" / SCENE)
    yield state
    httpd.shutdown()
    httpd.server_close()


def _search(server, modifier=None):
    catalogue = StacCatalogue(url=f"{server.base}/v1", collections=("sentinel-2-l2a",), modifier=modifier)
    return search_scenes(catalogue, -105.1019, 40.1672, datetime(2023, 10, 8, tzinfo=UTC),
                         datetime(2023, 10, 8, 23, 59, 59, tzinfo=UTC))


def test_earth_search_v1_search_follows_the_next_link(server) -> None:
    result = _search(server)
    for _ in range(100):  # the server's thread records a request just after answering it: at most 2 s
        posts = [s.body for s in server.log if s.method == "POST"]
        if len(posts) >= 2:
            break
        time.sleep(0.02)
    assert len(posts) == 2  # the second page (empty) came from the first page's `next` link
    assert posts[1]["next"] == "2023-10-08T17:37:26.656958Z,LC08_L2SP_033032_20231008_02_T1,landsat-c2-l2"
    assert posts[0]["intersects"] == {"type": "Point", "coordinates": [-105.1019, 40.1672]}
    [scene] = result.scenes
    assert scene.scene_id == "S2A_13TDE_20231008_0_L2A"
    assert scene.acquired_at == datetime(2023, 10, 8, 18, 2, 55, 276000, tzinfo=UTC)
    assert scene.catalogued_at == datetime(2023, 10, 9, 1, 25, 21, 658000, tzinfo=UTC)
    assert (scene.bands["swir22"].scale, scene.bands["swir22"].offset) == (0.0001, -0.1)
    assert scene.bands["swir16"].href.endswith("/B11.tif")
    assert any("landsat-c2-l2" in why for why in result.refused)  # the recorded page also holds a Landsat item


def test_a_signing_modifier_is_applied_to_every_href(server) -> None:
    def sign(page: dict) -> None:
        for item in page.get("features", []):
            for asset in item["assets"].values():
                asset["href"] += "?sig=test"

    [scene] = _search(server, modifier=sign).scenes
    assert all(band.href.endswith("?sig=test") for band in scene.bands.values())


def test_collection_1_assets_and_ids(sentinel2_dir: Path) -> None:
    collection = json.loads((sentinel2_dir / "stac/earthsearch-v1__collection__sentinel-2-c1-l2a.json").read_text())
    assert collection["id"] in StacCatalogue().collections
    assert set(EARTH_SEARCH_KEYS.values()) <= set(collection["item_assets"])
    assert parse_scene_id("S2B_T13TDE_20231008T175239_L2A").mgrs_tile == "13TDE"
    assert parse_scene_id("S2A_13TDE_20231008_0_L2A").date == "20231008"


def test_planetary_computer_item(sentinel2_dir: Path) -> None:
    scene = scene_from_item(json.loads((sentinel2_dir / "stac" / PC_ITEM).read_text()))
    assert scene.bands["swir16"].href.endswith("_B11_20m.tif") and scene.bands["scl"].href.endswith("_SCL_20m.tif")
    assert scene.catalogued_at is None  # Planetary Computer items carry no `created`
    assert (scene.bands["swir22"].scale, scene.bands["swir22"].offset) == (0.0001, 0.0)  # baseline 02.12
    assert parse_scene_id(scene.scene_id).mgrs_tile == "06VVN"


def test_the_legacy_v0_item_is_refused_clearly(sentinel2_dir: Path) -> None:
    item = json.loads((sentinel2_dir / "stac/rio-tiler-pds__S2A_31NBJ_20190524_0_L2A.json").read_text())
    with pytest.raises(SceneRefused, match="legacy STAC item .*1.0.0-beta.2.*sentinel-s2-l2a-cogs"):
        scene_from_item(item)


def test_windowed_read_of_real_cogs_applies_scale_and_offset(server, sentinel2_dir: Path) -> None:
    item = json.loads((sentinel2_dir / "cog" / SCENE / f"{SCENE}.json").read_text())
    for asset in item["assets"].values():
        asset["href"] = f"{server.base}/cog/{asset['href'].rsplit('/', 1)[-1]}"
    scene = scene_from_item(item)
    box = FireBox(lon=-11.45, lat=24.75, side_m=6000, size_px=60)  # 30 x 30 pixels of the 200 m bands
    reads = {band: read_box(scene.bands[band], box, categorical=band == "scl") for band in ("swir16", "swir22", "scl")}

    with rasterio.open(sentinel2_dir / "cog" / SCENE / "B12.tif") as local:
        t = reads["swir22"].transform
        window = from_bounds(t.c, t.f - box.side_m, t.c + box.side_m, t.f, local.transform)
        dn = local.read(1, window=window, out_shape=(60, 60), resampling=rasterio.enums.Resampling.bilinear)
    np.testing.assert_allclose(reads["swir22"].data, dn * 0.0001, rtol=1e-5, atol=1e-6)
    assert 0.05 < float(np.nanmean(reads["swir16"].data)) < 1.0  # desert reflectance, not raw DN
    assert set(np.unique(reads["scl"].data)) <= set(range(12))
    assert reads["scl"].crs == "EPSG:32629"

    served = [s for s in server.log if s.path.startswith("/cog/") and s.method == "GET"]
    assert served and all(s.range for s in served), "every COG read is a range request"
    for name in ("B11.tif", "B12.tif"):  # SCL.tif (8 KiB) fits in the header GDAL reads first
        sent = sum(s.bytes_sent for s in served if s.path == f"/cog/{name}")
        size = (sentinel2_dir / "cog" / SCENE / name).stat().st_size
        assert 0 < sent < size, f"{name}: {sent} of {size} bytes read"
    for band in ("swir16", "swir22"):
        assert reads[band].bytes_read < (sentinel2_dir / "cog" / SCENE / "B12.tif").stat().st_size
