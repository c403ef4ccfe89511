"""What the console does with each event: one small function per topic it reads, the topic written on it.

Every topic is read from the beginning with no consumer group (nothing committed: each start rebuilds
the view). A body stays bytes until it is validated once against its event model; an invalid one is
counted and skipped (its producer dead-letters, not the console). The console writes no event here:
its operators' commands and labels leave from the web routes (operator_api.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.kafka import KafkaRouter
from pydantic import ValidationError

from emberwatch.common.telemetry import MESSAGES_CONSUMED
from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.events import LabelFeedback
from emberwatch.messaging.consumer import keep_raw_bodies
from services.console.fire_history import FireHistory
from services.console.models import Topics
from services.console.settings import SERVICE
from services.console.view import ConsoleView

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)
FROM_THE_BEGINNING = {"group_id": None, "auto_offset_reset": "earliest", "decoder": keep_raw_bodies}


def event_router(view: ConsoleView, history: FireHistory, topics: Topics) -> KafkaRouter:
    """The console's subscriptions: the view and the fires' histories, kept as the streams tell them."""
    router = KafkaRouter()

    def consumes(topic: str, model: type[E]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
        def register(handle: Callable[[E], None]) -> Callable[[E], None]:
            router.subscriber(topic, **FROM_THE_BEGINNING)(validated(topic, model, handle))
            return handle
        return register

    @consumes(topics.fires, FireObserved)
    def on_fire(fire: FireObserved) -> None:
        history.record(fire)
        view.add_fire(fire)

    @consumes(topics.tiles, TileReady)
    def on_tile(tile: TileReady) -> None:
        view.add_tile(tile)

    @consumes(topics.decisions, ModelDecision)
    def on_decision(decision: ModelDecision) -> None:
        view.add_decision(decision)

    @consumes(topics.candidates, ModelCandidate)
    def on_candidate(candidate: ModelCandidate) -> None:
        view.add_candidate(candidate)

    @consumes(topics.feedback, LabelFeedback)
    def on_feedback(feedback: LabelFeedback) -> None:
        view.add_feedback(feedback)

    return router


def validated(topic: str, model: type[E], handle: Callable[[E], None]) -> Callable[[bytes], Awaitable[None]]:
    """What FastStream calls with a record's bytes: the event validated once, then ``handle``d."""
    async def on_message(body: bytes) -> None:
        try:
            event = model.from_bytes(body)
        except (ValidationError, ValueError) as exc:  # not ours to dead-letter: the owners do
            MESSAGES_CONSUMED.labels(SERVICE, topic, "invalid").inc()
            log.warning("skipped an invalid event", extra={"topic": topic, "error": str(exc)[:300]})
            return
        handle(event)
        MESSAGES_CONSUMED.labels(SERVICE, topic, "ok").inc()
    on_message.__name__ = f"console_{topic.replace('.', '_')}"
    return on_message
