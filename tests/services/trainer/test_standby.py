"""Two real trainers under one lease: the active one is killed mid-training, the standby takes over
and trains, and no two trainings ever ran at once.

Both are `emberwatch run trainer` processes on one state directory (a shared volume), with the
coordination database's default SQLite there; a real Tansu and a real MLflow server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from emberwatch.contracts import ModelCandidate
from emberwatch.messaging.broker import build_broker, publish_events
from tests.conftest import env_for, running_stack
from tests.messaging.helpers import read_all, unique
from tests.services.trainer.synth import tile_event, write_tiles

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

TTL_S = 3.0
TILES = 48


def log_lines(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def wait_for_log(path: Path, message: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in log_lines(path):
            if str(entry.get("msg", "")).startswith(message):
                return entry
        time.sleep(0.1)
    raise TimeoutError(f"no {message!r} in {path.name}: {path.read_text(errors='replace')[-3000:]}")


def log_time(entry: dict) -> float:
    return datetime.fromisoformat(entry["ts"]).timestamp()


def trainer(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "run", "trainer"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


async def test_the_standby_takes_over_a_killed_trainer_without_two_trainings_at_once(tmp_path: Path) -> None:
    with running_stack(tmp_path / "stack", "kafka,mlflow") as stack:
        model = unique("emberwatch-standby")
        env = env_for(stack)
        env.update({
            "EMBERWATCH_STATE_DIR": str(tmp_path / "shared-state"),  # one volume, as a standby shares it
            "EMBERWATCH_TILER_TILE_ROOT": str(tmp_path / "tiles"),  # where the tiles below are written
            "EMBERWATCH_LEASE_TTL_S": str(TTL_S), "EMBERWATCH_METRICS_PORT": "0", "EMBERWATCH_LOG_FORMAT": "json",
            "EMBERWATCH_MODEL_NAME": model, "EMBERWATCH_TRAINER_MLFLOW_EXPERIMENT": model,
            "EMBERWATCH_IMAGE_SIZE": "32", "EMBERWATCH_TRAINER_UNITS": "16,32",
            "EMBERWATCH_TRAINER_LEARNING_RATES": "0.003", "EMBERWATCH_TRAINER_EPOCHS": "60",
            "EMBERWATCH_TRAINER_PATIENCE": "60", "EMBERWATCH_TRAINER_BATCH_SIZE": "16",
            "EMBERWATCH_TRAINER_MIN_TRAIN_PER_CLASS": "6", "EMBERWATCH_TRAINER_MIN_VAL_PER_CLASS": "2",
            "EMBERWATCH_TRAINER_MIN_TEST_PER_CLASS": "2", "EMBERWATCH_TRAINER_KNOWN_IMAGES": "4",
            "EMBERWATCH_TRAINER_TRAIN_AFTER_NEW_TILES": str(TILES), "EMBERWATCH_TRAINER_DEBOUNCE_S": "0.3",
            "EMBERWATCH_TRAINER_GROUP_ID": unique("trainer"),
        })
        logs = {name: tmp_path / f"trainer-{name}.log" for name in "ab"}
        first = trainer(env, logs["a"])
        second = None
        try:
            acquired_a = wait_for_log(logs["a"], "lease acquired")
            second = trainer(env, logs["b"])
            standby = wait_for_log(logs["b"], "standby: lease trainer held by")
            assert standby["holder"] == acquired_a["holder"]

            producer = build_broker(stack, "test-tiler")
            await producer.start()
            try:
                await publish_events(producer, [tile_event(t) for t in write_tiles(tmp_path / "tiles", TILES, seed=3)],
                                     service="test-tiler")
            finally:
                await producer.stop()

            wait_for_log(logs["a"], "training data")  # the first trainer is training now
            os.killpg(first.pid, signal.SIGKILL)
            killed_at = time.time()
            first.wait(timeout=30)

            acquired_b = wait_for_log(logs["b"], "lease acquired", timeout_s=TTL_S * 1.2 + 30)
            takeover_s = log_time(acquired_b) - killed_at
            assert acquired_b["epoch"] == acquired_a["epoch"] + 1
            assert 0 < takeover_s <= TTL_S * 1.2 + 2.0, f"takeover took {takeover_s:.1f} s"
            (candidate,) = [ModelCandidate.from_bytes(r.value) for r in
                            await read_all(stack.kafka_bootstrap_servers, ModelCandidate.TOPIC, 1, timeout_s=300)]
            time.sleep(2)
            again = await read_all(stack.kafka_bootstrap_servers, ModelCandidate.TOPIC, 2, timeout_s=3)
            assert len(again) == 1, "one training, one candidate"
        finally:
            stop(first)
            if second is not None:
                stop(second)

        client = MlflowClient(stack.mlflow_tracking_uri)
        versions = client.search_model_versions(f"name='{model}'")
        assert [v.version for v in versions] == ["1"] and versions[0].run_id == candidate.run_id
        # The killed trainer's run never finished; the standby's started after the kill.
        experiment = client.get_experiment_by_name(model)
        runs = client.search_runs([experiment.experiment_id])
        standby_run = client.get_run(candidate.run_id)
        assert standby_run.info.status == "FINISHED"
        assert standby_run.info.start_time / 1000 > killed_at
        for run in runs:
            if run.info.run_id != candidate.run_id:
                assert run.info.start_time / 1000 < killed_at and run.info.status == "RUNNING"
        print(f"takeover {takeover_s:.2f} s after the kill (ttl {TTL_S} s); runs: {len(runs)}")
