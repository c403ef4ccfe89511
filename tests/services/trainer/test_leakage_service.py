"""The leakage check and later-fire relabels on real parts: Tansu (Kafka protocol) and an MLflow server.

Its own module (and broker): the trainer reads tiles.ready.v1 from the earliest offset, so the
tiles of other tests must not be on the topic.
"""

from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from emberwatch.contracts import LabelFeedback, TileRelabelled, TrainingRequest
from emberwatch.messaging.broker import build_broker, publish_event
from services.trainer.main import build_service
from tests.conftest import running_stack
from tests.messaging.helpers import wait_for
from tests.services.trainer.synth import tile_event, write_tiles
from tests.services.trainer.test_service import FIRST, _candidates, trainer_settings


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("leakage-stack"), "kafka,mlflow") as settings:
        yield settings


async def test_a_leaky_split_warns_and_relabels_reach_the_next_training(stack, tmp_path):
    """Fire-free tiles all from one region: the location-only baseline matches the CNN, so the
    candidate (event, MLflow run) carries the warning. A retired and a relabelled tile, announced on
    tiles.relabelled.v1, change what the training counts."""
    settings = trainer_settings(stack).model_copy(update={"trainer_train_after_new_tiles": 10_000,
                                                         "tiler_tile_root": tmp_path / "tiles"})
    tiles = write_tiles(tmp_path / "tiles", FIRST, seed=11)
    rng = np.random.default_rng(11)

    def placed(tile):
        if tile.label == "nowildfire":  # one region, far from every fire
            lat, lon = rng.uniform(60.0, 61.0), rng.uniform(-136.0, -135.0)
        else:
            lat, lon = rng.uniform(48.0, 58.0), rng.uniform(-125.0, -70.0)
        return tile_event(tile).model_copy(update={"lat": round(lat, 4), "lon": round(lon, 4)})

    retired = next(t for t in tiles if t.label == "nowildfire" and t.split == "train")
    relabelled = next(t for t in tiles if t.label == "nowildfire" and t.split == "test")
    by_a_person = next(t for t in tiles if t.label == "wildfire" and t.split == "val")
    broker, handlers = build_service(settings)
    producer = build_broker(settings, "test-tiler")
    await producer.start()
    await broker.start()
    await handlers.start()
    try:
        for tile in tiles:
            await publish_event(producer, placed(tile), service="test-tiler")
        for tile, action in ((retired, "retire"), (relabelled, "relabel")):
            event = TileRelabelled.create(
                producer="test-tiler", tile_id=tile.tile_id, action=action, previous_label="nowildfire",
                label="wildfire" if action == "relabel" else None, fire_key="later-fire",
                matched_fire_key=f"fire-{tile.tile_id[:6]}", distance_km=0.1 if action == "relabel" else 3.0,
                reason="a fire reported later lies near this tile")
            await publish_event(producer, event, service="test-tiler")
            await publish_event(producer, event, service="test-tiler")  # a replay changes nothing more
        feedback = LabelFeedback.create(producer="test-console", tile_id=by_a_person.tile_id, label="nowildfire",
                                        labelled_by="console:ana", note="a sunlit roof, no fire")
        await publish_event(producer, feedback, service="test-console")
        await publish_event(producer, feedback, service="test-console")  # redelivered: counts once
        await wait_for(lambda: handlers.trainer.index.relabel_counts() == {"retire": 1, "relabel": 1}
                       and handlers.trainer.index.human_label_counts() == {"human": 1, "human_changed": 1}
                       and handlers.trainer.index.count() == FIRST, timeout_s=30)
        await publish_event(producer, TrainingRequest.create(producer="test", reason="leak", requested_by="pytest"),
                            service="test")
        (cand,) = await _candidates(settings, 1)
    finally:
        await handlers.stop()
        await broker.stop()
        await producer.stop()

    full = {s: {"wildfire": 0, "nowildfire": 0} for s in ("train", "val", "test")}
    for t in tiles:
        full[t.split][t.label] += 1
    assert cand.counts["train"].nowildfire == full["train"]["nowildfire"] - 1  # retired: left out
    assert cand.counts["test"].wildfire == full["test"]["wildfire"] + 1  # relabelled: a fire now
    assert cand.counts["test"].nowildfire == full["test"]["nowildfire"] - 1
    assert cand.counts["val"].wildfire == full["val"]["wildfire"] - 1  # a person's label wins
    assert cand.counts["val"].nowildfire == full["val"]["nowildfire"] + 1
    leak = cand.leakage
    assert leak is not None and leak.split == "test" and leak.n == sum(full["test"].values())
    assert leak.location_accuracy is not None and leak.location_accuracy >= leak.cnn_accuracy - leak.margin
    assert leak.warning and "location-only" in leak.warning
    run = MlflowClient(settings.mlflow_tracking_uri).get_run(cand.run_id)
    assert run.data.tags["leakage_warning"] == leak.warning
    assert run.data.metrics["leakage_location_accuracy"] == pytest.approx(leak.location_accuracy, abs=1e-4)
    assert run.data.metrics["leakage_warning"] == 1.0
    assert run.data.params["n_retired_tiles"] == "1" and run.data.params["n_relabelled_tiles"] == "1"
    assert run.data.params["n_human_labels"] == "1" and run.data.params["n_human_label_changes"] == "1"
