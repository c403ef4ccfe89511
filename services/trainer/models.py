"""The trainer's own value types (not events: those live in emberwatch.contracts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TileRecord:
    """A labelled tile the trainer knows about (one row of the durable tile index)."""

    tile_id: str
    label: str
    split: str
    uri: str
    seq: int = 0
    fire_key: str = ""
    lat: float | None = None
    lon: float | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    product: str = "mapbox"  # the imagery product: the model line that learns from the tile
    dnbr: float | None = None  # the physics the tiler recorded with a Sentinel-2 fire tile (TileReady)
    hot_pixels: int | None = None
    visible: bool | None = None  # False: a fire tile showing neither burn nor heat

    def lineage(self) -> dict[str, Any]:
        row: dict[str, Any] = {"tile_id": self.tile_id, "label": self.label, "split": self.split}
        if self.topic is not None:
            row.update(topic=self.topic, partition=self.partition, offset=self.offset)
        return row


@dataclass
class DataCheck:
    """Whether a dataset may be trained on, and why not."""

    counts: dict[str, dict[str, int]]
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    balance: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class HeadResult:
    """The best head of a search, its history and the search's trials."""

    model: Any
    units: int
    learning_rate: float
    epochs_run: int
    history: dict[str, list[float]]
    trials: list[dict[str, Any]]
    temperature: float = 1.0  # fitted on the validation split, already folded into the model

    @property
    def arrays(self) -> dict[str, Any]:
        from emberwatch.ml.head import head_arrays

        return head_arrays(self.model)


@dataclass
class TrainingBundle:
    """Everything one training produced, ready to be logged to MLflow in one go."""

    training_key: str
    dataset_digest: str
    backbone_id: str
    reason: str
    params: dict[str, Any]
    epoch_metrics: dict[str, list[float]]
    trial_metrics: dict[str, list[float]]
    summary_metrics: dict[str, float]
    validation_metrics: dict[str, float]
    counts: dict[str, dict[str, int]]
    artifacts_dir: Path
    head_model: Any
    signature_example: Any
    full_model: Any = None
    leakage: dict[str, Any] | None = None  # the LeakageCheck fields of the candidate event


@dataclass(frozen=True)
class RegisteredCandidate:
    model_name: str
    version: str
    run_id: str
    artifact_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    reused: bool = False
    leakage: dict[str, Any] | None = None


@dataclass
class TrainingOutcome:
    """What a training attempt came to: trained (with a candidate) or skipped (and why)."""

    status: str  # "trained" | "skipped"
    reason: str
    product: str = "mapbox"  # the model line this training was for
    candidate: RegisteredCandidate | None = None
    bundle: TrainingBundle | None = None
    check: DataCheck | None = None
    dataset_digest: str = ""
    seq: int = 0
    embedded_new: int = 0
    embedding_cache_hits: int = 0
    unreadable: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
