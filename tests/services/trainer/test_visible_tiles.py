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


def test_the_head_search_follows_the_policy_weights():
    """Tiles of one place labelled both ways: the label the weights favour is what the head learns there."""
    from services.trainer.search_head import search_head

    rng = np.random.default_rng(0)
    centres = {"a": -2.0 * np.ones(8), "b": 2.0 * np.ones(8), "c": np.array([2.0] * 4 + [-2.0] * 4)}
    place_a, place_b, place_c = (centres[p] + rng.normal(0, 0.3, (n, 8)) for p, n in (("a", 50), ("b", 40), ("c", 50)))
    x = np.vstack([place_a, place_b, place_c]).astype(np.float32)
    # place A: 10 fire-free tiles and 40 "fire" tiles the imagery does not show; B: shown fires; C: fire-free
    y = np.array([0] * 10 + [1] * 40 + [1] * 40 + [0] * 50)
    flags = [None] * 10 + [False] * 40 + [True] * 40 + [None] * 50

    def learned_at_a(policy: str) -> float:
        keep, weights = apply_policy(flags, policy, down_weight=0.05)
        head = search_head(x[keep], y[keep], x, y, units_grid=[8], learning_rates=[0.01], dropout=0.0, epochs=60,
                           patience=60, batch_size=16, seed=0, calibrate=False, sample_weight=weights)
        return float(head.model.predict(place_a.astype(np.float32), verbose=0).argmax(axis=1).mean())

    assert learned_at_a("keep") == 1.0  # 40 against 10, even balanced by class: the hidden fires win at A
    assert learned_at_a("down-weight") == 0.0  # at 5 % weight they no longer outweigh the fire-free tiles


def test_drop_leaves_hidden_tiles_out_of_training_and_validation_only():
    from services.trainer.models import TileRecord
    from services.trainer.visible_tiles import leave_out_hidden

    tiles = [TileRecord(tile_id=f"{i}", label="wildfire", split=split, uri="u", visible=visible)
             for i, (split, visible) in enumerate([("train", False), ("train", True), ("val", False),
                                                   ("test", False), ("train", None)])]
    assert [t.tile_id for t in leave_out_hidden(tiles, "drop")] == ["1", "3", "4"]
    assert leave_out_hidden(tiles, "keep") == tiles and leave_out_hidden(tiles, "down-weight") == tiles
    with pytest.raises(ValueError):
        leave_out_hidden(tiles, "hide")


def test_a_training_that_drops_hidden_fire_tiles_checks_the_data_without_them(tmp_path):
    """The trainer's setting reaches its data check: with ``drop`` a not-visible training fire is not counted."""
    from services.trainer.pipeline import Trainer
    from services.trainer.settings import TrainerSettings
    from tests.services.trainer.synth import write_tiles

    tiles = write_tiles(tmp_path / "tiles", 12, seed=0)  # train 4+4, val 1+1, test 1+1
    hidden = next(t.tile_id for t in tiles if t.split == "train" and t.label == "wildfire")
    problems = {}
    for policy in ("keep", "drop"):
        settings = TrainerSettings(
            state_dir=tmp_path / policy, tiler_tile_root=tmp_path / "tiles", image_size=32,
            mlflow_tracking_uri="http://127.0.0.1:9", model_lines="mapbox,sentinel2-swir",
            trainer_min_train_per_class=4, trainer_min_val_per_class=2, trainer_min_test_per_class=1,
            trainer_not_visible_tiles=policy)
        trainer = Trainer(settings)
        for t in tiles:
            trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri, product="sentinel2-swir",
                                 visible=False if t.tile_id == hidden else None)
        outcome = trainer.train("check", product="sentinel2-swir")
        assert outcome.status == "skipped"  # val has 1 + 1: never trained, MLflow never contacted
        problems[policy] = outcome.problems
    assert not any(p.startswith("train/wildfire") for p in problems["keep"])
    assert "train/wildfire: 3 tiles, need at least 4" in problems["drop"]
