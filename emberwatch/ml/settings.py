"""Settings of the shared ML core (``EMBERWATCH_IMAGE_SIZE``, ``EMBERWATCH_BACKBONE_*``, model name)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from emberwatch.common.config import Settings

KERAS_CACHE_WEIGHTS = (
    Path.home() / ".keras" / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


class MLSettings(Settings):
    image_size: int = Field(
        224, ge=32, le=1024,
        description="Side in pixels every tile is resized to before the backbone (training and serving).",
    )
    backbone_weights: Path | None = Field(
        None,
        description="ResNet50 notop weights (.h5/.weights.h5). Unset: the Keras cache file when present, "
        "else a seeded random initialisation (with a warning). Nothing is ever downloaded.",
    )
    backbone_seed: int = Field(0, description="Seed of the random backbone when no weights are found.")
    model_name: str = Field("emberwatch-resnet50", description="Registered model name in MLflow.")

    def resolved_backbone_weights(self) -> Path | None:
        """The weights file to use, or None for a random initialisation."""
        if self.backbone_weights is not None:
            if not Path(self.backbone_weights).is_file():
                raise FileNotFoundError(f"EMBERWATCH_BACKBONE_WEIGHTS={self.backbone_weights} does not exist")
            return Path(self.backbone_weights)
        if KERAS_CACHE_WEIGHTS.is_file():
            return KERAS_CACHE_WEIGHTS
        return None
