"""Model lines in the trainer: a product's tiles make only its own line's training due, and each line
trains and announces under its own registered model (tests/services/trainer/test_service.py trains for real)."""

from __future__ import annotations

import asyncio
import hashlib

from emberwatch.contracts.events import TileReady
from emberwatch.messaging.subscription import Received
from services.trainer.handlers import Handlers
from services.trainer.models import TrainingOutcome
from services.trainer.pipeline import Trainer
from services.trainer.settings import TrainerSettings


def _settings(tmp_path, lines="mapbox,sentinel2-swir") -> TrainerSettings:
    return TrainerSettings(state_dir=tmp_path / "state", model_lines=lines,
                           trainer_train_after_new_tiles=2, mlflow_tracking_uri="http://127.0.0.1:9")


def _received(settings: TrainerSettings, n: int, product: str) -> Received[TileReady]:
    tile_id = hashlib.sha256(f"{product}{n}".encode()).hexdigest()
    uri = f"file://{settings.tile_root}/{tile_id[:2]}/{tile_id}.png"
    event = TileReady.create(producer="test", tile_id=tile_id, uri=uri, lat=50.0, lon=-120.0, zoom=12,
                             size_px=256, label="wildfire", split="train", fire_key=f"f{n}", provider="test",
                             product=product)
    return Received(event, "tiles.ready.v1", 0, n)


def test_tiles_count_towards_their_own_products_line(tmp_path):
    s = _settings(tmp_path)
    handlers = Handlers(Trainer(s), broker=None)
    assert list(handlers.schedulers) == ["mapbox", "sentinel2-swir"]
    assert handlers.scheduler is handlers.schedulers["mapbox"]
    batch = [_received(s, i, "sentinel2-swir") for i in range(3)]
    asyncio.run(handlers.on_tiles_ready(batch))
    assert handlers.schedulers["sentinel2-swir"].new_tiles == 3 and handlers.schedulers["sentinel2-swir"].due
    assert handlers.schedulers["mapbox"].new_tiles == 0 and not handlers.schedulers["mapbox"].due
    asyncio.run(handlers.on_tiles_ready([_received(s, 9, "mapbox"), _received(s, 10, "sentinel2-true-colour")]))
    assert handlers.schedulers["mapbox"].new_tiles == 1  # a product without a line counts nowhere
    assert [r.product for r in handlers.trainer.index.all("sentinel2-swir")] == ["sentinel2-swir"] * 3
    # a restart: each line picks up its own untrained tiles
    again = Handlers(Trainer(s), broker=None)
    assert again.schedulers["sentinel2-swir"].new_tiles == 3 and again.schedulers["mapbox"].new_tiles == 1


def test_each_line_registers_its_own_model_and_trains_on_its_own_tiles(tmp_path, monkeypatch):
    s = _settings(tmp_path)
    trainer = Trainer(s)
    assert {p: pub.model_name for p, pub in trainer.publishers.items()} == {
        "mapbox": "emberwatch-resnet50", "sentinel2-swir": "emberwatch-resnet50-sentinel2-swir"}
    assert trainer.publisher is trainer.publishers["mapbox"]
    assert trainer.training_key("d") != trainer.training_key("d", "sentinel2-swir")
    handlers = Handlers(trainer, broker=None)
    trained: list[str] = []

    def train(reason: str, product: str = "mapbox") -> TrainingOutcome:
        trained.append(product)
        return TrainingOutcome(status="skipped", reason=reason, product=product)

    monkeypatch.setattr(trainer, "train", train)
    asyncio.run(handlers.schedulers["sentinel2-swir"]._run_training("2 new tiles"))
    assert trained == ["sentinel2-swir"] and handlers.outcomes[0].product == "sentinel2-swir"


def test_a_not_visible_policy_other_than_keep_trains_another_model(tmp_path):
    """The policy changes what the head learns, so a training under another policy is not reused."""
    keep = Trainer(_settings(tmp_path))
    down = Trainer(_settings(tmp_path).model_copy(update={"trainer_not_visible_tiles": "down-weight"}))
    assert keep.training_key("d", "sentinel2-swir") != down.training_key("d", "sentinel2-swir")
    assert keep.training_key("d") == Trainer(_settings(tmp_path)).training_key("d")  # keep: the keys as before
