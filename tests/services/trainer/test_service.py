"""The trainer end to end on real parts: Tansu (Kafka protocol) and an MLflow server.

Tiles written to a tile store and announced as TileReady → the trainer's handlers → a training run
in MLflow → a registered version (no alias: those are the gatekeeper's) and lineage → a ModelCandidate on the
broker. Then: a retraining embeds only the new tiles; MLflow stopped in the middle of publishing is
retried and never leaves a half-registered or duplicate version.
"""

from __future__ import annotations

import asyncio
import json

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from emberwatch.contracts import ModelCandidate, TrainingRequest
from emberwatch.messaging.broker import build_broker, publish_event
from emberwatch.ml.head import compose, head_predict_numpy, load_head_npz
from emberwatch.stack import manage, processes
from services.trainer import metrics as m
from services.trainer.main import build_service
from services.trainer.registry import TAG_KEY
from services.trainer.settings import TrainerSettings
from services.trainer.tile_index import TileIndex
from tests.conftest import running_stack
from tests.messaging.helpers import read_all, unique, wait_for
from tests.services.trainer.synth import tile_event, write_tiles

FIRST = 48  # readable tiles in the first batch


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("trainer-stack"), "kafka,mlflow") as settings:
        yield settings


def trainer_settings(stack) -> TrainerSettings:
    return TrainerSettings(**{
        **stack.model_dump(),
        "image_size": 32, "trainer_units": "16,32", "trainer_learning_rates": "0.003",
        "trainer_epochs": 8, "trainer_patience": 3, "trainer_batch_size": 16,
        "trainer_min_train_per_class": 6, "trainer_min_val_per_class": 2, "trainer_min_test_per_class": 2,
        "trainer_known_images": 4, "trainer_train_after_new_tiles": FIRST + 1,
        "trainer_debounce_s": 0.3, "trainer_max_wait_s": 30,
        "trainer_mlflow_retry_s": 180, "trainer_mlflow_retry_max_wait_s": 1.5,
        "trainer_group_id": unique("trainer"), "kafka_max_attempts": 2, "kafka_retry_backoff_s": 0.1,
        "model_name": unique("emberwatch-test"),
    })


async def _candidates(settings, n: int) -> list[ModelCandidate]:
    records = await read_all(settings.kafka_bootstrap_servers, ModelCandidate.TOPIC, n, timeout_s=240)
    return [ModelCandidate.from_bytes(r.value) for r in records if r.value]


def _stop_mlflow(settings) -> None:
    record = processes.ProcessRecord.load(manage.pid_path(settings, "mlflow"))
    assert record is not None
    processes.stop(record)


async def test_tiles_to_registered_candidate_incremental_and_mlflow_outage(stack, tmp_path):
    store = tmp_path / "tiles"
    settings = trainer_settings(stack).model_copy(update={"tiler_tile_root": store})
    first = write_tiles(store, FIRST, seed=1)
    corrupt = store / "ee" / f"{'e' * 64}.png"  # in the store, but not the bytes of its id
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    broken = first[0].__class__("e" * 64, corrupt, "wildfire", "train")
    # the shape of a tile URI, outside the store's root (model_copy does not validate: sent as it is)
    elsewhere = tile_event(first[1]).model_copy(update={"tile_id": "f" * 64,
                                                        "uri": f"file:///etc/ff/{'f' * 64}.png"})

    broker, handlers = build_service(settings)
    producer = build_broker(settings, "test-tiler")
    client = MlflowClient(settings.mlflow_tracking_uri)
    await producer.start()
    await broker.start()
    await handlers.start()
    try:
        # --- 1. tiles → a candidate --------------------------------------------------------------
        for tile in [*first, broken]:
            await publish_event(producer, tile_event(tile), service="test-tiler")
        await publish_event(producer, elsewhere, service="test-tiler")
        (cand1,) = await _candidates(settings, 1)
        outcome1 = handlers.outcomes[0]
        assert outcome1.status == "trained"
        assert outcome1.embedded_new == FIRST and outcome1.embedding_cache_hits == 0
        assert outcome1.unreadable == 1

        assert cand1.model_name == settings.model_name and cand1.version == "1"
        assert sum(c.wildfire + c.nowildfire for c in cand1.counts.values()) == FIRST
        assert cand1.counts["train"].wildfire == 14 and cand1.counts["test"].nowildfire == 5
        assert {"val_accuracy", "val_loss", "val_recall", "val_auc"} <= set(cand1.metrics)
        assert cand1.artifact_uri == f"runs:/{cand1.run_id}/triton"

        mv = client.get_model_version(settings.model_name, cand1.version)
        assert mv.run_id == cand1.run_id
        assert not mv.aliases  # aliases are the gatekeeper's alone to set
        assert mv.tags["dataset_digest"] == cand1.dataset_digest
        run = client.get_run(cand1.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.params["dataset_digest"] == cand1.dataset_digest
        assert run.data.params["image_size"] == "32" and run.data.params["units"] in {"16", "32"}
        assert run.data.tags["backbone_id"] == handlers.trainer.backbone.backbone_id
        assert run.data.metrics["embedded_new"] == FIRST and run.data.metrics["unreadable_tiles"] == 1
        assert len(client.get_metric_history(cand1.run_id, "epoch_val_loss")) >= 2
        assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.source_type == "kafka"

        local = tmp_path / "run1"
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.artifacts.download_artifacts(run_id=cand1.run_id, dst_path=str(local))
        for path in ("triton/head.npz", "triton/head.json", "validation/known_images.npz", "test_split.json",
                     "lineage/tiles.json", "plots/confusion_matrix.png", "plots/training_curves.png",
                     "dataset.json", "search/trials.json"):
            assert (local / path).is_file(), path
        lineage = json.loads((local / "lineage/tiles.json").read_text())
        assert {row["tile_id"] for row in lineage} == {t.tile_id for t in first}
        assert all(row["topic"] == "tiles.ready.v1" and row["offset"] >= 0 for row in lineage)
        test_split = json.loads((local / "test_split.json").read_text())
        assert {r["tile_id"] for r in test_split} == {t.tile_id for t in first if t.split == "test"}
        assert all(r["uri"].startswith("file://") for r in test_split)
        dataset = json.loads((local / "dataset.json").read_text())
        assert [u["tile_id"] for u in dataset["unreadable"]] == ["e" * 64]

        # The Triton head (npz) and the registered Keras head agree; the known images carry the full
        # model's outputs, which the backbone + numpy head reproduce (what Triton will do).
        arrays, meta = load_head_npz(local / "triton")
        assert meta["backbone_id"] == handlers.trainer.backbone.backbone_id and meta["image_size"] == 32
        head = mlflow.keras.load_model(f"models:/{settings.model_name}/{cand1.version}")
        known = np.load(local / "validation/known_images.npz")
        assert known["images"].shape == (4, 32, 32, 3) and known["images"].dtype == np.uint8
        bb = handlers.trainer.backbone
        emb = bb.infer(known["images"].astype(np.float32))
        np.testing.assert_allclose(head_predict_numpy(arrays, emb, meta["epsilon"]),
                                   head.predict(emb, verbose=0), atol=1e-5)
        np.testing.assert_allclose(head_predict_numpy(arrays, emb, meta["epsilon"]), known["probs"], atol=1e-4)
        full = compose(bb.model, head)
        np.testing.assert_allclose(full.predict(known["images"].astype(np.float32), verbose=0),
                                   known["probs"], atol=1e-4)

        dlq = await read_all(settings.kafka_bootstrap_servers, "tiles.ready.v1.dlq", 1)
        headers = dict(dlq[0].headers)
        assert headers["x-dlq-reason"] == b"permanent" and b"is not under the tile store's root" in headers["x-dlq-error"]

        # --- 2. a few more tiles + a request: only the new ones are embedded ----------------------
        more = write_tiles(store, 6, seed=2)
        for tile in [*more, more[0], first[5]]:  # replays of known tiles are not new tiles
            await publish_event(producer, tile_event(tile), service="test-tiler")
        await wait_for(lambda: handlers.trainer.index.count() == FIRST + 1 + 6, timeout_s=30)
        await publish_event(producer, TrainingRequest.create(producer="test", reason="more tiles",
                                                             requested_by="pytest"), service="test")
        cands = await _candidates(settings, 2)
        cand2 = cands[1]
        outcome2 = handlers.outcomes[1]
        assert outcome2.embedded_new == 6 and outcome2.embedding_cache_hits == FIRST
        assert client.get_run(cand2.run_id).data.metrics["embedded_new"] == 6
        assert cand2.version == "2" and cand2.dataset_digest != cand1.dataset_digest
        assert TileIndex(handlers.trainer.index.path).count() == FIRST + 1 + 6  # durable

        # --- 3. MLflow dies after the run was created: retried, one version, old run FAILED ------
        retries_before = m.MLFLOW_RETRIES._value.get()
        failed_runs: list[str] = []
        loop = asyncio.get_running_loop()

        def kill_once(step: str, run_id: str, at: str = "run_created") -> None:
            if step == at and not failed_runs:
                failed_runs.append(run_id)
                _stop_mlflow(stack)

        handlers.trainer.publisher.on_step = kill_once
        for tile in write_tiles(store, 4, seed=3):
            await publish_event(producer, tile_event(tile), service="test-tiler")
        await wait_for(lambda: handlers.trainer.index.count() == FIRST + 1 + 10, timeout_s=30)
        await publish_event(producer, TrainingRequest.create(producer="test", reason="outage",
                                                             requested_by="pytest"), service="test")
        await wait_for(lambda: m.MLFLOW_RETRIES._value.get() >= retries_before + 2, timeout_s=120)
        await loop.run_in_executor(None, manage.up, stack.model_copy(update={"stack_parts": "mlflow"}))
        cand3 = (await _candidates(settings, 3))[2]
        assert cand3.version == "3" and cand3.run_id != failed_runs[0]
        assert client.get_run(failed_runs[0]).info.status == "FAILED"
        assert client.get_run(cand3.run_id).info.status == "FINISHED"
        key = client.get_run(cand3.run_id).data.tags[TAG_KEY]
        versions = client.search_model_versions(f"name = '{settings.model_name}' and tags.{TAG_KEY} = '{key}'")
        assert [v.version for v in versions] == ["3"]

        # --- 4. MLflow dies right after the version was registered: finished, not duplicated ----
        failed_runs.clear()
        retries_before = m.MLFLOW_RETRIES._value.get()
        handlers.trainer.publisher.on_step = lambda step, run_id: kill_once(step, run_id, "registered")
        for tile in write_tiles(store, 4, seed=4):
            await publish_event(producer, tile_event(tile), service="test-tiler")
        await wait_for(lambda: handlers.trainer.index.count() == FIRST + 1 + 14, timeout_s=30)
        await publish_event(producer, TrainingRequest.create(producer="test", reason="outage 2",
                                                             requested_by="pytest"), service="test")
        await wait_for(lambda: m.MLFLOW_RETRIES._value.get() >= retries_before + 2, timeout_s=120)
        await loop.run_in_executor(None, manage.up, stack.model_copy(update={"stack_parts": "mlflow"}))
        cand4 = (await _candidates(settings, 4))[3]
        assert cand4.version == "4" and cand4.run_id == failed_runs[0]  # the registered one, finished
        assert client.get_run(cand4.run_id).info.status == "FINISHED"
        all_versions = client.search_model_versions(f"name = '{settings.model_name}'")
        assert sorted(int(v.version) for v in all_versions) == [1, 2, 3, 4]
    finally:
        handlers.trainer.publisher.on_step = None
        await handlers.stop()
        await broker.stop()
        await producer.stop()


def test_fine_tuning_option_registers_a_full_model(stack, tmp_path):
    """The fine-tuning option, lightly: a full model registered, its own backbone exported for Triton."""
    from services.trainer.pipeline import Trainer

    settings = trainer_settings(stack).model_copy(update={
        "state_dir": tmp_path / "state", "tiler_tile_root": tmp_path / "tiles", "trainer_fine_tune": True, "trainer_fine_tune_epochs": 1,
        "trainer_fine_tune_layers": 8, "trainer_fine_tune_learning_rate": 1e-3, "trainer_units": "8",
        "trainer_epochs": 3, "trainer_min_train_per_class": 4,
    })
    trainer = Trainer(settings)
    for t in write_tiles(tmp_path / "tiles", 24, seed=7):
        trainer.index.record(tile_id=t.tile_id, label=t.label, split=t.split, uri=t.uri)
    outcome = trainer.train("fine-tune test")
    assert outcome.status == "trained" and outcome.candidate is not None
    client = MlflowClient(settings.mlflow_tracking_uri)
    mv = client.get_model_version(settings.model_name, outcome.candidate.version)
    assert mv.tags["model_kind"] == "full"
    params = client.get_run(mv.run_id).data.params
    assert params["fine_tune"] == "True" and params["finetuned_backbone_id"] != trainer.backbone.backbone_id
    local = tmp_path / "dl"
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.artifacts.download_artifacts(artifact_uri=outcome.candidate.artifact_uri, dst_path=str(local))
    meta = json.loads((local / "triton" / "head.json").read_text())
    assert meta["backbone_id"] == params["finetuned_backbone_id"]
    assert (local / "triton" / "backbone" / "backbone.onnx").is_file()
    full = mlflow.keras.load_model(f"models:/{settings.model_name}/{mv.version}")
    assert full.input_shape == (None, 32, 32, 3) and full.output_shape == (None, 2)

