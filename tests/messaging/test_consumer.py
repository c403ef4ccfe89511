"""The shared consumer wiring against the real broker: round trips, DLQ, at-least-once."""

from __future__ import annotations

import uuid

import pytest

from emberwatch.contracts import PipelineAlert, event_for_topic
from emberwatch.contracts.topics import dlq_topic
from emberwatch.messaging.broker import build_broker, publish_event
from emberwatch.messaging.consumer import PermanentError
from emberwatch.messaging.subscription import Delivery, subscribe
from tests.contracts.samples import sample_events
from tests.messaging.helpers import read_all, unique, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_every_event_type_round_trips_through_the_broker(kafka_settings):
    events = sample_events()
    received: dict[str, object] = {}  # event id -> event (the session's broker may hold older events)
    broker = build_broker(kafka_settings, "roundtrip")
    group = unique("roundtrip")
    for event in events:
        model = event_for_topic(event.TOPIC)

        async def handle(e):
            received[e.event_id] = e

        subscribe(broker, event.TOPIC, model, handle,
                  Delivery(service="roundtrip", group_id=group,
                           session_timeout_ms=kafka_settings.kafka_session_timeout_ms))
    await broker.start()
    try:
        for event in events:
            await publish_event(broker, event, service="roundtrip")
        await wait_for(lambda: all(e.event_id in received for e in events), timeout_s=60)
    finally:
        await broker.stop()
    for event in events:
        got = received[event.event_id]
        assert type(got) is type(event)
        assert got == event  # validated into the same model, field for field


async def test_poison_messages_go_to_the_dlq_with_reason_and_do_not_block(kafka_settings):
    topic = PipelineAlert.TOPIC
    # A private topic name keeps this test independent of the others; the DLQ follows the name.
    topic = unique("alerts-poison")
    handled: list[str] = []
    attempts: dict[str, int] = {}

    async def handle(event: PipelineAlert) -> None:
        attempts[event.alert] = attempts.get(event.alert, 0) + 1
        if event.alert == "always-fails":
            raise RuntimeError("downstream exploded token=sk.abcdefghijklmnop")
        if event.alert == "permanent":
            raise PermanentError("cannot ever work")
        handled.append(event.alert)

    broker = build_broker(kafka_settings, "dlqtest")
    subscribe(broker, topic, PipelineAlert, handle,
              Delivery(service="dlqtest", group_id=unique("dlq"), max_attempts=3, backoff_s=0.01,
                       session_timeout_ms=kafka_settings.kafka_session_timeout_ms))
    await broker.start()
    try:
        def alert(name: str) -> bytes:
            return PipelineAlert.create(producer="t", alert=name, component="c", message="m").to_bytes()

        await broker.publish(b"{not json", topic=topic, key=b"k1")
        await broker.publish(b'{"event_id": "x"}', topic=topic, key=b"k1")
        await broker.publish(alert("always-fails"), topic=topic, key=b"k1")
        await broker.publish(alert("permanent"), topic=topic, key=b"k1")
        for i in range(5):
            await broker.publish(alert(f"good-{i}"), topic=topic, key=b"k1")
        await wait_for(lambda: len(handled) == 5, timeout_s=60)
    finally:
        await broker.stop()

    assert handled == [f"good-{i}" for i in range(5)]  # same partition, order kept, not blocked
    assert attempts["always-fails"] == 3
    assert attempts["permanent"] == 1
    dead = await read_all(kafka_settings.kafka_bootstrap_servers, dlq_topic(topic), expect=4)
    assert len(dead) == 4
    headers = [{k: v.decode() for k, v in r.headers} for r in dead]
    assert [h["x-dlq-reason"] for h in headers] == ["validation", "validation", "handler_failed", "permanent"]
    assert [h["x-dlq-attempts"] for h in headers] == ["1", "1", "3", "1"]
    assert all(h["x-dlq-original-topic"] == topic for h in headers)
    assert [int(h["x-dlq-original-offset"]) for h in headers] == [0, 1, 2, 3]
    assert "RuntimeError: downstream exploded" in headers[2]["x-dlq-error"]
    assert "abcdefghijklmnop" not in headers[2]["x-dlq-error"]  # secrets never leave in headers
    assert dead[0].value == b"{not json"  # the original bytes are kept


async def test_a_failed_dlq_write_loses_nothing_the_record_comes_back(kafka_settings):
    """When even the DLQ cannot be written, the offset is not committed: the record is delivered
    again, and lands in the DLQ once the DLQ can be written."""
    topic, group = f"dlqfail-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    calls: list[str] = []

    async def handle(event: PipelineAlert) -> None:
        calls.append(event.alert)
        raise PermanentError("never works")

    broker = build_broker(kafka_settings, "dlqfail")
    subscribe(broker, topic, PipelineAlert, handle,
              Delivery(service="dlqfail", group_id=group, max_attempts=1, backoff_s=0.01,
                       session_timeout_ms=kafka_settings.kafka_session_timeout_ms))
    real_publish = broker.publish
    dlq_down = {"failures": 0}

    async def publish(body, topic=None, **kwargs):  # the DLQ refuses its first two writes
        if topic and topic.endswith(".dlq") and dlq_down["failures"] < 2:
            dlq_down["failures"] += 1
            raise ConnectionError("DLQ unavailable")
        return await real_publish(body, topic=topic, **kwargs)

    producer = build_broker(kafka_settings, "dlqfail-pub")
    await producer.start()
    await producer.publish(PipelineAlert.create(producer="t", alert="x", component="t", message="m").to_bytes(),
                           topic=topic, key=b"k")
    await producer.stop()
    broker.publish = publish
    await broker.start()
    try:
        dead = await read_all(kafka_settings.kafka_bootstrap_servers, dlq_topic(topic), expect=1, timeout_s=60)
    finally:
        await broker.stop()
    assert dlq_down["failures"] == 2
    assert len(calls) == 3, calls  # delivered again after each failed DLQ write
    assert len(dead) == 1 and dict(dead[0].headers)["x-dlq-reason"] == b"permanent"
