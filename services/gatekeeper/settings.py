"""Gatekeeper settings: the gate's thresholds, validation tolerances, Triton model names."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from emberwatch.ml.settings import MLSettings
from services.gatekeeper.decide_promotion import GateThresholds

SERVICE = "gatekeeper"  # the service's name: logs, metrics, client ids, event producer

class GatekeeperSettings(MLSettings):
    # --- the promotion gate (EMBERWATCH_GATE_*) -------------------------------------------------
    gate_min_samples: int = Field(200, ge=1, description="Paired shadow samples needed before a decision.")
    gate_min_wildfire_samples: int = Field(
        50, ge=1, description="Wildfire tiles needed among the paired samples before a decision.")
    gate_alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of the exact McNemar test.")
    gate_recall_margin: float = Field(
        0.01, ge=0, description="Non-inferiority margin on wildfire recall (CI low must be above -margin).")
    gate_accuracy_margin: float = Field(
        0.02, ge=0, description="Non-inferiority margin on accuracy (CI low must be above -margin).")
    gate_confidence: float = Field(0.95, gt=0, lt=1, description="Confidence of the bootstrap intervals.")
    gate_bootstrap: int = Field(2000, ge=100, description="Paired bootstrap resamples.")
    gate_seed: int = Field(0, description="Seed of the paired bootstrap (decisions are reproducible).")
    gate_check_every: int = Field(
        50, ge=1, description="Re-run the gate after this many new live shadow pairs (limits peeking).")
    gate_max_shadow_samples: int = Field(
        5000, ge=1, description="Reject as inconclusive when the gate still waits after this many pairs.")
    floor_recall: float = Field(
        0.6, ge=0, le=1, description="First model only: minimum wildfire recall on the test split.")
    floor_accuracy: float = Field(
        0.6, ge=0, le=1, description="First model only: minimum accuracy on the test split.")

    # --- infra validation --------------------------------------------------------------------
    validation_tolerance: float = Field(
        2e-3, gt=0, description="Max |Triton - Keras| probability difference on the known images (FP32 "
        "differences measured below 1e-4 at 64-224 px, benchmarks/serving.md); every known image must "
        "also get the same decision.")
    validation_alert_after: int = Field(
        3, ge=0, description="Alert (pipeline.alerts.v1) when this many candidates in a row fail infra "
        "validation; 0 switches the alert off.")
    triton_wait_s: float = Field(
        120.0, gt=0, description="How long a live shadow tile waits for a restarting Triton before its "
        "handling fails (and is retried); below the consumer's 300 s poll interval.")
    validation_max_latency_ms: float = Field(
        5000.0, gt=0, description="Max p50 latency of one image through Triton during warm-up.")
    validation_warmup_requests: int = Field(3, ge=1, description="Warm-up requests before measuring.")
    validation_latency_requests: int = Field(5, ge=1, description="Timed requests for the latency check.")

    # --- Triton ------------------------------------------------------------------------------
    triton_model: str = Field("wildfire", description="The public BLS model clients call.")
    unload_grace_s: float = Field(
        1.0, ge=0, description="Wait after switching the champion before unloading a retired head.")
    triton_timeout_s: float = Field(120.0, gt=0, description="Timeout of Triton load and infer calls.")

    # --- model quality -----------------------------------------------------------------------
    quality_score_champion: bool = Field(
        True, description="Score live labelled tiles with the champion alone while no challenger is in "
                          "shadow (one Triton call per tile), for live recall/precision and drift.")
    quality_live_window: int = Field(500, ge=10, description="Recent live scores per version the PSI uses.")
    quality_min_live_samples: int = Field(
        200, ge=1, description="Live scores needed in the window before a version's PSI is exported "
                               "(PSI of small samples is noisy: ~0.1 at 200 scores, ~0.25 at 80).")

    # --- Kafka -------------------------------------------------------------------------------
    gatekeeper_serving_check_s: float = Field(
        10.0, ge=0, description="How often the gatekeeper checks that Triton still has the served "
        "models loaded and re-loads them (after a Triton restart); 0 switches the check off.")
    gatekeeper_group_id: str = Field("gatekeeper", description="Consumer group of the gatekeeper.")
    gatekeeper_command_max_age_s: float = Field(
        900.0, gt=0, description="An operator's command (models.commands.v1) older than this is refused, "
        "not carried out (a replayed or long-queued command; the caller's own expires_at may be sooner).")
    tile_fetch_timeout_s: float = Field(30.0, gt=0, description="Timeout fetching a tile by URI.")

    def thresholds(self) -> GateThresholds:
        return GateThresholds(
            min_samples=self.gate_min_samples, min_wildfire_samples=self.gate_min_wildfire_samples,
            alpha=self.gate_alpha, recall_margin=self.gate_recall_margin,
            accuracy_margin=self.gate_accuracy_margin, confidence=self.gate_confidence,
            n_bootstrap=self.gate_bootstrap, seed=self.gate_seed,
        )

    @property
    def gatekeeper_dir(self) -> Path:
        return Path(self.state_dir) / "gatekeeper"
