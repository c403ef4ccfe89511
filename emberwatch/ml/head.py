"""The trainable head, built so its outputs stay numerically sane on any embedding.

Layers (the same math in Keras for training and in numpy for Triton's ``head`` model):

1. ``normalize`` — standardise each embedding feature with the training mean and a *floored*
   spread: ``scale_j = max(std_j, std_floor_ratio × median_j std_j)``. A frozen random ResNet50 has
   features that barely vary across images; dividing by their own tiny spread (the plain
   ``Normalization`` layer, epsilon 1e-7) amplified them by up to 1e5, so the 1e-6 differences
   between OpenVINO and TensorFlow numerics, or any image unlike the training set, moved the
   probability by 1e-2 or saturated it at 1.0. The floor bounds the amplification to
   ``1 / (std_floor_ratio × median std)`` (``benchmarks/serving.md`` has the measurements).
2. ``clip`` — clip every standardised feature to ``[-clip, +clip]`` (two ``Rescaling`` layers
   around a ``ReLU(max_value=2·clip)``): however far an input lies from the training embeddings,
   it reaches the dense layers as a bounded vector.
3. ``hidden`` Dense(relu, L2) → ``dropout`` → ``logits`` Dense(2). The trainer fits a temperature
   on the validation split and folds it into ``logits`` (calibration).
4. ``guard`` — a distance-aware confidence guard: ``r² = mean_j x_j²`` of the standardised (unclipped)
   features measures how far an embedding lies from the training ones; beyond the 99th percentile of
   the training embeddings' r² (``r2_ref``) the logits are multiplied by
   ``exp(-(r²/r2_ref - 1))``. A uniform grey image (r² hundreds of times ``r2_ref``) thus gets
   P(wildfire) ≈ 0.5 instead of 1.0000. Scaling both logits by one positive factor never changes a
   decision: only the confidence of inputs unlike anything trained on.
5. ``probs`` softmax.

``export_head_npz`` writes the parameters as plain arrays; ``head_predict_numpy`` is the inference
math in numpy, which is what Triton runs per model version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emberwatch.ml import CLASSES

NORM, CLIP_IN, CLIP, CLIP_OUT = "normalize", "clip_shift", "clip", "clip_unshift"
HIDDEN, DROPOUT, LOGITS, GUARD, OUTPUT = "hidden", "dropout", "logits", "guard", "probs"
GUARD_QUANTILE = 0.99
STD_FLOOR_RATIO = 0.1  # a feature is never amplified more than 10x beyond a typical feature
CLIP_VALUE = 6.0  # standard units; in-distribution features almost never reach it
L2 = 1e-3
EPSILON = 1e-7  # Keras Normalization's own floor (never reached once the spread is floored)


def floored_variance(data: np.ndarray, std_floor_ratio: float = STD_FLOOR_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) per feature of ``data`` with the spread floored at a share of the median."""
    x = np.asarray(data, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    floor = std_floor_ratio * float(np.median(std))
    if not floor > 0:  # more than half the features constant: floor at the mean spread, else 1
        floor = float(std.mean()) if std.mean() > 0 else 1.0
    scale = np.maximum(std, floor)
    return mean.astype(np.float32), (scale ** 2).astype(np.float32)


def reference_r2(standardised: np.ndarray, quantile: float = GUARD_QUANTILE) -> float:
    """The guard's knee: the ``quantile`` of r² = mean of squared standardised features."""
    r2 = np.mean(np.square(np.asarray(standardised, dtype=np.float64)), axis=1)
    return float(max(np.quantile(r2, quantile), 1e-6))


def guard_factor(r2: np.ndarray, r2_ref: float) -> np.ndarray:
    """1 up to ``r2_ref``, then exp(-(r²/r2_ref - 1)): the logits' shrink factor."""
    return np.exp(-np.maximum(np.asarray(r2, dtype=np.float32) / np.float32(r2_ref) - 1.0, 0.0))


_GUARD_CLASS: Any = None


def _guard_layer_class():
    global _GUARD_CLASS
    if _GUARD_CLASS is None:
        import keras

        @keras.saving.register_keras_serializable(package="emberwatch")
        class ConfidenceGuard(keras.layers.Layer):
            """Shrinks the logits of inputs far from the training embeddings (see module docstring)."""

            def __init__(self, r2_ref: float, **kwargs):
                super().__init__(**kwargs)
                self.r2_ref = float(r2_ref)

            def call(self, inputs):
                standardised, logits = inputs
                ops = keras.ops
                r2 = ops.mean(ops.square(standardised), axis=-1, keepdims=True)
                excess = ops.maximum(r2 / self.r2_ref - 1.0, 0.0)
                return logits * ops.exp(-excess)

            def compute_output_shape(self, input_shape):
                return input_shape[1]

            def get_config(self):
                return {**super().get_config(), "r2_ref": self.r2_ref}

        _GUARD_CLASS = ConfidenceGuard
    return _GUARD_CLASS


def load_head_keras(path: str | Path) -> Any:
    """A head saved with Keras' ``save`` (its custom layer registered before Keras reads it)."""
    import keras

    _guard_layer_class()
    return keras.models.load_model(path)


def build_head(
    embedding_dim: int,
    units: int,
    dropout: float,
    normalization_adapted_on: np.ndarray,
    *,
    seed: int | None = None,
    l2: float = L2,
    std_floor_ratio: float = STD_FLOOR_RATIO,
    clip: float = CLIP_VALUE,
):
    """A Keras head model: (None, embedding_dim) embeddings → (None, 2) softmax probabilities."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    data = np.asarray(normalization_adapted_on, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != embedding_dim or len(data) == 0:
        raise ValueError(f"normalization data must be (N>0, {embedding_dim}), got {data.shape}")
    if clip <= 0:
        raise ValueError("clip must be positive")
    mean, variance = floored_variance(data, std_floor_ratio)
    reg = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input((embedding_dim,), dtype="float32", name="embeddings")
    standardised = keras.layers.Normalization(axis=-1, mean=mean, variance=variance, name=NORM)(inputs)
    r2_ref = reference_r2((data - mean) / np.sqrt(variance))
    x = keras.layers.Rescaling(1.0, offset=clip, name=CLIP_IN)(standardised)
    x = keras.layers.ReLU(max_value=2 * clip, name=CLIP)(x)
    x = keras.layers.Rescaling(1.0, offset=-clip, name=CLIP_OUT)(x)
    x = keras.layers.Dense(units, activation="relu", kernel_regularizer=reg, name=HIDDEN)(x)
    x = keras.layers.Dropout(dropout, name=DROPOUT)(x)
    x = keras.layers.Dense(len(CLASSES), kernel_regularizer=reg, dtype="float32", name=LOGITS)(x)
    x = _guard_layer_class()(r2_ref, dtype="float32", name=GUARD)([standardised, x])
    outputs = keras.layers.Softmax(dtype="float32", name=OUTPUT)(x)
    return keras.Model(inputs, outputs, name="head")


def logits_model(head_model):
    """The same head up to the (guarded) logits, for temperature fitting."""
    import keras

    return keras.Model(head_model.inputs, head_model.get_layer(GUARD).output, name="head_logits")


def apply_temperature(head_model, temperature: float) -> None:
    """Divide the logits by ``temperature`` (folded into the last layer's weights)."""
    if not temperature > 0:
        raise ValueError("temperature must be positive")
    layer = head_model.get_layer(LOGITS)
    w, b = layer.get_weights()
    layer.set_weights([w / temperature, b / temperature])


def head_arrays(head_model) -> dict[str, np.ndarray]:
    """The head's parameters as float32 arrays: mean, variance, clip, r2_ref, w1, b1, w2, b2."""
    norm = head_model.get_layer(NORM)
    clip = float(head_model.get_layer(CLIP_IN).offset)
    hidden = head_model.get_layer(HIDDEN)
    out = head_model.get_layer(LOGITS)
    w1, b1 = hidden.get_weights()
    w2, b2 = out.get_weights()
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return {
        "mean": f32(norm.mean).reshape(-1),
        "variance": f32(norm.variance).reshape(-1),
        "clip": f32([clip]),
        "r2_ref": f32([head_model.get_layer(GUARD).r2_ref]),
        "w1": f32(w1), "b1": f32(b1), "w2": f32(w2), "b2": f32(b2),
    }


def amplification(arrays: dict[str, np.ndarray]) -> float:
    """The largest factor by which the standardisation multiplies an embedding difference."""
    return float(1.0 / np.sqrt(np.asarray(arrays["variance"], dtype=np.float64)).min())


def export_head_npz(head_model, path_dir: str | Path, *, backbone_id: str, image_size: int,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``head.npz`` and ``head.json`` into ``path_dir``; return the folder."""
    out = Path(path_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = head_arrays(head_model)
    np.savez(out / "head.npz", **arrays)
    (out / "head.json").write_text(json.dumps({
        "backbone_id": backbone_id,
        "image_size": int(image_size),
        "units": int(arrays["w1"].shape[1]),
        "embedding_dim": int(arrays["w1"].shape[0]),
        "classes": list(CLASSES),
        "epsilon": EPSILON,
        "clip": float(arrays["clip"][0]),
        "r2_ref": float(arrays["r2_ref"][0]),
        "max_amplification": amplification(arrays),
        **(extra or {}),
    }, indent=2))
    return out


def load_head_npz(path_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what ``export_head_npz`` wrote: (arrays, metadata)."""
    folder = Path(path_dir)
    with np.load(folder / "head.npz") as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    meta = json.loads((folder / "head.json").read_text())
    return arrays, meta


def head_predict_numpy(npz_arrays: dict, embeddings: np.ndarray, epsilon: float = EPSILON) -> np.ndarray:
    """The Keras head's inference math in numpy: (N, D) embeddings → (N, 2) probabilities."""
    e = np.asarray(embeddings, dtype=np.float32)
    mean = np.asarray(npz_arrays["mean"], dtype=np.float32).reshape(-1)
    var = np.asarray(npz_arrays["variance"], dtype=np.float32).reshape(-1)
    standardised = (e - mean) / np.maximum(np.sqrt(var), np.float32(epsilon))
    x = standardised
    if "clip" in npz_arrays:
        c = np.float32(np.asarray(npz_arrays["clip"]).reshape(-1)[0])
        x = np.clip(x, -c, c)
    h = np.maximum(x @ npz_arrays["w1"] + npz_arrays["b1"], 0.0)
    z = h @ npz_arrays["w2"] + npz_arrays["b2"]
    if "r2_ref" in npz_arrays:
        r2 = np.mean(np.square(standardised), axis=1)
        z = z * guard_factor(r2, float(np.asarray(npz_arrays["r2_ref"]).reshape(-1)[0]))[:, None]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def compose(backbone_model, head_model):
    """The full model: images (None, S, S, 3) float32 in [0, 255] → (None, 2) probabilities, with
    the images' evidence shrink (``emberwatch.ml.evidence``) last, as Triton's ``wildfire`` does."""
    import keras

    from emberwatch.ml.evidence import evidence_layer

    inputs = keras.Input(backbone_model.input_shape[1:], dtype="float32", name="images")
    probs = head_model(backbone_model(inputs))
    outputs = evidence_layer(dtype="float32", name="evidence")([inputs, probs])
    return keras.Model(inputs, outputs, name="classifier")
