"""What training does with fire tiles the imagery does not show, pure."""

from __future__ import annotations

import numpy as np
import pytest

from services.trainer.visible_tiles import DOWN_WEIGHT, apply_policy, tile_weights

FLAGS = [True, False, None, False, True]  # shown, not visible, no flag (a control or Mapbox), ...


@pytest.mark.parametrize("policy,expected", [
    ("drop", [1, 0, 1, 0, 1]),
    ("down-weight", [1, DOWN_WEIGHT, 1, DOWN_WEIGHT, 1]),
    ("keep", [1, 1, 1, 1, 1]),
])
def test_only_tiles_flagged_not_visible_change_weight(policy, expected):
    assert tile_weights(FLAGS, policy).tolist() == pytest.approx(expected)


def test_drop_leaves_the_hidden_tiles_out_without_weights():
    keep, weights = apply_policy(FLAGS, "drop")
    assert keep.tolist() == [0, 2, 4] and weights is None


def test_down_weight_keeps_every_tile_with_weights():
    keep, weights = apply_policy(FLAGS, "down-weight", down_weight=0.5)
    assert keep.tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(weights, [1, 0.5, 1, 0.5, 1])


def test_keep_and_unflagged_tiles_change_nothing():
    for flags, policy in ((FLAGS, "keep"), ([None, True, None], "drop"), ([None, None], "down-weight")):
        keep, weights = apply_policy(flags, policy)
        assert keep.tolist() == list(range(len(flags))) and weights is None


@pytest.mark.parametrize("policy,down_weight", [("discard", 0.25), ("down-weight", 0.0), ("down-weight", 1.5)])
def test_unknown_policies_and_weights_are_refused(policy, down_weight):
    with pytest.raises(ValueError):
        tile_weights(FLAGS, policy, down_weight)
