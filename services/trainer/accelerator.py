"""GPU when TensorFlow sees one (mixed precision for the heavy fine-tuning path), CPU otherwise."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


def gpus() -> list[str]:
    import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]


def device_name() -> str:
    return "gpu" if gpus() else "cpu"


def use_mixed_precision(setting: str) -> bool:
    """``auto``: on when a GPU is visible; ``on``/``off`` force it."""
    setting = setting.lower()
    if setting == "on":
        return True
    if setting == "off":
        return False
    return bool(gpus())


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[str]:
    """Build and train models inside this block under ``mixed_float16`` (or ``float32``)."""
    import keras

    previous = keras.mixed_precision.global_policy().name
    policy = "mixed_float16" if mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)
