"""Where Triton's path and the trainer's Keras path diverge, at each image size.

For a batch of simulated tiles (fire and fire-free places from ``simulators/mapbox``), the frozen
backbone runs through TensorFlow (what the trainer embeds with) and through the OpenVINO IR that
Triton serves; both heads (the legacy one: Normalization with epsilon 1e-7, and the current one:
floored standardisation, clipping, temperature, confidence guard) are trained on the TF embeddings and applied
to both. Prints, per image size:

- the embedding difference (max abs, relative to each feature's spread across images);
- each feature's spread: how many features are near-constant, and the largest amplification
  1/std the standardisation applies;
- the probability difference |p_triton - p_keras| (median, p99, max) for both heads;
- P(wildfire) of uniform grey / black / white images for both heads, and how far (r²) they lie
  from the training embeddings compared with the guard's knee.

Usage: ``flock /tmp/emberwatch-heavy.lock .venv/bin/python benchmarks/bench_numerics.py [N] [SIZES]``
(default 160 images, sizes 64,128,224). Results: benchmarks/serving.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scenes(n: int, size: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``n`` simulated tiles (half at fires, half 10-50 km away), decoded as the services decode them."""
    from simulators.mapbox.sample_tiles import sample_tiles

    return sample_tiles(n, size, seed)


def uniform_images(size: int) -> dict[str, np.ndarray]:
    return {name: np.full((1, size, size, 3), v, np.uint8)
            for name, v in (("grey 127", 127), ("grey 200", 200), ("black", 0), ("white", 255))}


def openvino_embed(backbone, images: np.ndarray) -> np.ndarray:

    from emberwatch.ml.backbone import compile_backbone_openvino, export_backbone_openvino

    with tempfile.TemporaryDirectory() as tmp:
        export_backbone_openvino(backbone, Path(tmp))
        compiled = compile_backbone_openvino(Path(tmp) / "backbone.xml")
        out = compiled.outputs[0]
        return np.concatenate([np.asarray(compiled(images[i:i + 16].astype(np.float32))[out])
                               for i in range(0, len(images), 16)])


def legacy_head_numpy(x_train: np.ndarray, y_train: np.ndarray, seed: int = 0):
    """The head as it was: Keras Normalization (epsilon 1e-7 floor) → Dense(128) → Dense(2)."""
    import keras

    from emberwatch.ml.head import head_predict_numpy

    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(x_train)
    inp = keras.Input((x_train.shape[1],))
    h = keras.layers.Dense(128, activation="relu")(norm(inp))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0)
    w1, b1 = model.layers[2].get_weights()
    w2, b2 = model.layers[3].get_weights()
    arrays = {"mean": np.asarray(norm.mean).reshape(-1), "variance": np.asarray(norm.variance).reshape(-1),
              "w1": w1, "b1": b1, "w2": w2, "b2": b2}
    return lambda e: head_predict_numpy(arrays, e, 1e-7)


def current_head_numpy(x_train, y_train, x_val, y_val):
    from emberwatch.ml.head import amplification, head_predict_numpy
    from services.trainer.search_head import search_head

    result = search_head(x_train, y_train, x_val, y_val, units_grid=[128], learning_rates=[1e-3],
                         dropout=0.3, epochs=60, patience=8, batch_size=32, seed=0)
    arrays = result.arrays
    predict = lambda e: head_predict_numpy(arrays, e)  # noqa: E731
    predict.amplification = amplification(arrays)
    predict.r2_ref = float(arrays["r2_ref"][0])
    predict.r2 = lambda e: np.mean(np.square((e - arrays["mean"]) / np.sqrt(arrays["variance"])), axis=1)
    predict.temperature = result.temperature
    return predict


def quantiles(a: np.ndarray) -> str:
    a = np.asarray(a).reshape(-1)
    return f"{np.median(a):.1e} / {np.quantile(a, 0.99):.1e} / {a.max():.1e}"


def main(n: int, sizes: list[int]) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from emberwatch.ml.backbone import embed, load_backbone
    from emberwatch.ml.settings import MLSettings

    rows = []
    for size in sizes:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as state:
            settings = MLSettings(state_dir=Path(state), image_size=size)
            backbone = load_backbone(settings)
            images, labels = scenes(n, size)
            probes = uniform_images(size)
            probe_stack = np.concatenate(list(probes.values()))
            tf_emb = embed(backbone, images)
            ov_emb = openvino_embed(backbone, np.concatenate([images, probe_stack]))
            tf_probe = embed(backbone, probe_stack)
        ov_img, ov_probe = ov_emb[:len(images)], ov_emb[len(images):]
        std = tf_emb.std(axis=0)
        spread = np.median(std)
        diff = np.abs(tf_emb - ov_emb[:len(images)])
        rel = diff.max(axis=0) / np.maximum(std, 1e-30)
        train = np.arange(len(images)) % 4 != 0
        val = ~train
        legacy = legacy_head_numpy(tf_emb[train], labels[train])
        current = current_head_numpy(tf_emb[train], labels[train], tf_emb[val], labels[val])
        row = {
            "size": size, "n": len(images),
            "emb max abs diff": f"{diff.max():.1e}",
            "emb diff / median spread": f"{diff.max() / spread:.1e}",
            "features std < 1e-3 x median": int((std < 1e-3 * spread).sum()),
            "max 1/std (legacy amplification)": f"{1 / max(std.min(), 1e-7):.1e}",
            "max diff / own std": f"{rel.max():.1e}",
            "current max amplification": f"{current.amplification:.1e}",
            "current temperature": f"{current.temperature:.2f}",
            "current r2 of probes / r2_ref": " / ".join(f"{v / current.r2_ref:.0f}" for v in current.r2(tf_probe)),
            "current r2 of val scenes / r2_ref (max)": f"{(current.r2(tf_emb[val]) / current.r2_ref).max():.2f}",
        }
        for name, head in (("legacy", legacy), ("current", current)):
            p_tf, p_ov = head(tf_emb)[:, 1], head(ov_img)[:, 1]
            row[f"{name} |dp| med/p99/max"] = quantiles(np.abs(p_tf - p_ov))
            row[f"{name} decisions differ"] = int(((p_tf >= 0.5) != (p_ov >= 0.5)).sum())
            pt, po = head(tf_probe)[:, 1], head(ov_probe)[:, 1]
            row[f"{name} P(wildfire) grey127/grey200/black/white (TF)"] = " / ".join(f"{v:.3f}" for v in pt)
            row[f"{name} probe |dp| max"] = f"{np.abs(pt - po).max():.1e}"
            acc = ((head(tf_emb[val])[:, 1] >= 0.5) == labels[val]).mean()
            row[f"{name} val accuracy"] = f"{acc:.3f}"
        row["seconds"] = f"{time.perf_counter() - t0:.0f}"
        rows.append(row)
        print(f"size {size} done in {row['seconds']} s", file=sys.stderr)
    keys = list(rows[0])
    print("| measure | " + " | ".join(f"{r['size']} px" for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for k in keys[1:]:
        print(f"| {k} | " + " | ".join(str(r[k]) for r in rows) + " |")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 160
    sizes = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "64,128,224").split(",")]
    main(count, sizes)
