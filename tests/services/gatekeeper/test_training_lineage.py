"""Which tiles a version was fitted on: from its run's lineage, kept per version, asked again when MLflow is down."""

from __future__ import annotations

import json

import pytest

from services.gatekeeper.training_lineage import TrainingLineage, fitted_tile_ids

ROWS = [{"tile_id": "a", "split": "train"}, {"tile_id": "b", "split": "val"},
        {"tile_id": "c", "split": "test"}, {"split": "train"}]


class Registry:
    """The one call TrainingLineage makes of the gatekeeper's MLflow registry."""

    def __init__(self, rows=None, down=False):
        self.rows, self.down, self.asked = rows or {}, down, []

    def download_lineage(self, version):
        self.asked.append(version)
        if self.down:
            raise ConnectionError("mlflow down")
        return self.rows.get(version, [])


def test_train_and_val_tiles_are_the_fitted_ones():
    assert fitted_tile_ids(ROWS) == ["a", "b"]


def test_a_candidates_lineage_is_kept_and_read_back_after_a_restart(tmp_path):
    lineage_file = tmp_path / "tiles.json"
    lineage_file.write_text(json.dumps(ROWS))
    TrainingLineage(tmp_path / "gk", Registry()).remember("5", lineage_file)
    registry = Registry()
    again = TrainingLineage(tmp_path / "gk", registry)
    assert again.trained_on("5") == {"a", "b"} and registry.asked == []
    assert TrainingLineage(tmp_path / "gk", Registry()).remember("6", None) == frozenset()


def test_the_champions_lineage_comes_from_mlflow_once(tmp_path):
    registry = Registry({"2": [{"tile_id": "z", "split": "train"}]})
    lineage = TrainingLineage(tmp_path / "gk", registry)
    assert lineage.excluded("2", "3") == {"z"}
    assert lineage.excluded("2") == {"z"} and registry.asked == ["2", "3"]


def test_mlflow_down_is_an_error_not_an_empty_lineage(tmp_path):
    lineage = TrainingLineage(tmp_path / "gk", Registry(down=True))
    with pytest.raises(ConnectionError):
        lineage.trained_on("2")  # retried by the consumer; never compared on possibly-trained tiles
    assert not (tmp_path / "gk" / "lineage" / "2.json").exists()
