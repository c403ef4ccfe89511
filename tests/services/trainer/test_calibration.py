"""Calibration pieces of a training: the fitted temperature, the ECE, the known images' margin."""

from __future__ import annotations

import numpy as np

from services.trainer.evaluate import expected_calibration_error, split_metrics
from services.trainer.pipeline import keep_clear_decisions
from services.trainer.search_head import fit_temperature


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_the_fitted_temperature_undoes_overconfidence():
    rng = np.random.default_rng(0)
    n = 4000
    true_logit = rng.normal(0, 2, n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-true_logit))).astype(int)
    logits = np.stack([np.zeros(n), true_logit * 3.0], axis=1)  # three times too confident
    t = fit_temperature(logits, y)
    assert 2.6 < t < 3.4
    assert expected_calibration_error(y, _softmax(logits / t)) < expected_calibration_error(y, _softmax(logits)) / 3


def test_temperature_is_one_when_a_class_is_missing():
    assert fit_temperature(np.zeros((5, 2)), np.zeros(5, dtype=int)) == 1.0


def test_ece_of_a_perfectly_calibrated_and_of_a_certain_but_wrong_model():
    y = np.array([0, 1] * 50)
    assert expected_calibration_error(y, np.full((100, 2), 0.5)) == 0.0  # 50% sure, right half the time
    wrong = np.eye(2)[1 - y]
    assert expected_calibration_error(y, wrong) == 1.0
    assert "val_ece" in split_metrics(y, wrong, "val")


def test_known_images_keep_a_clear_decision():
    records = list("abcdef")
    images = np.arange(6)[:, None]
    probs = np.array([[0.5, 0.5], [0.1, 0.9], [0.48, 0.52], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], np.float32)
    kept, imgs, p = keep_clear_decisions(records, images, probs, 3, 0.05)
    assert kept == ["b", "d", "e"] and imgs.ravel().tolist() == [1, 3, 4]
    assert (np.abs(p[:, 1] - 0.5) >= 0.05).all()
    kept, _, _ = keep_clear_decisions(records, images, probs, 5, 0.05)  # 4 clear ones + the clearest other
    assert kept == ["b", "c", "d", "e", "f"]
