import json

import numpy as np
import pytest

from emberwatch.ml import CLASSES
from emberwatch.ml.head import (
    build_head,
    compose,
    export_head_npz,
    head_arrays,
    head_predict_numpy,
    load_head_npz,
)


def _blobs(n: int, dim: int = 64, seed: int = 0):
    """Two classes that differ in a few dimensions, on a large offset and scale (like raw embeddings)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, dim)).astype(np.float32)
    x[:, :4] += (y[:, None] * 2.5)
    x = x * 40.0 + 500.0
    return x.astype(np.float32), y


def test_structure_normalization_first():
    x, _ = _blobs(50)
    head = build_head(64, 16, 0.2, x, seed=0)
    names = [layer.name for layer in head.layers]
    assert names == ["embeddings", "normalize", "hidden", "dropout", "probs"]
    assert head.output_shape == (None, 2)
    arrays = head_arrays(head)
    np.testing.assert_allclose(arrays["mean"], x.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(arrays["variance"], x.var(axis=0), rtol=1e-3)


def test_numpy_math_equals_keras_and_npz_roundtrip(tmp_path):
    x, y = _blobs(120)
    head = build_head(64, 32, 0.5, x, seed=1)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(x, y, epochs=3, batch_size=32, verbose=0)
    out = export_head_npz(head, tmp_path / "triton", backbone_id="resnet50-abc-32", image_size=32)
    arrays, meta = load_head_npz(out)
    assert set(arrays) == {"mean", "variance", "w1", "b1", "w2", "b2"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert meta["classes"] == list(CLASSES) == ["nowildfire", "wildfire"]
    assert meta["units"] == 32 and meta["backbone_id"] == "resnet50-abc-32" and meta["image_size"] == 32
    assert meta["epsilon"] == pytest.approx(1e-7)
    json.dumps(meta)
    keras_p = head.predict(x, verbose=0)
    np_p = head_predict_numpy(arrays, x, meta["epsilon"])
    assert np_p.shape == (120, 2)
    assert np.abs(keras_p - np_p).max() < 1e-5
    np.testing.assert_allclose(np_p.sum(axis=1), 1.0, atol=1e-6)


def test_zero_variance_feature_uses_epsilon_like_keras():
    x, _ = _blobs(40, dim=8)
    x[:, 5] = 3.0  # a dead feature
    head = build_head(8, 4, 0.0, x, seed=2)
    probe = x.copy()
    probe[:3, 5] = 3.0 + 1e-6
    np.testing.assert_allclose(head_predict_numpy(head_arrays(head), probe),
                               head.predict(probe, verbose=0), atol=1e-5)


def test_head_learns_separable_embeddings():
    x, y = _blobs(400, seed=4)
    head = build_head(64, 32, 0.2, x[:300], seed=0)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(x[:300], y[:300], epochs=15, batch_size=32, verbose=0)
    acc = (head.predict(x[300:], verbose=0).argmax(1) == y[300:]).mean()
    assert acc > 0.85


def test_bad_normalization_data_is_rejected():
    with pytest.raises(ValueError, match="normalization data"):
        build_head(64, 16, 0.2, np.zeros((10, 32), np.float32))
    with pytest.raises(ValueError, match="normalization data"):
        build_head(64, 16, 0.2, np.zeros((0, 64), np.float32))


def test_compose_full_model(backbone):
    from emberwatch.ml.backbone import embed

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    emb = embed(backbone, images)
    head = build_head(2048, 8, 0.1, np.concatenate([emb, emb + 1.0]), seed=0)
    full = compose(backbone.model, head)
    np.testing.assert_allclose(full.predict(images.astype(np.float32), verbose=0),
                               head_predict_numpy(head_arrays(head), emb), atol=1e-4)
