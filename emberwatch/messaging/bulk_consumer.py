"""At-least-once consumption where one call handles a whole batch, for side effects cheaper in bulk.

``subscribe`` calls its handler once per record. A handler whose side effect is a durable write (a
database transaction with an fsync) then pays that cost per record: a few hundred records/s.
``subscribe_bulk`` hands the valid events of each fetched batch to ``handle_many`` at once, so the
write is one transaction for up to ``max_records`` records:

* every record is validated first; an invalid one goes to ``<topic>.dlq`` at once, as in ``subscribe``;
* ``handle_many`` gets the valid ones in partition order, each with where it came from (``Received``);
  if it raises it is retried with backoff up to ``max_attempts`` times;
* if it still fails (or raises ``PermanentError``), the batch is handled again one record at a time
  through ``handle_one`` with exactly the guarantees of ``subscribe``, so a single poison record goes
  to the DLQ alone and the others are stored;
* the offsets are committed only after all of that, so a crash redelivers at most the batch in flight.
  ``handle_many`` must therefore be idempotent for the whole batch (one transaction that ignores what
  it already holds is).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, NamedTuple

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from emberwatch.common.telemetry import HANDLER_SECONDS, MESSAGES_CONSUMED
from emberwatch.messaging.consumer import (
    E,
    Handler,
    PermanentError,
    error_text,
    process_record,
    record_lag,
    records_of,
    register_batches,
)

log = logging.getLogger(__name__)


class Received(NamedTuple, Generic[E]):
    """A valid event and the record it came from (lineage back to Kafka). A named tuple: one is made
    per record, and a tuple costs a fraction of a frozen dataclass to build."""

    event: E
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None  # the record's Kafka timestamp (when it was published)


BulkHandler = Callable[[list[Received[E]]], Awaitable[Any]]


def subscribe_bulk(
    broker: KafkaBroker,
    topic: str,
    model: type[E],
    handle_many: BulkHandler[E],
    handle_one: Handler[E],
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
    """Register ``handle_many`` (whole batches) with ``handle_one`` as the per-record fallback."""
    ok = MESSAGES_CONSUMED.labels(service, topic, "ok")
    seconds = HANDLER_SECONDS.labels(service, topic)

    async def one_by_one(records: tuple[Any, ...] | list[Any]) -> None:
        for record in records:
            await process_record(broker, record, model, handle_one, service=service, topic=topic,
                                 max_attempts=max_attempts, backoff_s=backoff_s)

    async def on_batch(message: KafkaMessage) -> None:
        records = records_of(message)
        valid: list[Received[E]] = []
        invalid: list[Any] = []
        parse = model.from_bytes
        for r in records:
            try:
                valid.append(Received(parse(r.value or b""), r.topic, r.partition, r.offset,
                                      getattr(r, "timestamp", None)))
            except ValidationError:
                invalid.append(r)
        await one_by_one(invalid)  # each fails validation again there and goes to the DLQ
        if valid:
            started = time.perf_counter()
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(max_attempts),
                    wait=wait_exponential(multiplier=backoff_s, max=30),
                    retry=retry_if_not_exception_type(PermanentError),
                    reraise=True,
                ):
                    with attempt:
                        await handle_many(valid)
                ok.inc(len(valid))
                seconds.observe((time.perf_counter() - started) / len(valid))
            except Exception as exc:  # noqa: BLE001 - isolate the record that fails, lose none
                log.warning("bulk handler failed; handling the batch one record at a time",
                            extra={"topic": topic, "records": len(valid), "error": error_text(exc)})
                valid_offsets = {(v.partition, v.offset) for v in valid}
                await one_by_one([r for r in records if (r.partition, r.offset) in valid_offsets])
        record_lag(service, getattr(message, "consumer", None), records[-1])

    on_batch.__name__ = f"{service}_{topic.replace('.', '_')}_bulk"
    return register_batches(broker, topic, on_batch, group_id=group_id, max_records=max_records,
                            batch_timeout_ms=batch_timeout_ms, auto_offset_reset=auto_offset_reset,
                            session_timeout_ms=session_timeout_ms, title=f"{service}:{topic}",
                            description=f"{service} consumes {model.__name__} from {topic} in bulk")
