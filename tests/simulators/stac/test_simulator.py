"""The STAC/COG simulator over real HTTP: Earth Search paging, items, COGs with Range, faults, the scene generator."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile

from services.tiler.sentinel2.scenes import parse_scene_id, scene_from_item
from services.tiler.sentinel2.search import StacCatalogue, search_scenes
from simulators.stac import scenes
from simulators.stac.app import parse_fires
from tests.simulators.stac.helpers import frozen_state, running_simulator

NOW = datetime(2026, 7, 30, 12, tzinfo=UTC)
LON, LAT = -120.3, 50.1


@pytest.fixture()
def simulator():
    with running_simulator(frozen_state(NOW)) as (url, state):
        yield url, state


def _body(**extra) -> dict:
    return {"collections": ["sentinel-2-c1-l2a"], "intersects": {"type": "Point", "coordinates": [LON, LAT]},
            "datetime": "2026-06-01T00:00:00Z/2026-07-30T12:00:00Z", **extra}


def test_search_pages_with_a_next_token_and_items_have_earth_search_v1_shapes(simulator) -> None:
    url, _ = simulator
    first = httpx.post(f"{url}/search", json=_body(limit=5)).json()
    assert first["numberReturned"] == 5 and first["numberMatched"] > 5
    [link] = [l for l in first["links"] if l["rel"] == "next"]
    assert link["method"] == "POST" and link["body"]["next"].endswith(",sentinel-2-c1-l2a")
    second = httpx.post(link["href"], json=link["body"]).json()
    ids = [f["id"] for f in first["features"]] + [f["id"] for f in second["features"]]
    assert len(set(ids)) == len(ids)
    item = first["features"][0]
    assert {"blue", "green", "red", "nir08", "swir16", "swir22", "scl", "visual"} <= set(item["assets"])
    assert item["assets"]["swir22"]["raster:bands"][0]["scale"] == 0.0001
    assert item["assets"]["swir22"]["raster:bands"][0]["offset"] == -0.1
    sensed = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(item["properties"]["created"].replace("Z", "+00:00"))
    assert timedelta(hours=3) <= created - sensed <= timedelta(hours=10) and created <= NOW
    assert parse_scene_id(item["id"]).date == f"{sensed:%Y%m%d}"
    scene_from_item(item)  # the provider's parser accepts it


def test_pystac_client_reads_every_page_and_sees_a_five_day_revisit(simulator) -> None:
    url, _ = simulator
    catalogue = StacCatalogue(url=url, page_size=3)
    result = search_scenes(catalogue, LON, LAT, datetime(2026, 6, 1, tzinfo=UTC), NOW)
    days = sorted({s.acquired_at for s in result.scenes})
    assert len(result.scenes) >= 11 and not result.refused
    assert all((b - a) == timedelta(days=5) for a, b in itertools.pairwise(days))


def test_an_acquisition_is_searchable_only_once_catalogued(simulator) -> None:
    url, state = simulator
    granule = scenes.granules_at(LON, LAT)[0]
    sensed, created = scenes.acquisitions(granule, NOW - timedelta(days=5), NOW + timedelta(days=5))[-1]
    state.clock.set(at=created - timedelta(minutes=1))
    before = httpx.post(f"{url}/search", json=_body(datetime=f"{sensed:%Y-%m-%dT%H:%M:%SZ}/..")).json()
    state.clock.set(at=created + timedelta(minutes=1))
    after = httpx.post(f"{url}/search", json=_body(datetime=f"{sensed:%Y-%m-%dT%H:%M:%SZ}/..")).json()
    assert before["numberMatched"] == 0 and after["numberMatched"] >= 1


def test_cogs_answer_range_requests_and_show_burns_and_flames(simulator) -> None:
    url, state = simulator
    state.fires = parse_fires([{"lat": LAT, "lon": LON, "hectares": 300, "start": "2026-07-01T00:00:00Z",
                                "growth_h": 240}])
    item = httpx.post(f"{url}/search", json=_body(datetime="2026-07-03T00:00:00Z/2026-07-09T00:00:00Z")).json()
    href = item["features"][0]["assets"]["swir22"]["href"]
    head = httpx.get(href, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and len(head.content) == 100
    total = int(head.headers["content-range"].split("/")[1])
    with MemoryFile(httpx.get(href).content) as memory, memory.open() as cog:
        assert cog.block_shapes[0] == (256, 256) and cog.overviews(1)
        x, y = rasterio.warp.transform("EPSG:4326", cog.crs, [LON], [LAT])
        row, col = cog.index(x[0], y[0])
        b12 = cog.read(1) * 0.0001 - 0.1
    assert total > 100
    burned = b12[row - 3:row + 3, col - 3:col + 3]
    assert burned.mean() > 0.2  # the scar is bright in SWIR
    assert (b12 >= 3.0).sum() > 0  # the active front saturates B12


def test_faults_are_429_with_retry_after_or_5xx_and_the_client_retries(simulator) -> None:
    url, _ = simulator
    httpx.post(f"{url}/_admin/faults", json={"status": 429, "count": 1})
    refused = httpx.post(f"{url}/search", json=_body())
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    httpx.post(f"{url}/_admin/faults", json={"status": 503, "count": 2})
    result = search_scenes(StacCatalogue(url=url), LON, LAT, datetime(2026, 7, 1, tzinfo=UTC), NOW)
    assert result.scenes
    assert httpx.get(f"{url}/_admin/stats").json()["search:503"] == 2


def test_scl_marks_clouds_and_their_shadows() -> None:
    granule = scenes.granules_at(LON, LAT)[0]
    cloudy = None
    for sensed, _ in scenes.acquisitions(granule, datetime(2026, 6, 1, tzinfo=UTC), NOW):
        layers = scenes.scene_layers(granule, sensed, [])
        if layers.cloud.mean() > 0.2:
            cloudy = layers
            break
    assert cloudy is not None
    classes = scenes.scl(cloudy)
    assert {3, 8, 9} <= set(np.unique(classes))


def test_the_demo_season_gives_the_simulator_the_cwfis_fires_burning_until_out(monkeypatch) -> None:
    from simulators.cwfis.season import season_fires
    from simulators.stac.app import state_from_env

    monkeypatch.delenv("EMBERWATCH_STAC_SIM_FIRES", raising=False)
    monkeypatch.setenv("EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON", "7,20,2026")
    fires = state_from_env().fires
    season = season_fires(7, 20, 2026)
    assert len(fires) == len(season) == 20
    for fire, source in zip(fires, season, strict=True):
        dlat, dlon = source.correction or (0.0, 0.0)
        assert (fire.lat, fire.lon, fire.start) == (source.lat + dlat, source.lon + dlon, source.start)
        assert fire.end == source.start + timedelta(hours=source.oc_h + source.bh_h + source.uc_h)
