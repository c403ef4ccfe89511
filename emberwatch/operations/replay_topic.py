"""Replay a topic: move a consumer group's offsets back (by time or offset), or re-publish records.

* ``rewind_group`` sets the committed offsets of ``group`` on every partition of ``topic`` to the
  first offset at/after a time, or to a given offset. It refuses while the group has members (a live
  consumer would overwrite the offsets with its own commits).
* ``republish`` reads ``topic`` from a time/offset up to the end offsets seen at the start, and
  publishes each record again, same key, value and headers (plus ``x-replayed-from``), to ``topic`` or
  another target. Facts keep their event ids, so idempotent consumers ignore what they already did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from emberwatch.common.config import Settings
from emberwatch.messaging.broker import client_options
from emberwatch.messaging.partitioner import KeyPartitioner


class ReplayError(RuntimeError):
    pass


@dataclass(frozen=True)
class Start:
    """Where a replay starts: a time (UTC) or an offset applied to every partition."""

    time: datetime | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        if (self.time is None) == (self.offset is None):
            raise ValueError("give exactly one of --from-time or --from-offset")


@dataclass(frozen=True)
class PartitionPlan:
    partition: int
    start: int
    end: int  # exclusive: the end offset when the replay was planned

    @property
    def count(self) -> int:
        return max(0, self.end - self.start)


async def group_members(servers: str, group: str, **security: Any) -> list[str]:
    """``security``: the SASL/TLS options of ``client_options`` (an authenticated cluster)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, **security)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members: list[str] = []
    for response in described:
        for entry in response.groups:
            # (error_code, group, state, protocol_type, protocol, members)
            if entry[1] == group and entry[2] not in ("Empty", "Dead"):
                members.extend(m[0] for m in entry[5])
    return members


async def _plan(consumer: AIOKafkaConsumer, topic: str, start: Start) -> list[PartitionPlan]:
    partitions = await _partitions(consumer, topic)
    tps = [TopicPartition(topic, p) for p in partitions]
    beginning = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    if start.time is not None:
        ts = int(start.time.timestamp() * 1000)
        found = await consumer.offsets_for_times({tp: ts for tp in tps})
        starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in tps}
    else:
        starts = {tp: min(max(start.offset or 0, beginning[tp]), ends[tp]) for tp in tps}
    return [PartitionPlan(tp.partition, starts[tp], ends[tp]) for tp in tps]


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    for _ in range(20):
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        await asyncio.sleep(0.2)
    raise ReplayError(f"topic {topic!r} does not exist or has no partitions")


async def rewind_group(settings: Settings, topic: str, group: str, start: Start) -> list[PartitionPlan]:
    """Set ``group``'s committed offsets on ``topic`` back to ``start``. Refuses while it is active."""
    servers = settings.kafka_bootstrap_servers
    options = client_options(settings)  # the cluster's SASL/TLS options, as every client uses them
    members = await group_members(servers, group, **{k: v for k, v in options.items() if k != "bootstrap_servers"})
    if members:
        raise ReplayError(
            f"consumer group {group!r} is active ({len(members)} member(s)); stop its consumers first "
            f"(a stopped member leaves after the session timeout, {settings.kafka_session_timeout_ms} ms)"
        )
    consumer = AIOKafkaConsumer(**options, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        plan = await _plan(consumer, topic, start)
        tps = [TopicPartition(topic, p.partition) for p in plan]
        consumer.assign(tps)
        await consumer.commit({TopicPartition(topic, p.partition): OffsetAndMetadata(p.start, "replay")
                               for p in plan})
    finally:
        await consumer.stop()
    return plan


async def republish(
    settings: Settings,
    topic: str,
    start: Start,
    *,
    target: str | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Publish the records of ``topic`` from ``start`` again (to ``target`` or the same topic)."""
    options = client_options(settings)  # the cluster's SASL/TLS options, as every client uses them
    consumer = AIOKafkaConsumer(**options, enable_auto_commit=False)
    producer = AIOKafkaProducer(**options, acks="all", partitioner=KeyPartitioner())
    await consumer.start()
    await producer.start()
    done = 0
    try:
        plan = [p for p in await _plan(consumer, topic, start) if p.count]
        total = sum(p.count for p in plan)
        if not plan:
            return 0
        tps = {TopicPartition(topic, p.partition): p for p in plan}
        consumer.assign(list(tps))
        for tp, p in tps.items():
            consumer.seek(tp, p.start)
        remaining = dict(tps)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                p = remaining.get(tp)
                if p is None:
                    continue
                for record in records:
                    if record.offset >= p.end:
                        remaining.pop(tp, None)
                        break
                    headers = [h for h in (record.headers or []) if h[0] != "x-replayed-from"]
                    headers.append(("x-replayed-from", f"{topic}/{tp.partition}/{record.offset}".encode()))
                    await producer.send_and_wait(target or topic, record.value, key=record.key,
                                                 headers=headers)
                    done += 1
                    on_progress(done, total)
                    if record.offset + 1 >= p.end:
                        remaining.pop(tp, None)
                        break
    finally:
        await producer.stop()
        await consumer.stop()
    return done
