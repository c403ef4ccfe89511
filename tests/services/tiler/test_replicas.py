"""Three tiler replicas, as a cluster runs them: three `emberwatch run tiler` processes in one consumer
group over a three-partition topic, sharing nothing but the broker, a real PostgreSQL (their
coordination database), S3 (their tile store) and Mapbox (the simulator).

Fires are packed so that most fires' negative annuli hold other fires, handled by other replicas:
every fire must be tiled once, no tile announced twice, and no negative left standing within the
exclusion distance of any fire, whichever replica saw it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from emberwatch.common.config import Settings
from emberwatch.common.geo import destination, haversine_km
from emberwatch.contracts import FireObserved, TileReady, TileRelabelled, Topic
from emberwatch.operations.create_topics import create_topics
from simulators.mapbox.app import SimState
from tests.conftest import running_stack
from tests.simulators.mapbox.helpers import running_simulator
from tests.support.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

REPLICAS = 3
FIRES = 24
EXCLUSION_KM = 10.0
NEGATIVES = 2


def packed_fires() -> list[FireObserved]:
    """Fires 12–20 km apart in a ring of clusters: each one's 10–50 km annulus holds several others."""
    fires = []
    for i in range(FIRES):
        cluster = i // 6
        lat, lon = destination(56.0, -116.0, cluster * 90.0, 60.0)
        lat, lon = destination(lat, lon, (i % 6) * 60.0, 12.0 + 2 * (i % 3))
        fires.append(FireObserved.create(
            producer="test", fire_key=f"ab:replicas-{i}", source="cwfis-csv", agency="ab", name=f"r{i}",
            lat=round(lat, 5), lon=round(lon, 5), hectares=40.0, change="new",
            snapshot_at=datetime(2026, 7, 1, tzinfo=UTC)))
    return fires


def replica_env(i: int, root: Path, kafka: Settings, sim_url: str, coordination: str, s3: str,
                bucket: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.kafka_bootstrap_servers,
        "EMBERWATCH_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "EMBERWATCH_STATE_DIR": str(root / f"replica-{i}"),  # nothing on a shared disk
        "EMBERWATCH_COORDINATION_URL": coordination,
        "EMBERWATCH_TILE_STORE_URL": f"s3://{bucket}/tiles",
        "EMBERWATCH_S3_ENDPOINT_URL": s3, "EMBERWATCH_S3_REGION": REGION,
        "EMBERWATCH_S3_ACCESS_KEY_ID": ACCESS_KEY_ID, "EMBERWATCH_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "EMBERWATCH_MAPBOX_API_URL": sim_url, "EMBERWATCH_MAPBOX_TOKEN": "pk.simulator",
        "EMBERWATCH_TILER_NEGATIVES_PER_FIRE": str(NEGATIVES),
        "EMBERWATCH_TILER_NEGATIVE_EXCLUSION_KM": str(EXCLUSION_KM),
        "EMBERWATCH_METRICS_PORT": "0", "EMBERWATCH_LOG_FORMAT": "json",
    })
    return env


def metrics_port(log: Path, deadline_s: float = 120) -> int:
    """The /metrics port the replica logged when it started."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if '"service starting"' in line:
                return int(json.loads(line)["metrics_port"])
        time.sleep(0.2)
    raise TimeoutError(f"replica did not start: {log.read_text(errors='replace')[-2000:]}")


def emitted(port: int, log: Path) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError as exc:
        raise AssertionError(f"replica's /metrics unreachable ({exc}); its log ends: "
                             f"{log.read_text(errors='replace')[-3000:]}") from exc
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("emberwatch_tiler_tiles_emitted_total{"))


async def collect_until_quiet(servers: str, want_fire_tiles: int, quiet_s: float = 8.0,
                              limit_s: float = 300.0) -> tuple[list[TileReady], list[TileRelabelled]]:
    consumer = AIOKafkaConsumer(Topic.TILES_READY, Topic.TILES_RELABELLED, bootstrap_servers=servers,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    tiles: list[TileReady] = []
    relabels: list[TileRelabelled] = []
    try:
        loop = asyncio.get_running_loop()
        deadline, last = loop.time() + limit_s, loop.time()
        while loop.time() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for r in records:
                    last = loop.time()
                    if tp.topic == Topic.TILES_READY:
                        tiles.append(TileReady.from_bytes(r.value))
                    else:
                        relabels.append(TileRelabelled.from_bytes(r.value))
            fire_tiles = sum(t.label == "wildfire" for t in tiles)
            if fire_tiles >= want_fire_tiles and loop.time() - last >= quiet_s:
                break
    finally:
        await consumer.stop()
    return tiles, relabels


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


async def test_three_replicas_tile_every_fire_once_and_keep_negatives_away_from_every_fire(
        tmp_path: Path, postgres_url: str, s3_endpoint: str) -> None:
    bucket = f"tiles-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id="a",
                                   aws_secret_access_key="a").create_bucket(Bucket=bucket)
    fires = packed_fires()
    with running_stack(tmp_path / "stack", "kafka") as kafka, \
            running_simulator(SimState(latency_s=0.05)) as (sim_url, sim):
        plans = {p.topic: p for p in await create_topics(kafka.model_copy(update={
            "kafka_topic_partitions": f"{Topic.FIRES_OBSERVED}={REPLICAS}"}))}
        assert plans[Topic.FIRES_OBSERVED].partitions == REPLICAS
        logs = [tmp_path / f"replica-{i}.log" for i in range(REPLICAS)]
        procs = [subprocess.Popen(
            [sys.executable, "-m", "emberwatch.cli.main", "run", "tiler"],
            env=replica_env(i, tmp_path, kafka, sim_url, postgres_url, s3_endpoint, bucket),
            stdout=subprocess.DEVNULL, stderr=open(logs[i], "wb"), start_new_session=True)
            for i in range(REPLICAS)]
        try:
            ports = [metrics_port(log) for log in logs]
            await asyncio.sleep(12)  # the group settles: one partition each
            producer = AIOKafkaProducer(bootstrap_servers=kafka.kafka_bootstrap_servers)
            await producer.start()
            try:
                for f in fires:
                    await producer.send_and_wait(Topic.FIRES_OBSERVED, f.to_bytes(), key=f.key().encode())
            finally:
                await producer.stop()
            tiles, relabels = await collect_until_quiet(kafka.kafka_bootstrap_servers, FIRES)
            per_replica = [emitted(port, log) for port, log in zip(ports, logs, strict=True)]
        finally:
            stop(procs)
        assert sim.by_status[429] == 0

    # Every fire tiled once; no tile announced twice.
    assert Counter(t.fire_key for t in tiles if t.label == "wildfire") == {f.fire_key: 1 for f in fires}
    assert len({t.tile_id for t in tiles}) == len(tiles), "a tile was announced twice"
    assert len({(t.fire_key, t.lat, t.lon) for t in tiles}) == len(tiles)
    assert all(t.uri.startswith(f"s3://{bucket}/tiles/") for t in tiles)
    # The work was shared.
    assert all(n > 0 for n in per_replica), f"tiles emitted per replica: {per_replica}"
    assert sum(per_replica) == len(tiles)
    # No negative still standing within the exclusion distance of any fire.
    withdrawn = {r.tile_id for r in relabels}
    assert len(withdrawn) == len(relabels), "a tile was relabelled twice"
    negatives = [t for t in tiles if t.label == "nowildfire" and t.tile_id not in withdrawn]
    assert len(negatives) >= FIRES  # packed, yet most fires found places
    for t in negatives:
        nearest = min(haversine_km(t.lat, t.lon, f.lat, f.lon) for f in fires)
        assert nearest >= EXCLUSION_KM * 0.999, f"negative {t.tile_id} is {nearest:.2f} km from a fire"
