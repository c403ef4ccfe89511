"""What the gatekeeper wants done: the core returns these, adapters carry them out in order.

A ``Request`` (always last in a step's list) asks an adapter to find something out; the adapter
answers with the next input (``inputs``). The others change the world: an event to publish, a head
to load or drop, an alias to move, a record in MLflow, a metric, a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emberwatch.contracts.events import ModelCandidate, ModelCommand, TileReady
from services.gatekeeper.core.shadow import Pair, Shadow

CHAMPION, CHALLENGER = "champion", "challenger"  # the MLflow aliases


# --- the world -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Publish:
    event: object  # a ModelDecision, Detection or PipelineAlert


@dataclass(frozen=True)
class SetChallenger:
    """Triton's challenger role (None: no challenger)."""

    version: str | None


@dataclass(frozen=True)
class UnloadModel:
    """Unload and delete a head version (only when it serves no role, if ``unless_serving``)."""

    version: str
    unless_serving: bool = False


@dataclass(frozen=True)
class SwitchChampion:
    """Make a loaded head the champion (returns once the public model answers with it)."""

    version: str
    previous: str | None


@dataclass(frozen=True)
class RetireUnused:
    pass


@dataclass(frozen=True)
class SetAlias:
    alias: str
    version: str


@dataclass(frozen=True)
class ClearAlias:
    alias: str
    only_if: str


@dataclass(frozen=True)
class RecordToMlflow:
    """The evidence of a decision (or of infra validation) on the candidate's run."""

    run_id: str
    document: dict
    metrics: dict
    params: dict
    name: str
    tag: str | None = None  # gatekeeper.decision


@dataclass(frozen=True)
class Count:
    """A counter: ``metric`` is a name of ``metrics.COUNTERS``."""

    metric: str
    labels: tuple[str, ...] = ()
    by: float = 1


@dataclass(frozen=True)
class ObserveScores:
    """Model-quality figures of one version's scores on labelled tiles."""

    version: str
    labels: tuple[int, ...]
    wildfire: tuple[float, ...]
    source: str


@dataclass(frozen=True)
class SetReference:
    """A version's own test scores: the reference its live scores drift from."""

    version: str
    wildfire: tuple[float, ...]


@dataclass(frozen=True)
class ObservePairs:
    """New pairs of ``shadow``, for the per-version quality figures."""

    shadow: Shadow
    pairs: tuple[Pair, ...]


@dataclass(frozen=True)
class RecordLiveScore:
    """The champion scored this live tile (a replay of it is set aside)."""

    version: str
    tile_id: str
    wildfire: float


@dataclass(frozen=True)
class ObserveLatency:
    """Fire-to-prediction latency of a scored live tile."""

    tile: TileReady


@dataclass(frozen=True)
class RaiseAlert:
    """A pipeline alert (pipeline.alerts.v1); the adapter redacts its text."""

    alert: str
    severity: str
    message: str
    details: dict


@dataclass(frozen=True)
class Guarded:
    """Effects whose failure must not undo what came before them: a failure is logged as ``warning``."""

    effects: tuple
    warning: str
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Log:
    level: str  # debug, info, warning
    message: str
    extra: dict = field(default_factory=dict)


# --- requests: find something out, answer with the next input --------------------------------------
@dataclass(frozen=True)
class Request:
    pass


@dataclass(frozen=True)
class VerifyCandidate(Request):
    """Check the event against MLflow's record of its version (refused: to the DLQ)."""

    candidate: ModelCandidate


@dataclass(frozen=True)
class IntakeCandidate(Request):
    """Download, load and infra-validate the candidate, then score its test tiles."""

    candidate: ModelCandidate
    run_id: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ScorePair(Request):
    """Score a live tile with champion and challenger (unless either was fitted on it)."""

    tile: TileReady
    champion: str
    challenger: str


@dataclass(frozen=True)
class ScoreChampion(Request):
    """Score a live tile with the champion alone (monitoring: a failure is counted, not raised)."""

    tile: TileReady


@dataclass(frozen=True)
class PrepareManualPromotion(Request):
    """Download, load and infra-validate a registered version asked for by ``promote``."""

    command: ModelCommand
    issuer: str
    version: str


@dataclass(frozen=True)
class PrepareRollback(Request):
    """Load the previous champion's head if it is not on disk; look up the current champion's run."""

    command: ModelCommand
    issuer: str
    target: str
    current: str


Effect = (Publish | SetChallenger | UnloadModel | SwitchChampion | RetireUnused | SetAlias | ClearAlias
          | RecordToMlflow | Count | ObserveScores | SetReference | ObservePairs | RecordLiveScore
          | ObserveLatency | RaiseAlert | Guarded | Log | Request)
