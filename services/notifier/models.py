"""Value types of the notifier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emberwatch.contracts import Detection, ModelCandidate, ModelDecision, PipelineAlert

# What a post is about (the `kind` label of the metrics and the delivery store).
Kind = Literal["candidate", "promoted", "rejected", "rolled_back", "alert", "digest", "detection"]


@dataclass(frozen=True)
class Topics:
    """The topics consumed (tests give private names; production uses the contract's)."""

    candidates: str = ModelCandidate.TOPIC
    decisions: str = ModelDecision.TOPIC
    alerts: str = PipelineAlert.TOPIC
    detections: str = Detection.TOPIC
