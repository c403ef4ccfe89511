"""At-least-once consumers with a dead-letter path, in batches.

``subscribe`` registers a handler for one topic on a FastStream ``KafkaBroker``. It fetches up to
``max_records`` records at once (whatever is already there: a fetch never waits to fill a batch) and
handles them one after another, in partition order:

* the raw bytes are validated against the topic's event model; a record that fails validation goes
  to ``<topic>.dlq`` at once (it would fail the same way every time);
* the handler is attempted up to ``max_attempts`` times with exponential backoff; a record that keeps
  failing goes to ``<topic>.dlq`` with the error, the attempt count and its origin in headers;
* the offsets are committed once per batch, only after every record of it was handled or its DLQ
  publish acknowledged. A crash at any point redelivers at most the batch in flight (``max_records``
  records, ``EMBERWATCH_KAFKA_BATCH_MAX_RECORDS``); nothing is lost and no record blocks its
  partition. Handlers are idempotent, so a redelivered record has no second side effect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import lru_cache
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


@lru_cache(maxsize=None)
def _metrics(service: str, topic: str) -> tuple[dict[str, Any], Any]:
    """The per-record metrics of one subscription, labels bound once (a lookup costs per record)."""
    consumed = {o: MESSAGES_CONSUMED.labels(service, topic, o) for o in ("ok", "dlq")}
    return consumed, HANDLER_SECONDS.labels(service, topic)


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
    count: bool = True,
) -> str:
    """Validate one record and run ``handler`` on it with retries; poison goes to the DLQ.

    Returns the outcome (``ok`` or ``dlq``) and records how long it took; with ``count`` it also
    counts the outcome (``subscribe`` counts once per batch instead). Raises only when the DLQ
    itself cannot be written, so the caller does not commit and the record comes back.
    """
    started = time.perf_counter()
    token = _CURRENT_RECORD.set(raw)
    outcome = "ok"
    try:
        try:
            event = model.from_bytes(raw.value or b"")
        except ValidationError as exc:
            HANDLER_ERRORS.labels(service, topic, "validation").inc()
            outcome = "dlq"  # counted so even if the DLQ write fails (the batch then comes back)
            return await _dead(broker, raw, service, topic, "validation", error_text(exc), 1)
        try:
            await handler(event)  # the common case, without the retry machinery
            return outcome
        except PermanentError as exc:
            HANDLER_ERRORS.labels(service, topic, "permanent").inc()
            outcome = "dlq"
            return await _dead(broker, raw, service, topic, "permanent", error_text(exc), 1)
        except Exception as exc:
            _log_failure(service, topic, raw.offset, 1, exc)
            first_error = exc  # ``exc`` is unbound once the except block ends
        outcome = "dlq"  # unless a later attempt succeeds
        outcome = await _retry(broker, raw, event, handler, first_error, service=service, topic=topic,
                               max_attempts=max_attempts, backoff_s=backoff_s)
        return outcome
    finally:
        _CURRENT_RECORD.reset(token)
        consumed, seconds = _metrics(service, topic)
        if count:
            consumed[outcome].inc()
        seconds.observe(time.perf_counter() - started)


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


def consumer_options(settings: Any) -> dict[str, Any]:
    """The subscription options every service takes from its settings (all but the group id)."""
    return dict(max_attempts=settings.kafka_max_attempts, backoff_s=settings.kafka_retry_backoff_s,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                max_records=settings.kafka_batch_max_records)


def records_of(message: KafkaMessage) -> tuple[Any, ...]:
    """The aiokafka records behind a FastStream message (a batch subscriber's message holds several)."""
    records = message.raw_message
    return records if isinstance(records, tuple) else (records,)


async def keep_raw_bodies(message: KafkaMessage) -> Any:
    """FastStream decoder that leaves bodies as bytes: each record is validated against its event
    model once, in ``process_record``, not parsed as JSON first."""
    return message.body


def subscribe(
    broker: KafkaBroker,
    topic: str,
    model: type[E],
    handler: Handler[E],
    *,
    service: str,
    group_id: str,
    max_records: int = 500,
    batch_timeout_ms: int = 100,
    max_attempts: int = 3,
    backoff_s: float = 0.5,
    session_timeout_ms: int = 10000,
    auto_offset_reset: str = "earliest",
) -> Any:
    """Register ``handler`` for ``topic``: validation, retries, DLQ, one commit per handled batch.

    ``batch_timeout_ms`` is how long an idle fetch waits for records, not a delay: a fetch returns
    at once with what is there (up to ``max_records``).
    """

    async def on_batch(message: KafkaMessage) -> None:
        records = records_of(message)
        consumed, _ = _metrics(service, topic)
        dead = 0
        for record in records:  # in order: one key's events are handled as they were published
            if await process_record(broker, record, model, handler, service=service, topic=topic,
                                    max_attempts=max_attempts, backoff_s=backoff_s, count=False) == "dlq":
                dead += 1
        # Counted once per handled batch (a failed DLQ write raises first: the batch comes back and
        # is counted when it is handled).
        if dead:
            consumed["dlq"].inc(dead)
        consumed["ok"].inc(len(records) - dead)
        record_lag(service, getattr(message, "consumer", None), records[-1])

    on_batch.__name__ = f"{service}_{topic.replace('.', '_')}"
    return register_batches(broker, topic, on_batch, group_id=group_id, max_records=max_records,
                            batch_timeout_ms=batch_timeout_ms, auto_offset_reset=auto_offset_reset,
                            session_timeout_ms=session_timeout_ms, title=f"{service}:{topic}",
                            description=f"{service} consumes {model.__name__} from {topic}")


def register_batches(
    broker: KafkaBroker,
    topic: str,
    on_batch: Callable[[KafkaMessage], Awaitable[None]],
    *,
    group_id: str,
    max_records: int,
    batch_timeout_ms: int,
    auto_offset_reset: str,
    session_timeout_ms: int,
    title: str,
    description: str,
) -> Any:
    """The one FastStream batch subscription every consumer kind uses: raw bodies, and a commit
    only after ``on_batch`` returns (a failed DLQ write raises, and the batch comes back)."""
    return broker.subscriber(
        topic,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=batch_timeout_ms,
        decoder=keep_raw_bodies,
        ack_policy=AckPolicy.NACK_ON_ERROR,  # a failed DLQ write rewinds: the batch comes back
        auto_offset_reset=auto_offset_reset,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 5),
        title=title,
        description=description,
    )(on_batch)
