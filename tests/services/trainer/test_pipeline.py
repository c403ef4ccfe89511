"""The training pipeline without MLflow: data that fails the checks is never trained on."""

import logging

from services.trainer.pipeline import Trainer
from services.trainer.settings import TrainerSettings
from tests.services.trainer.synth import write_tiles


def test_insufficient_data_is_skipped_and_embeddings_are_cached(tmp_path, caplog):
    settings = TrainerSettings(
        state_dir=tmp_path / "state", tiler_tile_root=tmp_path / "tiles", image_size=32,
        mlflow_tracking_uri="http://127.0.0.1:9",
        trainer_min_train_per_class=5, trainer_min_val_per_class=3, trainer_min_test_per_class=1,
    )
    trainer = Trainer(settings)
    tiles = write_tiles(tmp_path / "tiles", 12, seed=0)  # train 4+4, val 1+1, test 1+1 (60/20/20)
    for t in tiles:
        trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri)
    (tmp_path / "tiles" / "gone.png").write_bytes(b"")
    trainer.index.record(tile_id="d" * 64, label="wildfire", split="train",
                         uri=(tmp_path / "tiles" / "gone.png").as_uri())
    with caplog.at_level(logging.WARNING):
        first = trainer.train("too early")
    assert first.status == "skipped" and first.candidate is None
    assert first.embedded_new == 12 and first.unreadable == 1 and first.embedding_cache_hits == 0
    assert "train/wildfire: 4 tiles, need at least 5" in first.problems
    assert "val/nowildfire: 1 tiles, need at least 3" in first.problems
    assert first.check.balance["train"] == 0.5
    assert any("fails the checks" in r.getMessage() for r in caplog.records)
    assert trainer.index.last_trained_seq() == 0  # nothing was trained

    second = trainer.train("still too early")  # MLflow is never contacted for data that fails
    assert second.status == "skipped"
    assert second.embedded_new == 0 and second.embedding_cache_hits == 12 and second.unreadable == 1
