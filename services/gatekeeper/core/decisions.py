"""The steps every path ends in: a decision recorded, a promotion, a shadow ended, a look of the gate.

Each takes the state and returns the new state with the effects that carry the step out, in the order
they must happen (Triton and the aliases first, then MLflow's record, then the event).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from emberwatch.contracts.events import Evidence, ModelDecision
from services.gatekeeper.core.config import Config
from services.gatekeeper.core.decide_promotion import GateResult, Look, decide_promotion
from services.gatekeeper.core.effects import (
    CHALLENGER,
    CHAMPION,
    ClearAlias,
    Count,
    Effect,
    Log,
    Publish,
    RecordToMlflow,
    RetireUnused,
    SetAlias,
    SetChallenger,
    SwitchChampion,
    UnloadModel,
)
from services.gatekeeper.core.evidence import evidence_metrics, gate_evidence, result_document
from services.gatekeeper.core.shadow import Shadow
from services.gatekeeper.core.state import GatekeeperState

Step = tuple[GatekeeperState, list[Effect]]


def at(now: float | datetime) -> datetime:
    """An input's time as the UTC datetime an event carries."""
    return now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)


def decide(state: GatekeeperState, config: Config, now: float | datetime, *, candidate_version: str,
           champion_version: str | None, decision: str, reason: str, evidence: Evidence, run_id: str | None,
           result: GateResult | None = None, extra: dict | None = None, basis: str | None = None,
           requested_by: str | None = None, command_id: str | None = None,
           warnings: tuple[str, ...] = ()) -> Step:
    """A decision: recorded on the candidate's MLflow run, remembered (a redelivered candidate gets the
    same event), counted and published."""
    event = ModelDecision.create(
        producer=config.producer, occurred_at=at(now), model_name=config.model_name, product=config.product,
        candidate_version=str(candidate_version), champion_version=champion_version, decision=decision,
        evidence=evidence, reason=reason, run_id=run_id, basis=basis, requested_by=requested_by,
        command_id=command_id, warnings=list(warnings))
    if requested_by:
        extra = {**(extra or {}), "requested_by": requested_by, "command_id": command_id}
    effects: list[Effect] = []
    if run_id:
        document = result_document(result, {"decision": decision, "reason": reason,
                                             "evidence": json.loads(evidence.model_dump_json()), **(extra or {})})
        effects.append(RecordToMlflow(
            run_id, document, evidence_metrics(evidence), {f"gate_{k}": v for k, v in evidence.thresholds.items()},
            name=f"gatekeeper/{decision}.json", tag=decision))
    effects.append(Log("info", "decision", {"candidate": str(candidate_version), "decision": decision,
                                            "reason": reason}))
    if decision != "rolled_back":
        key = f"{event.model_name}:{event.candidate_version}"
        state = state.with_(decisions={**state.decisions, key: json.loads(event.to_bytes())})
    effects += [Count("decisions", (decision,)), Publish(event)]
    return state, effects


def promote(state: GatekeeperState, config: Config, now: float | datetime, version: str, *,
            champion: str | None, **decision: object) -> Step:
    """``version`` (loaded) becomes the champion; the old one stays loaded as the previous."""
    version = str(version)
    history = (*[v for v in state.champions if v != version], version)
    effects: list[Effect] = [SwitchChampion(version, previous=champion),
                             SetAlias(CHAMPION, version), ClearAlias(CHALLENGER, only_if=version), RetireUnused()]
    state, decided = decide(state.with_(champions=history), config, now, candidate_version=version,
                            champion_version=champion, decision="promoted", **decision)  # type: ignore[arg-type]
    return state, effects + decided


def end_shadow(state: GatekeeperState, config: Config, now: float | datetime, shadow: Shadow,
               reason: str, evidence: Evidence, result: GateResult | None, extra: dict,
               basis: str | None = None, requested_by: str | None = None,
               command_id: str | None = None) -> Step:
    """The challenger in shadow is rejected: its role, head and alias go, then the decision."""
    effects: list[Effect] = [SetChallenger(None), UnloadModel(shadow.candidate_version),
                             ClearAlias(CHALLENGER, only_if=shadow.candidate_version)]
    state, decided = decide(
        state.with_(shadow=None), config, now, candidate_version=shadow.candidate_version,
        champion_version=shadow.champion_version, decision="rejected", reason=reason, evidence=evidence,
        run_id=shadow.run_id, result=result, extra=extra, basis=basis, requested_by=requested_by,
        command_id=command_id, warnings=shadow.warnings)
    return state, effects + decided


def gate_so_far(state: GatekeeperState, config: Config, shadow: Shadow) -> GateResult:
    """What the gate says of a shadow's pairs now (for a person's decision or a supersede)."""
    return decide_promotion(shadow.counts(), config.thresholds(state.drift_used), Look(alpha_spent=shadow.alpha_spent))


def time_is_up(shadow: Shadow, config: Config, now: float) -> bool:
    return shadow.started_at is not None and now - shadow.started_at >= config.max_shadow_s


def spend_drift(used: dict[str, float], result: GateResult) -> dict[str, float]:
    """A promotion uses up each class's worst plausible loss (its lower bound, when negative)."""
    used = dict(used)
    for c in (result.recall, result.specificity):
        low = c.delta.low
        used[c.metric] = round(used.get(c.metric, 0.0) + (max(0.0, -low) if low is not None else 0.0), 6)
    return used


def evaluate(state: GatekeeperState, config: Config, now: float, shadow: Shadow) -> Step:
    """One look of the sequential gate; its alpha spent is kept with the shadow."""
    thresholds = config.thresholds(state.drift_used)
    final = len(shadow.pairs) >= thresholds.max_pairs or time_is_up(shadow, config, now)
    result = decide_promotion(shadow.counts(), thresholds, Look(alpha_spent=shadow.alpha_spent, final=final))
    shadow = replace(shadow, last_checked_n=len(shadow.pairs))
    if result.looked:
        shadow = replace(shadow, alpha_spent=result.alpha_spent, last_look_n=len(shadow.pairs))
    evidence = gate_evidence(result)
    extra = {"pairs_by_source": shadow.n_by_source(), "drift_used": dict(state.drift_used)}
    if result.verdict == "wait":
        return state.with_(shadow=shadow), [Log("info", "shadow continues", {
            "candidate": shadow.candidate_version, "n": result.n, "rule": result.rule, "reason": result.reason})]
    if result.verdict == "promote":
        used = spend_drift(dict(state.drift_used), result)
        extra["drift_used"] = used
        return promote(state.with_(shadow=None, drift_used=used), config, now, shadow.candidate_version,
                       champion=shadow.champion_version, evidence=evidence, run_id=shadow.run_id,
                       reason=result.reason, result=result, extra=extra, basis="gate", warnings=shadow.warnings)
    basis = "inconclusive" if result.rule == "inconclusive" else "gate"
    return end_shadow(state, config, now, shadow, result.reason, evidence, result, extra, basis=basis)
