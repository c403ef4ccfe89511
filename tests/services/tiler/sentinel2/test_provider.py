"""The Sentinel-2 provider against the STAC/COG simulator over real HTTP: a pair, its indices, or a retry."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
from PIL import Image

from services.tiler.sentinel2.composites import read_georeference
from services.tiler.sentinel2.pairing import PairPolicy, Ready, RetryLater
from services.tiler.sentinel2.provider import FireWindow, Sentinel2Provider
from services.tiler.sentinel2.search import StacCatalogue
from simulators.stac.app import parse_fires
from tests.simulators.stac.helpers import frozen_state, running_simulator

START = datetime(2026, 7, 10, tzinfo=UTC)
FIRE = FireWindow("bc:G80123", lon=-120.3, lat=50.1, start=START)


def test_a_burning_fire_gets_its_post_fire_tile_and_a_pre_fire_control() -> None:
    now = START + timedelta(days=20)
    with running_simulator(frozen_state(now)) as (url, state):
        state.fires = parse_fires([{"lat": FIRE.lat, "lon": FIRE.lon, "hectares": 300, "start": START.isoformat(),
                                    "growth_h": 96}])
        result = Sentinel2Provider(StacCatalogue(url=url)).fetch_pair(FIRE, now)
        served = httpx.get(f"{url}/_admin/stats").json()["cog_bytes"]

    assert isinstance(result.decision, Ready), result.decision
    assert START <= result.post.scene.acquired_at <= now and result.pre.scene.acquired_at < START
    assert result.post.cloud_fraction <= 0.2 and result.pre.cloud_fraction <= 0.2
    assert result.evidence.dnbr >= 0.1 and result.evidence.visible
    for image in (result.post.swir, result.post.true_colour, result.pre.swir):
        assert Image.open(io.BytesIO(image.png)).size == (224, 224)
    crs, transform = read_georeference(result.post.swir.png)
    assert crs.startswith("EPSG:326") and transform.a == 10.0
    assert result.post.bytes_read < 2_000_000
    assert 0 < served < 8 * 2_000_000  # every band of both scenes and the SCL of each candidate, by ranges


def test_a_fire_no_acquisition_shows_yet_is_retried_with_a_reason() -> None:
    now = START + timedelta(hours=6)
    with running_simulator(frozen_state(now)) as (url, _state):
        policy = PairPolicy(retry_every=timedelta(hours=12))
        result = Sentinel2Provider(StacCatalogue(url=url), policy).fetch_pair(FIRE, now)
    assert isinstance(result.decision, RetryLater)
    assert result.decision.at == now + timedelta(hours=12) and "since the start" in result.decision.reason
    assert result.post is None
