"""``subscribe`` with ``Delivery(mode="concurrent")`` against the real broker: concurrency within a batch,
DLQ paths, commits."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from emberwatch.contracts import PipelineAlert
from emberwatch.contracts.topics import dlq_topic
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.consumer import PermanentError
from emberwatch.messaging.subscription import Delivery, subscribe
from tests.messaging.helpers import read_all, unique, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_batches_run_concurrently_dead_letter_failures_and_commit(kafka_settings):
    topic, group = unique("batch"), unique("batch-group")
    handled: list[str] = []
    attempts: dict[str, int] = {}
    running = peak = 0

    async def handle(event: PipelineAlert) -> None:
        nonlocal running, peak
        attempts[event.alert] = attempts.get(event.alert, 0) + 1
        if event.alert == "always-fails":
            raise RuntimeError("boom")
        if event.alert == "permanent":
            raise PermanentError("never")
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.2)  # slow I/O
        finally:
            running -= 1
        handled.append(event.alert)

    producer = build_broker(kafka_settings, "batch-producer")
    await producer.start()
    try:
        await producer.publish(b"{broken", topic=topic, key=b"k")
        for name in ["always-fails", "permanent"] + [f"ok-{i}" for i in range(12)]:
            event = PipelineAlert.create(producer="t", alert=name, component="c", message="m")
            await producer.publish(event.to_bytes(), topic=topic, key=b"k")
    finally:
        await producer.stop()

    async def consume_once() -> None:
        broker = build_broker(kafka_settings, "batch-consumer")
        subscribe(broker, topic, PipelineAlert, handle,
                  Delivery(service="batchtest", group_id=group, mode="concurrent", max_records=8,
                           batch_timeout_ms=100, max_attempts=2, backoff_s=0.01,
                           session_timeout_ms=kafka_settings.kafka_session_timeout_ms))
        await broker.start()
        try:
            await wait_for(lambda: len(handled) >= 12, timeout_s=60)
            await asyncio.sleep(0.5)
        finally:
            await broker.stop()

    await consume_once()
    assert sorted(handled) == sorted(f"ok-{i}" for i in range(12))
    assert peak > 1  # messages of one batch overlapped
    assert attempts["always-fails"] == 2 and attempts["permanent"] == 1
    dead = await read_all(kafka_settings.kafka_bootstrap_servers, dlq_topic(topic), expect=3)
    reasons = sorted(dict((k, v.decode()) for k, v in r.headers)["x-dlq-reason"] for r in dead)
    assert reasons == ["handler_failed", "permanent", "validation"]

    # Committed: the group's offsets reach the end of every partition.
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert parts
        ends = await consumer.end_offsets(parts)
        for tp in parts:
            assert (await consumer.committed(tp) or 0) == ends[tp]
    finally:
        await consumer.stop()
