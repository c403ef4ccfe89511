"""The dNBR rule, pure: what it calls fire, how it is scored beside the CNN, and when it warns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.trainer.check_leakage import SplitData, check_leakage
from services.trainer.physics_baseline import TileIndices, rule_predictions, rule_says_fire, score_physics_rule


@pytest.mark.parametrize("dnbr,hot,fire", [
    (0.1, 0, True),  # at the USGS unburned threshold: burned
    (0.0999, 0, False),
    (0.45, None, True),
    (-0.2, 3, True),  # no burn but an active flame
    (0.02, 1, True),
    (None, 0, False),  # no pre-fire scene and no heat
    (None, None, False),  # a control: no indices, so neither burn nor heat
    (math.nan, 0, False),
])
def test_the_rule_is_a_burn_or_a_hot_pixel(dnbr, hot, fire):
    assert rule_says_fire(TileIndices(dnbr=dnbr, hot_pixels=hot)) is fire


def test_predictions_are_one_per_tile():
    tiles = [TileIndices(0.3, 0), TileIndices(None, None), TileIndices(0.0, 2), TileIndices(0.05, 0)]
    assert rule_predictions(tiles).tolist() == [1, 0, 1, 0]


def _pairs(visible: list[bool]) -> tuple[list[TileIndices], np.ndarray]:
    """A post-fire tile with indices (burned or not) and its pre-fire control without, per fire."""
    tiles, labels = [], []
    for v in visible:
        tiles += [TileIndices(0.4 if v else 0.02, 0), TileIndices()]
        labels += [1, 0]
    return tiles, np.array(labels)


def test_scored_on_the_same_tiles_the_controls_as_showing_neither():
    tiles, y = _pairs([True, True, True, False])
    result = score_physics_rule(tiles, y, y, split="test")  # a perfect CNN
    assert result is not None
    assert (result.n, result.with_indices) == (8, 4)
    assert result.recall == pytest.approx(0.75) and result.specificity == 1.0
    assert result.accuracy == pytest.approx(7 / 8)
    assert result.cnn_accuracy == 1.0 and result.warning is None


@pytest.mark.parametrize("cnn_wrong,relation", [(1, "equals"), (2, "falls short of")])
def test_a_cnn_that_does_not_beat_the_rule_warns(cnn_wrong, relation):
    tiles, y = _pairs([True, True, True, False])
    cnn = y.copy()
    cnn[:2 * cnn_wrong:2] = 0  # misses cnn_wrong fires
    result = score_physics_rule(tiles, y, cnn, split="val")
    assert result.warning is not None
    assert relation in result.warning and "dNBR rule's 87.5%" in result.warning and "val split" in result.warning
    assert result.metrics()["physics_rule_warning"] == 1.0


def test_a_split_without_any_index_has_no_rule():
    y = np.array([1, 0, 1, 0])
    assert score_physics_rule([TileIndices()] * 4, y, y, split="test") is None


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError):
        score_physics_rule([TileIndices(0.2, 0)], np.array([1, 0]), np.array([1, 0]), split="test")


def _split(rng, n: int) -> SplitData:
    y = np.arange(n) % 2
    return SplitData(np.column_stack([rng.uniform(48, 60, n), rng.uniform(-125, -70, n)]),
                     rng.normal(0, 1, (n, 14)), y)


def test_the_leakage_check_carries_the_rule_and_its_warning():
    rng = np.random.default_rng(5)
    train, val, test = (_split(rng, n) for n in (120, 40, 40))
    physics = [TileIndices(0.5, 4) if label else TileIndices() for label in test.labels]  # every fire shows
    cnn = test.labels.copy()
    cnn[:8] = 1 - cnn[:8]  # the CNN at 80 %: the rule (100 %) beats it
    result = check_leakage(train, val, test, cnn, split="test", margin=0.05, physics=physics)
    assert result.physics is not None and result.physics.accuracy == 1.0
    assert "dNBR rule" in result.warning
    contract = result.contract()
    assert contract["physics_rule_accuracy"] == 1.0 and contract["physics_rule_recall"] == 1.0
    assert contract["physics_rule_specificity"] == 1.0 and contract["physics_rule_tiles_with_indices"] == 20
    assert result.metrics()["leakage_physics_rule_accuracy"] == 1.0


def test_without_indices_the_leakage_check_is_as_before():
    rng = np.random.default_rng(6)
    train, val, test = (_split(rng, n) for n in (120, 40, 40))
    for physics in (None, [TileIndices()] * 40):
        result = check_leakage(train, val, test, test.labels, split="test", margin=0.05, physics=physics)
        assert result.physics is None and result.warning is None
        assert "physics_rule_accuracy" not in result.contract()
        assert not any(k.startswith("leakage_physics") for k in result.metrics())
