"""Settings of the shared ML core (``EMBERWATCH_IMAGE_SIZE``, ``EMBERWATCH_BACKBONE_*``, model name)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

from pydantic import Field, field_validator

from emberwatch.common.config import Settings
from emberwatch.contracts.products import checked_product

log = logging.getLogger(__name__)
IMAGENET_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
OFFLINE_RECHECK_S = 3600.0  # after a failed download, try again at most once an hour


def keras_cache_weights() -> Path:
    """Where Keras keeps the ResNet50 ImageNet (notop) weights it downloaded (``$KERAS_HOME/models``)."""
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return home / "models" / IMAGENET_NOTOP


class MLSettings(Settings):
    image_size: int = Field(
        224, ge=32, le=1024,
        description="Side in pixels every tile is resized to before the backbone (training and serving).",
    )
    backbone_weights: Path | None = Field(
        None,
        description="ResNet50 notop weights file (.h5/.weights.h5). Unset: ImageNet weights from the Keras "
        "cache, fetched once through Keras when online (EMBERWATCH_BACKBONE_DOWNLOAD); else a seeded "
        "random initialisation, with a warning.",
    )
    backbone_download: bool = Field(
        True, description="Fetch ResNet50's ImageNet weights through Keras into its cache when they are "
        "not there (as keras.applications does); offline this fails fast and is retried at most hourly.",
    )
    backbone_download_timeout_s: float = Field(
        30.0, gt=0, description="Network timeout of the ImageNet weights download.")
    backbone_seed: int = Field(0, description="Seed of the random backbone when no weights are found.")
    model_name: str = Field("emberwatch-resnet50", description="Registered model name in MLflow.")
    model_lines: str = Field(
        "mapbox", description="The imagery products with a model line, comma-separated (e.g. mapbox,sentinel2-swir): "
        "the trainer trains one model per line on that product's tiles, registered as <model name> (mapbox) or "
        "<model name>-<product>; the gatekeeper gates and serves each line apart.")

    @field_validator("model_lines")
    @classmethod
    def _known_products(cls, value: str) -> str:
        wanted = [p.strip() for p in value.split(",") if p.strip()]
        if not wanted:
            raise ValueError("at least one model line is needed (e.g. mapbox)")
        for product in wanted:
            checked_product(product)  # UnknownProduct is a ValueError: a settings error
        return value

    def lines(self) -> tuple[str, ...]:
        """The enabled model lines in the order given (duplicates dropped)."""
        return tuple(dict.fromkeys(p.strip() for p in self.model_lines.split(",") if p.strip()))

    def resolved_backbone_weights(self) -> Path | None:
        """The weights file to use, or None for a random initialisation (never raises offline)."""
        if self.backbone_weights is not None:
            if not Path(self.backbone_weights).is_file():
                raise FileNotFoundError(f"EMBERWATCH_BACKBONE_WEIGHTS={self.backbone_weights} does not exist")
            return Path(self.backbone_weights)
        cached = keras_cache_weights()
        if cached.is_file():
            return cached
        if self.backbone_download:
            return fetch_imagenet_weights(Path(self.state_dir) / "backbone" / "download.json",
                                          self.backbone_download_timeout_s)
        return None


def fetch_imagenet_weights(marker: Path, timeout_s: float) -> Path | None:
    """Download the ImageNet notop weights through Keras (hash-checked) into its cache.

    Returns the cached file, or None when the download is impossible (offline, blocked); a failure
    is remembered in ``marker`` so that a machine without internet does not retry on every start.
    """
    try:
        last = json.loads(marker.read_text())
        if time.time() - float(last.get("failed_at", 0)) < OFFLINE_RECHECK_S:
            return None
    except (OSError, ValueError):
        pass
    from keras.src.applications import resnet
    from keras.utils import get_file

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)
    try:
        path = get_file(IMAGENET_NOTOP, resnet.BASE_WEIGHTS_PATH + IMAGENET_NOTOP, cache_subdir="models",
                        file_hash=resnet.WEIGHTS_HASHES["resnet50"][1])
        log.info("ResNet50 ImageNet weights fetched into the Keras cache", extra={"path": path})
        return Path(path)
    except Exception as exc:  # noqa: BLE001 - offline, DNS, proxy, hash mismatch: fall back
        log.info("could not fetch the ResNet50 ImageNet weights", extra={"error": f"{type(exc).__name__}: {exc}"})
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"failed_at": time.time(), "error": type(exc).__name__}))
        except OSError:
            pass
        return None
    finally:
        socket.setdefaulttimeout(previous)
