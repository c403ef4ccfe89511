"""The gate as a pure function: hand-made cells, the interval's known values, the floor."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from services.gatekeeper.core.decide_promotion import (
    ClassTable,
    GateThresholds,
    Look,
    PairedCounts,
    decide_promotion,
    gate_look_due,
    mcnemar_superior,
    newcombe_paired,
    passes_floor,
    spent,
    wilson,
)

SMALL = GateThresholds(min_pairs=20, min_wildfire_pairs=5, min_fire_free_pairs=5, max_pairs=100)


def cells(*, wildfire=(0, 0, 0, 0), fire_free=(0, 0, 0, 0)) -> PairedCounts:
    """Per class: (both right, challenger only right, champion only right, both wrong)."""

    def flat(both, chall, champ, neither):  # cell order: champion right x challenger right
        return [neither, chall, champ, both]

    return PairedCounts.from_flat(flat(*fire_free) + flat(*wildfire))


def test_cells_round_trip_from_predictions():
    y = np.array([1, 1, 1, 0, 0])
    champion = np.array([1, 0, 1, 0, 1])
    challenger = np.array([1, 1, 0, 0, 0])
    c = PairedCounts.from_arrays(y, champion, challenger)
    assert c.of_class(1) == ClassTable(both=1, challenger_only=1, champion_only=1, neither=0)
    assert c.of_class(0) == ClassTable(both=1, challenger_only=1, champion_only=0, neither=0)
    assert (c.n, c.n_wildfire, c.n_fire_free) == (5, 3, 2)
    with pytest.raises(ValueError):
        PairedCounts.from_flat([1, 2, 3])


def test_wilson_and_newcombe_match_published_values():
    lo, hi = wilson(0, 10, 1.959964)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)  # Wilson for 0/10
    # Newcombe (1998) method 10 with the phi adjustment, as in Altman et al. "Statistics with confidence"
    i = newcombe_paired(ClassTable(both=36, challenger_only=12, champion_only=2, neither=0), 1.959964)
    assert i.estimate == pytest.approx(0.2)
    assert (i.low, i.high) == (pytest.approx(0.0569, abs=1e-3), pytest.approx(0.3404, abs=1e-3))


def test_the_interval_holds_with_zero_cells():
    # all correct, no discordant pairs: a real interval around 0, not a point
    i = newcombe_paired(ClassTable(both=5, challenger_only=0, champion_only=0, neither=0), 1.96)
    assert i.low < -0.3 and i.high > 0.3
    # 4 vs 0 discordant pairs is not significant (exact one-sided p = 0.0625)
    assert mcnemar_superior(4, 0) == pytest.approx(0.0625)
    two_sided = mcnemar([[21, 4], [0, 0]], exact=True).pvalue
    assert two_sided == pytest.approx(2 * mcnemar_superior(4, 0))


def test_four_versus_zero_discordant_wildfire_pairs_is_not_a_promotion():
    c = cells(wildfire=(21, 4, 0, 0), fire_free=(25, 0, 0, 0))
    result = decide_promotion(c, SMALL, Look(final=True))
    assert result.verdict == "reject" and result.rule == "inconclusive"


def test_an_always_wildfire_challenger_is_not_promoted_on_a_skewed_stream():
    # 190 wildfire / 20 fire-free; champion recall 0.8, specificity 0.9; challenger always "wildfire"
    c = cells(wildfire=(152, 38, 0, 0), fire_free=(0, 0, 18, 2))
    assert decide_promotion(c, GateThresholds()).verdict == "wait"  # 20 < 50 fire-free pairs
    c = cells(wildfire=(152, 38, 0, 0), fire_free=(0, 0, 45, 5))
    result = decide_promotion(c, GateThresholds(max_pairs=240))
    assert result.verdict == "reject" and result.rule == "worse"
    assert "specificity" in result.reason


def test_too_few_pairs_of_either_class_means_wait():
    c = cells(wildfire=(100, 30, 0, 0), fire_free=(10, 0, 0, 0))
    result = decide_promotion(c, GateThresholds(min_pairs=100))
    assert result.verdict == "wait" and result.rule == "minimum"
    assert result.alpha_look == 0 and result.alpha_spent == 0


def test_inconclusive_waits_until_the_last_look():
    c = cells(wildfire=(80, 6, 4, 10), fire_free=(88, 3, 3, 6))
    th = GateThresholds(min_pairs=100, max_pairs=1000)
    assert decide_promotion(c, th).verdict == "wait"
    final = decide_promotion(c, th, Look(final=True))
    assert final.verdict == "reject" and final.rule == "inconclusive"


def test_a_clearly_better_challenger_is_promoted_with_evidence_for_both_classes():
    c = cells(wildfire=(400, 60, 5, 35), fire_free=(440, 5, 5, 50))
    result = decide_promotion(c, GateThresholds(max_pairs=1000))
    assert result.verdict == "promote" and result.rule == "superior"
    assert result.recall.delta.low > 0 and result.specificity.delta.low > -0.03
    assert result.p_value < result.alpha_look
    assert result.alpha_spent == pytest.approx(spent(0.05, 1.0))


def test_specificity_cannot_be_traded_for_recall():
    # +6 points recall, -8 points specificity, plenty of pairs
    c = cells(wildfire=(700, 90, 30, 180), fire_free=(800, 10, 90, 100))
    result = decide_promotion(c, GateThresholds(max_pairs=2000))
    assert result.verdict == "reject" and result.rule == "worse"


def test_alpha_spending_adds_up_over_looks():
    th = GateThresholds(max_pairs=1000)
    assert spent(0.05, 1.0) == pytest.approx(0.05)
    assert spent(0.05, 0.2) < 1e-4 < spent(0.05, 0.5) < spent(0.05, 0.8) < 0.05
    assert spent(0.05, 0.5, "pocock") > spent(0.05, 0.5)
    c = cells(wildfire=(200, 8, 6, 36), fire_free=(220, 4, 4, 22))
    first = decide_promotion(c, th)
    again = decide_promotion(c, th, Look(alpha_spent=first.alpha_spent))
    assert first.looked and not again.looked and again.verdict == "wait"  # nothing left at this n


def test_looks_follow_the_pairs_not_the_outcomes():
    th = GateThresholds(max_pairs=1000, look_growth=1.5)
    assert not gate_look_due(40, 0, 0, th, check_every=50)
    assert gate_look_due(50, 0, 0, th, check_every=50)
    assert not gate_look_due(250, 200, 200, th, check_every=50)
    assert gate_look_due(300, 250, 200, th, check_every=50)
    assert gate_look_due(1000, 990, 700, th, check_every=50)


def test_the_gate_is_pure():
    c = cells(wildfire=(200, 8, 6, 36), fire_free=(220, 4, 4, 22))
    assert decide_promotion(c, GateThresholds()) == decide_promotion(c, GateThresholds())


def test_the_floor_uses_lower_bounds_and_a_sample_minimum():
    y = np.array([1] * 40 + [0] * 40)
    good = np.array([1] * 36 + [0] * 4 + [0] * 36 + [1] * 4)
    ok = passes_floor(y, good, floor_recall=0.7, floor_specificity=0.7, min_per_class=30)
    assert ok.ok and ok.recall.low < 0.9 == ok.recall.estimate
    # 0.8 point estimate but a lower bound under 0.7 on 40 tiles
    meh = np.array([1] * 32 + [0] * 8 + [0] * 36 + [1] * 4)
    low = passes_floor(y, meh, floor_recall=0.7, floor_specificity=0.7, min_per_class=30)
    assert not low.ok and "lower bound" in low.reason
    # about ten test tiles are not enough to crown anyone
    few = passes_floor(y[35:45], good[35:45], floor_recall=0.5, floor_specificity=0.5, min_per_class=30)
    assert not few.ok and "too few" in few.reason
