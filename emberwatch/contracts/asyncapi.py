"""The AsyncAPI document of the event contracts, generated from the pydantic models by FastStream."""

from __future__ import annotations

import json
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from emberwatch import __version__
from emberwatch.contracts.events import EVENT_TYPES
from emberwatch.contracts.topics import dlq_topic


def contracts_broker() -> KafkaBroker:
    """A broker that only declares one publisher per topic with its event schema (never connects)."""
    broker = KafkaBroker("kafka:9092", description="Emberwatch event bus")
    for model in EVENT_TYPES:
        broker.publisher(
            model.TOPIC,
            schema=model,
            title=f"{model.TOPIC}:{model.__name__}",
            description=" ".join((model.__doc__ or "").split())
            + f" Message key: {getattr(model, 'KEY_DOC', 'the entity it is about')}."
            + f" Poison messages go to {dlq_topic(model.TOPIC)}.",
        )
    return broker


def asyncapi_document() -> dict[str, Any]:
    spec = AsyncAPI(
        contracts_broker(),
        title="Emberwatch events",
        version=__version__,
        description="Event contracts of Emberwatch (docs/architecture.md). JSON on the wire; "
        "every event carries the envelope event_id, type, occurred_at, producer, trace_id.",
        schema_version="3.0.0",
    )
    return spec.to_specification().to_jsonable()


def asyncapi_json() -> str:
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True)
