"""``subscribe`` with ``Delivery(mode="bulk")`` against the real broker: whole batches to one call, a
poison record isolated to the DLQ without losing its batch, invalid records to the DLQ, offsets
committed to the end."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from emberwatch.contracts import PipelineAlert
from emberwatch.contracts.topics import dlq_topic
from emberwatch.messaging.broker import build_broker, publish_events
from emberwatch.messaging.consumer import PermanentError
from emberwatch.messaging.subscription import Delivery, Received, subscribe
from tests.messaging.helpers import read_all, unique, wait_for
from tests.messaging.test_batches import alert_on, create_topic

pytestmark = pytest.mark.timeout(120)


async def test_batches_go_to_one_call_and_a_poison_record_goes_to_the_dlq_alone(kafka_settings):
    topic, group = unique("bulk"), unique("bulk-group")
    await create_topic(kafka_settings, topic)
    names = [f"ok-{i:02d}" for i in range(30)]
    names.insert(17, "poison")
    producer = build_broker(kafka_settings, "bulk-pub")
    await producer.start()
    try:
        await publish_events(producer, [alert_on(topic, n) for n in names], service="t")
        await producer.publish(b"{not json", topic=topic, key=b"k")
    finally:
        await producer.stop()

    calls: list[int] = []
    stored: list[str] = []
    origins: list[tuple[str, int, int]] = []

    async def handle_many(batch: list[Received[PipelineAlert]]) -> None:
        calls.append(len(batch))
        if any(r.event.alert == "poison" for r in batch):
            raise PermanentError("one record of this batch can never be stored")
        stored.extend(r.event.alert for r in batch)
        origins.extend((r.topic, r.partition, r.offset) for r in batch)

    async def handle_one(event: PipelineAlert) -> None:
        if event.alert == "poison":
            raise PermanentError("never works")
        stored.append(event.alert)

    broker = build_broker(kafka_settings, "bulk")
    subscribe(broker, topic, PipelineAlert, handle_one,
              Delivery(service="bulk", group_id=group, mode="bulk", max_records=10, max_attempts=2, backoff_s=0.01,
                       session_timeout_ms=kafka_settings.kafka_session_timeout_ms),
              handle_many=handle_many)
    await broker.start()
    try:
        await wait_for(lambda: len(stored) == 30, timeout_s=60)
        dead = await read_all(kafka_settings.kafka_bootstrap_servers, dlq_topic(topic), expect=2,
                              timeout_s=60)
    finally:
        await broker.stop()

    assert sorted(stored) == sorted(f"ok-{i:02d}" for i in range(30))  # nothing lost, none twice
    assert max(calls) > 1 and sum(calls) >= 30  # whole batches reached one call
    assert all(t == topic and p == 0 for t, p, _ in origins)
    reasons = sorted(dict(r.headers)["x-dlq-reason"].decode() for r in dead)
    assert reasons == ["permanent", "validation"]
    by_reason = {dict(r.headers)["x-dlq-reason"].decode(): r.value for r in dead}
    assert by_reason["validation"] == b"{not json"  # the original bytes are kept
    assert PipelineAlert.from_bytes(by_reason["permanent"]).alert == "poison"

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.kafka_bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        assert await consumer.committed(tp) == (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()
