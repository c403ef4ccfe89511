"""The leakage check's baselines, pure: a shortcut in location or in simple statistics is caught."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.check_leakage import SplitData, check_leakage


def _split(rng, n: int, *, leaky_location: bool, stats_cue: bool) -> SplitData:
    y = np.arange(n) % 2
    if leaky_location:  # fire-free tiles all from one region, fires elsewhere
        lat = np.where(y == 0, rng.uniform(60, 61, n), rng.uniform(48, 58, n))
        lon = np.where(y == 0, rng.uniform(-136, -135, n), rng.uniform(-125, -70, n))
    else:  # both classes from the same places
        lat, lon = rng.uniform(48, 60, n), rng.uniform(-125, -70, n)
    stats = rng.normal(0, 1, (n, 14))
    if stats_cue:
        stats[:, 7] += 3.0 * y  # the "dark" share gives the label away
    return SplitData(np.column_stack([lat, lon]), stats, y)


def _cnn(y: np.ndarray, accuracy: float, rng) -> np.ndarray:
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, 1 - y, y)


@pytest.mark.parametrize("leaky_location,stats_cue,expect", [
    (True, False, "location-only"),
    (False, True, "colour/brightness statistics"),
    (False, False, None),
])
def test_a_baseline_close_to_the_cnn_warns(leaky_location, stats_cue, expect):
    rng = np.random.default_rng(3)
    parts = [_split(rng, n, leaky_location=leaky_location, stats_cue=stats_cue) for n in (200, 60, 80)]
    result = check_leakage(*parts, _cnn(parts[2].labels, 0.9, rng), split="test", margin=0.05)
    assert result.n == 80 and 0.8 <= result.cnn_accuracy <= 1.0
    if expect is None:
        assert result.warning is None
        assert result.location_accuracy < 0.7 and result.statistics_accuracy < 0.7
    else:
        assert result.warning is not None and expect in result.warning
        assert "test split (n=80)" in result.warning
    assert set(result.metrics()) >= {"leakage_cnn_accuracy", "leakage_location_accuracy",
                                     "leakage_statistics_accuracy", "leakage_warning"}
    assert result.contract()["warning"] == result.warning


def test_unknown_locations_skip_the_location_baseline_and_mismatched_predictions_are_refused():
    rng = np.random.default_rng(4)
    parts = [_split(rng, n, leaky_location=True, stats_cue=False) for n in (100, 30, 40)]
    parts[0].location[0] = np.nan
    result = check_leakage(*parts, parts[2].labels, split="val", margin=0.05)
    assert result.location_accuracy is None and result.statistics_accuracy is not None
    with pytest.raises(ValueError, match="3 CNN predictions for 40 tiles"):
        check_leakage(*parts, np.zeros(3), split="val", margin=0.05)


def test_one_class_in_training_fits_no_baseline():
    rng = np.random.default_rng(5)
    train = _split(rng, 40, leaky_location=False, stats_cue=False)
    train = SplitData(train.location, train.statistics, np.zeros(40, dtype=np.int64))
    val, test = (_split(rng, n, leaky_location=False, stats_cue=False) for n in (20, 20))
    result = check_leakage(train, val, test, test.labels, split="test", margin=0.05)
    assert result.location_accuracy is None and result.statistics_accuracy is None and result.warning is None
