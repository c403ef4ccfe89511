"""The tiler end to end: real broker (Tansu), real HTTP to the Mapbox simulator, real files."""

from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
from PIL import Image

from emberwatch.common.geo import haversine_km
from services.tiler.assign_split import assign_split
from simulators.mapbox.app import Fault, SimState
from simulators.mapbox.imagery import Fire
from tests.messaging.helpers import wait_for
from tests.services.tiler.harness import fire, metric, running_tiler, tiler_settings
from tests.simulators.mapbox.helpers import running_simulator

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sim():
    state = SimState(tokens={"pk.good"})
    with running_simulator(state) as (url, st):
        yield url, st


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "mapbox-token"
    path.write_text("pk.good\n")
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(urlparse(uri).path).convert("RGB"), dtype=np.float32)


async def test_static_mode_tiles_every_new_fire_and_a_replay_duplicates_nothing(kafka_settings, tmp_path,
                                                                               sim, token_file):
    url, state = sim
    state.fires.set([Fire(55.0, -115.0, 300), Fire(58.2, -121.3, 40)])
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file)
    fires = [fire("ab:1", 55.0, -115.0), fire("bc:2", 58.2, -121.3),
             fire("ab:1", 55.0, -115.0, change="updated"), fire("bc:2", 58.2, -121.3, change="out")]
    async with running_tiler(s) as run:
        sent_at = datetime.now(UTC)
        await run.send(*fires)
        tiles = await run.tiles(6)
        await wait_for(lambda: len(run.handled) == 4, timeout_s=30)
    suffix, topic_in = run.suffix, run.topic_in
    assert len(tiles) == 6
    for t in tiles:
        path = Path(urlparse(t.uri).path)
        assert t.uri.startswith("file:///") and path.parent.name == t.tile_id[:2]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == t.tile_id
        assert Image.open(path).size == (350, 350) and t.size_px == 350 and t.zoom == 15
        assert t.provider == "mapbox-static"
        assert t.split == assign_split(t.lat, t.lon, cell_deg=s.tiler_split_cell_deg)
        # when its fire was reported (published, wall clock), for the fire-to-prediction latency
        assert sent_at - timedelta(seconds=1) <= t.fire_observed_at <= datetime.now(UTC)
    by_fire = {k: [t for t in tiles if t.fire_key == k] for k in ("ab:1", "bc:2")}
    for key, (lat, lon) in {"ab:1": (55.0, -115.0), "bc:2": (58.2, -121.3)}.items():
        labels = sorted(t.label for t in by_fire[key])
        assert labels == ["nowildfire", "nowildfire", "wildfire"]
        for neg in (t for t in by_fire[key] if t.label == "nowildfire"):
            assert 10 <= haversine_km(lat, lon, neg.lat, neg.lon) <= 50
    # A fire tile shows its burn scar: darker than its own negatives on average.
    pos = [_pixels(t.uri).mean() for t in tiles if t.label == "wildfire"]
    neg = [_pixels(t.uri).mean() for t in tiles if t.label == "nowildfire"]
    assert len({t.tile_id for t in tiles}) == 6 and min(pos) != max(neg)

    stored = _files(tmp_path / "state" / "tiles")
    requests_before = sum(state.by_status.values())
    # Replay: a new consumer group reads the same fires again from the start, same state dir.
    async with running_tiler(s, suffix=suffix, topic_in=topic_in) as replay:
        await wait_for(lambda: len(replay.handled) == 4, timeout_s=30)
        again = await replay.tiles(7, timeout_s=3)
    assert len(again) == 6  # nothing republished
    assert _files(tmp_path / "state" / "tiles") == stored  # nothing stored twice
    assert sum(state.by_status.values()) == requests_before  # nothing even refetched


async def test_raster_mode_mosaics_tiles_to_the_static_footprint(kafka_settings, tmp_path, sim, token_file):
    url, state = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_mode="raster",
                       tiler_negatives_per_fire=1)
    async with running_tiler(s) as run:
        await run.send(fire("on:7", 49.71, -86.95))
        tiles = await run.tiles(2)
    assert {t.provider for t in tiles} == {"mapbox-raster"}
    assert state.by_api["raster"] >= 2 and state.by_api["static"] == 0
    async with httpx.AsyncClient(base_url=url) as client:
        for t in tiles:
            r = await client.get(f"/styles/v1/mapbox/satellite-v9/static/{t.lon},{t.lat},15,0/350x350",
                                 params={"access_token": "pk.good"})
            static = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=np.float32)
            assert np.abs(_pixels(t.uri) - static).mean() < 6  # same ground as the static image


async def test_rejected_token_alerts_once_holds_requests_and_resumes_on_a_new_token(kafka_settings, tmp_path,
                                                                                   sim, token_file):
    url, state = sim
    token_file.write_text("pk.revoked")
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=1)
    async with running_tiler(s) as run:
        await run.send(fire("ab:10", 54.0, -113.0), fire("ab:11", 56.0, -117.0))
        alerts = await run.alerts(1)
        assert alerts[0].alert == "mapbox_auth_failed" and alerts[0].severity == "critical"
        assert "pk.revoked" not in alerts[0].to_bytes().decode()
        rejected = state.by_status[401]
        await asyncio.sleep(1.0)
        # Only the requests already in flight met the 401 (2 fires × 2 tiles); then none while the
        # token is unchanged.
        assert state.by_status[401] == rejected <= 4
        assert run.handled == []  # the fire waits, uncommitted
        token_file.write_text("pk.good")
        tiles = await run.tiles(4)
        await wait_for(lambda: len(run.handled) == 2, timeout_s=30)
        assert len(await run.alerts(2, timeout_s=2)) == 1  # alerted once
        assert await run.dead(1, timeout_s=1) == []
    assert {t.fire_key for t in tiles} == {"ab:10", "ab:11"}


async def test_unprocessable_request_goes_to_the_dlq_and_the_next_fire_is_tiled(kafka_settings, tmp_path,
                                                                                sim, token_file):
    url, state = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=0)
    async with running_tiler(s) as run:
        await run.send(fire("nu:polar", 86.5, -70.0), fire("nu:ok", 63.7, -68.5), key=b"in-order")
        dead = await run.dead(1)
        tiles = await run.tiles(1)
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-dlq-reason"] == "permanent" and "422" in headers["x-dlq-error"]
    assert "pk.good" not in headers["x-dlq-error"]
    assert state.by_status[422] == 1  # not retried
    assert [t.fire_key for t in tiles] == ["nu:ok"]


async def test_rate_limit_is_honoured(kafka_settings, tmp_path, sim, token_file):
    url, state = sim
    state.rate_limit, state.rate_interval_s = 3, 1.0
    # Region-only negatives: the 429 bound below counts the waves of tile requests alone.
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negative_match_cover=False)
    waits = metric("emberwatch_tiler_retries_total", reason="429")
    async with running_tiler(s) as run:
        await run.send(fire("sk:1", 55.5, -105.0), fire("sk:2", 57.5, -103.0))
        tiles = await run.tiles(6)
    assert len(tiles) == 6
    # Once told to wait, every request paused: at most the requests already in flight saw a 429.
    assert 1 <= state.by_status[429] <= 3
    assert metric("emberwatch_tiler_retries_total", reason="429") - waits == state.by_status[429]


async def test_server_errors_and_timeouts_are_retried_and_an_outage_loses_nothing(kafka_settings, tmp_path,
                                                                                  sim, token_file):
    url, state = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=0,
                       tiler_request_timeout_s=0.3, tiler_retry_attempts=3)
    state.faults.extend([Fault("status", 1, 503), Fault("slow", 1, seconds=0.6)])
    before = {r: metric("emberwatch_tiler_retries_total", reason=r) for r in ("5xx", "timeout", "outage")}
    async with running_tiler(s) as run:
        await run.send(fire("mb:1", 54.5, -99.0))
        first = await run.tiles(1)
        assert metric("emberwatch_tiler_retries_total", reason="5xx") > before["5xx"]
        assert metric("emberwatch_tiler_retries_total", reason="timeout") > before["timeout"]
        # Mapbox goes down for longer than the retry budget: the fire waits, then is fetched.
        state.faults.append(Fault("status", -1, 500))
        await run.send(fire("mb:2", 55.5, -98.0))
        alerts = await run.alerts(1)
        assert alerts[0].alert == "mapbox_unavailable"
        await asyncio.sleep(0.5)
        assert run.handled == ["mb:1"]
        state.faults.clear()
        second = await run.tiles(2)
        await wait_for(lambda: run.handled == ["mb:1", "mb:2"], timeout_s=30)
        assert await run.dead(1, timeout_s=1) == []
    assert sorted(t.fire_key for t in second) == ["mb:1", "mb:2"] and first[0] in second
    assert metric("emberwatch_tiler_retries_total", reason="outage") > before["outage"]


async def test_bad_images_are_rejected(kafka_settings, tmp_path, sim, token_file):
    url, state = sim
    s = tiler_settings(kafka_settings, tmp_path / "state", url, token_file, tiler_negatives_per_fire=0,
                       tiler_image_attempts=3, tiler_batch_size=1)
    reasons = ("truncated", "error_body", "blank")
    before = {r: metric("emberwatch_tiler_tiles_rejected_total", reason=r) for r in reasons}
    # One fire at a time (the shared consumer), one request per fire: the faults meet the fires in order.
    state.faults.extend([Fault("truncated", 1), Fault("ok", 1), Fault("html_200", 3), Fault("blank", 1)])
    async with running_tiler(s) as run:
        await run.send(fire("qc:truncated-once", 50.1, -75.0), fire("qc:error-body", 51.1, -74.0),
                       fire("qc:blank", 52.1, -73.0), fire("qc:fine", 53.1, -72.0), key=b"in-order")
        await wait_for(lambda: len(run.handled) == 3, timeout_s=30)  # the error body one went to the DLQ
        dead = await run.dead(1)
        tiles = await run.tiles(2)
    assert sorted(t.fire_key for t in tiles) == ["qc:fine", "qc:truncated-once"]
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-dlq-reason"] == "permanent" and "error_body" in headers["x-dlq-error"]
    delta = {r: metric("emberwatch_tiler_tiles_rejected_total", reason=r) - before[r] for r in reasons}
    assert delta == {"truncated": 1, "error_body": 3, "blank": 1}
    for t in tiles:
        Image.open(urlparse(t.uri).path).load()  # every stored tile decodes completely
