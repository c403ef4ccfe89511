"""Gatekeeper settings (``EMBERWATCH_GATEKEEPER_*``): the gate, infra validation, Triton, model quality."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr

from emberwatch.contracts.products import MAPBOX, checked_product, model_name_for, triton_model_for
from emberwatch.ml.settings import MLSettings
from services.gatekeeper.core.config import Config, within_budget
from services.gatekeeper.core.decide_promotion import GateThresholds

SERVICE = "gatekeeper"  # the service's name: logs, metrics, client ids, event producer

class GatekeeperSettings(MLSettings):
    """Every gatekeeper setting is ``EMBERWATCH_GATEKEEPER_*`` (shared ones come from the base).

    The settings as read describe the Mapbox line; ``for_line`` gives another product's line its
    registered model, public Triton model and state folder."""

    _product: str = PrivateAttr(MAPBOX)

    # --- the promotion gate ----------------------------------------------------------------------
    gatekeeper_min_pairs: int = Field(200, ge=1, description="Paired shadow samples needed before the gate looks.")
    gatekeeper_min_wildfire_pairs: int = Field(50, ge=1, description="Wildfire tiles needed among the pairs.")
    gatekeeper_min_fire_free_pairs: int = Field(50, ge=1, description="Fire-free tiles needed among the pairs.")
    gatekeeper_max_pairs: int = Field(
        5000, ge=1, description="The shadow's last look: still inconclusive at this many pairs, the challenger "
        "is rejected as inconclusive (alpha is spent by the fraction of these pairs seen).")
    gatekeeper_max_shadow_hours: float = Field(
        168.0, gt=0, description="The shadow's time limit: its last look comes after this many hours at the latest.")
    gatekeeper_tick_s: float = Field(
        60.0, ge=0, description="How often the gatekeeper's clock checks the shadow's time limit, so that a "
        "shadow no tile reaches is still decided; 0 switches the clock off (the limit is then checked "
        "only when an event comes).")
    gatekeeper_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="One-sided false-promotion rate over all looks of one shadow.")
    gatekeeper_primary_metric: Literal["wildfire_recall", "specificity"] = Field(
        "wildfire_recall", description="The metric a challenger must be shown better on (declared before "
        "the shadow starts); the other class must stay within its margin.")
    gatekeeper_recall_margin: float = Field(
        0.02, ge=0, lt=1, description="Non-inferiority margin on wildfire recall (lower bound above -margin).")
    gatekeeper_specificity_margin: float = Field(
        0.03, ge=0, lt=1, description="Non-inferiority margin on specificity, i.e. false alarms (lower bound "
        "above -margin).")
    gatekeeper_drift_budget: float = Field(
        0.03, ge=0, lt=1, description="Total loss each class may accumulate over successive promotions, "
        "measured from the first champion by the lower bounds at each promotion; a class whose budget is "
        "spent must not get worse at all.")
    gatekeeper_spending: Literal["obrien_fleming", "pocock"] = Field(
        "obrien_fleming", description="Alpha-spending function over the looks (Lan-DeMets).")
    gatekeeper_look_growth: float = Field(
        1.5, gt=1, description="A new look once the pairs have grown by this factor since the last one.")
    gatekeeper_check_every: int = Field(
        50, ge=1, description="Before the first look, check the minimums after this many new shadow pairs.")
    gatekeeper_floor_recall: float = Field(
        0.6, ge=0, le=1, description="First model only: the lower bound of its test recall must reach this.")
    gatekeeper_floor_specificity: float = Field(
        0.6, ge=0, le=1, description="First model only: the lower bound of its test specificity must reach this.")
    gatekeeper_floor_min_per_class: int = Field(
        30, ge=1, description="First model only: test tiles of each class needed to measure the floor.")

    # --- infra validation --------------------------------------------------------------------
    gatekeeper_validation_tolerance: float = Field(
        2e-3, gt=0, description="Max |Triton - Keras| probability difference on the known images (FP32 "
        "differences measured below 1e-4 at 64-224 px, benchmarks/serving.md); every known image must "
        "also get the same decision.")
    gatekeeper_validation_alert_after: int = Field(
        3, ge=0, description="Alert (pipeline.alerts.v1) when this many candidates in a row fail infra "
        "validation; 0 switches the alert off.")
    gatekeeper_validation_max_latency_ms: float = Field(
        5000.0, gt=0, description="Max p50 latency of one image through Triton during warm-up.")
    gatekeeper_validation_warmup_requests: int = Field(3, ge=1, description="Warm-up requests before measuring.")
    gatekeeper_validation_latency_requests: int = Field(5, ge=1, description="Timed requests for the latency check.")

    # --- Triton ------------------------------------------------------------------------------
    gatekeeper_triton_model: str = Field("wildfire", description="The public BLS model clients call.")
    triton_backbone_runtime: Literal["openvino-cpu", "openvino-cpu-int8", "onnxruntime-gpu"] = Field(
        "openvino-cpu", description="How Triton runs the exported backbone.onnx: openvino-cpu (the python "
        "backend compiles it with OpenVINO, FP32; the local stack), openvino-cpu-int8 (the same, quantised to "
        "INT8 with NNCF on the first candidate's training tiles; FP32 if it cannot be) or onnxruntime-gpu (Triton's onnxruntime "
        "backend on KIND_GPU with TensorRT FP16, dynamic batching and warm-up; compose.yaml). Infra "
        "validation's tolerance follows the precision.")
    gatekeeper_triton_wait_s: float = Field(
        120.0, gt=0, description="How long a live shadow tile waits for a restarting Triton before its "
        "handling fails (and is retried); below the consumer's 300 s poll interval.")
    gatekeeper_unload_grace_s: float = Field(
        1.0, ge=0, description="Wait after switching the champion before unloading a retired head.")
    gatekeeper_triton_timeout_s: float = Field(120.0, gt=0, description="Timeout of Triton load and infer calls.")
    gatekeeper_serving_check_s: float = Field(
        10.0, ge=0, description="How often the gatekeeper checks that Triton still has the served "
        "models loaded and re-loads them (after a Triton restart); 0 switches the check off.")

    # --- model quality -----------------------------------------------------------------------
    gatekeeper_quality_score_champion: bool = Field(
        True, description="Score live labelled tiles with the champion alone while no challenger is in "
                          "shadow (one Triton call per tile), for live recall/precision and drift.")
    gatekeeper_detection_threshold: float = Field(
        0.5, ge=0, le=1, description="A live tile the champion scores at or above this wildfire probability "
        "is a detection (detections.v1; the notifier posts it with feedback buttons). Live tiles are scored "
        "in shadow and, between shadows, when EMBERWATCH_GATEKEEPER_QUALITY_SCORE_CHAMPION is on.")
    gatekeeper_quality_live_window: int = Field(500, ge=10, description="Recent live scores per version the PSI uses.")
    gatekeeper_quality_min_live_samples: int = Field(
        200, ge=1, description="Live scores needed in the window before a version's PSI is exported "
                               "(PSI of small samples is noisy: ~0.1 at 200 scores, ~0.25 at 80).")

    # --- Kafka and tiles ---------------------------------------------------------------------
    gatekeeper_group_id: str = Field("gatekeeper", description="Consumer group of the gatekeeper.")
    gatekeeper_command_max_age_s: float = Field(
        900.0, gt=0, description="An operator's command (models.commands.v1) older than this is refused, "
        "not carried out (a replayed or long-queued command; the caller's own expires_at may be sooner), as is "
        "one whose signed expires_at lies further ahead than this.")
    gatekeeper_tile_fetch_timeout_s: float = Field(30.0, gt=0, description="Timeout fetching a tile by URI.")

    def thresholds(self, drift_used: dict[str, float] | None = None) -> GateThresholds:
        """The gate's knobs; the margins shrink to what is left of the drift budget."""
        gate = GateThresholds(
            min_pairs=self.gatekeeper_min_pairs, min_wildfire_pairs=self.gatekeeper_min_wildfire_pairs,
            min_fire_free_pairs=self.gatekeeper_min_fire_free_pairs, max_pairs=self.gatekeeper_max_pairs,
            alpha=self.gatekeeper_alpha, primary_metric=self.gatekeeper_primary_metric,
            recall_margin=self.gatekeeper_recall_margin, specificity_margin=self.gatekeeper_specificity_margin,
            spending=self.gatekeeper_spending, look_growth=self.gatekeeper_look_growth,
        )
        return within_budget(gate, self.gatekeeper_drift_budget, drift_used or {})

    def core_config(self) -> Config:
        """What the gatekeeper's core decides with."""
        return Config(
            model_name=self.model_name, producer=SERVICE, gate=self.thresholds(),
            drift_budget=self.gatekeeper_drift_budget,
            check_every=self.gatekeeper_check_every, max_shadow_s=self.gatekeeper_max_shadow_hours * 3600,
            validation_alert_after=self.gatekeeper_validation_alert_after,
            detection_threshold=self.gatekeeper_detection_threshold,
            score_champion=self.gatekeeper_quality_score_champion, floor_recall=self.gatekeeper_floor_recall,
            floor_specificity=self.gatekeeper_floor_specificity,
            floor_min_per_class=self.gatekeeper_floor_min_per_class,
            command_max_age_s=self.gatekeeper_command_max_age_s, product=self.product,
        )

    @property
    def product(self) -> str:
        """The imagery product of the line these settings describe."""
        return self._product

    def for_line(self, product: str) -> GatekeeperSettings:
        """The settings of ``product``'s line: the same knobs, its own registered model (``<model
        name>-<product>``), public Triton model (``<triton model>_<product>``) and state folder. Mapbox's
        are these settings' own names, so a running deployment keeps its state where it is."""
        if self._product != MAPBOX:
            raise ValueError(f"these settings already describe the {self._product} line")
        line = self.model_copy(update={
            "model_name": model_name_for(self.model_name, product),
            "gatekeeper_triton_model": triton_model_for(self.gatekeeper_triton_model, product)})
        line._product = checked_product(product)
        return line

    @property
    def gatekeeper_dir(self) -> Path:
        """The line's state: ``<state>/gatekeeper`` for Mapbox, ``<state>/gatekeeper/lines/<product>`` else."""
        root = Path(self.state_dir) / "gatekeeper"
        return root if self._product == MAPBOX else root / "lines" / self._product
