"""At-least-once consumption in concurrent batches, for handlers that wait on slow I/O.

``subscribe`` handles the records of a batch one after another: right for most services, but a
handler that spends 100 ms waiting on an HTTP API caps a partition at ~10 messages/s. ``subscribe_batch`` takes up to
``max_records`` messages at once and runs the handler on all of them concurrently, each message with
exactly the guarantees of ``subscribe``: validation failure → DLQ at once, ``PermanentError`` → DLQ
at once, other failures retried with backoff ``max_attempts`` times → DLQ. The offsets are committed
only after every message of the batch succeeded or reached the DLQ, so a crash redelivers the whole
batch (handlers must be idempotent, as everywhere).

Messages of one batch run concurrently: there is no ordering between them, even for one key. Use it
for handlers that are idempotent and insensitive to order (or that serialise per key themselves).
"""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from emberwatch.messaging.consumer import E, Handler, process_record, records_of, register_batches


def subscribe_batch(
    broker: KafkaBroker,
    topic: str,
    model: type[E],
    handler: Handler[E],
    *,
    service: str,
    group_id: str,
    max_records: int = 16,
    batch_timeout_ms: int = 200,
    max_attempts: int = 3,
    backoff_s: float = 0.5,
    session_timeout_ms: int = 10000,
    auto_offset_reset: str = "earliest",
) -> Any:
    """Register ``handler`` for ``topic``: batches of up to ``max_records`` handled concurrently."""

    async def on_batch(message: KafkaMessage) -> None:
        records = records_of(message)
        await asyncio.gather(*(
            process_record(broker, r, model, handler, service=service, topic=topic,
                           max_attempts=max_attempts, backoff_s=backoff_s)
            for r in records
        ))

    on_batch.__name__ = f"{service}_{topic.replace('.', '_')}_batch"
    return register_batches(broker, topic, on_batch, group_id=group_id, max_records=max_records,
                            batch_timeout_ms=batch_timeout_ms, auto_offset_reset=auto_offset_reset,
                            session_timeout_ms=session_timeout_ms, title=f"{service}:{topic}",
                            description=f"{service} consumes {model.__name__} from {topic} in concurrent batches")
