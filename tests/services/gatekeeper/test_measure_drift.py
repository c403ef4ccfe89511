"""PSI of P(wildfire): identical distributions are stable, shifted ones drift, empty bins are finite."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.gatekeeper.measure_drift import EDGES, bin_counts, psi


def test_scores_are_counted_in_ten_bins_a_tenth_wide():
    assert EDGES[0] == 0.0 and EDGES[-1] == 1.0 and len(EDGES) == 11
    assert bin_counts([0.0, 0.05, 0.1, 0.55, 0.99, 1.0]) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bin_counts([]) == [0] * 10


def test_identical_distributions_have_a_psi_near_zero():
    rng = np.random.default_rng(0)
    ref = bin_counts(rng.beta(2, 5, 5000))
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    same_shape = bin_counts(rng.beta(2, 5, 5000))  # another sample of the same distribution
    assert psi(ref, same_shape) < 0.02


def test_a_shifted_distribution_drifts_past_the_alert_threshold():
    rng = np.random.default_rng(1)
    ref = bin_counts(rng.beta(2, 5, 5000))      # mostly low P(wildfire)
    shifted = bin_counts(rng.beta(5, 2, 5000))  # mostly high
    mild = bin_counts(np.clip(rng.beta(2, 5, 5000) + 0.05, 0, 1))
    assert psi(ref, shifted) > 0.2
    assert psi(ref, mild) < psi(ref, shifted)


def test_empty_bins_stay_finite_thanks_to_epsilon():
    ref = [100, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    live = [0, 0, 0, 0, 0, 0, 0, 0, 0, 100]
    value = psi(ref, live)
    assert math.isfinite(value) and value > 0.2
    # with epsilon 1e-4 both bins contribute (1 - 1e-4) * ln(1e4)
    assert value == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))
    assert psi(ref, live, epsilon=1e-2) < value


def test_mismatched_or_empty_histograms_are_refused():
    with pytest.raises(ValueError, match="same bins"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        psi([0] * 10, [1] * 10)
    with pytest.raises(ValueError, match="negative"):
        psi([-1, 2], [1, 2])
