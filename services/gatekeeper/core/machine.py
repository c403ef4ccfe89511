"""The gatekeeper's decisions as a state machine: ``step(state, input, config) -> (state, effects)``.

Pure: no I/O, no clock (time comes in the inputs), no globals. A candidate's walk:

``CandidateReceived`` -> (another model: ignored; decided before: the same decision again; in shadow
already: the gate looks again) -> ``VerifyCandidate`` -> ``CandidateVerified`` (a shadow in progress is
superseded) -> ``IntakeCandidate`` -> ``CandidateInvalid`` (rejected) or ``CandidateValidated``: the
first model meets the floor on its test split; any later one enters shadow on its test pairs and the
gate looks. Live tiles then arrive (``TileArrived`` -> ``ScorePair`` -> ``PairScored``), and the gate
looks whenever the pairs have grown enough: promote, reject, or wait. A shadow past its time limit
gets its last look on the next input, or on the next ``TimeTick`` when nothing else comes. Operator
commands: ``commands``.
"""

from __future__ import annotations

import numpy as np

from emberwatch.contracts.events import Evidence, ModelCandidate, ModelDecision, TileReady
from services.gatekeeper.core import commands
from services.gatekeeper.core.config import Config
from services.gatekeeper.core.decide_promotion import gate_look_due, passes_floor
from services.gatekeeper.core.decisions import Step, at, decide, end_shadow, evaluate, gate_so_far, promote, time_is_up
from services.gatekeeper.core.detect_fire import detection_for
from services.gatekeeper.core.effects import (
    CHALLENGER,
    ClearAlias,
    Count,
    Effect,
    IntakeCandidate,
    Log,
    ObserveLatency,
    ObservePairs,
    ObserveScores,
    Publish,
    RaiseAlert,
    RecordLiveScore,
    ScoreChampion,
    ScorePair,
    SetAlias,
    SetChallenger,
    SetReference,
    UnloadModel,
    VerifyCandidate,
)
from services.gatekeeper.core.evidence import floor_evidence, gate_evidence
from services.gatekeeper.core.inputs import (
    CandidateInvalid,
    CandidateReceived,
    CandidateValidated,
    CandidateVerified,
    ChampionScored,
    Input,
    LabelGiven,
    PairScored,
    Relabelled,
    TileArrived,
    TileTrainedOn,
    TimeTick,
)
from services.gatekeeper.core.shadow import LABEL_INDEX, THRESHOLD, Pair, Shadow
from services.gatekeeper.core.state import Failure, GatekeeperState


def step(state: GatekeeperState, event: Input, config: Config) -> Step:
    """The new state and what must be done, for one input."""
    return STEPS[type(event)](state, event, config)


def candidate_warnings(c: ModelCandidate) -> tuple[str, ...]:
    """What a person should know about a candidate before trusting its promotion."""
    return (c.leakage.warning,) if c.leakage is not None and c.leakage.warning else ()


# --- a candidate ---------------------------------------------------------------------------------
def candidate_received(state: GatekeeperState, e: CandidateReceived, config: Config) -> Step:
    c = e.candidate
    if c.model_name != config.model_name:
        return state, [Log("info", "candidate for another model ignored", {"model_name": c.model_name})]
    done = state.decisions.get(f"{c.model_name}:{c.version}")
    if done is not None:  # redelivered: publish the same decision again (same event id)
        return state, [Publish(ModelDecision.model_validate(done))]
    if state.shadow is not None and state.shadow.candidate_version == str(c.version):
        return evaluate(state, config, e.now, state.shadow)  # redelivered while in shadow: look again
    # MLflow's record of the version, not the event, says where its artifacts are: an event it does
    # not bear out supersedes nothing
    return state, [VerifyCandidate(c)]


def candidate_verified(state: GatekeeperState, e: CandidateVerified, config: Config) -> Step:
    c, effects = e.candidate, []
    if state.shadow is not None:
        shadow = state.shadow
        result = gate_so_far(state, config, shadow)
        state, effects = end_shadow(
            state, config, e.now, shadow, f"superseded by version {c.version} before the gate decided "
            f"({result.reason})", gate_evidence(result), result, {"pairs_by_source": shadow.n_by_source()},
            basis="superseded")
    warnings = candidate_warnings(c)
    if warnings:
        effects.append(Log("warning", "candidate carries warnings", {"candidate": c.version,
                                                                      "warnings": list(warnings)}))
    return state, [*effects, IntakeCandidate(c, e.run_id, warnings)]


def validation_outcome(state: GatekeeperState, config: Config, version: str, problem: str | None) -> Step:
    """Track consecutive infra-validation failures; every ``validation_alert_after``-th in a row raises a
    critical alert with the reasons (a pass resets the streak; a redelivered candidate counts once)."""
    streak = state.validation_failures
    if problem is None:
        return (state.with_(validation_failures=()) if streak else state), []
    if any(f.version == version for f in streak):
        return state, []
    streak = (*streak, Failure(version, problem))
    state = state.with_(validation_failures=streak)
    n = config.validation_alert_after
    if not n or len(streak) % n:
        return state, []
    last = streak[-n:]
    return state, [RaiseAlert(
        "validation_failing", "critical",
        f"{len(streak)} candidates in a row failed infra validation in Triton "
        f"(versions {', '.join(f.version for f in last)}); latest: {problem}",
        {"versions": [f.version for f in last], "reasons": [f.reason[:300] for f in last],
         "consecutive": len(streak)})]


def candidate_invalid(state: GatekeeperState, e: CandidateInvalid, config: Config) -> Step:
    c = e.candidate
    state, effects = validation_outcome(state, config, str(c.version), e.problem)
    state, decided = decide(state, config, e.now, candidate_version=c.version, champion_version=e.champion,
                            decision="rejected", reason=e.problem, evidence=Evidence(), run_id=c.run_id,
                            basis="validation", extra={"validation": e.report} if e.report else {},
                            warnings=candidate_warnings(c))
    return state, [*effects, ClearAlias(CHALLENGER, only_if=str(c.version)), *decided]


def candidate_validated(state: GatekeeperState, e: CandidateValidated, config: Config) -> Step:
    state, effects = validation_outcome(state, config, str(e.candidate.version), None)
    if e.champion is None:
        state, more = first_model(state, e, config)
    else:
        state, more = start_shadow(state, e, config)
    return state, effects + more


def first_model(state: GatekeeperState, e: CandidateValidated, config: Config) -> Step:
    """The first model has no champion to beat: it must clear the absolute floor on its test split."""
    c, version = e.candidate, str(e.candidate.version)
    warnings = candidate_warnings(c)
    y = np.array([t.label for t in e.test], dtype=np.int64)
    wildfire = np.array([t.wildfire for t in e.test], dtype=np.float64)
    effects: list[Effect] = []
    if e.test:
        effects += [SetReference(version, tuple(wildfire.tolist())),
                    ObserveScores(version, tuple(y.tolist()), tuple(wildfire.tolist()), "test")]
    floor = passes_floor(y, (wildfire >= THRESHOLD).astype(np.int64), floor_recall=config.floor_recall,
                         floor_specificity=config.floor_specificity, min_per_class=config.floor_min_per_class,
                         alpha=config.gate.alpha)
    evidence = floor_evidence(floor, config.floor_thresholds())
    if not floor.ok:
        effects += [UnloadModel(version), ClearAlias(CHALLENGER, only_if=version)]
        state, decided = decide(state, config, e.now, candidate_version=version, champion_version=None,
                                decision="rejected", reason=f"first model below the floor: {floor.reason}",
                                evidence=evidence, run_id=c.run_id, basis="floor", warnings=warnings)
        return state, effects + decided
    state, promoted = promote(state, config, e.now, version, champion=None, evidence=evidence, run_id=c.run_id,
                              reason=f"first model: validated and {floor.reason}", basis="floor", warnings=warnings)
    return state, effects + promoted


def start_shadow(state: GatekeeperState, e: CandidateValidated, config: Config) -> Step:
    """Pair the candidate with the champion on its held-out test tiles, then let the gate look."""
    c, version = e.candidate, str(e.candidate.version)
    shadow = Shadow(model_name=c.model_name, candidate_version=version, champion_version=str(e.champion),
                    run_id=c.run_id, warnings=candidate_warnings(c), started_at=e.now)
    for t in e.test:
        shadow = shadow.with_pair(Pair(t.tile_id, t.label, float(t.champion_wildfire or 0.0), t.wildfire, "test"))
    effects: list[Effect] = []
    if e.test:
        effects.append(SetReference(version, tuple(t.wildfire for t in e.test)))
    effects += [ObservePairs(shadow, shadow.pairs), SetChallenger(version), SetAlias(CHALLENGER, version)]
    state, looked = evaluate(state.with_(shadow=shadow), config, e.now, shadow)
    return state, effects + looked


# --- live tiles ----------------------------------------------------------------------------------
def tile_arrived(state: GatekeeperState, e: TileArrived, config: Config) -> Step:
    shadow, tile_id = state.shadow, e.tile.tile_id
    if shadow is None:
        effects: list[Effect] = [Count("shadow_tiles", ("no_shadow",))]
        if not config.score_champion:
            return state, [*effects, Count("champion_tiles", ("disabled",))]
        if state.retired(tile_id):
            return state, [*effects, Count("champion_tiles", ("retired",))]
        return state, [*effects, ScoreChampion(e.tile)]
    if shadow.has(tile_id):
        return state, [Count("shadow_tiles", ("duplicate",))]
    if state.retired(tile_id):  # a later fire lies near it: its label is no longer trusted
        return state, [Count("shadow_tiles", ("retired",))]
    return state, [ScorePair(e.tile, shadow.champion_version, shadow.candidate_version)]


def tile_trained_on(state: GatekeeperState, e: TileTrainedOn, config: Config) -> Step:
    effects: list[Effect] = [Count("shadow_tiles", ("trained_on",))]  # a replayed or lagging training tile
    if state.shadow is not None and time_is_up(state.shadow, config, e.now):
        state, looked = evaluate(state, config, e.now, state.shadow)
        effects += looked
    return state, effects


def time_tick(state: GatekeeperState, e: TimeTick, config: Config) -> Step:
    """A shadow past its time limit gets its last look now; otherwise time passing changes nothing."""
    if state.shadow is None or not time_is_up(state.shadow, config, e.now):
        return state, []
    return evaluate(state, config, e.now, state.shadow)


def detection(config: Config, tile: TileReady, label: str, champion: str, wildfire: float, now: float,
              challenger: str | None = None, challenger_wildfire: float | None = None) -> list[Effect]:
    found = detection_for(tile, label=label, model_name=config.model_name,  # type: ignore[arg-type]
                          champion_version=champion, wildfire_probability=wildfire,
                          threshold=config.detection_threshold, producer=config.producer,
                          challenger_version=challenger, challenger_probability=challenger_wildfire,
                          occurred_at=at(now))
    return [] if found is None else [Count("detections"), Publish(found)]


def pair_scored(state: GatekeeperState, e: PairScored, config: Config) -> Step:
    shadow = state.shadow
    if shadow is None:
        return state, []
    label = state.label_for(e.tile.tile_id, e.tile.label)
    pair = Pair(e.tile.tile_id, LABEL_INDEX[label], e.champion_wildfire, e.challenger_wildfire, "live")
    shadow = shadow.with_pair(pair)
    effects = [*detection(config, e.tile, label, shadow.champion_version, pair.champion_wildfire, e.now,
                          shadow.candidate_version, pair.challenger_wildfire),
               ObserveLatency(e.tile), ObservePairs(shadow, (pair,)), Count("shadow_tiles", ("scored",))]
    state = state.with_(shadow=shadow)
    if time_is_up(shadow, config, e.now) or gate_look_due(
            len(shadow.pairs), shadow.last_checked_n, shadow.last_look_n, config.thresholds(state.drift_used),
            config.check_every):
        state, looked = evaluate(state, config, e.now, shadow)
        effects += looked
    return state, effects


def champion_scored(state: GatekeeperState, e: ChampionScored, config: Config) -> Step:
    """Live quality of the champion between shadows, and its detections."""
    label = state.label_for(e.tile.tile_id, e.tile.label)
    return state, [ObserveScores(e.champion, (LABEL_INDEX[label],), (e.wildfire,), "live"),
                   *detection(config, e.tile, label, e.champion, e.wildfire, e.now),
                   RecordLiveScore(e.champion, e.tile.tile_id, e.wildfire), Count("champion_tiles", ("scored",)),
                   ObserveLatency(e.tile)]


# --- labels corrected after the fact -------------------------------------------------------------
def relabelled(state: GatekeeperState, e: Relabelled, config: Config) -> Step:
    """A fire reported later invalidates fire-free tiles' labels: remembered for every later tile and
    test split, and applied to the shadow's pairs now (the next look uses them)."""
    corrections, changed = dict(state.relabels), []
    for event in e.events:
        old = corrections.get(event.tile_id)
        if old is not None and not (old["action"] == "retire" and event.action == "relabel"):
            continue
        corrections[event.tile_id] = {"action": event.action, "label": event.label, "fire_key": event.fire_key}
        changed.append(event)
    if not changed:
        return state, []
    effects: list[Effect] = [Log("debug", "tile label corrected", {
        "tile_id": event.tile_id, "action": event.action, "fire_key": event.fire_key}) for event in changed]
    effects.append(Log("info", "tile labels corrected", {
        "tiles": len(changed), "retired": sum(x.action == "retire" for x in changed),
        "relabelled": sum(x.action == "relabel" for x in changed), "first_tile_id": changed[0].tile_id}))
    shadow = state.shadow
    if shadow is not None:
        for event in changed:
            shadow = (shadow.without(event.tile_id) if event.action == "retire"
                      else shadow.relabelled(event.tile_id, LABEL_INDEX[event.label or "wildfire"]))
        shadow = state.shadow if shadow == state.shadow else shadow
    return state.with_(relabels=corrections, shadow=shadow), effects


def label_given(state: GatekeeperState, e: LabelGiven, config: Config) -> Step:
    """A person's label on a tile: every later score of it uses that label, and the shadow's pair for
    it, if any, counts with it from the next look on. The latest one holds; a redelivery changes nothing."""
    f, given_at = e.event, e.event.occurred_at.isoformat()
    old = state.human_labels.get(f.tile_id)
    if old is not None and (old["event_id"] == f.event_id or old["given_at"] > given_at):
        return state, []
    human = {**state.human_labels, f.tile_id: {"label": f.label, "labelled_by": f.labelled_by,
                                               "event_id": f.event_id, "given_at": given_at}}
    shadow = state.shadow
    if shadow is not None:
        shadow = shadow.relabelled(f.tile_id, LABEL_INDEX[f.label])
        shadow = state.shadow if shadow == state.shadow else shadow
    return state.with_(human_labels=human, shadow=shadow), [
        Count("human_labels", (f.label,)),
        Log("info", "a person labelled a tile", {"tile_id": f.tile_id, "label": f.label,
                                                 "labelled_by": f.labelled_by})]


STEPS = {
    CandidateReceived: candidate_received, CandidateVerified: candidate_verified,
    CandidateInvalid: candidate_invalid, CandidateValidated: candidate_validated,
    TileArrived: tile_arrived, TileTrainedOn: tile_trained_on, PairScored: pair_scored,
    ChampionScored: champion_scored, Relabelled: relabelled, LabelGiven: label_given, TimeTick: time_tick,
    **commands.STEPS,
}

