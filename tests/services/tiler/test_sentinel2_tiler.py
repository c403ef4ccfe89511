"""The tiler with Sentinel-2 on, end to end: real broker (Tansu), the real STAC/COG simulator over HTTP
beside the Mapbox simulator, real files and the real coordination database."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

from emberwatch.common.coordination import coordination_url, open_coordination
from emberwatch.contracts import FireObserved, TileReady
from services.tiler.assign_split import assign_split
from services.tiler.sentinel2.composites import read_georeference
from services.tiler.sentinel2_pending import GIVEN_UP, MADE, PENDING, Sentinel2Fires
from simulators.mapbox.app import SimState
from simulators.stac.app import parse_fires
from tests.messaging.helpers import wait_for
from tests.services.tiler.harness import metric, running_tiler, tiler_settings
from tests.simulators.mapbox.helpers import running_simulator as running_mapbox
from tests.simulators.stac.helpers import frozen_state
from tests.simulators.stac.helpers import running_simulator as running_stac

pytestmark = pytest.mark.timeout(180)

START = datetime(2026, 7, 10, tzinfo=UTC)
LAT, LON = 50.1, -120.3


@pytest.fixture
def sims(tmp_path):
    token_file = tmp_path / "mapbox-token"
    token_file.write_text("pk.good\n")
    with running_mapbox(SimState(tokens={"pk.good"})) as (mapbox_url, _), \
            running_stac(frozen_state(START + timedelta(days=20))) as (stac_url, stac):
        stac.fires = parse_fires([{"lat": LAT, "lon": LON, "hectares": 300, "start": START.isoformat(),
                                   "growth_h": 96}])
        yield mapbox_url, token_file, stac_url, stac


def settings(kafka_settings, tmp_path: Path, sims, **overrides):
    mapbox_url, token_file, stac_url, _ = sims
    values = dict(tiler_sentinel2=True, tiler_sentinel2_stac_url=stac_url, tiler_sentinel2_clock="feed",
                  tiler_sentinel2_check_interval_s=0.2, tiler_sentinel2_outage_backoff_max_s=0.5,
                  tiler_negatives_per_fire=0, tiler_negative_match_cover=False)
    values.update(overrides)
    return tiler_settings(kafka_settings, tmp_path / "state", mapbox_url, token_file, **values)


def event(key: str, change: str, at: datetime) -> FireObserved:
    return FireObserved.create(producer="test", fire_key=key, source="cwfis-csv", agency="bc", name=key, lat=LAT,
                               lon=LON, hectares=300.0, change=change, start_date=START, snapshot_at=at)


def sentinel2(tiles: list[TileReady]) -> list[TileReady]:
    return [t for t in tiles if t.product != "mapbox"]


def fires_of(s) -> Sentinel2Fires:
    return Sentinel2Fires(open_coordination(coordination_url(s)))


def outcomes() -> dict[str, float]:
    return {o: metric("emberwatch_tiler_sentinel2_pairs_total", outcome=o)
            for o in ("made", "retried", "outage", "given_up")}


async def test_a_fire_gets_its_dated_pair_once_and_a_replay_announces_nothing(kafka_settings, tmp_path, sims):
    s = settings(kafka_settings, tmp_path, sims)
    now = START + timedelta(days=20)
    async with running_tiler(s) as run:
        await run.send(event("bc:K1", "new", now))
        tiles = await run.tiles(5, timeout_s=60)
    mine = sentinel2(tiles)
    assert len(tiles) == 5 and len(mine) == 4  # one Mapbox tile beside the four Sentinel-2 ones
    by = {(t.label, t.product): t for t in mine}
    assert set(by) == {(label, product) for label in ("wildfire", "nowildfire")
                       for product in ("sentinel2-swir", "sentinel2-true-colour")}
    split = assign_split(LAT, LON, cell_deg=s.tiler_split_cell_deg, val=s.tiler_split_val, test=s.tiler_split_test)
    for t in mine:
        path = Path(urlparse(t.uri).path)
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == t.tile_id and Image.open(io.BytesIO(data)).size == (224, 224)
        assert read_georeference(data)[0].startswith("EPSG:326")
        assert (t.fire_key, t.split, t.provider, t.size_px) == ("bc:K1", split, "sentinel2-stac", 224)
        assert t.scene_id and t.catalogued_at >= t.acquired_at and 0 <= t.cloud_fraction <= 0.2
    fire_tile, control = by[("wildfire", "sentinel2-swir")], by[("nowildfire", "sentinel2-swir")]
    assert START <= fire_tile.acquired_at <= now and control.acquired_at < START
    assert by[("wildfire", "sentinel2-true-colour")].scene_id == fire_tile.scene_id != control.scene_id
    assert fire_tile.dnbr >= 0.1 and fire_tile.visible and fire_tile.nbr is not None and fire_tile.hot_pixels >= 0
    assert control.dnbr is None and control.visible is None
    assert fires_of(s).state("bc:K1") == (MADE, None)

    async with running_tiler(s, suffix=run.suffix, topic_in=run.topic_in) as replay:
        await wait_for(lambda: len(replay.handled) == 1, timeout_s=30)
        await replay.tiler.sentinel2.run_due()
        again = await replay.tiles(6, timeout_s=3)
    assert len(again) == 5  # nothing announced twice


async def test_a_fire_no_clear_scene_shows_yet_is_retried_then_made_when_the_clock_moves(kafka_settings, tmp_path,
                                                                                         sims):
    _, _, _, stac = sims
    s = settings(kafka_settings, tmp_path, sims, tiler_sentinel2_retry_hours=12)
    before = outcomes()
    stac.clock.set(at=START + timedelta(hours=6))
    async with running_tiler(s) as run:
        await run.send(event("bc:K2", "new", START + timedelta(hours=6)))
        await wait_for(lambda: outcomes()["retried"] > before["retried"], timeout_s=60)
        assert fires_of(s).state("bc:K2")[0] == PENDING and sentinel2(await run.tiles(2, timeout_s=2)) == []
        stac.clock.set(at=START + timedelta(days=20))  # scenes acquired since are catalogued now
        await run.send(event("bc:K2", "updated", START + timedelta(days=20)))
        tiles = sentinel2(await run.tiles(5, timeout_s=60))
    assert len(tiles) == 4 and fires_of(s).state("bc:K2") == (MADE, None)
    assert all(t.acquired_at <= START + timedelta(days=20) for t in tiles)


async def test_a_fire_never_seen_clear_is_given_up_with_an_info_alert(kafka_settings, tmp_path, sims):
    s = settings(kafka_settings, tmp_path, sims, tiler_sentinel2_give_up_days=0.2, tiler_sentinel2_retry_hours=1)
    before = outcomes()
    async with running_tiler(s) as run:
        await run.send(event("bc:K3", "new", START + timedelta(hours=1)))
        await wait_for(lambda: outcomes()["retried"] > before["retried"], timeout_s=60)
        await run.send(event("bc:K3", "updated", START + timedelta(hours=5)))  # past the 4.8 h allowed
        alerts = await run.alerts(1, timeout_s=60)
        tiles = await run.tiles(2, timeout_s=2)
    state, reason = fires_of(s).state("bc:K3")
    assert state == GIVEN_UP and "none with at most 20% cloud over the fire" in reason
    [alert] = [a for a in alerts if a.alert == "sentinel2_given_up"]
    assert (alert.alert, alert.severity, alert.details["fire_key"]) == ("sentinel2_given_up", "info", "bc:K3")
    assert sentinel2(tiles) == [] and outcomes()["given_up"] == before["given_up"] + 1


async def test_a_burst_of_429_and_503_answers_is_waited_out_and_the_fire_kept(kafka_settings, tmp_path, sims):
    _, _, _, stac = sims
    s = settings(kafka_settings, tmp_path, sims)
    before = outcomes()
    stac.faults.extend([429, 503, 429, 503, 503, 502, 429])  # more than one search's own retries
    async with running_tiler(s) as run:
        await run.send(event("bc:K4", "new", START + timedelta(days=20)))
        tiles = sentinel2(await run.tiles(5, timeout_s=90))
    assert len(tiles) == 4 and fires_of(s).state("bc:K4") == (MADE, None)
    assert outcomes()["outage"] > before["outage"] and not stac.faults
