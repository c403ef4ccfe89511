"""Build a FastStream ``KafkaBroker`` from settings (servers, client id, SASL/TLS) and publish events."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import MESSAGES_PUBLISHED
from emberwatch.contracts.envelope import Envelope


def build_security(settings: Settings) -> BaseSecurity | None:
    """SASL/TLS options for a real cluster; None for the local PLAINTEXT broker."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    use_tls = protocol in {"SSL", "SASL_SSL"}
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if use_tls else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    username = settings.kafka_sasl_username or ""
    mechanism = settings.kafka_sasl_mechanism.upper()
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    if mechanism not in sasl:
        raise ValueError(f"unsupported SASL mechanism {mechanism!r}")
    return sasl[mechanism](username=username, password=password, ssl_context=context, use_ssl=use_tls)


def build_broker(settings: Settings, service: str, *, graceful_timeout: float = 30.0) -> KafkaBroker:
    """The broker one service uses. No idempotent producer or transactions (Tansu lacks them)."""
    return KafkaBroker(
        settings.kafka_servers,
        client_id=f"{settings.kafka_client_id}-{service}",
        security=build_security(settings),
        graceful_timeout=graceful_timeout,
        enable_idempotence=False,
        acks="all",
        logger=None,
    )


def client_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and SASL/TLS options for a plain aiokafka client (as ``build_broker`` uses)."""
    return {"bootstrap_servers": settings.kafka_servers, **parse_security(build_security(settings))}


async def publish_event(broker: KafkaBroker, event: Envelope, *, service: str) -> None:
    """Publish ``event`` to its topic, keyed by the entity it is about."""
    await broker.publish(
        event.to_bytes(),
        topic=event.TOPIC,
        key=event.key().encode(),
        headers={"event_type": event.type, "event_id": event.event_id, "content-type": "application/json"},
    )
    MESSAGES_PUBLISHED.labels(service, event.TOPIC).inc()


Publish = Callable[[Envelope], Awaitable[None]]


def publisher(broker: KafkaBroker, service: str) -> Publish:
    """The one way a service's handlers publish: ``await publish(event)``."""

    async def publish(event: Envelope) -> None:
        await publish_event(broker, event, service=service)

    return publish
