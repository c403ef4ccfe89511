"""The fault suite against the running system: kills, outages, rate limits, poison, bad feeds.

The whole system runs (stack, simulators, services) on ports chosen at run time. While the
simulated season advances, each service is SIGKILLed mid-stream and restarted, Mapbox and Discord
rate-limit and fail, the CWFIS feed serves an HTML error page, and poison messages are published.
Afterwards: every fire has its tile, no tile is stored twice, no post is duplicated, nothing is
lost, and the DLQs hold exactly the poisoned inputs (each original record counted once: a
service killed between a DLQ write and its commit writes it again). The figures are printed (run with -s).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from emberwatch.common.config import Settings
from emberwatch.contracts import TileReady
from emberwatch.contracts.topics import Topic, dlq_topic
from emberwatch.operations.run_demo import advance_season, discord_posts, message_fingerprint, start_system
from emberwatch.operations.watch_pipeline import PipelineWatcher
from emberwatch.stack import manage, processes
from tests.e2e.demo_env import demo_env
from services.tiler.settings import TilerSettings
from tests.messaging.helpers import read_all

pytestmark = [pytest.mark.timeout(1500), pytest.mark.e2e]

POISON = {Topic.FIRES_OBSERVED: [b"not json", b'{"type": "fires.observed"}'],
          Topic.TILES_READY: [b"\x00\x01garbage"]}
# Which services consume each poisoned topic (each sends its own copy to the DLQ).
DEFAULT_TILER_BATCH = TilerSettings.model_fields["tiler_batch_size"].default
CONSUMERS = {Topic.FIRES_OBSERVED: {"tiler"}, Topic.TILES_READY: {"trainer", "gatekeeper"}}


def _kill(settings: Settings, name: str) -> int:
    record = processes.ProcessRecord.load(manage.pid_path(settings, name))
    assert record is not None and processes.is_running(record), f"{name} is not running"
    os.killpg(record.pid, signal.SIGKILL)
    processes._wait_group_gone(record.pid, 10)  # noqa: SLF001 - test helper
    return record.pid


async def _until_quiet(watcher: PipelineWatcher, seconds: float = 20, limit_s: float = 240) -> None:
    """Wait until no new fire or tile event arrived for ``seconds`` (bounded by ``limit_s``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    last = (-1, -1)
    quiet_since = loop.time()
    while loop.time() < deadline:
        now = (sum(watcher.tally.fire_events.values()), watcher.tally.tile_events)
        if now != last:
            last, quiet_since = now, loop.time()
        elif loop.time() - quiet_since >= seconds:
            return
        await asyncio.sleep(1)


async def test_the_system_survives_faults_and_loses_nothing(tmp_path, monkeypatch):
    env = demo_env(tmp_path / "state", EMBERWATCH_GATEKEEPER_MIN_PAIRS="400",
                   EMBERWATCH_TILER_OUTAGE_BACKOFF_MAX_S="5", EMBERWATCH_TRAINER_TRAIN_AFTER_NEW_TILES="100000")
    for key in [k for k in os.environ if k.startswith("EMBERWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("EMBERWATCH_"):
            monkeypatch.setenv(key, value)
    settings = await asyncio.to_thread(start_system, Settings(), lambda msg: None)
    host = settings.stack_host
    mapbox = f"http://{host}:{settings.mapbox_sim_port}"
    discord = f"http://{host}:{settings.discord_sim_port}"
    cwfis = f"http://{host}:{settings.cwfis_sim_port}"
    watcher = PipelineWatcher(settings.kafka_bootstrap_servers)
    faults: list[str] = []
    try:
        await watcher.start()
        async with httpx.AsyncClient(timeout=10) as http:
            # External services misbehave from the start: rate limits and server errors.
            await http.post(f"{mapbox}/_admin/config", json={"rate_limit": 40, "rate_interval_s": 2})
            await http.post(f"{mapbox}/_admin/faults", json={"mode": "status", "status": 500, "count": 6})
            await http.post(f"{discord}/api/_admin/config", json={"rate_limit": 2, "rate_window_s": 2,
                                                                  "fail_next": 2, "fail_status": 502})
            faults += ["mapbox rate limit 40/2s", "mapbox 6×500", "discord rate limit 2/2s", "discord 2×502"]

            # Poison on the topics the services consume.
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
            await producer.start()
            try:
                for topic, bodies in POISON.items():
                    for body in bodies:
                        await producer.send_and_wait(topic, body, key=b"poison")
            finally:
                await producer.stop()
            faults.append(f"{sum(map(len, POISON.values()))} poison messages")

            # Season advances; services are killed mid-stream and restarted.
            await advance_season(settings, 36)
            for name in ("tiler", "ingestor", "notifier", "trainer", "gatekeeper"):
                _kill(settings, name)
                faults.append(f"SIGKILL {name}")
                await advance_season(settings, 12)
                await asyncio.to_thread(start_system, settings, lambda msg: None)  # restarts what is down
            # A bad feed for a while: an HTML error page instead of CSV/GeoJSON.
            await http.post(f"{cwfis}/_admin/mode", json={"mode": "html"})
            faults.append("CWFIS HTML error page")
            await advance_season(settings, 12)
            await http.post(f"{cwfis}/_admin/mode", json={"mode": "ok"})
            await advance_season(settings, 24)
            await _until_quiet(watcher)

            posts = await asyncio.to_thread(discord_posts, settings)
        tally = watcher.tally
        new_fires = {k for k in tally.fires}
        tiled_fires = set()
        tiles_dir = Path(settings.state_dir) / "tiles"
        files = [p for p in tiles_dir.rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]
        dlq = {}
        for topic in POISON:
            records = await read_all(settings.kafka_bootstrap_servers, dlq_topic(topic), expect=10**6, timeout_s=5)
            # DLQ writes are at-least-once: a service killed after dead-lettering a message and
            # before committing its batch dead-letters it again. Count each original record once.
            originals = {tuple(dict(r.headers).get(h, b"?").decode() for h in (
                "x-dlq-service", "x-dlq-original-partition", "x-dlq-original-offset")) for r in records}
            dlq[topic] = Counter(service for service, _, _ in originals)
        tile_records = await read_all(settings.kafka_bootstrap_servers, Topic.TILES_READY, expect=10**6, timeout_s=5)
        tile_events = [TileReady.from_bytes(r.value) for r in tile_records if r.key != b"poison"]
        for t in tile_events:
            if t.label == "wildfire":
                tiled_fires.add(t.fire_key)
    finally:
        await watcher.stop()
        await asyncio.to_thread(manage.down, settings)

    report = {
        "faults injected": len(faults), "fires": len(new_fires), "tile events": len(tile_events),
        "tiles stored": len(files), "fires without a tile": len(new_fires - tiled_fires),
        "tile files not matching their sha256": sum(
            hashlib.sha256(p.read_bytes()).hexdigest() != p.stem for p in files),
        # one fact per tile: a tile announced under two event ids would be counted twice downstream
        "duplicate tile facts": len({t.event_id for t in tile_events}) - len({t.tile_id for t in tile_events}),
        # the same fact published again after a kill (same event id): consumers skip it
        "redelivered tile records": len(tile_events) - len({t.event_id for t in tile_events}),
        "discord posts": len(posts), "dlq": {str(k): dict(v) for k, v in dlq.items()},
    }
    print("\nFAULT SUITE:", faults)
    print("FAULT SUITE FIGURES:", report)
    assert new_fires, "no fire was observed"
    assert not new_fires - tiled_fires, f"fires lost their tiles: {sorted(new_fires - tiled_fires)[:5]}"
    assert report["tile files not matching their sha256"] == 0
    assert report["duplicate tile facts"] == 0, "a tile was announced as two different facts"
    announced, stored = {t.tile_id for t in tile_events}, {p.stem for p in files}
    assert announced <= stored, "an announced tile has no file"
    # A tiler killed mid-fire may leave images it stored but never announced: after the restart the
    # simulator's clock has moved, the fire is drawn larger, and the re-fetched image is a new tile
    # (announced) while the first stays an orphan file. At most the fires in flight at the kill.
    assert len(stored - announced) <= 3 * DEFAULT_TILER_BATCH, f"{len(stored - announced)} orphan tile files"
    for topic, bodies in POISON.items():
        for service in CONSUMERS[topic]:
            assert dlq[topic][service] == len(bodies), f"{service} DLQ for {topic}: {dict(dlq[topic])}"
    bodies = Counter(message_fingerprint(p) for p in posts)
    assert not [b for b, n in bodies.items() if n > 1], "a Discord post was duplicated"
    assert any(a.alert for a in tally.alerts), "the bad feed raised no alert"
