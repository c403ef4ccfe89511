"""Batched delivery against the real broker: one commit per handled batch, never before; batched
publishing that is confirmed as a whole."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY
from aiokafka.errors import MessageSizeTooLargeError

from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import batch_producer, build_broker, publish_events
from emberwatch.messaging.subscription import Delivery, subscribe
from tests.messaging.helpers import create_topic, read_all, unique, wait_for

pytestmark = pytest.mark.timeout(120)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def alert_on(topic: str, name: str) -> PipelineAlert:
    model = type("RoutedAlert", (PipelineAlert,), {"TOPIC": topic})
    return model.create(producer="t", alert=name, component="c", message="m")


async def committed_offset(settings, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0)) or 0
    finally:
        await consumer.stop()


async def test_a_batch_is_handled_in_order_and_committed_only_once_handled(kafka_settings):
    topic, group = unique("batches"), unique("batches-group")
    total, batch, blocked_at = 50, 20, 30
    await create_topic(kafka_settings, topic)
    producer = build_broker(kafka_settings, "batches-pub")
    await producer.start()
    try:
        # With the constrained FastStream the batch path reaches aiokafka's producer directly (a
        # FastStream upgrade that moves it makes this fail, not the services slower unnoticed).
        assert batch_producer(producer) is not None
        sent = await publish_events(producer, [alert_on(topic, f"m{i:03d}") for i in range(total)],
                                    service="t")
    finally:
        await producer.stop()
    assert sent == total
    # Counted in FastStream's middleware metric, although they went beneath its publish chain.
    assert sample("faststream_published_messages_total", app_name="batches-pub", broker="kafka",
                  destination=topic, status="success") == total

    handled: list[str] = []
    release = asyncio.Event()

    async def handle(event: PipelineAlert) -> None:
        if len(handled) == blocked_at:
            await release.wait()
        handled.append(event.alert)

    broker = build_broker(kafka_settings, "batches")
    subscribe(broker, topic, PipelineAlert, handle,
              Delivery(service="batches", group_id=group, max_records=batch,
                       session_timeout_ms=kafka_settings.kafka_session_timeout_ms))
    await broker.start()
    try:
        await wait_for(lambda: len(handled) == blocked_at, timeout_s=60)
        await asyncio.sleep(1.0)  # a commit of the batch in flight would have happened by now
        during = await committed_offset(kafka_settings, group, topic)
        release.set()
        await wait_for(lambda: len(handled) == total, timeout_s=60)

        async def fully_committed() -> bool:
            return await committed_offset(kafka_settings, group, topic) == total
        for _ in range(100):
            if await fully_committed():
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    assert handled == [f"m{i:03d}" for i in range(total)]  # one partition, in published order
    # The batch holding the blocked record is not committed while it is handled; the batches
    # before it are (their records are all handled).
    assert during <= blocked_at, f"committed {during} while record {blocked_at} was still in hand"
    assert during >= 1, "nothing was committed although the first batch was handled"
    assert await committed_offset(kafka_settings, group, topic) == total
    # FastStream's middleware counted every record of the batches it was handed.
    assert sample("faststream_received_messages_total", app_name="batches", broker="kafka", handler=topic) == total


async def test_publish_events_raises_when_any_batch_is_not_acknowledged(kafka_settings):
    kept, refused = unique("publish-kept"), unique("publish-refused")
    events = [alert_on(t, f"e{i}") for i in range(10) for t in (kept, refused)]
    for topic in (kept, refused):
        await create_topic(kafka_settings, topic)
    broker = build_broker(kafka_settings, "publish-many")
    await broker.start()
    try:
        producer = batch_producer(broker)
        real_send_batch = producer.send_batch

        async def send_batch(batch, topic, *, partition):  # the broker refuses one topic's batch
            if topic == refused:
                failed: asyncio.Future = asyncio.get_running_loop().create_future()
                failed.set_exception(ConnectionError("not acknowledged"))
                return failed
            return await real_send_batch(batch, topic, partition=partition)

        producer.send_batch = send_batch
        with pytest.raises(ConnectionError, match="not acknowledged"):
            await publish_events(broker, events, service="t")
        producer.send_batch = real_send_batch
        assert await publish_events(broker, events, service="t") == 20  # the caller's retry
    finally:
        await broker.stop()
    twice = [r.value for r in await read_all(kafka_settings.kafka_bootstrap_servers, kept, expect=20)]
    once = [r.value for r in await read_all(kafka_settings.kafka_bootstrap_servers, refused, expect=10)]
    assert len(twice) == 20 and len(once) == 10  # the acknowledged batch went out again: idempotent consumers
    assert once == [e.to_bytes() for e in events if e.TOPIC == refused]


async def test_publish_events_spills_into_several_batches_in_order(kafka_settings):
    topic = unique("publish-spill")
    await create_topic(kafka_settings, topic)
    settings = kafka_settings.model_copy(update={"kafka_producer_batch_bytes": 4096})
    events = [alert_on(topic, f"s{i:04d}") for i in range(300)]  # ~100 KB: 25+ batches of 4 KB
    broker = build_broker(settings, "publish-spill")
    await broker.start()
    try:
        assert await publish_events(broker, events, service="t") == 300
    finally:
        await broker.stop()
    records = await read_all(settings.kafka_bootstrap_servers, topic, expect=300)
    assert [r.value for r in records] == [e.to_bytes() for e in events]
    assert [dict(r.headers)["event_id"] for r in records] == [e.event_id.encode() for e in events]


async def test_an_event_larger_than_a_batch_goes_alone_and_one_over_the_request_limit_is_refused(kafka_settings):
    topic = unique("publish-large")
    await create_topic(kafka_settings, topic)
    settings = kafka_settings.model_copy(update={"kafka_producer_batch_bytes": 1024})
    routed = type("RoutedAlert", (PipelineAlert,), {"TOPIC": topic})
    small = alert_on(topic, "small")
    large = routed.create(producer="t", alert="large", component="c", message="m" * 5000)
    huge = routed.create(producer="t", alert="huge", component="c", message="m" * 1_100_000)
    broker = build_broker(settings, "publish-large")
    await broker.start()
    try:
        assert await publish_events(broker, [small, large], service="t") == 2
        with pytest.raises(MessageSizeTooLargeError, match=f"{huge.event_id} is .* over the producer's"):
            await publish_events(broker, [huge], service="t")
    finally:
        await broker.stop()
    records = await read_all(settings.kafka_bootstrap_servers, topic, expect=2)
    assert [r.value for r in records] == [small.to_bytes(), large.to_bytes()]
