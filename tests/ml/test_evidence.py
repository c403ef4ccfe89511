"""Blank and uniform images are evidence of nothing; real tiles are untouched; decisions never flip."""

from __future__ import annotations

import numpy as np

from emberwatch.ml.evidence import evidence_factor, evidence_layer, shrink_to_evidence, texture


def test_uniform_images_get_exactly_one_half_and_textured_ones_are_untouched():
    rng = np.random.default_rng(0)
    uniform = np.stack([np.full((32, 32, 3), v, np.float32) for v in (0, 127, 200, 255)])
    textured = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    confident = np.array([[0.0, 1.0]] * 4, np.float32)
    np.testing.assert_allclose(shrink_to_evidence(confident, uniform), 0.5)
    probs = np.array([[0.1, 0.9], [0.7, 0.3], [0.5, 0.5]], np.float32)
    np.testing.assert_allclose(shrink_to_evidence(probs, textured), probs)


def test_the_factor_ramps_between_the_thresholds_and_keeps_the_decision():
    assert evidence_factor(np.array([0.0, 1.0]))[1] == 0.0
    assert 0 < evidence_factor(np.array([2.5]))[0] < 1
    assert evidence_factor(np.array([4.0, 40.0])).tolist() == [1.0, 1.0]
    faint = np.zeros((2, 32, 32, 3), np.float32)
    faint[:, ::2] = 5.0  # spatial std 2.5: a faint pattern
    assert 1.0 < texture(faint)[0] < 4.0
    p = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    shrunk = shrink_to_evidence(p, faint)
    assert (shrunk.argmax(1) == p.argmax(1)).all() and (np.abs(shrunk - 0.5) < np.abs(p - 0.5)).all()
    np.testing.assert_allclose(shrunk.sum(1), 1.0, atol=1e-6)


def test_the_keras_layer_is_the_numpy_function():
    import keras

    rng = np.random.default_rng(1)
    images = np.concatenate([rng.integers(0, 256, (2, 16, 16, 3)), np.full((1, 16, 16, 3), 90),
                             np.tile(np.array([0, 5], np.float32)[:, None, None], (1, 8, 16, 3))[None]
                             .reshape(1, 16, 16, 3)]).astype(np.float32)
    probs = rng.dirichlet([1, 1], len(images)).astype(np.float32)
    img_in, p_in = keras.Input((16, 16, 3)), keras.Input((2,))
    model = keras.Model([img_in, p_in], evidence_layer()([img_in, p_in]))
    np.testing.assert_allclose(model.predict([images, probs], verbose=0), shrink_to_evidence(probs, images),
                               atol=1e-5)


def test_texture_is_the_mean_of_each_channels_spatial_spread():
    rng = np.random.default_rng(2)
    images = np.zeros((3, 12, 20, 3), np.float32)  # not square: rows and columns cannot be swapped
    images[..., 0] = 100.0                          # a flat red plane: spread 0
    images[..., 1] = rng.normal(100, 10, (3, 12, 20))
    images[..., 2] = rng.normal(100, 30, (3, 12, 20))
    images[2] = 0.0
    images[2, :, :10, 2] = 60.0                      # half the blue plane lit: spread 30, the rest flat
    expected = images.astype(np.float64).std(axis=(1, 2)).mean(axis=-1)
    np.testing.assert_allclose(texture(images), expected, rtol=1e-5)
    np.testing.assert_allclose(texture(images[2:])[0], 10.0, rtol=1e-6)
