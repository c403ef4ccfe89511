import json

import numpy as np
import pytest

from emberwatch.ml import CLASSES
from emberwatch.ml.head import (
    amplification,
    apply_temperature,
    build_head,
    compose,
    export_head_npz,
    head_arrays,
    head_predict_numpy,
    load_head_npz,
    logits_model,
)


def _blobs(n: int, dim: int = 64, seed: int = 0):
    """Two classes that differ in a few dimensions, on a large offset and scale (like raw embeddings)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, dim)).astype(np.float32)
    x[:, :4] += (y[:, None] * 2.5)
    x = x * 40.0 + 500.0
    return x.astype(np.float32), y


def test_structure_standardise_clip_dense_guard():
    x, _ = _blobs(50)
    head = build_head(64, 16, 0.2, x, seed=0)
    names = [layer.name for layer in head.layers]
    assert names == ["embeddings", "normalize", "clip_shift", "clip", "clip_unshift", "hidden", "dropout",
                     "logits", "guard", "probs"]
    assert head.output_shape == (None, 2)
    arrays = head_arrays(head)
    np.testing.assert_allclose(arrays["mean"], x.mean(axis=0), rtol=1e-4)
    # the spread is floored at a tenth of the median spread: never below, equal where above
    floor = (0.1 * np.median(x.std(axis=0))) ** 2
    np.testing.assert_allclose(arrays["variance"], np.maximum(x.var(axis=0), floor), rtol=1e-3)


def test_amplification_is_bounded_even_with_dead_features():
    x, _ = _blobs(80)
    x[:, 7] = 3.0  # a dead feature: the plain Normalization layer multiplied it by 1e7
    x[:, 8] = 3.0 + np.random.default_rng(0).normal(0, 1e-6, len(x))  # a nearly dead one
    arrays = head_arrays(build_head(64, 8, 0.0, x, seed=0))
    median_std = float(np.median(x.std(axis=0)))
    assert amplification(arrays) <= 1 / (0.1 * median_std) * 1.001


def test_inputs_far_from_the_training_embeddings_get_no_confidence():
    x, y = _blobs(300, seed=3)
    head = build_head(64, 16, 0.0, x, seed=0)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(x, y, epochs=30, batch_size=32, verbose=0)
    arrays = head_arrays(head)
    inside = head_predict_numpy(arrays, x)
    assert (np.abs(inside[:, 1] - 0.5) > 0.4).mean() > 0.5  # confident on what it knows
    far = np.full((4, 64), 500.0, np.float32)
    far[:, :4] += np.array([1e4, -1e4, 1e5, 1e3], np.float32)[:, None]  # e.g. a uniform grey image
    p_far = head_predict_numpy(arrays, far)
    np.testing.assert_allclose(p_far[:, 1], 0.5, atol=0.05)
    np.testing.assert_allclose(head.predict(far, verbose=0), p_far, atol=1e-5)


def test_the_guard_never_changes_a_decision():
    x, y = _blobs(200, seed=5)
    head = build_head(64, 16, 0.0, x, seed=0)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(x, y, epochs=10, batch_size=32, verbose=0)
    arrays = head_arrays(head)
    unguarded = {k: v for k, v in arrays.items() if k != "r2_ref"}
    probe = x * np.float32(1.5) - 250  # further out than the training embeddings
    assert (head_predict_numpy(arrays, probe).argmax(1) == head_predict_numpy(unguarded, probe).argmax(1)).all()


def test_temperature_divides_the_logits():
    x, y = _blobs(100)
    head = build_head(64, 8, 0.0, x, seed=0)
    before = logits_model(head).predict(x[:5], verbose=0)
    apply_temperature(head, 2.0)
    np.testing.assert_allclose(logits_model(head).predict(x[:5], verbose=0), before / 2.0, rtol=1e-5, atol=1e-6)


def test_the_head_survives_keras_save_and_load(tmp_path):
    import keras

    x, _ = _blobs(60)
    head = build_head(64, 8, 0.0, x, seed=0)
    head.save(tmp_path / "head.keras")
    again = keras.models.load_model(tmp_path / "head.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), head.predict(x, verbose=0), atol=1e-6)


def test_numpy_math_equals_keras_and_npz_roundtrip(tmp_path):
    x, y = _blobs(120)
    head = build_head(64, 32, 0.5, x, seed=1)
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.fit(x, y, epochs=3, batch_size=32, verbose=0)
    out = export_head_npz(head, tmp_path / "triton", backbone_id="resnet50-abc-32", image_size=32)
    arrays, meta = load_head_npz(out)
    assert set(arrays) == {"mean", "variance", "clip", "r2_ref", "w1", "b1", "w2", "b2"}
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


def test_zero_variance_feature_matches_keras():
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
    head = build_head(backbone.embedding_dim, 8, 0.1, np.concatenate([emb, emb + 1.0]), seed=0)
    full = compose(backbone.model, head)
    np.testing.assert_allclose(full.predict(images.astype(np.float32), verbose=0),
                               head_predict_numpy(head_arrays(head), emb), atol=1e-4)
