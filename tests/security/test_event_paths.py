"""No path from an event without validation: a candidate whose version or model name is not a plain
name goes to the DLQ and touches no file; a candidate that MLflow's record of its version does not
bear out (another run, another artifact URI, no such version) goes to the DLQ too, supersedes
nothing and downloads nothing. The real gatekeeper consumer on a real broker, a real MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from emberwatch.contracts.events import ModelCandidate, ModelDecision, SplitCounts
from emberwatch.operations.create_topics import create_topics
from tests.conftest import running_stack
from tests.messaging.helpers import read_all, unique
from tests.services.console.conftest import publish, run_async

pytestmark = pytest.mark.timeout(300)


def candidate(model: str, version: str, run_id: str, artifact_uri: str) -> ModelCandidate:
    """A models.candidates.v1 event with these fields as they are (built valid, then changed unchecked,
    as a hostile producer writes them)."""
    valid = ModelCandidate.create(producer="attacker", model_name="m", version="1", run_id="r",
                                  artifact_uri="runs:/r/triton", dataset_digest="d",
                                  counts={"train": SplitCounts()}, metrics={})
    return valid.model_copy(update={"model_name": model, "version": version, "run_id": run_id,
                                    "artifact_uri": artifact_uri})


def fields(body: dict) -> tuple[str, ...]:
    """What tells the hostile candidates apart (their event ids are alike: made from the valid base)."""
    return tuple(str(body[k]) for k in ("model_name", "version", "run_id", "artifact_uri"))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def test_hostile_and_unconfirmed_candidates_go_to_the_dlq_and_touch_no_file(tmp_path: Path) -> None:
    from services.gatekeeper.gatekeeper import Gatekeeper
    from services.gatekeeper.main import build_app
    from services.gatekeeper.registry import Registry
    from services.gatekeeper.serving.control import state_lock
    from services.gatekeeper.settings import GatekeeperSettings
    from services.gatekeeper.shadow_state import Shadow

    with running_stack(tmp_path / "stack", "kafka,mlflow") as stack:
        run_async(lambda: create_topics(stack))
        model = unique("emberwatch-paths")
        s = GatekeeperSettings(**{
            **stack.model_dump(), "state_dir": tmp_path / "gk" / "state", "model_name": model,
            "triton_url": "127.0.0.1:9", "triton_model_repository": tmp_path / "repo",  # no Triton: none needed
            "gatekeeper_group_id": unique("gatekeeper"), "kafka_max_attempts": 1})
        # two registered versions, each with its run (MLflow's record); version 1 is in shadow
        client = MlflowClient(s.mlflow_tracking_uri)
        client.create_registered_model(model)
        runs = [client.create_run("0").info.run_id for _ in range(2)]
        for run_id in runs:
            client.create_model_version(model, f"runs:/{run_id}/triton", run_id=run_id)
        v2, run2 = "2", runs[1]
        assert Registry(s.mlflow_tracking_uri, model).verified_run(v2, run2, f"runs:/{run2}/triton") == run2

        # sentinels: a directory outside the state, one inside the gatekeeper's candidates folder
        outside = tmp_path / "precious"
        (outside / "x").mkdir(parents=True)
        (outside / "x" / "keep.txt").write_text("must survive")
        inside = s.gatekeeper_dir / "candidates" / "keep"
        inside.mkdir(parents=True)
        (inside / "keep.txt").write_text("must survive too")
        gk = Gatekeeper(s)
        shadow = Shadow(model_name=model, candidate_version="1", champion_version="0", run_id=runs[0])
        gk.shadows.save(shadow)
        with state_lock(s):  # its lock file exists before, as on any running gatekeeper
            pass
        before = {"outside": tree(outside), "state": tree(s.gatekeeper_dir)}

        invalid = {  # the contract refuses them: reason validation
            "dotdot": candidate(model, "../../x", run2, f"runs:/{run2}/triton"),
            "absolute": candidate(model, str(outside / "x"), run2, f"runs:/{run2}/triton"),
            "inside": candidate(model, "../candidates/keep", run2, f"runs:/{run2}/triton"),
            "shell": candidate(model, "1; rm -rf /", run2, f"runs:/{run2}/triton"),
            "model_name": candidate("../../" + model, v2, run2, f"runs:/{run2}/triton"),
        }
        unconfirmed = {  # valid events that MLflow's record does not bear out: reason permanent
            "artifact_uri": candidate(model, v2, run2, (outside / "x").as_uri()),
            "other_run_artifacts": candidate(model, v2, run2, f"runs:/{runs[0]}/triton"),
            "run_id": candidate(model, v2, runs[0], f"runs:/{runs[0]}/triton"),
            "unregistered": candidate(model, "99", run2, f"runs:/{run2}/triton"),
        }
        publish(s, *invalid.values(), *unconfirmed.values())
        broker = build_app(s, gatekeeper=gk).broker
        await broker.start()
        try:
            dlq = await read_all(s.kafka_bootstrap_servers, f"{ModelCandidate.TOPIC}.dlq",
                                 len(invalid) + len(unconfirmed), timeout_s=120)
        finally:
            await broker.stop()
        by_event = {fields(json.loads(r.value)): dict(r.headers) for r in dlq}
        assert set(by_event) == {fields(e.model_dump()) for e in [*invalid.values(), *unconfirmed.values()]}
        for name, e in invalid.items():
            headers = by_event[fields(e.model_dump())]
            assert headers["x-dlq-reason"] == b"validation", name
            field = b"model_name" if name == "model_name" else b"version"
            assert field in headers["x-dlq-error"], (name, headers["x-dlq-error"])
        for name, e in unconfirmed.items():
            headers = by_event[fields(e.model_dump())]
            assert headers["x-dlq-reason"] == b"permanent", name
            error = headers["x-dlq-error"].decode()
            assert ("MLflow's record" in error or "no registered version" in error), (name, error)

        # nothing was created, deleted or downloaded; the shadow was not superseded; no decision
        assert tree(outside) == before["outside"] and tree(s.gatekeeper_dir) == before["state"]
        assert sorted(p.name for p in (s.gatekeeper_dir / "candidates").iterdir()) == ["keep"]
        assert gk.shadows.load().candidate_version == "1"
        assert await read_all(s.kafka_bootstrap_servers, ModelDecision.TOPIC, 1, timeout_s=3) == []
