"""The knobs the core decides with (``GatekeeperSettings.core_config`` fills them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from services.gatekeeper.core.decide_promotion import GateThresholds


def within_budget(gate: GateThresholds, budget: float, used: Mapping[str, float]) -> GateThresholds:
    """The gate's margins shrunk to what is left of each class's drift budget."""

    def margin(metric: str, margin: float) -> float:
        return max(0.0, min(margin, budget - used.get(metric, 0.0)))

    return replace(gate, recall_margin=margin("wildfire_recall", gate.recall_margin),
                   specificity_margin=margin("specificity", gate.specificity_margin))


@dataclass(frozen=True)
class Config:
    model_name: str
    producer: str = "gatekeeper"
    product: str = "mapbox"  # the imagery product of this line: its decisions say so
    gate: GateThresholds = GateThresholds()  # before the drift budget shrinks its margins
    drift_budget: float = 0.03
    check_every: int = 50
    max_shadow_s: float = 168 * 3600.0
    validation_alert_after: int = 3
    detection_threshold: float = 0.5
    score_champion: bool = True
    floor_recall: float = 0.6
    floor_specificity: float = 0.6
    floor_min_per_class: int = 30
    command_max_age_s: float = 900.0

    def thresholds(self, drift_used: Mapping[str, float]) -> GateThresholds:
        return within_budget(self.gate, self.drift_budget, drift_used)

    def floor_thresholds(self) -> dict[str, float]:
        return {"floor_recall": self.floor_recall, "floor_specificity": self.floor_specificity,
                "floor_min_per_class": self.floor_min_per_class, "floor_confidence": 1 - self.gate.alpha}
