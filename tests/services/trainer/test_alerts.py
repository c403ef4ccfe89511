"""Operational alerts on the real broker: a training that fails, a requested one the data cannot support."""

from emberwatch.contracts import PipelineAlert
from emberwatch.messaging.broker import build_broker
from services.trainer import metrics as m
from services.trainer.handlers import Handlers
from services.trainer.pipeline import Trainer
from services.trainer.settings import TrainerSettings
from tests.messaging.helpers import read_all, unique
from tests.services.trainer.synth import write_tiles


async def test_failed_and_skipped_trainings_raise_alerts(kafka_settings, tmp_path):
    settings = TrainerSettings(**{
        **kafka_settings.model_dump(), "state_dir": tmp_path / "state", "image_size": 32,
        "tiler_tile_root": tmp_path / "tiles",
        "mlflow_tracking_uri": "http://127.0.0.1:9",  # nothing listens: MLflow is down
        "trainer_mlflow_retry_s": 1.0, "trainer_mlflow_retry_max_wait_s": 0.2, "trainer_mlflow_http_retries": 0,
        "trainer_min_train_per_class": 2, "trainer_min_val_per_class": 1, "trainer_min_test_per_class": 1,
        "model_name": unique("alerts"),
    })
    trainer = Trainer(settings)
    for t in write_tiles(tmp_path / "tiles", 10, seed=0):
        trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri)
    broker = build_broker(settings, "trainer")
    await broker.start()
    try:
        handlers = Handlers(trainer, broker)
        failed_before = m.TRAININGS.labels("failed")._value.get()
        assert await handlers.train_and_announce("requested: first model (by ops)") is False
        assert m.TRAININGS.labels("failed")._value.get() == failed_before + 1
        assert trainer.index.last_trained_seq() == 0

        trainer.settings = settings.model_copy(update={"trainer_min_val_per_class": 50})
        assert await handlers.train_and_announce("requested: again (by ops)") is True
        assert handlers.outcomes[-1].status == "skipped"

        mine: dict[str, PipelineAlert] = {}
        for _ in range(20):  # the session broker is shared: other tests' alerts may be there too
            records = await read_all(settings.kafka_bootstrap_servers, PipelineAlert.TOPIC, 10**6, timeout_s=1.5)
            alerts = [PipelineAlert.from_bytes(r.value) for r in records]
            mine = {a.alert: a for a in alerts if a.component == "trainer"}  # partitions: no global order
            if len(mine) >= 2:
                break
        assert set(mine) == {"training_failed", "training_skipped"}
        failed, skipped = mine["training_failed"], mine["training_skipped"]
        assert failed.severity == "critical" and "127.0.0.1:9" in failed.message
        assert skipped.severity == "warning" and "val/wildfire: 1 tiles, need at least 50" in skipped.message
        assert skipped.details["counts"]["train"] == {"nowildfire": 3, "wildfire": 3}
    finally:
        await broker.stop()
