"""The numbers behind a decision: as the event's Evidence, as MLflow metrics, as a JSON document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emberwatch.contracts.events import Evidence, MetricDelta
from services.gatekeeper.core.decide_promotion import ClassComparison, FloorResult, GateResult


def _delta(c: ClassComparison, confidence: float) -> MetricDelta | None:
    if c.challenger is None:
        return None
    return MetricDelta(metric=c.metric, champion=c.champion, challenger=c.challenger, delta=c.delta.estimate,
                       ci_low=c.delta.low, ci_high=c.delta.high, confidence=confidence)


def gate_evidence(result: GateResult) -> Evidence:
    """Both classes' metrics with their bounds, n per class, the method and the rule that decided.

    The bounds are one-sided at the look's alpha each, so ``confidence`` is 1 - 2 alpha_look for the
    two-sided interval; a check below the minimums shows 95% bounds for orientation."""
    confidence = 1 - 2 * result.alpha_look if result.looked else 1 - 2 * float(result.thresholds.get("alpha", 0.05))
    deltas = [d for d in (_delta(result.recall, confidence), _delta(result.specificity, confidence)) if d]
    return Evidence(
        n=result.n, n_wildfire=result.n_wildfire, n_fire_free=result.n_fire_free,
        both_correct=result.both_correct, champion_only_correct=result.champion_only_correct,
        challenger_only_correct=result.challenger_only_correct, both_wrong=result.both_wrong,
        p_value=result.p_value, deltas=deltas, rule=result.rule, method=result.method,
        alpha=result.alpha_look if result.looked else None,
        thresholds=dict(result.thresholds))


def floor_evidence(floor: FloorResult, thresholds: dict[str, float]) -> Evidence:
    confidence = 1 - 2 * (1 - float(thresholds.get("floor_confidence", 0.95)))
    deltas = [MetricDelta(metric=metric, challenger=i.estimate, ci_low=i.low, ci_high=i.high, confidence=confidence)
              for metric, i in (("wildfire_recall", floor.recall), ("specificity", floor.specificity))
              if i.estimate is not None]
    return Evidence(n=floor.n_wildfire + floor.n_fire_free, n_wildfire=floor.n_wildfire,
                    n_fire_free=floor.n_fire_free, deltas=deltas, rule="floor",
                    method="Wilson score lower bound per class (one-sided)", thresholds=thresholds)


def evidence_metrics(evidence: Evidence) -> dict[str, float]:
    """Flat MLflow metrics (``gate_*``) from the evidence."""
    out: dict[str, float] = {"gate_n": evidence.n, "gate_n_wildfire": evidence.n_wildfire,
                             "gate_n_fire_free": evidence.n_fire_free,
                             "gate_both_correct": evidence.both_correct,
                             "gate_champion_only_correct": evidence.champion_only_correct,
                             "gate_challenger_only_correct": evidence.challenger_only_correct,
                             "gate_both_wrong": evidence.both_wrong}
    if evidence.p_value is not None:
        out["gate_mcnemar_p"] = evidence.p_value
    if evidence.alpha is not None:
        out["gate_alpha_look"] = evidence.alpha
    for d in evidence.deltas:
        for key in ("champion", "challenger", "delta", "ci_low", "ci_high"):
            value = getattr(d, key)
            if value is not None:
                out[f"gate_{d.metric}_{key}"] = value
    return out


def result_document(result: GateResult | None, extra: dict[str, Any]) -> dict[str, Any]:
    doc = dict(extra)
    if result is not None:
        doc["gate"] = asdict(result)
    return doc
