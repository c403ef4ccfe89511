"""The gate as a pure function, tested by simulation and on hand-made counts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.contingency_tables import mcnemar

from services.gatekeeper.decide_promotion import (
    GateThresholds,
    PairedCounts,
    decide_promotion,
    mcnemar_exact,
    paired_bootstrap,
    passes_floor,
)

# Two heads on the same frozen backbone make correlated mistakes: correctness is drawn through a
# Gaussian copula with this correlation (at 0.85 recall / 0.90 specificity the two models agree on
# about 87% of tiles; independent models would agree on about 78%).
MODEL_CORRELATION = 0.7


def simulate(rng, n, *, prevalence=0.5, recall_champion=0.85, recall_challenger=0.85,
             specificity=0.90, rho=MODEL_CORRELATION) -> PairedCounts:
    y = (rng.random(n) < prevalence).astype(int)
    shared = rng.standard_normal(n)
    za = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n)
    zb = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n)
    pa = np.where(y == 1, recall_champion, specificity)
    pb = np.where(y == 1, recall_challenger, specificity)
    pred_a = np.where(za < norm.ppf(pa), y, 1 - y)
    pred_b = np.where(zb < norm.ppf(pb), y, 1 - y)
    return PairedCounts.from_arrays(y, pred_a, pred_b)


def promotion_rate(delta: float, *, runs: int, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    thresholds = GateThresholds(n_bootstrap=500)
    promoted = 0
    for _ in range(runs):
        counts = simulate(rng, n, recall_challenger=0.85 + delta)
        promoted += decide_promotion(counts, thresholds, rng).promote
    return promoted / runs


def test_a_challenger_two_points_worse_in_recall_is_almost_never_promoted():
    assert promotion_rate(-0.02, runs=500, n=1000, seed=11) <= 0.05


def test_a_challenger_five_points_better_is_promoted_at_1000_pairs():
    assert promotion_rate(+0.05, runs=500, n=1000, seed=12) >= 0.80


def test_too_few_pairs_means_wait_not_promote():
    rng = np.random.default_rng(0)
    counts = simulate(rng, 100, recall_challenger=0.99)
    result = decide_promotion(counts, GateThresholds(min_samples=200))
    assert result.verdict == "wait"
    assert "100/200" in result.reason


def test_calling_everything_wildfire_loses_on_accuracy_despite_perfect_recall():
    y = np.array([1] * 300 + [0] * 300)
    champion = y.copy()
    champion[:45] = 0           # recall 0.85
    champion[300:330] = 1       # specificity 0.90
    challenger = np.ones_like(y)  # recall 1.0, specificity 0
    result = decide_promotion(PairedCounts.from_arrays(y, champion, challenger), GateThresholds())
    assert result.verdict == "reject"
    assert "accuracy" in result.reason
    assert result.challenger_recall == 1.0


def test_identical_models_are_not_promoted():
    y = np.array([1, 0] * 300)
    pred = y.copy()
    pred[::7] = 1 - pred[::7]
    result = decide_promotion(PairedCounts.from_arrays(y, pred, pred), GateThresholds())
    assert result.verdict == "reject"
    assert result.p_value == 1.0
    assert result.recall_delta.estimate == 0.0


def test_counts_and_mcnemar_match_statsmodels():
    rng = np.random.default_rng(3)
    counts = simulate(rng, 400, recall_challenger=0.9)
    result = decide_promotion(counts, GateThresholds(min_samples=10))
    table = [[result.both_correct, result.champion_only_correct],
             [result.challenger_only_correct, result.both_wrong]]
    assert sum(map(sum, table)) == 400
    expected = mcnemar(np.array(table), exact=True).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)
    assert mcnemar_exact(0, 0) == 1.0


def test_multinomial_bootstrap_matches_resampling_tiles():
    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.5).astype(int)
    a = np.where(rng.random(300) < 0.85, y, 1 - y)
    b = np.where(rng.random(300) < 0.80, y, 1 - y)
    counts = PairedCounts.from_arrays(y, a, b)
    recall, accuracy = paired_bootstrap(counts, 4000, 0.95, np.random.default_rng(1))
    # the same interval by resampling tile indices
    idx = np.random.default_rng(2).integers(0, 300, size=(4000, 300))
    yy, ca, cb = y[idx], (a == y)[idx], (b == y)[idx]
    acc = (cb.mean(axis=1) - ca.mean(axis=1))
    rec = ((cb & (yy == 1)).sum(1) - (ca & (yy == 1)).sum(1)) / (yy == 1).sum(1)
    assert accuracy.low == pytest.approx(np.percentile(acc, 2.5), abs=0.01)
    assert accuracy.high == pytest.approx(np.percentile(acc, 97.5), abs=0.01)
    assert recall.low == pytest.approx(np.percentile(rec, 2.5), abs=0.015)
    assert accuracy.estimate == pytest.approx((b == y).mean() - (a == y).mean())


def test_the_gate_is_deterministic_for_a_seed():
    counts = simulate(np.random.default_rng(9), 500, recall_challenger=0.9)
    t = GateThresholds(seed=42)
    assert decide_promotion(counts, t) == decide_promotion(counts, t)


def test_floor_for_the_first_model():
    assert passes_floor(0.8, 0.8, floor_recall=0.7, floor_accuracy=0.7)[0]
    ok, why = passes_floor(0.6, 0.9, floor_recall=0.7, floor_accuracy=0.7)
    assert not ok and "recall" in why
    assert not passes_floor(None, 0.9, floor_recall=0.7, floor_accuracy=0.7)[0]
