"""Small helpers for tests against the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def create_topic(settings, topic: str, partitions: int = 1) -> None:
    """Create ``topic`` on the test broker (the services never auto-create with chosen partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval_s)


async def read_all(servers: str, topic: str, expect: int, timeout_s: float = 30.0) -> list:
    """Read ``expect`` records of ``topic`` from the beginning (no group), or fail after the timeout."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


async def read_until(servers: str, topic: str, done, timeout_s: float = 30.0) -> list:
    """Read ``topic`` from the beginning (no group) until ``done(records)`` holds, or until the timeout.

    For topics that hold more than the records a check waits for: the records come back either way,
    and the check's own assertion says what was missing.
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        deadline = time.monotonic() + timeout_s
        while not done(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records
