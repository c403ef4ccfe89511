"""The numbers behind a decision: as the event's Evidence, as MLflow metrics, as a JSON document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emberwatch.contracts.events import Evidence, MetricDelta
from services.gatekeeper.decide_promotion import GateResult


def gate_evidence(result: GateResult) -> Evidence:
    conf = result.thresholds.get("confidence", 0.95)
    deltas = []
    if result.challenger_recall is not None:
        deltas.append(MetricDelta(
            metric="wildfire_recall", champion=result.champion_recall, challenger=result.challenger_recall,
            delta=result.recall_delta.estimate, ci_low=result.recall_delta.low,
            ci_high=result.recall_delta.high, confidence=conf))
    if result.challenger_accuracy is not None:
        deltas.append(MetricDelta(
            metric="accuracy", champion=result.champion_accuracy, challenger=result.challenger_accuracy,
            delta=result.accuracy_delta.estimate, ci_low=result.accuracy_delta.low,
            ci_high=result.accuracy_delta.high, confidence=conf))
    return Evidence(
        n=result.n, n_wildfire=result.n_wildfire, both_correct=result.both_correct,
        champion_only_correct=result.champion_only_correct,
        challenger_only_correct=result.challenger_only_correct, both_wrong=result.both_wrong,
        p_value=result.p_value, deltas=deltas, thresholds=result.thresholds)


def floor_evidence(n: int, n_wildfire: int, recall: float | None, accuracy: float | None,
                   thresholds: dict[str, float]) -> Evidence:
    deltas = []
    if recall is not None:
        deltas.append(MetricDelta(metric="wildfire_recall", challenger=recall))
    if accuracy is not None:
        deltas.append(MetricDelta(metric="accuracy", challenger=accuracy))
    return Evidence(n=n, n_wildfire=n_wildfire, deltas=deltas, thresholds=thresholds)


def evidence_metrics(evidence: Evidence) -> dict[str, float]:
    """Flat MLflow metrics (``gate_*``) from the evidence."""
    out: dict[str, float] = {"gate_n": evidence.n, "gate_n_wildfire": evidence.n_wildfire,
                             "gate_both_correct": evidence.both_correct,
                             "gate_champion_only_correct": evidence.champion_only_correct,
                             "gate_challenger_only_correct": evidence.challenger_only_correct,
                             "gate_both_wrong": evidence.both_wrong}
    if evidence.p_value is not None:
        out["gate_mcnemar_p"] = evidence.p_value
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
