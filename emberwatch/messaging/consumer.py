"""At-least-once consumers with a dead-letter path.

``subscribe`` registers a handler for one topic on a FastStream ``KafkaBroker``:

* the raw bytes are validated against the topic's event model; a message that fails validation goes
  to ``<topic>.dlq`` at once (it would fail the same way every time);
* the handler is attempted up to ``max_attempts`` times with exponential backoff; a message that keeps
  failing goes to ``<topic>.dlq`` with the error, the attempt count and its origin in headers;
* the offset is committed only after the handler succeeded or the DLQ publish was acknowledged, so a
  crash at any point redelivers the message and nothing is lost or blocks its partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from emberwatch.common.logging import redact
from emberwatch.common.telemetry import (
    CONSUMER_LAG,
    DLQ_MESSAGES,
    HANDLER_ERRORS,
    HANDLER_SECONDS,
    MESSAGES_CONSUMED,
)
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.topics import dlq_topic

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)
Handler = Callable[[E], Awaitable[Any]]

MAX_ERROR_HEADER = 900


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message goes to the DLQ at once."""


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return redact(text)[:MAX_ERROR_HEADER]


async def send_to_dlq(
    broker: KafkaBroker,
    *,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    body: bytes,
    reason: str,
    error: str,
    attempts: int,
) -> None:
    """Publish a poison message to ``<topic>.dlq`` with why it failed and where it came from."""
    await broker.publish(
        body,
        topic=dlq_topic(topic),
        key=key,
        headers={
            "x-dlq-reason": reason,
            "x-dlq-error": error,
            "x-dlq-attempts": str(attempts),
            "x-dlq-original-topic": topic,
            "x-dlq-original-partition": str(partition),
            "x-dlq-original-offset": str(offset),
            "x-dlq-service": service,
        },
    )
    DLQ_MESSAGES.labels(service, topic, reason).inc()
    log.warning(
        "message sent to DLQ",
        extra={"topic": topic, "partition": partition, "offset": offset, "reason": reason,
               "error": error, "attempts": attempts},
    )


def _record_lag(service: str, message: Any) -> None:
    raw = message.raw_message
    consumer = getattr(message, "consumer", None)
    try:
        from aiokafka import TopicPartition

        tp = TopicPartition(raw.topic, raw.partition)
        high = consumer.highwater(tp) if consumer is not None else None
    except Exception:  # noqa: BLE001 - lag is best effort, never fails a message
        return
    if high is not None:
        CONSUMER_LAG.labels(service, raw.topic, str(raw.partition)).set(max(0, high - raw.offset - 1))


async def process_record(
    broker: KafkaBroker,
    raw: Any,
    model: type[E],
    handler: Handler[E],
    *,
    service: str,
    topic: str,
    max_attempts: int,
    backoff_s: float,
) -> str:
    """Validate one record and run ``handler`` on it with retries; poison goes to the DLQ.

    Returns the outcome (``ok`` or ``dlq``). Raises only when the DLQ itself cannot be written, so
    the caller does not commit and the record comes back.
    """
    body: bytes = raw.value or b""
    started = time.perf_counter()
    outcome = "ok"

    async def dead(reason: str, error: str, attempts: int) -> None:
        nonlocal outcome
        outcome = "dlq"
        await send_to_dlq(broker, service=service, topic=topic, partition=raw.partition,
                          offset=raw.offset, key=raw.key, body=body, reason=reason, error=error,
                          attempts=attempts)

    try:
        try:
            event = model.from_bytes(body)
        except ValidationError as exc:
            HANDLER_ERRORS.labels(service, topic, "validation").inc()
            await dead("validation", _error_text(exc), 1)
            return outcome
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(max_attempts),
                wait=wait_exponential(multiplier=backoff_s, max=30),
                retry=retry_if_not_exception_type(PermanentError),
                reraise=False,
            ):
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    try:
                        await handler(event)
                    except PermanentError:
                        raise
                    except Exception as exc:
                        HANDLER_ERRORS.labels(service, topic, type(exc).__name__).inc()
                        log.warning(
                            "handler failed",
                            extra={"topic": topic, "offset": raw.offset, "attempt": attempts,
                                   "error": _error_text(exc)},
                        )
                        raise
        except PermanentError as exc:
            HANDLER_ERRORS.labels(service, topic, "permanent").inc()
            await dead("permanent", _error_text(exc), attempts)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            await dead("handler_failed", _error_text(last) if last else "unknown", attempts)
        return outcome
    finally:
        MESSAGES_CONSUMED.labels(service, topic, outcome).inc()
        HANDLER_SECONDS.labels(service, topic).observe(time.perf_counter() - started)


def subscribe(
    broker: KafkaBroker,
    topic: str,
    model: type[E],
    handler: Handler[E],
    *,
    service: str,
    group_id: str,
    max_attempts: int = 3,
    backoff_s: float = 0.5,
    session_timeout_ms: int = 10000,
    auto_offset_reset: str = "earliest",
) -> Any:
    """Register ``handler`` for ``topic`` with validation, retries, DLQ and commit-after-success."""

    async def on_message(message: KafkaMessage) -> None:
        await process_record(broker, message.raw_message, model, handler, service=service, topic=topic,
                             max_attempts=max_attempts, backoff_s=backoff_s)
        _record_lag(service, message)

    on_message.__name__ = f"{service}_{topic.replace('.', '_')}"
    return broker.subscriber(
        topic,
        group_id=group_id,
        ack_policy=AckPolicy.NACK_ON_ERROR,  # a failed DLQ write rewinds: the record comes back
        auto_offset_reset=auto_offset_reset,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 5),
        title=f"{service}:{topic}",
        description=f"{service} consumes {model.__name__} from {topic}",
    )(on_message)
