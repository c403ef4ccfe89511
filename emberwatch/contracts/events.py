"""The event types. Field names are the contract: add fields, never rename.

See docs/architecture.md#event-contracts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.products import PRODUCT_PATTERN
from emberwatch.contracts.tile_uri import check_tile_uri
from emberwatch.contracts.topics import Topic

Label = Literal["wildfire", "nowildfire"]
Split = Literal["train", "val", "test"]
CommandKind = Literal["promote", "rollback", "approve", "reject"]


class _Part(BaseModel):
    """A value nested in an event."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class FireObserved(Envelope):
    """A fire seen in a CWFIS snapshot that is new, changed, or out since the last snapshot."""

    TYPE: ClassVar[str] = "fires.observed"
    type: Literal["fires.observed"] = Field(description="Event type.")
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
    type: Literal["tiles.ready"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.TILES_READY

    tile_id: str = Field(description="sha256 of the image bytes.", pattern=r"^[0-9a-f]{64}$")
    uri: str = Field(
        description="Where the image lives in the tile store: file:///<root>/<id[:2]>/<id>.<ext> or "
                    "s3://<bucket>/<prefix>/<id[:2]>/<id>.<ext> (emberwatch/contracts/tile_uri.py); "
                    "readers accept it only inside their configured store.", max_length=2048)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    zoom: int = Field(ge=0, le=22)
    size_px: int = Field(gt=0)
    label: Label
    split: Split
    fire_key: str = Field(description="The fire (positives) or the fire it was matched to.")
    provider: str = Field(description="Imagery provider and mode, e.g. mapbox-static.")
    fire_observed_at: datetime | None = Field(
        None, description="When the fire was reported: the publish time (wall clock) of its `new` "
                          "FireObserved event. The fire-to-prediction latency counts from here. Absent "
                          "in older events.")
    # Dated imagery (Sentinel-2): all optional, so Mapbox tiles and older events parse unchanged.
    product: str = Field("mapbox", pattern=PRODUCT_PATTERN,
                         description="The imagery product a model learns from: mapbox, sentinel2-swir, "
                                     "sentinel2-true-colour.")
    acquired_at: datetime | None = Field(None, description="When the scene was sensed (undated mosaics: absent).")
    catalogued_at: datetime | None = Field(None, description="When the STAC API catalogued the scene.")
    scene_id: str | None = Field(None, max_length=200, description="The STAC item id of the scene.")
    cloud_fraction: float | None = Field(None, ge=0, le=1,
                                         description="Cloud, shadow and cirrus share of the tile (SCL).")
    nbr: float | None = Field(None, ge=-1, le=1, description="Mean Normalised Burn Ratio (B8A, B12) of the tile.")
    dnbr: float | None = Field(None, ge=-2, le=2, description="NBR of the pre-fire scene minus this tile's.")
    hot_pixels: int | None = Field(None, ge=0, description="Pixels with an active flame's SWIR signature.")
    visible: bool | None = Field(None, description="False for a fire tile showing neither burn (dNBR >= 0.1) "
                                                    "nor heat.")

    def check(self) -> None:
        """The URI has a tile store's shape and names this tile (no ``..``, no host, no query)."""
        check_tile_uri(self.uri, self.tile_id)  # TileUriRefused is a ValueError: a validation error

    def key(self) -> str:
        return self.tile_id

    def id_parts(self) -> tuple[Any, ...]:
        return (self.tile_id, self.label, self.fire_key)


class TileRelabelled(Envelope):
    """A fire-free tile whose label no longer holds: a fire reported later lies near it.

    ``retire``: the tile is no longer used for training or evaluation (the fire started after the
    image was taken, or lies near but outside it, so the image cannot say). ``relabel``: the fire
    lies inside the tile's footprint and had started when the image was taken: it is now a
    ``wildfire`` tile."""

    TYPE: ClassVar[str] = "tiles.relabelled"
    type: Literal["tiles.relabelled"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.TILES_RELABELLED

    tile_id: str = Field(description="The tile whose label changes.", pattern=r"^[0-9a-f]{64}$")
    action: Literal["retire", "relabel"]
    previous_label: Label
    label: Label | None = Field(None, description="The new label (relabel only).")
    fire_key: str = Field(description="The later fire that invalidates the tile's label.")
    matched_fire_key: str = Field(description="The fire the tile was matched to as a negative.")
    distance_km: float = Field(ge=0, description="From the tile's centre to the later fire.")
    reason: str

    @model_validator(mode="after")
    def _label_matches_action(self) -> TileRelabelled:
        if self.action == "relabel" and self.label is None:
            raise ValueError("a relabel needs the new label")
        if self.action == "retire" and self.label is not None:
            raise ValueError("a retired tile has no new label")
        return self

    def key(self) -> str:
        return self.tile_id

    def id_parts(self) -> tuple[Any, ...]:
        return (self.tile_id, self.action, self.fire_key)


class TrainingRequest(Envelope):
    """A command: train now."""

    TYPE: ClassVar[str] = "training.requests"
    type: Literal["training.requests"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.TRAINING_REQUESTS

    reason: str
    requested_by: str

    def key(self) -> str:
        return "trainer"


class SplitCounts(_Part):
    """Counts of examples per label in one split."""

    wildfire: int = Field(0, ge=0)
    nowildfire: int = Field(0, ge=0)


class LeakageCheck(_Part):
    """Shortcut baselines trained and scored on the candidate's own splits, beside the CNN.

    A location-only classifier (latitude, longitude → label) and a classifier on simple hand
    statistics of the image (colour means and spreads, dark/grey/orange/... shares, edge density).
    When either comes within ``margin`` of the CNN's accuracy, the CNN may have learned geography
    or a colour cue rather than fire, and ``warning`` says so. On a line whose tiles carry Sentinel-2
    indices, the dNBR rule is scored on the same tiles too, and ``warning`` says when the CNN does not
    beat it."""

    split: str = Field(description="Where the accuracies were measured (test, else val).")
    n: int = Field(ge=0, description="Tiles scored on that split.")
    cnn_accuracy: float
    location_accuracy: float | None = None
    statistics_accuracy: float | None = None
    margin: float = Field(description="A baseline this close to the CNN (or above it) warns.")
    warning: str | None = Field(None, description="Set when a baseline is within the margin, or when the CNN "
                                                  "does not beat the dNBR rule.")
    # The dNBR rule (Sentinel-2 lines): fire when dNBR >= 0.1 or a hot pixel; absent on lines without indices.
    physics_rule_accuracy: float | None = Field(None, ge=0, le=1,
                                                description="The dNBR rule's accuracy on the same tiles.")
    physics_rule_recall: float | None = Field(None, ge=0, le=1, description="The rule's recall of wildfire tiles.")
    physics_rule_specificity: float | None = Field(None, ge=0, le=1,
                                                   description="The rule's specificity on fire-free tiles.")
    physics_rule_tiles_with_indices: int | None = Field(
        None, ge=0, description="Tiles of the split carrying dNBR or hot pixels; the rest are scored as "
                                "showing neither.")


class ModelCandidate(Envelope):
    """A newly trained model version registered in MLflow with the alias ``challenger``."""

    TYPE: ClassVar[str] = "models.candidates"
    type: Literal["models.candidates"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.MODELS_CANDIDATES

    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                            description="The registered model (letters, digits, . _ -).")
    version: str = Field(pattern=r"^[0-9]{1,18}$", description="The registered version: digits only.")
    run_id: str = Field(max_length=128, description="The MLflow run; must match MLflow's record of the version.")
    artifact_uri: str = Field(
        max_length=2048, description="runs:/<run_id>/triton; the gatekeeper checks it against MLflow's record "
                                     "and downloads from MLflow's record, never from this field.")
    product: str = Field("mapbox", pattern=PRODUCT_PATTERN,
                         description="The imagery product the model learned from (its line); older events: mapbox.")
    dataset_digest: str
    counts: dict[Split, SplitCounts]
    metrics: dict[str, float] = Field(description="Validation metrics, e.g. val_accuracy.")
    backbone_id: str | None = Field(None, description="The frozen backbone the model stands on.")
    backbone_weights: str | None = Field(
        None, description='What the backbone was initialised from: "imagenet", "file:<name>" or "random(seed=N)".')
    leakage: LeakageCheck | None = Field(
        None, description="The shortcut baselines beside the CNN; a warning when one comes close.")

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
    n_fire_free: int = Field(0, ge=0)
    both_correct: int = 0
    champion_only_correct: int = 0
    challenger_only_correct: int = 0
    both_wrong: int = 0
    p_value: float | None = Field(
        None, description="Exact one-sided McNemar p (challenger better) on the primary metric's class.")
    deltas: list[MetricDelta] = Field(
        default_factory=list, description="Per metric (wildfire_recall, specificity): both models' values "
        "and the challenger-minus-champion difference with its bounds at the look's confidence.")
    rule: str | None = Field(
        None, description="The rule that decided: superior, worse, inconclusive, minimum, sequential, floor.")
    method: str | None = Field(None, description="How the intervals and the test were computed.")
    alpha: float | None = Field(None, description="The share of the false-promotion rate this look used.")
    thresholds: dict[str, float | str] = Field(default_factory=dict)


class ModelDecision(Envelope):
    """The gatekeeper's verdict on a candidate."""

    TYPE: ClassVar[str] = "models.decisions"
    type: Literal["models.decisions"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.MODELS_DECISIONS

    model_name: str
    product: str = Field("mapbox", pattern=PRODUCT_PATTERN, description="The imagery product of the model's line.")
    candidate_version: str
    champion_version: str | None
    decision: Literal["promoted", "rejected", "rolled_back"]
    evidence: Evidence = Field(default_factory=Evidence)
    reason: str
    run_id: str | None = None
    basis: Literal["gate", "floor", "validation", "inconclusive", "superseded", "operator"] | None = Field(
        None, description="What decided: the shadow gate on paired evidence, the first model's floor, "
        "infra validation, a shadow that stayed inconclusive, a newer candidate, or an operator.")
    requested_by: str | None = Field(
        None, description="Who asked, when an operator's command caused the decision (e.g. cli:alice, "
                          "discord:bob); None for the gatekeeper's own decisions.")
    command_id: str | None = Field(
        None, description="The event_id of the models.commands.v1 command this decision answers.")
    issuer: str | None = Field(
        None, description="Whose key signed the command behind the decision (console, discord-bot, "
                          "operator:alice): the service or person that vouches for requested_by.")
    refused: bool = Field(
        False, description="True when the decision answers a command that could not be carried out "
                           "(decision rejected): nothing changed, the reason says why.")
    warnings: list[str] = Field(
        default_factory=list, description="What a person should know about the candidate, carried from its "
        "event: e.g. the leakage check's warning that a shortcut baseline comes close to the CNN.")

    def key(self) -> str:
        return f"{self.model_name}:{self.candidate_version}"

    def id_parts(self) -> tuple[Any, ...] | None:
        if self.decision == "rolled_back" or self.command_id is not None:
            return None  # an operator's act: each answer to a command is its own event
        return (self.model_name, self.candidate_version, self.decision)


class ModelCommand(Envelope):
    """An operator's command on the served model: promote a version by hand, roll back to the
    previous champion, approve (promote now) or reject the challenger in shadow. The gatekeeper alone
    carries it out and answers with the models.decisions.v1 event whose command_id is this event's id
    (a command it cannot carry out is answered too: decision rejected, refused true, and why)."""

    TYPE: ClassVar[str] = "models.commands"
    type: Literal["models.commands"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.MODELS_COMMANDS
    KEY_DOC: ClassVar[str] = "the model name (one model's commands stay in order)"

    command: CommandKind
    model_name: str = Field(description="The registered model the command is about.")
    version: str | None = Field(
        None, pattern=r"^[0-9]+$",
        description="promote: the version to serve (required); approve/reject: the challenger in shadow "
                    "(default: whichever it is); rollback: the champion expected to be rolled back "
                    "(default: the current one).")
    requested_by: str = Field(min_length=1, max_length=200,
                              description="Who asks, e.g. cli:alice or discord:bob (vouched for by the issuer).")
    reason: str = Field("", max_length=2000, description="Why, in the operator's words (kept with the decision).")
    expires_at: datetime | None = Field(
        None, description="The gatekeeper refuses the command after this time (UTC): its caller has "
                          "stopped waiting for the answer. Required by the gatekeeper.")
    issuer: str | None = Field(
        None, max_length=80, pattern=r"^(operator:[A-Za-z0-9][A-Za-z0-9._-]{0,63}|[a-z][a-z0-9-]{0,39})$",
        description="Whose Ed25519 key signed the command: a service that vouches for requested_by "
                    "(console, discord-bot) or a person (operator:alice). Optional in the schema so older "
                    "events parse; the gatekeeper refuses a command without it (docs/security.md).")
    signature: str | None = Field(
        None, pattern=r"^[A-Za-z0-9+/]{86}==$",
        description="Base64 Ed25519 signature by the issuer's key over the command's canonical content "
                    "(emberwatch/security/command_signing.py).")

    @field_validator("expires_at")
    @classmethod
    def _expiry_in_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _promote_names_a_version(self) -> ModelCommand:
        if self.command == "promote" and self.version is None:
            raise ValueError("a promote command needs the version to promote")
        return self

    def key(self) -> str:
        return self.model_name


class LabelFeedback(Envelope):
    """A person's label on one tile ("this is a fire" / "this is not a fire"), from the operator
    console or the Discord bot. A human label wins over the automatic one: the trainer trains on it
    and the gatekeeper scores on it. The latest feedback on a tile (by ``occurred_at``) holds; the
    same event delivered twice (same ``event_id``) counts once."""

    TYPE: ClassVar[str] = "labels.feedback"
    type: Literal["labels.feedback"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.LABELS_FEEDBACK
    KEY_DOC: ClassVar[str] = "the tile id (one tile's feedback stays in order)"

    tile_id: str = Field(description="The tile labelled (sha256 of its image bytes).", pattern=r"^[0-9a-f]{64}$")
    label: Label = Field(description="What the person says the tile shows.")
    labelled_by: str = Field(min_length=1, description="Who, e.g. console:alice or discord:bob.")
    note: str = Field("", max_length=2000, description="Optional, in the person's words.")
    previous_label: Label | None = Field(
        None, description="The label the tile carried when the person looked (for the audit).")

    def key(self) -> str:
        return self.tile_id


class Detection(Envelope):
    """The champion called a live tile a wildfire: its probability reached the detection threshold.
    Published by the gatekeeper, which scores every live tile; the notifier posts it to Discord with
    "this is a fire" / "this is not a fire" buttons, so a person can confirm or correct it
    (labels.feedback.v1). A fact: the same tile scored by the same version has the same id, so a
    replayed or redelivered tile is posted once."""

    TYPE: ClassVar[str] = "detections"
    type: Literal["detections"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.DETECTIONS
    KEY_DOC: ClassVar[str] = "the tile id"

    tile_id: str = Field(description="The tile detected (sha256 of its image bytes).", pattern=r"^[0-9a-f]{64}$")
    uri: str = Field(description="Where the image is in the tile store.")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    fire_key: str | None = Field(None, description="The fire the tile was fetched for (its own, or the "
                                                   "fire a fire-free tile was matched to).")
    label: Label = Field(description="The tile's label when it was scored (a person's label wins).")
    model_name: str
    product: str = Field("mapbox", pattern=PRODUCT_PATTERN, description="The imagery product of the tile and model.")
    acquired_at: datetime | None = Field(None, description="When the tile's scene was sensed (the TileReady's "
                                                           "acquired_at; undated mosaics: absent).")
    model_version: str = Field(description="The champion that scored it.")
    wildfire_probability: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1, description="The probability at which a tile counts as a detection.")
    challenger_version: str | None = Field(None, description="The challenger in shadow, if any.")
    challenger_probability: float | None = Field(None, ge=0, le=1)

    def key(self) -> str:
        return self.tile_id

    def id_parts(self) -> tuple[Any, ...]:
        return (self.tile_id, self.model_name, self.model_version)


class PipelineAlert(Envelope):
    """An operational alert: feed down, rate-limited, DLQ growth..."""

    TYPE: ClassVar[str] = "pipeline.alerts"
    type: Literal["pipeline.alerts"] = Field(description="Event type.")
    TOPIC: ClassVar[str] = Topic.PIPELINE_ALERTS

    alert: str = Field(description="Short machine name, e.g. feed_malformed.")
    severity: Literal["info", "warning", "critical"] = "warning"
    component: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)

    def key(self) -> str:
        return f"{self.component}:{self.alert}"


EVENT_TYPES: tuple[type[Envelope], ...] = (
    FireObserved, TileReady, TileRelabelled, TrainingRequest, ModelCandidate, ModelDecision, PipelineAlert, ModelCommand,
    LabelFeedback, Detection,
)

_BY_TOPIC = {cls.TOPIC: cls for cls in EVENT_TYPES}


def event_for_topic(topic: str) -> type[Envelope]:
    """The event model carried by ``topic``."""
    try:
        return _BY_TOPIC[topic]
    except KeyError:
        raise KeyError(f"no event type for topic {topic!r}") from None
