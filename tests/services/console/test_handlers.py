"""The console's handlers on FastStream's in-memory broker: each topic's events reach the view (and a
fire its history), a replayed event changes nothing, a body that is not the topic's event is counted
and skipped. The real broker is in test_http.py (the console as its own process)."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import REGISTRY

from emberwatch.contracts import ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.events import LabelFeedback, SplitCounts
from services.console.fire_history import FireHistory
from services.console.handlers import event_router
from services.console.models import Topics
from services.console.view import ConsoleView
from tests.services.console.conftest import fire

TOPICS = Topics()
TILE_ID = "ab" * 32


def _tile() -> TileReady:
    return TileReady.create(producer="test", tile_id=TILE_ID, uri=f"file:///tiles/ab/{TILE_ID}.png", lat=50.0,
                            lon=-120.0, zoom=15, size_px=64, label="wildfire", split="train", fire_key="A",
                            provider="mapbox-static")


def _candidate() -> ModelCandidate:
    return ModelCandidate.create(producer="test", model_name="m", version="2", run_id="a" * 32,
                                 artifact_uri="runs:/x/triton", dataset_digest="d",
                                 counts={"train": SplitCounts(wildfire=1, nowildfire=1)}, metrics={})


def _decision() -> ModelDecision:
    return ModelDecision.create(producer="test", model_name="m", candidate_version="2", champion_version=None,
                                decision="promoted", reason="r")


def _feedback() -> LabelFeedback:
    return LabelFeedback.create(producer="test", tile_id=TILE_ID, label="nowildfire", labelled_by="console:alice")


def _deliver(view: ConsoleView, history: FireHistory, *records: tuple[str, bytes]) -> None:
    async def go() -> None:
        broker = KafkaBroker()
        broker.include_router(event_router(view, history, TOPICS))
        async with TestKafkaBroker(broker) as test_broker:
            for topic, body in records:
                await test_broker.publish(body, topic)

    asyncio.run(go())


def _on(topic: str, event: Envelope) -> tuple[str, bytes]:
    return topic, event.to_bytes()


def test_each_topic_reaches_the_view_and_a_replay_changes_nothing() -> None:
    view, history = ConsoleView(), FireHistory()
    changes: list[str] = []
    view.observers.append(changes.append)
    new, grown = fire("A", "new"), fire("A", "updated", hectares=40.0, at="2026-07-01T18:00:00")
    tile, candidate, decision, feedback = _tile(), _candidate(), _decision(), _feedback()
    _deliver(view, history, _on(TOPICS.fires, new), _on(TOPICS.fires, grown), _on(TOPICS.tiles, tile),
             _on(TOPICS.candidates, candidate), _on(TOPICS.decisions, decision), _on(TOPICS.feedback, feedback))
    assert view.fires["A"].hectares == 40.0
    assert [h["hectares"] for h in history.of("A")] == [12.5, 40.0]
    assert view.tiles == {TILE_ID: tile} and view.tiles_by_fire == {"A": [TILE_ID]}
    assert list(view.candidates.values()) == [candidate] and view.decisions == [decision]
    assert view.feedback[TILE_ID].label == "nowildfire"
    assert view.roles()["champion"] == "2"
    assert changes == ["fires", "fires", "tiles", "models", "models", "tiles"]

    _deliver(view, history, _on(TOPICS.fires, new), _on(TOPICS.tiles, tile), _on(TOPICS.decisions, decision))
    assert view.fires["A"].hectares == 40.0 and len(history.of("A")) == 2 and len(view.decisions) == 1
    assert changes == ["fires", "fires", "tiles", "models", "models", "tiles"]


def _count(topic: str, outcome: str) -> float:
    labels = {"service": "console", "topic": topic, "outcome": outcome}
    return REGISTRY.get_sample_value("emberwatch_messages_consumed_total", labels) or 0.0


def test_a_body_that_is_not_the_topics_event_is_counted_and_skipped() -> None:
    view, history = ConsoleView(), FireHistory()
    invalid, ok = _count(TOPICS.fires, "invalid"), _count(TOPICS.fires, "ok")
    a_tile_on_the_fires_topic = _on(TOPICS.fires, _tile())
    _deliver(view, history, (TOPICS.fires, b"not json"), (TOPICS.fires, b'{"fire_key": "A"}'),
             a_tile_on_the_fires_topic, _on(TOPICS.fires, fire("B", "new")))
    assert list(view.fires) == ["B"] and history.of("A") == []
    assert _count(TOPICS.fires, "invalid") == invalid + 3
    assert _count(TOPICS.fires, "ok") == ok + 1
