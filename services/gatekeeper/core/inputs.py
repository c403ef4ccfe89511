"""What can happen to the gatekeeper: each input is one event, or one fact an adapter gathered.

Time comes in every input (``now``: Unix seconds, or a UTC datetime for commands); the core never
reads a clock. Inputs that answer a request (``effects.Request``) carry what the adapter found out:
MLflow's record of a candidate, the outcome of infra validation, the scores Triton gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from emberwatch.contracts.events import LabelFeedback, ModelCandidate, ModelCommand, TileReady, TileRelabelled


# --- a candidate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateReceived:
    candidate: ModelCandidate
    now: float


@dataclass(frozen=True)
class CandidateVerified:
    """MLflow's record bears the candidate event out; ``run_id`` is MLflow's run of its version."""

    candidate: ModelCandidate
    run_id: str
    now: float


@dataclass(frozen=True)
class CandidateInvalid:
    """The candidate failed infra validation (``report``: the validation's numbers, if it got that far)."""

    candidate: ModelCandidate
    champion: str | None
    problem: str
    report: dict | None
    now: float


@dataclass(frozen=True)
class TestScore:
    tile_id: str
    label: int                      # 1 = wildfire, after corrections
    wildfire: float                 # the candidate's P(wildfire)
    champion_wildfire: float | None  # the champion's (None for the first model)


@dataclass(frozen=True)
class CandidateValidated:
    """Loaded and infra-validated; its test tiles (none either model was fitted on) scored."""

    candidate: ModelCandidate
    champion: str | None
    test: tuple[TestScore, ...]
    now: float


# --- live tiles, corrections ------------------------------------------------------------------------
@dataclass(frozen=True)
class TileArrived:
    tile: TileReady
    now: float


@dataclass(frozen=True)
class TileTrainedOn:
    """A live tile the champion or the challenger in shadow was fitted on (a replayed training tile)."""

    tile: TileReady
    now: float


@dataclass(frozen=True)
class PairScored:
    """Champion and challenger in shadow scored a live tile."""

    tile: TileReady
    champion_wildfire: float
    challenger_wildfire: float
    now: float


@dataclass(frozen=True)
class ChampionScored:
    """The champion alone scored a live tile (no challenger in shadow)."""

    tile: TileReady
    champion: str
    wildfire: float
    now: float


@dataclass(frozen=True)
class Relabelled:
    events: tuple[TileRelabelled, ...]
    now: float


@dataclass(frozen=True)
class LabelGiven:
    event: LabelFeedback
    now: float


# --- operator commands ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandReceived:
    """``issuer``: whose key the signature showed; None with ``unverified`` (message, reason) otherwise.
    ``champion``: the version Triton serves as champion now."""

    command: ModelCommand
    issuer: str | None
    unverified: tuple[str, str] | None
    champion: str | None
    now: datetime


@dataclass(frozen=True)
class ManualPromotionReady:
    """A version asked for by ``promote`` is loaded and passed infra validation."""

    command: ModelCommand
    issuer: str
    run_id: str
    champion: str | None
    now: datetime


@dataclass(frozen=True)
class ManualPromotionRefused:
    command: ModelCommand
    issuer: str
    message: str
    champion: str | None
    now: datetime


@dataclass(frozen=True)
class RollbackReady:
    """The previous champion's head is loaded; ``run_id``: MLflow's run of the champion rolled back."""

    command: ModelCommand
    issuer: str
    target: str
    current: str
    run_id: str | None
    now: datetime


@dataclass(frozen=True)
class CommandFailed:
    """Carrying a command out failed on the way (``error``: already redacted)."""

    command: ModelCommand
    issuer: str | None
    error: str
    champion: str | None
    now: datetime


# --- the clock ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeTick:
    """The gatekeeper's own timer: time passed with nothing else happening. A shadow past its time
    limit is decided on the next tick, even when no tile comes to trigger a look."""

    now: float


Input = (CandidateReceived | CandidateVerified | CandidateInvalid | CandidateValidated | TileArrived
         | TileTrainedOn | PairScored | ChampionScored | Relabelled | LabelGiven | CommandReceived
         | ManualPromotionReady | ManualPromotionRefused | RollbackReady | CommandFailed | TimeTick)
