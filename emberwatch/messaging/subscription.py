"""The one way a service consumes a topic: ``subscribe(broker, topic, Model, handler, Delivery(...))``.

Every subscription fetches up to ``max_records`` records at once (whatever is already there: a fetch
never waits to fill a batch) and gives each record the same guarantees:

* its raw bytes are validated against the topic's event model; a record that fails validation goes
  to ``<topic>.dlq`` at once (it would fail the same way every time);
* a handler that raises ``PermanentError`` sends the record to the DLQ at once; any other failure is
  retried with exponential backoff up to ``max_attempts`` times, then the record goes to the DLQ
  with the error, the attempt count and its origin in headers;
* the offsets are committed once per batch, only after every record of it was handled or its DLQ
  publish acknowledged. A crash redelivers at most the batch in flight; nothing is lost and no
  record blocks its partition. A batch whose DLQ write fails is not committed: the consumer is
  rewound to it and it comes again. Handlers are idempotent, so a redelivered record has no second
  side effect.

``Delivery.mode`` says how a batch reaches the handlers:

* ``ordered`` (the default): one record after another, in partition order;
* ``concurrent``: the records of a batch at once, for handlers that wait on slow I/O and do not
  care about order (there is none between them, even for one key);
* ``bulk``: the valid events of a batch in one call to ``handle_many`` (a list of ``Received``), for
  side effects cheaper in bulk (one transaction per batch). It is retried as a whole; if it still
  fails, the batch is handled again one record at a time through ``handler`` (the ordered path), so
  a single poison record goes to the DLQ alone and the others are stored. ``handle_many`` must be
  idempotent for the whole batch.

Broker metrics (records received, batch handling time, exceptions, publishes) come from FastStream's
Prometheus middleware that ``build_broker`` installs; what it cannot see inside a batch (dead letters,
handler failures by kind, lag) is counted here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, NamedTuple

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from emberwatch.messaging.consumer import (
    _CURRENT_RECORD,
    E,
    Handler,
    PermanentError,
    dead_letter_invalid,
    error_text,
    handle_failure,
    keep_raw_bodies,
    process_record,
    record_lag,
)

log = logging.getLogger(__name__)

Mode = Literal["ordered", "concurrent", "bulk"]


class Received(NamedTuple, Generic[E]):
    """A valid event and the record it came from (lineage back to Kafka), as ``handle_many`` gets it.
    A named tuple: one is made per record, and a tuple costs a fraction of a frozen dataclass."""

    event: E
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None  # the record's Kafka timestamp (when it was published)


BulkHandler = Callable[[list[Received[E]]], Awaitable[Any]]


@dataclass(frozen=True)
class Delivery:
    """How one subscription is consumed: its group, its delivery mode and its limits.

    ``batch_timeout_ms`` is how long an idle fetch waits for records, not a delay: a fetch returns
    at once with what is there (up to ``max_records``)."""

    service: str
    group_id: str
    mode: Mode = "ordered"
    max_records: int = 500
    batch_timeout_ms: int = 100
    max_attempts: int = 3
    backoff_s: float = 0.5
    session_timeout_ms: int = 10000
    auto_offset_reset: str = "earliest"

    @classmethod
    def from_settings(cls, settings: Any, *, service: str, group_id: str, **overrides: Any) -> Delivery:
        """The limits every service takes from its settings (``kafka_*``), with ``overrides``."""
        limits = dict(max_attempts=settings.kafka_max_attempts, backoff_s=settings.kafka_retry_backoff_s,
                      session_timeout_ms=settings.kafka_session_timeout_ms,
                      max_records=settings.kafka_batch_max_records)
        return cls(service=service, group_id=group_id, **{**limits, **overrides})

    def but(self, **changes: Any) -> Delivery:
        """This delivery with ``changes`` (another group, mode or limit)."""
        return replace(self, **changes)


def subscribe(
    broker: KafkaBroker,
    topic: str,
    model: type[E],
    handler: Handler[E],
    delivery: Delivery,
    *,
    handle_many: BulkHandler[E] | None = None,
    publishes: tuple[str, ...] = (),
) -> Any:
    """Register ``handler`` for ``topic`` as ``delivery`` says (``handle_many`` with ``mode="bulk"``
    only: ``handler`` is then the per-record fallback). ``publishes`` names the topics the handler
    sends to (in the AsyncAPI description). Returns FastStream's subscriber."""
    if (delivery.mode == "bulk") != (handle_many is not None):
        raise ValueError("handle_many goes with mode='bulk', and mode='bulk' needs handle_many")
    deliver = {"ordered": _ordered, "concurrent": _concurrent, "bulk": _bulk}[delivery.mode]
    on_batch = deliver(broker, topic, model, handler, delivery, handle_many)
    on_batch.__name__ = f"{delivery.service}_{topic.replace('.', '_')}_{delivery.mode}"
    return broker.subscriber(
        topic,
        group_id=delivery.group_id,
        batch=True,
        max_records=delivery.max_records,
        batch_timeout_ms=delivery.batch_timeout_ms,
        parser=parse_first_headers_only,
        decoder=keep_raw_bodies,
        ack_policy=AckPolicy.NACK_ON_ERROR,  # a failed DLQ write rewinds: the batch comes back
        auto_offset_reset=delivery.auto_offset_reset,
        session_timeout_ms=delivery.session_timeout_ms,
        heartbeat_interval_ms=max(100, delivery.session_timeout_ms // 5),
        title=f"{delivery.service}:{topic}",
        description=f"{delivery.service} consumes {model.__name__} from {topic} ({delivery.mode})"
                    + (f"; publishes to {', '.join(publishes)}" if publishes else ""),
    )(on_batch)


@dataclass(frozen=True)
class Route:
    """One line of a service's table of what it consumes: the topic and its event model, the handler
    (with ``handle_many``: bulk delivery, ``handle`` the per-record fallback), the topics the handler
    publishes to, and how this subscription's delivery differs from the service's (``group_suffix``
    is appended to its group id: one group per topic, so the consumers never rebalance one another)."""

    topic: str
    model: type[Any]
    handle: Handler[Any]
    publishes: tuple[str, ...] = ()
    handle_many: BulkHandler[Any] | None = None
    group_suffix: str = ""
    mode: Mode | None = None  # default: bulk with ``handle_many``, else ordered
    max_records: int | None = None  # default: the service's

    def delivery(self, service: Delivery) -> Delivery:
        mode = self.mode or ("bulk" if self.handle_many is not None else "ordered")
        return service.but(group_id=service.group_id + self.group_suffix, mode=mode,
                           max_records=self.max_records or service.max_records)


def subscribe_routes(broker: KafkaBroker, routes: tuple[Route, ...], delivery: Delivery) -> list[Any]:
    """``subscribe`` every route of a service's table with the service's ``delivery``."""
    return [subscribe(broker, r.topic, r.model, r.handle, r.delivery(delivery), handle_many=r.handle_many,
                      publishes=r.publishes) for r in routes]


OnBatch = Callable[[KafkaMessage], Awaitable[None]]


async def parse_first_headers_only(records: tuple[Any, ...], parse_batch: Callable[..., Awaitable[Any]]) -> Any:
    """FastStream's batch parser given the first record alone (the message, its consumer, its
    headers), then the whole batch put in: the parser decodes every record's headers into a dict of
    its own, which nothing here reads (a subscription reads the records themselves)."""
    message = await parse_batch(records[:1])
    message.raw_message = records
    message.body = [r.value or b"" for r in records]
    return message


def _ordered(broker: KafkaBroker, topic: str, model: type[E], handler: Handler[E], d: Delivery,
             _: Any) -> OnBatch:
    """One record after another. The common case (valid, handled at the first try) is this loop
    alone; failures leave it for ``dead_letter_invalid`` and ``handle_failure``."""
    parse, service, current = model.parser(), d.service, _CURRENT_RECORD

    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        for record in records:  # in order: one key's events are handled as they were published
            token = current.set(record)
            try:
                try:
                    event = parse(record.value or b"")
                except ValidationError as exc:
                    await dead_letter_invalid(broker, record, service, topic, exc)
                    continue
                try:
                    await handler(event)
                except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
                    await handle_failure(broker, record, event, handler, exc, service=service, topic=topic,
                                         max_attempts=d.max_attempts, backoff_s=d.backoff_s)
            finally:
                current.reset(token)
        record_lag(service, getattr(message, "consumer", None), records[-1])

    return on_batch


def _concurrent(broker: KafkaBroker, topic: str, model: type[E], handler: Handler[E], d: Delivery,
                _: Any) -> OnBatch:
    """The records of a batch at once (each with the guarantees of the ordered path)."""

    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        await asyncio.gather(*(
            process_record(broker, r, model, handler, service=d.service, topic=topic,
                           max_attempts=d.max_attempts, backoff_s=d.backoff_s)
            for r in records
        ))
        record_lag(d.service, getattr(message, "consumer", None), records[-1])

    return on_batch


def _bulk(broker: KafkaBroker, topic: str, model: type[E], handler: Handler[E], d: Delivery,
          handle_many: BulkHandler[E]) -> OnBatch:
    """The valid events of a batch in one ``handle_many`` call; the ordered path as the fallback."""
    one_by_one = _ordered(broker, topic, model, handler, d, None)

    async def again_one_by_one(message: KafkaMessage, records: list[Any]) -> None:
        await one_by_one(_Records(message, tuple(records)))  # type: ignore[arg-type]

    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        valid: list[Received[E]] = []
        invalid: list[Any] = []
        parse = model.parser()
        for r in records:
            try:
                valid.append(Received(parse(r.value or b""), r.topic, r.partition, r.offset, r.timestamp))
            except ValidationError:
                invalid.append(r)
        if invalid:  # each fails validation again there and goes to the DLQ
            await again_one_by_one(message, invalid)
        if valid:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(d.max_attempts),
                    wait=wait_exponential(multiplier=d.backoff_s, max=30),
                    retry=retry_if_not_exception_type(PermanentError),
                    reraise=True,
                ):
                    with attempt:
                        await handle_many(valid)
            except Exception as exc:  # noqa: BLE001 - isolate the record that fails, lose none
                log.warning("bulk handler failed; handling the batch one record at a time",
                            extra={"topic": topic, "records": len(valid), "error": error_text(exc)})
                valid_offsets = {(v.partition, v.offset) for v in valid}
                await again_one_by_one(message, [r for r in records if (r.partition, r.offset) in valid_offsets])
        record_lag(d.service, getattr(message, "consumer", None), records[-1])

    return on_batch


@dataclass(frozen=True)
class _Records:
    """Some of a message's records, as the ordered path reads a message (``raw_message``, ``consumer``)."""

    message: Any
    raw_message: tuple[Any, ...]

    @property
    def consumer(self) -> Any:
        return getattr(self.message, "consumer", None)
