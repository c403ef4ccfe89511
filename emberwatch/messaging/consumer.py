"""What happens to one consumed record: its validation failure or its handler's failure, retried and
dead-lettered (``<topic>.dlq``, with why and where from), and the record a running handler came from.

``emberwatch.messaging.subscription`` runs the common case (a valid record handled at the first try)
in its own loop and comes here only when something fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

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
from emberwatch.common.telemetry import CONSUMER_LAG, DLQ_MESSAGES, HANDLER_ERRORS
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.topics import dlq_topic

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)
Handler = Callable[[E], Awaitable[Any]]

MAX_ERROR_HEADER = 900


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message goes to the DLQ at once."""


_CURRENT_RECORD: ContextVar[Any] = ContextVar("emberwatch_current_record", default=None)


def current_record() -> Any:
    """The aiokafka record whose handler is running (``None`` outside a handler)."""
    return _CURRENT_RECORD.get()


def current_origin() -> tuple[str | None, int | None, int | None]:
    """Topic, partition and offset of the record whose handler is running (lineage back to Kafka);
    ``(None, None, None)`` outside a handler."""
    record = _CURRENT_RECORD.get()
    if record is None:
        return None, None, None
    return record.topic, int(record.partition), int(record.offset)


def error_text(exc: BaseException) -> str:
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


def record_lag(service: str, consumer: Any, last: Any) -> None:
    """Lag of ``last``'s partition after its batch: the high watermark minus the next offset."""
    try:
        from aiokafka import TopicPartition

        high = consumer.highwater(TopicPartition(last.topic, last.partition)) if consumer else None
    except Exception:  # noqa: BLE001 - lag is best effort, never fails a message
        return
    if high is not None:
        CONSUMER_LAG.labels(service, last.topic, str(last.partition)).set(max(0, high - last.offset - 1))


def _log_failure(service: str, topic: str, offset: int, attempt: int, exc: BaseException) -> None:
    HANDLER_ERRORS.labels(service, topic, type(exc).__name__).inc()
    log.warning("handler failed",
                extra={"topic": topic, "offset": offset, "attempt": attempt, "error": error_text(exc)})


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
    the caller does not commit and the record comes back."""
    token = _CURRENT_RECORD.set(raw)
    try:
        try:
            event = model.from_bytes(raw.value or b"")
        except ValidationError as exc:
            return await dead_letter_invalid(broker, raw, service, topic, exc)
        try:
            await handler(event)  # the common case, without the retry machinery
            return "ok"
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
            return await handle_failure(broker, raw, event, handler, exc, service=service, topic=topic,
                                        max_attempts=max_attempts, backoff_s=backoff_s)
    finally:
        _CURRENT_RECORD.reset(token)


async def dead_letter_invalid(broker: KafkaBroker, raw: Any, service: str, topic: str,
                              exc: ValidationError) -> str:
    """A record that is not a valid event goes to the DLQ at once (it would fail the same way again)."""
    HANDLER_ERRORS.labels(service, topic, "validation").inc()
    return await _dead(broker, raw, service, topic, "validation", error_text(exc), 1)


async def handle_failure(broker: KafkaBroker, raw: Any, event: Any, handler: Handler[Any], exc: Exception,
                         *, service: str, topic: str, max_attempts: int, backoff_s: float) -> str:
    """After a handler's first failure ``exc``: the DLQ at once for a ``PermanentError``, otherwise
    attempts 2..``max_attempts`` with backoff, then the DLQ. The outcome (``ok`` or ``dlq``)."""
    if isinstance(exc, PermanentError):
        HANDLER_ERRORS.labels(service, topic, "permanent").inc()
        return await _dead(broker, raw, service, topic, "permanent", error_text(exc), 1)
    _log_failure(service, topic, raw.offset, 1, exc)
    return await _retry(broker, raw, event, handler, exc, service=service, topic=topic,
                        max_attempts=max_attempts, backoff_s=backoff_s)


async def _dead(broker: KafkaBroker, raw: Any, service: str, topic: str, reason: str, error: str,
                attempts: int) -> str:
    """Dead-letter ``raw`` (see ``send_to_dlq``); the outcome to count."""
    await send_to_dlq(broker, service=service, topic=topic, partition=raw.partition, offset=raw.offset,
                      key=raw.key, body=raw.value or b"", reason=reason, error=error, attempts=attempts)
    return "dlq"


async def _retry(broker: KafkaBroker, raw: Any, event: Any, handler: Handler[Any], first_error: Exception,
                 *, service: str, topic: str, max_attempts: int, backoff_s: float) -> str:
    """Attempts 2..``max_attempts`` of a handler that failed once; the outcome (``ok`` or ``dlq``)."""
    if max_attempts <= 1:
        return await _dead(broker, raw, service, topic, "handler_failed", error_text(first_error), 1)
    attempts = 1
    await asyncio.sleep(min(backoff_s, 30))
    try:
        async for attempt in AsyncRetrying(  # attempts 2..max: waits continue 2b, 4b, ... (cap 30 s)
            stop=stop_after_attempt(max_attempts - 1),
            wait=wait_exponential(multiplier=2 * backoff_s, max=30),
            retry=retry_if_not_exception_type(PermanentError),
            reraise=False,
        ):
            with attempt:
                attempts = attempt.retry_state.attempt_number + 1
                try:
                    await handler(event)
                except PermanentError:
                    raise
                except Exception as exc:
                    _log_failure(service, topic, raw.offset, attempts, exc)
                    raise
    except PermanentError as exc:
        HANDLER_ERRORS.labels(service, topic, "permanent").inc()
        return await _dead(broker, raw, service, topic, "permanent", error_text(exc), attempts)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        return await _dead(broker, raw, service, topic, "handler_failed",
                           error_text(last) if last else "unknown", attempts)
    return "ok"


def records_of(message: KafkaMessage) -> tuple[Any, ...]:
    """The aiokafka records behind a FastStream message (a batch subscriber's message holds several)."""
    records = message.raw_message
    return records if isinstance(records, tuple) else (records,)


async def keep_raw_bodies(message: KafkaMessage) -> Any:
    """FastStream decoder that leaves bodies as bytes: each record is validated against its event
    model once, in ``process_record``, not parsed as JSON first."""
    return message.body
