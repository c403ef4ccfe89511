"""Trainer settings (``EMBERWATCH_TRAINER_*`` plus the shared ML settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from emberwatch.ml.settings import MLSettings

SERVICE = "trainer"  # the service's name: logs, metrics, client ids, event producer

class TrainerSettings(MLSettings):
    # --- when to train -----------------------------------------------------------------------
    trainer_train_after_new_tiles: int = Field(
        200, ge=1, description="Train after this many new labelled tiles since the last training."
    )
    trainer_debounce_s: float = Field(
        30.0, ge=0, description="Quiet time (no new tiles) to wait once a training is due, so a burst "
        "of tiles gives one training.",
    )
    trainer_max_wait_s: float = Field(
        300.0, ge=0, description="Train at most this long after it became due, even if tiles keep coming.",
    )
    trainer_schedule_s: float = Field(
        0.0, ge=0, description="Also train every this many seconds when new tiles arrived (0 = off).",
    )
    trainer_failure_retry_s: float = Field(
        60.0, ge=0, description="After a failed training (e.g. MLflow down too long), try again after this.",
    )
    # --- data checks -------------------------------------------------------------------------
    trainer_min_train_per_class: int = Field(20, ge=1, description="Minimum train tiles per label.")
    trainer_min_val_per_class: int = Field(5, ge=1, description="Minimum validation tiles per label.")
    trainer_min_test_per_class: int = Field(
        5, ge=0, description="Minimum test tiles per label (the gatekeeper's held-out comparison)."
    )
    # --- model and search --------------------------------------------------------------------
    trainer_units: str = Field("128,256,512", description="Head sizes tried by the search, comma-separated.")
    trainer_learning_rates: str = Field("0.001,0.0003", description="Learning rates tried, comma-separated.")
    trainer_dropout: float = Field(0.3, ge=0, lt=1, description="Dropout between the head's Dense layers.")
    trainer_epochs: int = Field(40, ge=1, description="Maximum epochs per head (early stopping on val_loss).")
    trainer_patience: int = Field(4, ge=1, description="Early-stopping patience in epochs.")
    trainer_batch_size: int = Field(64, ge=1, description="Head training batch size.")
    trainer_embed_batch_size: int = Field(32, ge=1, description="Backbone batch size when embedding tiles.")
    trainer_seed: int = Field(0, description="Seed of head initialisation and shuffling.")
    trainer_fine_tune: bool = Field(
        False, description="Also fine-tune the backbone's top blocks; produces a full model (slow).",
    )
    trainer_fine_tune_layers: int = Field(
        10, ge=1, description="How many of the backbone's last layers fine-tuning unfreezes.",
    )
    trainer_fine_tune_epochs: int = Field(3, ge=1, description="Epochs of fine-tuning.")
    trainer_fine_tune_learning_rate: float = Field(1e-5, gt=0, description="Fine-tuning learning rate.")
    trainer_calibration_tiles: int = Field(
        64, ge=0, description="Training tiles each candidate carries (triton/calibration.npz, uint8 at the image "
        "size) for the INT8 option's post-training quantisation (EMBERWATCH_TRITON_BACKBONE_RUNTIME="
        "openvino-cpu-int8); 0: none.")
    trainer_known_images: int = Field(
        8, ge=1, description="Held-out tiles logged with the full model's outputs for infra validation.",
    )
    trainer_known_margin: float = Field(
        0.05, ge=0, lt=0.5, description="Known images are chosen at least this far from P=0.5, so the "
        "decision infra validation compares is well defined.",
    )
    trainer_mixed_precision: str = Field(
        "auto", description="auto (on when TensorFlow sees a GPU), on or off; used for fine-tuning.",
    )
    # --- the leakage check (docs/architecture.md#data-honesty) --------------------------------
    trainer_leakage_check: bool = Field(
        True, description="Train and score a location-only and a hand-statistics baseline beside the CNN "
        "on the same splits, and warn when one comes close.",
    )
    trainer_leakage_margin: float = Field(
        0.05, ge=0, le=1, description="A baseline whose accuracy is within this of the CNN's (or above it) "
        "makes the candidate carry a leakage warning.",
    )
    trainer_not_visible_tiles: Literal["drop", "down-weight", "keep"] = Field(
        "keep", description="Fire tiles the imagery does not show (Sentinel-2: dNBR under 0.1 and no hot pixel): "
        "keep them, down-weight them (a quarter of a tile's weight) or drop them from the training and "
        "validation splits; the test split is always scored whole (benchmarks/imagery.md).",
    )
    # --- MLflow ------------------------------------------------------------------------------
    trainer_mlflow_experiment: str = Field("emberwatch-trainer", description="MLflow experiment name.")
    trainer_publish_attempts: int = Field(
        8, ge=1, description="Attempts to publish a candidate event (exponential backoff 0.5-10 s) before "
        "the training counts as failed (and is retried).",
    )
    trainer_mlflow_retry_s: float = Field(
        600.0, gt=0, description="Keep retrying MLflow this long before a training is given up.",
    )
    trainer_mlflow_retry_max_wait_s: float = Field(
        15.0, gt=0, description="Longest wait between MLflow retries (exponential backoff).",
    )
    trainer_mlflow_http_retries: int = Field(
        1, ge=0, description="MLflow client's own HTTP retries per request (our retry loop wraps them).",
    )
    trainer_group_id: str = Field(
        "trainer", description="Kafka consumer group of the trainer's tiles.ready.v1 subscription; its "
        "relabels and training requests use <group>-relabels and <group>-requests.")

    def units_grid(self) -> list[int]:
        return [int(u) for u in self.trainer_units.split(",") if u.strip()]

    def learning_rate_grid(self) -> list[float]:
        return [float(lr) for lr in self.trainer_learning_rates.split(",") if lr.strip()]
