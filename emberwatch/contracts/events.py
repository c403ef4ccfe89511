"""The six event types. Field names are the contract: add fields, never rename.

See docs/architecture.md#event-contracts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.topics import Topic

Label = Literal["wildfire", "nowildfire"]
Split = Literal["train", "val", "test"]


class _Part(BaseModel):
    """A value nested in an event."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class FireObserved(Envelope):
    """A fire seen in a CWFIS snapshot that is new, changed, or out since the last snapshot."""

    TYPE: ClassVar[str] = "fires.observed"
    TOPIC: ClassVar[str] = Topic.FIRES_OBSERVED

    fire_key: str = Field(description="Stable across polls: national fire id, else agency + name.")
    source: Literal["cwfis-csv", "cwfif-wfs"]
    agency: str
    name: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    start_date: datetime | None = None
    hectares: float | None = Field(None, ge=0)
    stage_of_control: str | None = None
    response_type: str | None = None
    change: Literal["new", "updated", "out"]
    snapshot_at: datetime

    def key(self) -> str:
        return self.fire_key

    def id_parts(self) -> tuple[Any, ...]:
        return (
            self.source, self.fire_key, self.change, self.snapshot_at.isoformat(),
            self.lat, self.lon, self.hectares, self.stage_of_control,
        )


class TileReady(Envelope):
    """An image stored in the tile store, labelled and assigned to a split."""

    TYPE: ClassVar[str] = "tiles.ready"
    TOPIC: ClassVar[str] = Topic.TILES_READY

    tile_id: str = Field(description="sha256 of the image bytes.", pattern=r"^[0-9a-f]{64}$")
    uri: str = Field(description="Where the image lives in the tile store.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    zoom: int = Field(ge=0, le=22)
    size_px: int = Field(gt=0)
    label: Label
    split: Split
    fire_key: str = Field(description="The fire (positives) or the fire it was matched to.")
    provider: str = Field(description="Imagery provider and mode, e.g. mapbox-static.")

    def key(self) -> str:
        return self.tile_id

    def id_parts(self) -> tuple[Any, ...]:
        return (self.tile_id, self.label, self.fire_key)


class TrainingRequest(Envelope):
    """A command: train now."""

    TYPE: ClassVar[str] = "training.requests"
    TOPIC: ClassVar[str] = Topic.TRAINING_REQUESTS

    reason: str
    requested_by: str

    def key(self) -> str:
        return "trainer"


class SplitCounts(_Part):
    """Counts of examples per label in one split."""

    wildfire: int = Field(0, ge=0)
    nowildfire: int = Field(0, ge=0)


class ModelCandidate(Envelope):
    """A newly trained model version registered in MLflow with the alias ``challenger``."""

    TYPE: ClassVar[str] = "models.candidates"
    TOPIC: ClassVar[str] = Topic.MODELS_CANDIDATES

    model_name: str
    version: str
    run_id: str
    artifact_uri: str
    dataset_digest: str
    counts: dict[Split, SplitCounts]
    metrics: dict[str, float] = Field(description="Validation metrics, e.g. val_accuracy.")
    backbone_id: str | None = Field(None, description="The frozen backbone the model stands on.")
    backbone_weights: str | None = Field(
        None, description='What the backbone was initialised from: "imagenet", "file:<name>" or "random(seed=N)".')

    def key(self) -> str:
        return f"{self.model_name}:{self.version}"

    def id_parts(self) -> tuple[Any, ...]:
        return (self.model_name, self.version, self.run_id)


class MetricDelta(_Part):
    """Challenger minus champion for one metric, with a confidence interval."""

    metric: str
    champion: float | None = None
    challenger: float
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = 0.95


class Evidence(_Part):
    """The numbers behind a decision."""

    n: int = Field(0, ge=0, description="Paired samples scored by both models.")
    n_wildfire: int = Field(0, ge=0)
    both_correct: int = 0
    champion_only_correct: int = 0
    challenger_only_correct: int = 0
    both_wrong: int = 0
    p_value: float | None = None
    deltas: list[MetricDelta] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)


class ModelDecision(Envelope):
    """The gatekeeper's verdict on a candidate."""

    TYPE: ClassVar[str] = "models.decisions"
    TOPIC: ClassVar[str] = Topic.MODELS_DECISIONS

    model_name: str
    candidate_version: str
    champion_version: str | None
    decision: Literal["promoted", "rejected", "rolled_back"]
    evidence: Evidence = Field(default_factory=Evidence)
    reason: str
    run_id: str | None = None
    basis: Literal["gate", "floor", "validation", "inconclusive", "superseded", "operator"] | None = Field(
        None, description="What decided: the shadow gate on paired evidence, the first model's floor, "
        "infra validation, a shadow that stayed inconclusive, a newer candidate, or an operator.")

    def key(self) -> str:
        return f"{self.model_name}:{self.candidate_version}"

    def id_parts(self) -> tuple[Any, ...] | None:
        if self.decision == "rolled_back":
            return None  # an operator's act: each rollback is its own event
        return (self.model_name, self.candidate_version, self.decision)


class PipelineAlert(Envelope):
    """An operational alert: feed down, rate-limited, DLQ growth..."""

    TYPE: ClassVar[str] = "pipeline.alerts"
    TOPIC: ClassVar[str] = Topic.PIPELINE_ALERTS

    alert: str = Field(description="Short machine name, e.g. feed_malformed.")
    severity: Literal["info", "warning", "critical"] = "warning"
    component: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return f"{self.component}:{self.alert}"


EVENT_TYPES: tuple[type[Envelope], ...] = (
    FireObserved, TileReady, TrainingRequest, ModelCandidate, ModelDecision, PipelineAlert,
)

_BY_TOPIC = {cls.TOPIC: cls for cls in EVENT_TYPES}


def event_for_topic(topic: str) -> type[Envelope]:
    """The event model carried by ``topic``."""
    try:
        return _BY_TOPIC[topic]
    except KeyError:
        raise KeyError(f"no event type for topic {topic!r}") from None
