"""Handler paths that need no servers: ignored events, redelivered candidates, unreadable tiles."""

from __future__ import annotations

import pytest

from emberwatch.common.tile_store import TileStore
from emberwatch.contracts.events import ModelCandidate, ModelDecision, SplitCounts, TileReady
from emberwatch.messaging.consumer import PermanentError
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.shadow_state import Shadow

TILE = "ab" * 32


def settings(tmp_path) -> GatekeeperSettings:
    # nothing listens on port 9: any attempt to reach a server fails loudly
    return GatekeeperSettings(state_dir=tmp_path / "state", triton_model_repository=tmp_path / "repo",
                              triton_url="127.0.0.1:9", mlflow_tracking_uri="http://127.0.0.1:9",
                              model_name="m")


def candidate(version: str, model_name: str = "m") -> ModelCandidate:
    return ModelCandidate.create(producer="t", model_name=model_name, version=version, run_id="r",
                                 artifact_uri="runs:/r/triton", dataset_digest="d",
                                 counts={"train": SplitCounts()}, metrics={})


def tile(uri: str) -> TileReady:
    return TileReady.create(producer="t", tile_id=TILE, uri=uri, lat=50, lon=-110, zoom=14, size_px=32,
                            label="wildfire", split="test", fire_key="f", provider="p")


def missing_uri(tmp_path) -> str:
    """The place of a tile ``TILE`` in the test's tile store, where no file is."""
    return TileStore(settings(tmp_path).tile_root).path_for(TILE, "png").as_uri()


class Published(list):
    async def publish(self, body, **kwargs):
        self.append((body, kwargs))


def test_a_candidate_for_another_model_is_ignored(tmp_path):
    assert Gatekeeper(settings(tmp_path)).on_candidate(candidate("1", model_name="other")) == []


async def test_a_redelivered_candidate_republishes_the_same_decision(tmp_path):
    import json

    gk = Gatekeeper(settings(tmp_path))
    decision = ModelDecision.create(producer="gatekeeper", model_name="m", candidate_version="4",
                                    champion_version="3", decision="rejected", reason="infra validation: broken")
    gk.store.save(gk.state.with_(decisions={"m:4": json.loads(decision.to_bytes())}))
    broker = Published()
    await Handlers(broker, gk).on_candidate(candidate("4"))
    [(body, kwargs)] = broker
    assert ModelDecision.from_bytes(body).event_id == decision.event_id
    assert kwargs["topic"] == ModelDecision.TOPIC


def test_live_tiles_without_a_challenger_in_shadow_are_skipped(tmp_path):
    assert Gatekeeper(settings(tmp_path)).on_tile(tile(missing_uri(tmp_path))) == []


async def test_an_unreadable_shadow_tile_goes_to_the_dlq_at_once(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r"))
    gk.lineage.remember("1", None), gk.lineage.remember("2", None)  # both lineages known (and empty)
    with pytest.raises(PermanentError, match="No such file"):
        await Handlers(Published(), gk).on_tile(tile(missing_uri(tmp_path)))
    assert gk.shadows.load().pairs == []


async def test_a_tile_either_model_was_trained_on_never_becomes_a_pair(tmp_path):
    import json

    gk = Gatekeeper(settings(tmp_path))
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r"))
    lineage = tmp_path / "tiles.json"
    lineage.write_text(json.dumps([{"tile_id": TILE, "label": "wildfire", "split": "train"}]))
    gk.lineage.remember("1", lineage), gk.lineage.remember("2", None)
    # the tile's file does not exist: it is skipped before it is read (and before Triton, which is down)
    assert await Handlers(Published(), gk).on_tile(tile(missing_uri(tmp_path))) is None
    assert gk.shadows.load().pairs == []


async def test_an_unreachable_mlflow_is_retried_not_taken_as_an_empty_lineage(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    gk = Gatekeeper(settings(tmp_path))
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r"))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever MLflow raises, it is not permanent
        await Handlers(Published(), gk).on_tile(tile(missing_uri(tmp_path)))
    assert not isinstance(caught.value, PermanentError)
    assert gk.shadows.load().pairs == []


@pytest.mark.parametrize("arrival", ["one at a time", "in one batch"])
async def test_a_later_fire_retires_or_relabels_pairs_and_later_tiles(tmp_path, monkeypatch, arrival):
    from emberwatch.contracts.events import TileRelabelled
    from emberwatch.messaging.subscription import Received
    from services.gatekeeper import state_store
    from services.gatekeeper.shadow_state import Pair

    other = "cd" * 32
    gk = Gatekeeper(settings(tmp_path))
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r",
                           pairs=[Pair(TILE, 0, 0.2, 0.3, "live"), Pair(other, 0, 0.7, 0.8, "test")]))

    def relabelled(tile_id: str, action: str) -> TileRelabelled:
        return TileRelabelled.create(producer="tiler", tile_id=tile_id, action=action, previous_label="nowildfire",
                                     label="wildfire" if action == "relabel" else None, fire_key="later",
                                     matched_fire_key="f", distance_km=1.0, reason="a later fire")

    writes = []
    write = state_store.atomic_write_text
    monkeypatch.setattr(state_store, "atomic_write_text", lambda *a: (writes.append(a), write(*a)))
    handlers = Handlers(Published(), gk)
    # a relabel wins over a later retire
    events = [relabelled(TILE, "retire"), relabelled(other, "relabel"), relabelled(other, "retire")]
    if arrival == "in one batch":
        await handlers.on_relabels([Received(e, TileRelabelled.TOPIC, 0, i) for i, e in enumerate(events)])
        assert len(writes) == 1  # one durable write for the batch
    else:
        for event in events:
            await handlers.on_relabel(event)
        assert len(writes) == 2  # the third changed nothing
    [pair] = gk.shadows.load().pairs
    assert pair.tile_id == other and pair.label == 1
    again = Gatekeeper(settings(tmp_path))  # durable
    assert again.corrections.retired(TILE) and again.corrections.label(other, "nowildfire") == "wildfire"
    # the retired tile arriving (again) on tiles.ready.v1 is never read nor scored (Triton is down)
    assert again.on_tile(tile(missing_uri(tmp_path))) == []
    assert [p.tile_id for p in again.shadows.load().pairs] == [other]


def test_a_candidates_leakage_warning_travels_with_its_decision():
    from services.gatekeeper.core.machine import candidate_warnings

    c = ModelCandidate.create(**{**candidate("3").model_dump(exclude={"event_id", "occurred_at", "producer",
                                                                      "type", "schema_version", "trace_id"}),
                                 "producer": "t", "leakage": {
        "split": "test", "n": 40, "cnn_accuracy": 0.9, "location_accuracy": 0.9, "margin": 0.05,
        "warning": "possible shortcut: a location-only classifier scores 90.0%"}})
    assert candidate_warnings(c) == ("possible shortcut: a location-only classifier scores 90.0%",)
    assert candidate_warnings(candidate("4")) == ()


async def test_a_persons_label_wins_over_the_automatic_one_and_a_redelivery_changes_nothing(tmp_path):
    from datetime import UTC, datetime

    from emberwatch.contracts.events import LabelFeedback, TileRelabelled
    from services.gatekeeper.shadow_state import Pair

    other = "cd" * 32
    gk = Gatekeeper(settings(tmp_path))
    gk.shadows.save(Shadow(model_name="m", candidate_version="2", champion_version="1", run_id="r",
                           pairs=[Pair(TILE, 1, 0.2, 0.3, "live"), Pair(other, 0, 0.7, 0.8, "test")]))
    handlers = Handlers(Published(), gk)

    def feedback(tile_id: str, label: str, hour: int) -> LabelFeedback:
        return LabelFeedback.create(producer="console", tile_id=tile_id, label=label, labelled_by="console:ana",
                                    occurred_at=datetime(2026, 12, 3, hour, tzinfo=UTC))

    first = feedback(TILE, "nowildfire", 10)
    await handlers.on_feedback(first)
    assert [p.label for p in gk.shadows.load().pairs] == [0, 0]  # counted with the person's label
    # put the automatic label back, to see that nothing below changes it
    gk.shadows.save(gk.shadows.load().relabelled(TILE, 1))
    await handlers.on_feedback(first)  # redelivered: nothing changes
    await handlers.on_feedback(feedback(TILE, "wildfire", 9))  # older than the label held: ignored
    assert [p.label for p in gk.shadows.load().pairs] == [1, 0]
    await handlers.on_relabel(TileRelabelled.create(
        producer="tiler", tile_id=other, action="retire", previous_label="nowildfire", fire_key="later",
        matched_fire_key="f", distance_km=1.0, reason="a later fire"))
    await handlers.on_feedback(feedback(other, "wildfire", 11))
    again = Gatekeeper(settings(tmp_path))  # durable
    assert again.corrections.label(TILE, "wildfire") == "nowildfire"
    assert not again.corrections.retired(other)  # a person looked: scored again, with their label
    assert again.corrections.label(other, "nowildfire") == "wildfire"
