"""The envelope every event carries, and deterministic ids for facts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ID_NAMESPACE = uuid.UUID("6f1c2a52-2c4e-4d7e-9a55-0c1e3d5b7a11")


def fact_id(*parts: Any) -> str:
    """A deterministic id for a fact: the same parts always give the same id (UUIDv5)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(str(p) for p in parts)))


def new_id() -> str:
    """A fresh random id, for commands and other non-facts."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields every event carries. Subclasses set ``TYPE`` and ``TOPIC`` and say what their key is."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]

    event_id: str = Field(description="Deterministic for facts, random for commands.")
    type: str = Field(description="Event type, e.g. fires.observed.")
    occurred_at: datetime = Field(description="When the fact happened (UTC).")
    producer: str = Field(description="The service (or tool) that produced the event.")
    trace_id: str = Field(description="Correlates the events of one flow through the pipeline.")

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @field_validator("type")
    @classmethod
    def _type_matches(cls, value: str) -> str:
        expected = getattr(cls, "TYPE", None)
        if expected and value != expected:
            raise ValueError(f"type must be {expected!r}, got {value!r}")
        return value

    # --- what subclasses define ----------------------------------------------------------------
    def key(self) -> str:
        """Kafka message key: the entity the event is about."""
        raise NotImplementedError

    def id_parts(self) -> tuple[Any, ...] | None:
        """Parts of the deterministic id for facts; None for commands (random id)."""
        return None

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        *,
        producer: str,
        trace_id: str | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Self:
        """Build an event, filling the envelope: the id is derived from the fact where it is one."""
        draft = cls.model_construct(
            event_id="", type=cls.TYPE, occurred_at=occurred_at or utcnow(),
            producer=producer, trace_id=trace_id or "", **fields,
        )
        parts = draft.id_parts()
        event_id = fact_id(cls.TYPE, *parts) if parts is not None else new_id()
        return cls(
            event_id=event_id,
            type=cls.TYPE,
            occurred_at=occurred_at or utcnow(),
            producer=producer,
            trace_id=trace_id or event_id,
            **fields,
        )

    def to_bytes(self) -> bytes:
        """The event as UTF-8 JSON (what ``model_dump_json`` gives, without the detour through str)."""
        return self.__pydantic_serializer__.to_json(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls.model_validate_json(data)
