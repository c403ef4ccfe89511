"""The previous bulk API, a thin alias of ``subscription.subscribe`` with ``Delivery(mode="bulk")``
until every service uses ``emberwatch.messaging.subscription``."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker

from emberwatch.messaging.consumer import E, Handler
from emberwatch.messaging.subscription import BulkHandler, Delivery, Received, subscribe

__all__ = ["BulkHandler", "Received", "subscribe_bulk"]


def subscribe_bulk(broker: KafkaBroker, topic: str, model: type[E], handle_many: BulkHandler[E],
                   handle_one: Handler[E], *, service: str, group_id: str, **limits: Any) -> Any:
    """``subscribe(..., handle_one, Delivery(mode="bulk", ...), handle_many=handle_many)``."""
    return subscribe(broker, topic, model, handle_one,
                     Delivery(service=service, group_id=group_id, mode="bulk", **limits), handle_many=handle_many)
