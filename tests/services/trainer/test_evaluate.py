import numpy as np
import pytest
from PIL import Image

from services.trainer.artifacts import pick_known
from services.trainer.evaluate import binary_auc, confusion, plot_confusion, plot_training_curves, split_metrics
from services.trainer.models import TileRecord
from services.trainer.search_head import class_weights


def test_metrics_of_a_known_prediction():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p1 = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.2, 0.1, 0.05])
    probs = np.stack([1 - p1, p1], axis=1)
    m = split_metrics(y, probs, "val")
    assert confusion(y, probs.argmax(1)).tolist() == [[4, 1], [1, 2]]
    assert m["val_accuracy"] == pytest.approx(6 / 8)
    assert m["val_precision"] == pytest.approx(2 / 3)
    assert m["val_recall"] == pytest.approx(2 / 3)
    assert m["val_f1"] == pytest.approx(2 / 3)
    assert m["val_n"] == 8
    # AUC: pairs (pos, neg) where pos scores higher: 0.9,0.8 beat all 5; 0.3 beats 4 of 5 → 14/15
    assert m["val_auc"] == pytest.approx(14 / 15)
    assert m["val_loss"] == pytest.approx(-np.mean(np.log(np.where(y == 1, p1, 1 - p1))), rel=1e-6)


def test_auc_undefined_with_one_class_and_empty_split():
    assert np.isnan(binary_auc(np.array([1, 1]), np.array([0.2, 0.9])))
    assert "val_auc" not in split_metrics(np.array([1, 1]), np.array([[0.1, 0.9], [0.6, 0.4]]), "val")
    assert split_metrics(np.array([], int), np.empty((0, 2)), "test") == {}


def test_confusion_plot_is_a_png(tmp_path):
    path = plot_confusion({"val": np.array([[3, 1], [0, 4]]), "test": np.array([[2, 2], [1, 3]])},
                          tmp_path / "plots" / "cm.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height


def test_training_curves_plot_draws_each_quantity_per_epoch(tmp_path):
    history = {"loss": [0.9, 0.6, 0.5], "val_loss": [0.8, 0.7, 0.65], "accuracy": [0.5, 0.7, 0.8],
               "val_accuracy": [0.55, 0.66, 0.7], "finetune_loss": [0.4, 0.35]}
    path = plot_training_curves(history, tmp_path / "plots" / "curves.png")
    with Image.open(path) as img:  # two panels side by side: loss, accuracy
        assert img.format == "PNG" and img.width > 1.8 * img.height
    only_loss = plot_training_curves({"loss": [1.0], "val_loss": [0.9]}, tmp_path / "loss.png")
    with Image.open(only_loss) as img:
        assert img.width < 1.8 * img.height


def test_class_weights_balance_a_skewed_split():
    w = class_weights(np.array([0] * 30 + [1] * 10))
    assert w[0] * 30 == pytest.approx(w[1] * 10)
    assert w[1] > w[0]


def test_known_images_alternate_labels():
    recs = [TileRecord(f"{i:064x}", "wildfire" if i < 10 else "nowildfire", "test", "file:///x")
            for i in range(12)]
    picked = pick_known(recs, 6)
    assert len(picked) == 6
    assert sum(r.label == "nowildfire" for r in picked) == 2  # all there are, the rest wildfire
    assert len({r.tile_id for r in picked}) == 6
