"""Margins cannot compound: each class's drift budget, used up by promotions, caps the next margin."""

from __future__ import annotations

from services.gatekeeper.settings import GatekeeperSettings


def test_margins_shrink_to_what_is_left_of_the_budget(tmp_path):
    s = GatekeeperSettings(state_dir=tmp_path, gatekeeper_recall_margin=0.02, gatekeeper_specificity_margin=0.03,
                           gatekeeper_drift_budget=0.04)
    fresh = s.thresholds()
    assert (fresh.recall_margin, fresh.specificity_margin) == (0.02, 0.03)
    partly = s.thresholds({"wildfire_recall": 0.01, "specificity": 0.025})
    assert partly.recall_margin == 0.02 and abs(partly.specificity_margin - 0.015) < 1e-12
    spent = s.thresholds({"wildfire_recall": 0.05, "specificity": 0.04})
    assert (spent.recall_margin, spent.specificity_margin) == (0.0, 0.0)  # must not get worse at all
