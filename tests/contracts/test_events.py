"""Pure tests of the event contracts: ids, round trips, validation, the AsyncAPI document."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from emberwatch.contracts import (
    ALL_TOPICS,
    EVENT_TYPES,
    Detection,
    FireObserved,
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    TileReady,
    TrainingRequest,
    dlq_topic,
    event_for_topic,
)
from emberwatch.contracts.asyncapi import asyncapi_document
from tests.contracts.samples import sample_events

SNAP = datetime(2026, 7, 1, 12, tzinfo=UTC)


def fire(**over):
    fields = dict(fire_key="bc:G80123", source="cwfis-csv", agency="bc", name="G80123", lat=50.1,
                  lon=-120.3, start_date=None, hectares=12.5, stage_of_control="OC",
                  response_type="FUL", change="new", snapshot_at=SNAP)
    fields.update(over)
    return FireObserved.create(producer="test", **fields)


def test_fact_ids_are_deterministic_and_depend_on_the_fact():
    assert fire().event_id == fire().event_id
    assert fire().event_id != fire(hectares=13.0).event_id
    assert fire().event_id != fire(change="updated").event_id


def test_commands_get_fresh_ids():
    a = TrainingRequest.create(producer="cli", reason="manual", requested_by="me")
    b = TrainingRequest.create(producer="cli", reason="manual", requested_by="me")
    assert a.event_id != b.event_id


def test_every_event_round_trips_through_json():
    events = sample_events()
    assert {type(e) for e in events} == set(EVENT_TYPES)
    for event in events:
        again = type(event).from_bytes(event.to_bytes())
        assert again == event
        assert event_for_topic(event.TOPIC) is type(event)
        assert event.key()


def test_naive_times_are_taken_as_utc():
    e = fire(snapshot_at=datetime(2026, 7, 1, 12), occurred_at=datetime(2026, 7, 1, 12))
    assert e.occurred_at.tzinfo is not None
    assert e.occurred_at == datetime(2026, 7, 1, 12, tzinfo=UTC)


def test_an_occurrence_in_another_zone_is_kept_as_the_same_instant_in_utc():
    body = fire().model_dump(mode="json") | {"occurred_at": "2026-07-01T14:00:00+02:00"}
    e = FireObserved.model_validate(body)
    assert e.occurred_at == datetime(2026, 7, 1, 12, tzinfo=UTC) and e.occurred_at.utcoffset().total_seconds() == 0
    assert b'"occurred_at":"2026-07-01T12:00:00Z"' in e.to_bytes()


def test_a_body_leaves_out_what_is_at_its_default_and_parses_back_whole():
    tile = sample_events()[1]
    assert isinstance(tile, TileReady) and tile.scene_id is None and tile.product == "mapbox"
    body = tile.to_bytes()
    assert b"scene_id" not in body and b"product" not in body and b"null" not in body
    assert TileReady.from_bytes(body) == tile
    decision = next(e for e in sample_events() if isinstance(e, ModelDecision))
    first = decision.model_copy(update={"champion_version": None})  # the first model: no champion before it
    assert b'"champion_version":null' in first.to_bytes()  # required, so written even when empty
    assert ModelDecision.from_bytes(first.to_bytes()) == first


def test_an_event_class_must_declare_its_type_as_a_literal():
    from typing import ClassVar, Literal

    from emberwatch.contracts.envelope import Envelope

    with pytest.raises(TypeError, match="Literal"):
        type("Stray", (Envelope,), {"__annotations__": {"TYPE": ClassVar[str]}, "TYPE": "stray.events"})

    class Declared(Envelope):
        TYPE: ClassVar[str] = "declared.events"
        type: Literal["declared.events"]

    assert Declared.model_fields["type"].annotation == Literal["declared.events"]


def test_invalid_events_are_rejected_with_a_reason():
    with pytest.raises(ValidationError, match="lat"):
        fire(lat=123.0)
    good = sample_events()[1]
    assert isinstance(good, TileReady)
    bad = good.model_dump(mode="json") | {"tile_id": "not-a-sha"}
    with pytest.raises(ValidationError, match="tile_id"):
        TileReady.model_validate(bad)
    with pytest.raises(ValidationError, match="type"):
        TileReady.model_validate(good.model_dump(mode="json") | {"type": "fires.observed"})


def test_topics_are_exactly_the_design_names():
    assert set(ALL_TOPICS) == {
        "fires.observed.v1", "tiles.ready.v1", "tiles.relabelled.v1", "training.requests.v1",
        "models.candidates.v1", "models.decisions.v1", "pipeline.alerts.v1", "models.commands.v1",
        "labels.feedback.v1", "detections.v1",
    }
    assert dlq_topic("tiles.ready.v1") == "tiles.ready.v1.dlq"


def test_asyncapi_document_describes_every_topic_and_schema():
    doc = asyncapi_document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert addresses == set(ALL_TOPICS)
    schemas = doc["components"]["schemas"]
    for model in EVENT_TYPES:
        props = schemas[model.__name__]["properties"]
        assert {"event_id", "type", "occurred_at", "producer", "trace_id"} <= set(props)
    assert "fire_key" in schemas["FireObserved"]["properties"]
    command_fields = set(schemas["ModelCommand"]["properties"])
    assert {"command", "model_name", "version", "requested_by", "reason"} <= command_fields
    assert {"requested_by", "command_id", "refused"} <= set(schemas["ModelDecision"]["properties"])
    commands = next(ch for ch in doc["channels"].values() if ch["address"] == "models.commands.v1")
    assert "models.commands.v1.dlq" in commands["description"] and "model name" in commands["description"]


def command(**over) -> ModelCommand:
    fields = dict(command="rollback", model_name="emberwatch-resnet50", requested_by="discord:ops#1")
    fields.update(over)
    return ModelCommand.create(producer="test", **fields)


def test_a_command_round_trips_is_keyed_by_model_and_validates_its_fields():
    c = command(command="promote", version="7", reason="hotfix")
    again = ModelCommand.from_bytes(c.to_bytes())
    assert again == c and (again.command, again.version, again.requested_by) == ("promote", "7", "discord:ops#1")
    assert c.key() == "emberwatch-resnet50" and c.TOPIC == "models.commands.v1"
    assert command().event_id != command().event_id  # a command, not a fact: a fresh id each time
    assert command().version is None and command().reason == "" and command().expires_at is None
    for kind in ("approve", "reject"):
        assert command(command=kind).version is None  # the challenger in shadow, whichever it is
    with pytest.raises(ValidationError, match="needs the version"):
        command(command="promote")
    with pytest.raises(ValidationError, match="command"):
        command(command="delete")
    with pytest.raises(ValidationError, match="version"):
        command(command="promote", version="latest")
    with pytest.raises(ValidationError, match="requested_by"):
        ModelCommand.model_validate(c.model_dump(mode="json") | {"requested_by": None})


def test_decisions_say_who_asked_and_which_command_they_answer():
    base = dict(producer="gatekeeper", model_name="emberwatch-resnet50", candidate_version="7",
                champion_version="6", reason="gate")
    automatic = ModelDecision.create(decision="promoted", **base)
    assert (automatic.requested_by, automatic.command_id, automatic.refused) == (None, None, False)
    assert automatic.event_id == ModelDecision.create(decision="promoted", **base).event_id  # a fact
    c = command(command="promote", version="7")
    answer = ModelDecision.create(decision="promoted", requested_by=c.requested_by, command_id=c.event_id,
                                  **base)
    again = ModelDecision.from_bytes(answer.to_bytes())
    assert again == answer and (again.requested_by, again.command_id) == ("discord:ops#1", c.event_id)
    # an answer is an operator's act: its own event, never the same id as the gate's decision
    assert answer.event_id != automatic.event_id
    refused = ModelDecision.create(decision="rejected", requested_by="cli:me", command_id=c.event_id,
                                   refused=True, **base | {"reason": "promote refused: no version 7"})
    assert ModelDecision.from_bytes(refused.to_bytes()).refused is True
    # an event written before these fields existed still reads (fields were only added)
    old = {k: v for k, v in automatic.model_dump(mode="json").items()
           if k not in ("requested_by", "command_id", "refused")}
    assert ModelDecision.model_validate(old) == automatic


def test_feedback_is_keyed_by_tile_has_a_fresh_id_and_validates_its_label():
    tile = "a" * 64
    f = LabelFeedback.create(producer="test", tile_id=tile, label="wildfire", labelled_by="console:ana",
                             note="smoke plume", previous_label="nowildfire")
    assert LabelFeedback.from_bytes(f.to_bytes()) == f and f.key() == tile and f.TOPIC == "labels.feedback.v1"
    again = LabelFeedback.create(producer="test", tile_id=tile, label="wildfire", labelled_by="console:ana")
    assert again.event_id != f.event_id  # a person's act, not a fact
    with pytest.raises(ValidationError, match="label"):
        LabelFeedback.create(producer="test", tile_id=tile, label="smoke", labelled_by="console:ana")
    with pytest.raises(ValidationError, match="tile_id"):
        LabelFeedback.create(producer="test", tile_id="nope", label="wildfire", labelled_by="console:ana")


def test_a_detection_is_a_fact_of_one_tile_and_one_champion_version():
    tile = "ab" * 32
    fields = dict(tile_id=tile, uri=f"file:///t/ab/{tile}.jpg", lat=50.0, lon=-120.0, label="nowildfire",
                  model_name="m", model_version="3", wildfire_probability=0.7, threshold=0.5)
    a = Detection.create(producer="gatekeeper", **fields)
    assert a.key() == tile and a.TOPIC == "detections.v1"
    assert Detection.create(producer="gatekeeper", **fields).event_id == a.event_id  # a replay: same id
    assert Detection.create(producer="gatekeeper", **{**fields, "model_version": "4"}).event_id != a.event_id
    with pytest.raises(ValidationError, match="wildfire_probability"):
        Detection.create(producer="gatekeeper", **{**fields, "wildfire_probability": 1.5})


def test_a_leakage_check_with_the_dnbr_rule_round_trips_and_older_ones_parse_without_it():
    base = {"split": "test", "n": 40, "cnn_accuracy": 0.9, "location_accuracy": None, "statistics_accuracy": 0.6,
            "margin": 0.05, "warning": None}
    rule = {"physics_rule_accuracy": 0.95, "physics_rule_recall": 0.9, "physics_rule_specificity": 1.0,
            "physics_rule_tiles_with_indices": 20}

    def candidate(leakage: dict) -> ModelCandidate:
        return ModelCandidate.create(producer="test", model_name="emberwatch-resnet50-sentinel2-swir", version="1",
                                     run_id="abc", artifact_uri="runs:/abc/triton", product="sentinel2-swir",
                                     dataset_digest="d1", counts={"test": {"wildfire": 20, "nowildfire": 20}},
                                     metrics={"val_accuracy": 0.9}, leakage=leakage)

    with_rule = candidate(base | rule)
    again = ModelCandidate.from_bytes(with_rule.to_bytes())
    assert again == with_rule and again.leakage.physics_rule_accuracy == 0.95
    assert again.leakage.physics_rule_tiles_with_indices == 20
    older = ModelCandidate.from_bytes(candidate(base).to_bytes())
    assert older.leakage.physics_rule_accuracy is None and older.leakage.physics_rule_recall is None
    with pytest.raises(ValidationError):
        candidate(base | rule | {"physics_rule_accuracy": 1.5})


@pytest.mark.parametrize("product", ["<script>alert(1)</script>", "mapbox\nsentinel2", "../../etc", "", "x" * 65,
                                     "Sentinel2-SWIR"])
def test_a_hostile_product_name_is_refused_by_every_event_that_carries_one(product):
    """The product names model lines, MLflow models and Triton models: only the plain shape passes."""
    carriers = [e for e in sample_events() if "product" in type(e).model_fields]
    assert {type(e).__name__ for e in carriers} >= {"TileReady", "ModelCandidate", "ModelDecision", "Detection"}
    for event in carriers:
        body = event.model_dump(mode="json") | {"product": product}
        with pytest.raises(ValidationError, match="product"):
            type(event).model_validate(body)
