"""One valid event of every type (used by contract and broker tests)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from emberwatch.contracts import (
    Detection,
    FireObserved,
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    PipelineAlert,
    TileReady,
    TileRelabelled,
    TrainingRequest,
)
from emberwatch.contracts.envelope import Envelope


def sample_events() -> list[Envelope]:
    snap = datetime(2026, 7, 1, 12, tzinfo=UTC)
    tile = hashlib.sha256(b"image").hexdigest()
    return [
        FireObserved.create(producer="test", fire_key="bc:G80123", source="cwfis-csv", agency="bc",
                            name="G80123", lat=50.1, lon=-120.3, start_date=snap, hectares=12.5,
                            stage_of_control="OC", response_type="FUL", change="new", snapshot_at=snap),
        TileReady.create(producer="test", tile_id=tile, uri=f"file:///tiles/{tile[:2]}/{tile}.jpg",
                         lat=50.1, lon=-120.3, zoom=15, size_px=350, label="wildfire", split="train",
                         fire_key="bc:G80123", provider="mapbox-static"),
        TileRelabelled.create(producer="test", tile_id=tile, action="retire", previous_label="nowildfire",
                              fire_key="bc:G80200", matched_fire_key="bc:G80123", distance_km=3.2,
                              reason="a fire reported later lies 3.2 km away"),
        TrainingRequest.create(producer="test", reason="manual", requested_by="ops"),
        ModelCandidate.create(producer="test", model_name="emberwatch-resnet50", version="3",
                              run_id="abc", artifact_uri="mlflow-artifacts:/1/abc/artifacts/model",
                              dataset_digest="d1", counts={"train": {"wildfire": 10, "nowildfire": 9}},
                              metrics={"val_accuracy": 0.9},
                              leakage={"split": "test", "n": 40, "cnn_accuracy": 0.9, "location_accuracy": 0.88,
                                       "statistics_accuracy": 0.6, "margin": 0.05,
                                       "warning": "location-only classifier 0.88 within 0.05 of the CNN 0.90"}),
        ModelDecision.create(producer="test", model_name="emberwatch-resnet50", candidate_version="3",
                             champion_version="2", decision="promoted",
                             evidence={"n": 400, "p_value": 0.01,
                                       "deltas": [{"metric": "recall_wildfire", "challenger": 0.93,
                                                   "champion": 0.9, "delta": 0.03, "ci_low": 0.01,
                                                   "ci_high": 0.05}]},
                             reason="better recall"),
        PipelineAlert.create(producer="test", alert="feed_malformed", component="ingestor",
                             message="HTML instead of CSV", severity="warning"),
        ModelCommand.create(producer="test", command="promote", model_name="emberwatch-resnet50",
                            version="3", requested_by="cli:ops", reason="hotfix",
                            expires_at=datetime(2026, 7, 1, 12, 1, tzinfo=UTC)),
        LabelFeedback.create(producer="test", tile_id=tile, label="wildfire", labelled_by="console:ops",
                             note="smoke column at the top edge", previous_label="nowildfire"),
        Detection.create(producer="test", tile_id=tile, uri=f"file:///tiles/{tile[:2]}/{tile}.jpg", lat=50.1,
                         lon=-120.3, fire_key="bc:G80123", label="wildfire", model_name="emberwatch-resnet50",
                         model_version="3", wildfire_probability=0.91, threshold=0.5,
                         challenger_version="4", challenger_probability=0.88),
    ]
