"""The gate's properties under attack, on a seeded subset of benchmarks/bench_gate.py's grid.

Each case runs the sequential gate exactly as the gatekeeper does (same looks, same alpha spending).
With 150 runs, a true false-promotion rate of 5% would show as 7.5 promotions; the bounds below
leave room for that noise and still fail for a gate that lets a harmful challenger through.
"""

from __future__ import annotations

import pytest

from services.gatekeeper.core.decide_promotion import GateThresholds
from services.gatekeeper.simulate_gate import CHALLENGERS, simulate

BY_NAME = {c.name: c for c in CHALLENGERS}
RUNS = 150


@pytest.mark.parametrize("name, mix, n", [
    ("always wildfire", 0.9, 1000),      # the skewed stream that used to fool accuracy
    ("always no wildfire", 0.1, 1000),
    ("coin flip", 0.5, 200),
    ("label flip", 0.5, 200),
    ("recall -2", 0.9, 1000),
    ("recall +4, specificity -7", 0.5, 1000),
    ("same as champion", 0.5, 1000),
])
def test_harmful_challengers_are_rarely_promoted(name, mix, n):
    outcome = simulate(BY_NAME[name], n=n, mix=mix, correlation=0.8, runs=RUNS,
                       thresholds=GateThresholds(), seed=7)
    assert outcome.promoted <= 0.10, outcome


def test_small_samples_with_zero_cells_do_not_promote_noise():
    small = GateThresholds(min_pairs=50, min_wildfire_pairs=5, min_fire_free_pairs=5)
    outcome = simulate(BY_NAME["same as champion"], n=50, mix=0.5, correlation=0.8, runs=RUNS,
                       thresholds=small, seed=8)
    assert outcome.promoted <= 0.10, outcome


def test_a_five_point_better_challenger_is_promoted_at_1000_balanced_pairs():
    outcome = simulate(BY_NAME["recall +5"], n=1000, mix=0.5, correlation=0.8, runs=RUNS,
                       thresholds=GateThresholds(), seed=9)
    assert outcome.promoted >= 0.75, outcome  # 87% over 400 runs in benchmarks/gate.md


def test_a_harmful_challenger_is_rejected_early_not_shadowed_to_the_end():
    outcome = simulate(BY_NAME["always wildfire"], n=5000, mix=0.5, correlation=0.8, runs=50,
                       thresholds=GateThresholds(), seed=10)
    assert outcome.rejected == 1.0 and outcome.inconclusive == 0.0
    assert outcome.mean_n < 500
