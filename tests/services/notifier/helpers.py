"""Shared pieces of the notifier tests: settings, events, the simulator, metric reads."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY
from pydantic import SecretStr

from emberwatch.common.config import Settings
from emberwatch.contracts import Detection, ModelCandidate, ModelDecision, PipelineAlert
from services.notifier.models import Topics
from services.notifier.settings import NotifierSettings


def shown(text: str) -> str:
    """What Discord shows of markdown-escaped text: each backslash escape as the character it escapes
    (data goes into embeds escaped: tests/security/test_untrusted_text.py)."""
    return re.sub(r"\\(.)", r"\1", text)
from tests.messaging.helpers import unique

MODEL = "emberwatch-resnet50"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def notifier_settings(base: Settings, state_dir: Path, webhook_url: str, **overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = dict(
        kafka_bootstrap_servers=base.kafka_bootstrap_servers,
        kafka_session_timeout_ms=3000,  # joins take about half of it on Tansu
        kafka_max_attempts=3,
        kafka_retry_backoff_s=0.05,
        state_dir=state_dir,
        discord_webhook_url=SecretStr(webhook_url),
        notifier_group_id=unique("notifier"),
        notifier_backoff_s=0.01,
        notifier_max_attempts=2,
        notifier_digest_window_s=60.0,
        notifier_mlflow_ui_url="http://mlflow.example:5000",
        notifier_grafana_url="http://grafana.example:3000",
        mlflow_tracking_uri="http://127.0.0.1:1",
    )
    values.update(overrides)
    return NotifierSettings(**values)


def private_topics() -> Topics:
    return Topics(candidates=unique("t-candidates"), decisions=unique("t-decisions"), alerts=unique("t-alerts"),
                  detections=unique("t-detections"))


def candidate(version: str = "7", model: str = MODEL, **extra: Any) -> ModelCandidate:
    return ModelCandidate.create(
        producer="trainer", model_name=model, version=version, run_id=f"run{version}abc",
        artifact_uri=f"mlflow-artifacts:/1/run{version}/artifacts/model", dataset_digest="sha256:d1",
        counts={"train": {"wildfire": 120, "nowildfire": 118}, "val": {"wildfire": 30, "nowildfire": 31}},
        metrics={"val_accuracy": 0.912, "val_recall_wildfire": 0.933}, **extra)


def decision(kind: str = "promoted", version: str = "7", model: str = MODEL, reason: str | None = None,
             **extra: Any) -> ModelDecision:
    return ModelDecision.create(
        producer="gatekeeper", model_name=model, candidate_version=version, champion_version="6",
        decision=kind, run_id=extra.pop("run_id", f"evalrun{version}"),
        evidence={"n": 412, "n_wildfire": 201, "both_correct": 350, "champion_only_correct": 9,
                  "challenger_only_correct": 31, "both_wrong": 22, "p_value": 0.00041,
                  "deltas": [{"metric": "recall_wildfire", "champion": 0.871, "challenger": 0.935,
                              "delta": 0.064, "ci_low": 0.031, "ci_high": 0.097}],
                  "thresholds": {"alpha": 0.05, "min_n": 200, "non_inferiority_margin": 0.02}},
        reason=reason or f"{kind}: challenger recall is higher (McNemar p=0.00041)", **extra)


def alert(name: str = "feed_down", severity: str = "critical", message: str = "CWFIS answered 503",
          component: str = "ingestor", **details: Any) -> PipelineAlert:
    return PipelineAlert.create(producer=component, alert=name, severity=severity, component=component,
                                message=message, details=details)


def detection(tile_id: str = "ab" * 32, version: str = "7", probability: float = 0.91,
              **extra: Any) -> Detection:
    return Detection.create(
        producer="gatekeeper", tile_id=tile_id, uri=f"file:///state/tiles/{tile_id}.jpg", lat=55.1234,
        lon=-110.5678, fire_key="ab:HWF-042", label="wildfire", model_name=MODEL, model_version=version,
        wildfire_probability=probability, threshold=0.5, **extra)


def new_id() -> str:
    return uuid.uuid4().hex
