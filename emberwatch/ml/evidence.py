"""An image without spatial variation is evidence of nothing: its probability goes to 0.5.

Measured on the frozen random-init ResNet50 (``benchmarks/serving.md``): a uniform grey image's
embedding lies among the simulated scenes' embeddings (its nearest-neighbour distance is that of a
held-out scene), next to the dark burn-scar scenes, so every head trained on them, however
regularised, called it a fire with P ≥ 0.99 — and no embedding-space distance can tell it apart.
The input itself can: a blank or uniform image has (almost) no spatial spread. Real Mapbox tiles
have a per-channel spatial standard deviation of 33–40 grey levels (the fixtures), simulated ones
11–50; a Mapbox "no coverage" tile or a uniform test image has 0.

``evidence_factor`` is 0 below ``TEXTURE_NONE`` and 1 from ``TEXTURE_FULL`` (linear between), and
the probabilities become ``0.5 + factor × (p − 0.5)``: every real tile is untouched, a uniform one
gets exactly 0.5, and no decision ever changes side (the shrink keeps the sign of p − 0.5). Both the
trainer's Keras model (the ``EvidenceShrink`` layer of ``compose``) and Triton's ``wildfire`` model
apply it, with this one definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TEXTURE_NONE = 1.0  # grey levels of spatial std: below, the image shows nothing
TEXTURE_FULL = 4.0  # from here on, the classifier's probability stands as it is


def texture(images: np.ndarray) -> np.ndarray:
    """(N,) mean over channels of each image's spatial standard deviation (RGB in [0, 255]).

    The pixels are laid out channel by channel first, so each standard deviation is a reduction over
    contiguous memory: 0.15 ms for one 224 px image instead of 1.8 ms for ``std(axis=(1, 2))`` on
    the interleaved channels, and closer to the float64 value (pairwise summation)."""
    x = np.asarray(images, dtype=np.float32)
    planes = np.ascontiguousarray(x.reshape(x.shape[0], -1, x.shape[-1]).transpose(0, 2, 1))
    return planes.std(axis=-1).mean(axis=-1)


def evidence_factor(tex: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(tex, np.float32) - TEXTURE_NONE) / (TEXTURE_FULL - TEXTURE_NONE), 0.0, 1.0)


def shrink_to_evidence(probs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """(N, 2) probabilities shrunk toward 0.5 by each image's evidence factor."""
    return shrink_by(probs, evidence_factor(texture(images)))


def shrink_by(probs: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``shrink_to_evidence`` with the images' evidence factors (N,) already computed: several
    models' probabilities for the same images pay for the image statistics once."""
    f = np.asarray(factors, np.float32)[:, None]
    return (0.5 + f * (np.asarray(probs, np.float32) - 0.5)).astype(np.float32)


_LAYER: Any = None


def evidence_layer(**kwargs):
    """The Keras layer ``EvidenceShrink()([images, probs])`` (registered for saving/loading)."""
    global _LAYER
    if _LAYER is None:
        import keras

        @keras.saving.register_keras_serializable(package="emberwatch")
        class EvidenceShrink(keras.layers.Layer):
            """0.5 + evidence_factor(texture(images)) × (probs − 0.5), as in ``shrink_to_evidence``."""

            def call(self, inputs):
                images, probs = inputs
                ops = keras.ops
                tex = ops.mean(ops.std(images, axis=(1, 2)), axis=-1, keepdims=True)
                f = ops.clip((tex - TEXTURE_NONE) / (TEXTURE_FULL - TEXTURE_NONE), 0.0, 1.0)
                return 0.5 + f * (probs - 0.5)

            def compute_output_shape(self, input_shape):
                return input_shape[1]

        _LAYER = EvidenceShrink
    return _LAYER(**kwargs)
