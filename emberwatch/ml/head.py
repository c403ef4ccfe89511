"""The trainable head: Normalization (adapted on training embeddings) → Dense(relu) → Dropout → Dense(2).

The Normalization layer goes first because a Dense head on raw (random-backbone) embeddings stays at
chance (DESIGN §7). ``export_head_npz`` writes the head as plain arrays and ``head_predict_numpy`` is
the same math in numpy, which is what Triton runs per model version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from emberwatch.ml import CLASSES

NORM, HIDDEN, DROPOUT, OUTPUT = "normalize", "hidden", "dropout", "probs"


def build_head(
    embedding_dim: int,
    units: int,
    dropout: float,
    normalization_adapted_on: np.ndarray,
    *,
    seed: int | None = None,
):
    """A Keras head model: (None, embedding_dim) embeddings → (None, 2) softmax probabilities."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    data = np.asarray(normalization_adapted_on, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != embedding_dim or len(data) == 0:
        raise ValueError(f"normalization data must be (N>0, {embedding_dim}), got {data.shape}")
    norm = keras.layers.Normalization(axis=-1, name=NORM)
    norm.adapt(data)
    inputs = keras.Input((embedding_dim,), dtype="float32", name="embeddings")
    x = norm(inputs)
    x = keras.layers.Dense(units, activation="relu", name=HIDDEN)(x)
    x = keras.layers.Dropout(dropout, name=DROPOUT)(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax", dtype="float32", name=OUTPUT)(x)
    return keras.Model(inputs, outputs, name="head")


def head_arrays(head_model) -> dict[str, np.ndarray]:
    """The head's parameters as float32 arrays: mean, variance, w1, b1, w2, b2."""
    norm = head_model.get_layer(NORM)
    hidden = head_model.get_layer(HIDDEN)
    out = head_model.get_layer(OUTPUT)
    w1, b1 = hidden.get_weights()
    w2, b2 = out.get_weights()
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return {
        "mean": f32(norm.mean).reshape(-1),
        "variance": f32(norm.variance).reshape(-1),
        "w1": f32(w1), "b1": f32(b1), "w2": f32(w2), "b2": f32(b2),
    }


def export_head_npz(head_model, path_dir: str | Path, *, backbone_id: str, image_size: int) -> Path:
    """Write ``head.npz`` and ``head.json`` into ``path_dir``; return the folder."""
    import keras

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
        "epsilon": float(keras.config.epsilon()),
    }, indent=2))
    return out


def load_head_npz(path_dir: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what ``export_head_npz`` wrote: (arrays, metadata)."""
    folder = Path(path_dir)
    with np.load(folder / "head.npz") as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    meta = json.loads((folder / "head.json").read_text())
    return arrays, meta


def head_predict_numpy(npz_arrays: dict, embeddings: np.ndarray, epsilon: float = 1e-7) -> np.ndarray:
    """The Keras head's inference math in numpy: (N, D) embeddings → (N, 2) probabilities."""
    e = np.asarray(embeddings, dtype=np.float32)
    mean = np.asarray(npz_arrays["mean"], dtype=np.float32).reshape(-1)
    var = np.asarray(npz_arrays["variance"], dtype=np.float32).reshape(-1)
    x = (e - mean) / np.maximum(np.sqrt(var), np.float32(epsilon))
    h = np.maximum(x @ npz_arrays["w1"] + npz_arrays["b1"], 0.0)
    z = h @ npz_arrays["w2"] + npz_arrays["b2"]
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def compose(backbone_model, head_model):
    """The full model: images (None, S, S, 3) float32 in [0, 255] → (None, 2) probabilities."""
    import keras

    inputs = keras.Input(backbone_model.input_shape[1:], dtype="float32", name="images")
    outputs = head_model(backbone_model(inputs))
    return keras.Model(inputs, outputs, name="classifier")
