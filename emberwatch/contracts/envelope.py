"""The envelope every event carries, and deterministic ids for facts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """Fields every event carries. Subclasses set ``TYPE`` and ``TOPIC``, declare ``type`` as
    ``Literal[TYPE]`` (so the schema itself refuses another event's type, with no Python call per
    record) and say what their key is; ``check`` holds what their fields must say together."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]

    event_id: str = Field(description="Deterministic for facts, random for commands.")
    type: str = Field(description="Event type, e.g. fires.observed.")
    occurred_at: datetime = Field(description="When the fact happened (UTC).")
    producer: str = Field(description="The service (or tool) that produced the event.")
    trace_id: str = Field(description="Correlates the events of one flow through the pipeline.")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        expected = cls.__dict__.get("TYPE")
        if expected is not None and get_args(cls.model_fields["type"].annotation) != (expected,):
            raise TypeError(f"{cls.__name__} must declare type: Literal[{expected!r}] (its TYPE)")

    @model_validator(mode="after")
    def _in_utc_and_consistent(self) -> Self:
        """``occurred_at`` in UTC (a naive time is taken as UTC), then ``check``. One Python call per
        event, the common case (already UTC) changing nothing: a consumer runs this for every record."""
        at = self.occurred_at
        if at.tzinfo is None or at.utcoffset():
            self.__dict__["occurred_at"] = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        self.check()
        return self

    def check(self) -> None:
        """What the event's fields must say together; raise ``ValueError`` (a validation error) if not."""

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
        """The event as UTF-8 JSON, the fields still at their default left out (a reader's model fills
        them in again, so ``from_bytes(e.to_bytes()) == e``): a Mapbox tile does not carry the nine empty
        Sentinel-2 fields, a quarter of its body, through the producer, the broker and every consumer."""
        return self.__pydantic_serializer__.to_json(self, exclude_defaults=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """The event in ``data``, validated (``pydantic.ValidationError`` if it is not one)."""
        return cls.__pydantic_validator__.validate_json(data)

    @classmethod
    def parser(cls) -> Callable[[bytes], Self]:
        """``from_bytes`` without the class-method call: pydantic's validator itself, for a loop that
        validates every record of a batch."""
        return cls.__pydantic_validator__.validate_json
