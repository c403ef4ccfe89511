"""Replay against the real broker: rewind a group by offset/time, refuse while active, re-publish."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from emberwatch.operations.replay_topic import ReplayError, Start, republish, rewind_group
from tests.conftest import env_for
from tests.messaging.helpers import read_all, unique

pytestmark = pytest.mark.timeout(180)


async def _produce(servers: str, topic: str, values: list[bytes]) -> list[int]:
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    stamps = []
    try:
        for v in values:
            meta = await producer.send_and_wait(topic, v, key=b"k", headers=[("event_id", v)])
            stamps.append(meta.timestamp)
            await asyncio.sleep(0.01)
    finally:
        await producer.stop()
    return stamps


async def _consume_group(servers: str, topic: str, group: str, n: int, session_ms: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=session_ms, heartbeat_interval_ms=500)
    await consumer.start()
    got: list[bytes] = []
    try:
        while len(got) < n:
            batch = await consumer.getmany(timeout_ms=1000)
            for recs in batch.values():
                got.extend(r.value for r in recs)
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


async def _wait_group_empty(settings, group: str) -> None:
    from emberwatch.operations.replay_topic import group_members

    for _ in range(60):
        if not await group_members(settings.kafka_bootstrap_servers, group):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("group never became empty")


async def test_rewind_by_offset_and_time_then_consumer_rereads(kafka_settings):
    servers = kafka_settings.kafka_bootstrap_servers
    topic, group = unique("replay"), unique("replay-g")
    values = [f"v{i}".encode() for i in range(20)]
    stamps = await _produce(servers, topic, values)
    session = kafka_settings.kafka_session_timeout_ms
    assert await _consume_group(servers, topic, group, 20, session) == values

    # While the group is active, a rewind is refused.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=group,
                                enable_auto_commit=False, session_timeout_ms=session)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=3000)
        with pytest.raises(ReplayError, match="active"):
            await rewind_group(kafka_settings, topic, group, Start(offset=5))
    finally:
        await consumer.stop()
    await _wait_group_empty(kafka_settings, group)

    plan = await rewind_group(kafka_settings, topic, group, Start(offset=15))
    assert [(p.start, p.end) for p in plan if p.end] == [(15, 20)]  # key k: one partition
    assert await _consume_group(servers, topic, group, 5, session) == values[15:]
    await _wait_group_empty(kafka_settings, group)

    t = datetime.fromtimestamp(stamps[12] / 1000, UTC)
    plan = await rewind_group(kafka_settings, topic, group, Start(time=t))
    assert [p.start for p in plan if p.end] == [12]
    assert await _consume_group(servers, topic, group, 8, session) == values[12:]


async def test_republish_copies_records_with_keys_and_headers(kafka_settings):
    servers = kafka_settings.kafka_bootstrap_servers
    topic, target = unique("rp-src"), unique("rp-dst")
    values = [f"e{i}".encode() for i in range(10)]
    await _produce(servers, topic, values)
    count = await republish(kafka_settings, topic, Start(offset=4), target=target)
    assert count == 6
    records = await read_all(servers, target, expect=6)
    assert [r.value for r in records] == values[4:]
    assert all(r.key == b"k" for r in records)
    hdrs = [dict(r.headers) for r in records]
    assert hdrs[0]["event_id"] == b"e4"
    origin = hdrs[0]["x-replayed-from"].decode().split("/")
    assert origin[0] == topic and origin[2] == "4"


def test_cli_replay_requires_one_start_and_reports_refusal(kafka_settings):
    env = env_for(kafka_settings)
    both = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "replay", "t", "--group", "g",
                           "--from-offset", "1", "--from-time", "2026-01-01T00:00:00"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert both.returncode != 0 and "exactly one" in (both.stderr + both.stdout)
    missing = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "replay", unique("nope"),
                              "--group", "g", "--from-offset", "0"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
