"""Build a FastStream ``KafkaBroker`` from settings (servers, client id, SASL/TLS) and publish events.

Publishing redacts: no event reaches a topic with a token, a webhook URL, a password or an access key
in any of its text fields (``redacted``), whatever the service put there.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from emberwatch.common.config import Settings
from emberwatch.common.logging import may_hold_secret, redact_value
from emberwatch.common.telemetry import BrokerMetrics
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.partitioner import KeyPartitioner


def build_security(settings: Settings) -> BaseSecurity | None:
    """SASL/TLS options for a real cluster; None for the local PLAINTEXT broker.

    TLS verifies the broker's certificate and host name against ``kafka_ssl_cafile`` (else the system's
    CAs). SASL needs a user name and a password (read from the secrets directory in compose and
    Kubernetes: ``EMBERWATCH_KAFKA_SASL_PASSWORD``); without either it refuses to start rather than
    try an empty login."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol not in {"SSL", "SASL_SSL", "SASL_PLAINTEXT"}:
        raise ValueError(f"unsupported EMBERWATCH_KAFKA_SECURITY_PROTOCOL {protocol!r}")
    use_tls = protocol in {"SSL", "SASL_SSL"}
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_tls else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    username = settings.kafka_sasl_username or ""
    if not username or not password:
        raise ValueError(f"{protocol} needs EMBERWATCH_KAFKA_SASL_USERNAME and EMBERWATCH_KAFKA_SASL_PASSWORD "
                         "(the password from the secrets directory)")
    mechanism = settings.kafka_sasl_mechanism.upper()
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    if mechanism not in sasl:
        raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
    return sasl[mechanism](username=username, password=password, ssl_context=context, use_ssl=use_tls)


def build_broker(settings: Settings, service: str, *, graceful_timeout: float = 30.0) -> KafkaBroker:
    """The broker one service uses, its traffic counted by FastStream's Prometheus middleware
    (``BrokerMetrics``). No idempotent producer or transactions (Tansu lacks them)."""
    return KafkaBroker(
        settings.kafka_servers,
        client_id=f"{settings.kafka_client_id}-{service}",
        security=build_security(settings),
        graceful_timeout=graceful_timeout,
        enable_idempotence=False,
        acks="all",
        max_batch_size=settings.kafka_producer_batch_bytes,
        partitioner=KeyPartitioner(),
        logger=None,
        middlewares=[BrokerMetrics(service)],
    )


def broker_metrics(broker: KafkaBroker) -> BrokerMetrics | None:
    """The ``BrokerMetrics`` that ``build_broker`` installed on ``broker`` (None on another broker)."""
    return next((m for m in broker.config.broker_middlewares if isinstance(m, BrokerMetrics)), None)


def client_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and SASL/TLS options for a plain aiokafka client (as ``build_broker`` uses)."""
    return {"bootstrap_servers": settings.kafka_servers, **parse_security(build_security(settings))}


def batch_producer(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The aiokafka producer under the broker's FastStream producer, for batches.

    FastStream 0.7 keeps it at ``config.producer._producer.producer``; sending through it directly
    skips FastStream's per-message command and middleware chain (half the CPU of a publish here).
    ``None`` if that layout changes: ``publish_events`` then goes through ``broker.publish`` (slower,
    the same guarantees). A test pins that the fast path is found with the constrained version.
    """
    state = getattr(getattr(broker.config, "producer", None), "_producer", None)
    producer = getattr(state, "producer", None)
    return producer if isinstance(producer, AIOKafkaProducer) else None


def event_headers(event: Envelope) -> dict[str, str]:
    """The headers every published event carries (the body holds the same facts)."""
    return {"event_type": event.type, "event_id": event.event_id, "content-type": "application/json"}


def record_headers(event: Envelope) -> list[tuple[str, bytes]]:
    """``event_headers`` as aiokafka takes them (encoded), built directly: this runs per event."""
    return [("event_type", event.type.encode()), ("event_id", event.event_id.encode()),
            ("content-type", b"application/json")]


def redacted(event: Envelope) -> tuple[Envelope, bytes]:
    """``event`` as it may be published, and its body: every string in it (every text field, nested
    models, lists, dict keys and values) passed through ``emberwatch.common.logging.redact``.

    Cheap for the common event, which holds nothing secret-looking: one regex scan of the body
    (``may_hold_secret``) and the event goes as it is. Otherwise it is rebuilt from its redacted
    fields (validated again; its id stays, derived from the fact as it was)."""
    data = event.to_bytes()
    if not may_hold_secret(data):
        return event, data
    clean = type(event).model_validate(redact_value(event.model_dump(mode="json")))
    return clean, clean.to_bytes()


def _send(broker: KafkaBroker, event: Envelope, *, no_confirm: bool) -> Awaitable[Any]:
    event, data = redacted(event)
    return broker.publish(
        data,
        topic=event.TOPIC,
        key=event.key().encode(),
        headers=event_headers(event),
        no_confirm=no_confirm,
    )


async def publish_event(broker: KafkaBroker, event: Envelope, *, service: str) -> None:
    """Publish ``event`` (redacted) to its topic, keyed by the entity it is about; return once the
    broker has it (counted by the broker's middleware, as every ``broker.publish``). ``service`` is
    the broker's own (kept for the callers)."""
    await _send(broker, event, no_confirm=False)


async def publish_events(broker: KafkaBroker, events: Iterable[Envelope], *, service: str) -> int:
    """Publish ``events`` (redacted) in batches, and return once every one is acknowledged.

    Events are packed per topic and partition (``KeyPartitioner``, as ``publish_event`` places them)
    into record batches of up to ``max_batch_size`` bytes, handed to the producer whole: many events
    cost a few produce requests, not one each, and none pays aiokafka's per-message ``send``. Returns
    once every batch is acknowledged (``acks=all``); raises if any was not, and the caller must treat
    all as unsent (a retry republishes them; consumers are idempotent by event id). Per key, order
    is kept (one partition's batches are queued in order).
    """
    events = list(events)
    producer = batch_producer(broker)
    if producer is None:  # through broker.publish: the middleware counts each
        results = await asyncio.gather(*[await _send(broker, e, no_confirm=True) for e in events],
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
    else:  # beneath FastStream's publish chain: counted here, in the middleware's metric
        sent, failed = await _send_batches(producer, events)
        metrics = broker_metrics(broker)
        if metrics is not None:
            for topic, n in sent.items():
                metrics.count_published(topic, n)
    if failed:
        raise failed[0]
    return len(events)


@dataclass
class _Batch:
    """A record batch being filled for one topic and partition, and how many events it holds."""

    topic: str
    partition: int
    builder: Any
    events: int = 0

    def add(self, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> bool:
        """Append one record; False when the batch is full (an empty batch takes any record)."""
        if self.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            return False
        self.events += 1
        return True


async def _send_batches(producer: AIOKafkaProducer, events: list[Envelope]) -> tuple[Counter, list[BaseException]]:
    """Send ``events`` as record batches; (events acknowledged per topic, the failures)."""
    partitions: dict[str, list[int]] = {}
    filling: dict[tuple[str, int], _Batch] = {}
    queued: list[tuple[_Batch, Awaitable[Any]]] = []
    place = KeyPartitioner()
    limit = getattr(producer, "_max_request_size", 1048576)

    async def ship(batch: _Batch) -> None:
        del filling[batch.topic, batch.partition]
        queued.append((batch, await producer.send_batch(batch.builder, batch.topic, partition=batch.partition)))

    failed: list[BaseException] = []
    try:
        for event in events:
            clean, data = redacted(event)
            topic, key, headers = clean.TOPIC, clean.key().encode(), record_headers(clean)
            if len(data) + len(key) > limit:  # what ``send`` checks per message, before the broker refuses it
                raise MessageSizeTooLargeError(f"{clean.type} {clean.event_id} is {len(data)} bytes, over "
                                               f"the producer's max_request_size ({limit})")
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = place(key, partitions[topic], partitions[topic])
            batch = filling.get((topic, partition))
            if batch is None or not batch.add(key, data, headers):
                if batch is not None:  # full: send it, start the next
                    await ship(batch)
                batch = filling[topic, partition] = _Batch(topic, partition, producer.create_batch())
                batch.add(key, data, headers)
        for batch in list(filling.values()):
            await ship(batch)
    except Exception as exc:  # what was not queued was not sent
        failed.append(exc)
    results = await asyncio.gather(*(delivery for _, delivery in queued), return_exceptions=True)
    sent: Counter = Counter()
    for (batch, _), result in zip(queued, results):
        if isinstance(result, BaseException):
            failed.append(result)
        else:
            sent[batch.topic] += batch.events
    return sent, failed


Publish = Callable[[Envelope], Awaitable[None]]


def publisher(broker: KafkaBroker, service: str) -> Publish:
    """The one way a service's handlers publish: ``await publish(event)``."""

    async def publish(event: Envelope) -> None:
        await publish_event(broker, event, service=service)

    return publish
