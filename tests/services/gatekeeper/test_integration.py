"""Against the real Kafka (Tansu), MLflow and Triton servers: candidate -> validation -> shadow ->
promotion; broken candidates rejected; rollback and promotion by hand as commands on
models.commands.v1; a client loop sees no failed request throughout. (The gatekeeper in another
process than its callers: tests/operations/test_send_command.py.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow import MlflowClient
from prometheus_client import REGISTRY

from emberwatch.common.model_registry import CHALLENGER, CHAMPION
from emberwatch.contracts.events import Detection, ModelCandidate, ModelDecision, SplitCounts, TileReady
from emberwatch.messaging.broker import publish_event
from emberwatch.operations.send_command import model_command, send_command
from emberwatch.security.command_keys import public_pem, trust, trusted_dir
from emberwatch.security.command_signing import CommandSigner
from emberwatch.stack import manage
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.main import build_app
from services.gatekeeper.serving.repository import head_versions_on_disk
from services.gatekeeper.settings import GatekeeperSettings
from tests.conftest import stack_settings
from tests.messaging.helpers import read_all, read_until, wait_for
from tests.services.gatekeeper.candidates import (
    IMAGE_SIZE,
    analytic_head,
    encode,
    log_candidate,
    make_world,
    scenes,
    write_tiles,
)

pytestmark = pytest.mark.timeout(900)
MODEL = "emberwatch-test"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gatekeeper")
    settings = stack_settings(tmp / "state", "kafka,mlflow,triton", triton_model_repository=tmp / "repo")
    manage.up(settings)
    try:
        yield settings, tmp
    finally:
        manage.down(settings)


def gatekeeper_settings(settings, **overrides) -> GatekeeperSettings:
    base = dict(settings.model_dump(), image_size=IMAGE_SIZE, model_name=MODEL,
                gatekeeper_min_pairs=70, gatekeeper_min_wildfire_pairs=30, gatekeeper_min_fire_free_pairs=30,
                gatekeeper_max_pairs=74, gatekeeper_recall_margin=0.05, gatekeeper_specificity_margin=0.2,
                gatekeeper_drift_budget=0.5,
                gatekeeper_check_every=8, gatekeeper_floor_recall=0.3, gatekeeper_floor_specificity=0.3,
                gatekeeper_floor_min_per_class=20, gatekeeper_unload_grace_s=0.5,
                gatekeeper_validation_max_latency_ms=20000)
    base.update(overrides)
    return GatekeeperSettings(**base)


class ClientLoop(threading.Thread):
    """A user of the public model: one request after another over gRPC, every answer recorded."""

    def __init__(self, url: str, image: bytes):
        super().__init__(daemon=True)
        self.client = grpcclient.InferenceServerClient(url)
        self.image = image
        self.stop = threading.Event()
        self.ok: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        data = np.array([[self.image]], dtype=np.object_)
        while not self.stop.is_set():
            inp = grpcclient.InferInput("IMAGE_BYTES", [1, 1], "BYTES")
            inp.set_data_from_numpy(data)
            try:
                result = self.client.infer("wildfire", [inp])
                probs = result.as_numpy("PROBABILITIES")
                assert probs.shape == (1, 2) and abs(float(probs.sum()) - 1) < 1e-3
                self.ok.append(result.as_numpy("MODEL_VERSION")[0, 0].decode())
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                self.failures.append(f"{type(exc).__name__}: {exc}")


def candidate_event(version: str, run_id: str, artifact_uri: str) -> ModelCandidate:
    return ModelCandidate.create(
        producer="test", model_name=MODEL, version=version, run_id=run_id, artifact_uri=artifact_uri,
        dataset_digest="sha256:test", counts={"train": SplitCounts(wildfire=30, nowildfire=30)},
        metrics={"val_accuracy": 0.9})


def live_tiles(folder: Path, seed: int = 7) -> list[TileReady]:
    images, labels = scenes(seed, 8)
    out = []
    for rec in write_tiles(folder, images, labels, f"live{seed}"):
        out.append(TileReady.create(
            producer="test", tile_id=rec["tile_id"], uri=rec["uri"], lat=55.0, lon=-110.0, zoom=14,
            size_px=IMAGE_SIZE, label=rec["label"], split="test", fire_key="fire-1", provider="test"))
    return out


def status(s: GatekeeperSettings) -> dict:
    """The gatekeeper's state as it keeps it: roles in Triton, champion history, aliases, shadow."""
    gk = Gatekeeper(s)
    roles = gk.serving.roles()
    out = {"serving": roles, "history": gk.history(),
           "aliases": {CHAMPION: gk.registry.alias(CHAMPION), CHALLENGER: gk.registry.alias(CHALLENGER)},
           "loaded": {v: gk.serving.triton.ready("head", v) for v in roles.values() if v}}
    shadow = gk.shadows.load()
    if shadow is not None:
        out["shadow"] = {"n": len(shadow.pairs), "by_source": shadow.n_by_source()}
    return out


def metric(name: str, **labels) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (the gatekeeper runs in-process)."""
    return sum(s.value for m in REGISTRY.collect() for s in m.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def decisions_so_far(settings, expect: int) -> dict[str, ModelDecision]:
    """The decisions on the topic (at least ``expect``), by candidate version (last one wins)."""
    records = await read_all(settings.kafka_bootstrap_servers, ModelDecision.TOPIC, expect, timeout_s=240)
    assert len(records) >= expect
    decisions = sorted((ModelDecision.from_bytes(r.value) for r in records), key=lambda d: d.occurred_at)
    return {d.candidate_version: d for d in decisions}


async def test_candidates_are_validated_shadowed_promoted_rejected_and_rolled_back(stack):
    base, tmp = stack
    s = gatekeeper_settings(base)
    world = make_world(s.state_dir, s.tile_root)
    mlflow = MlflowClient(s.mlflow_tracking_uri, registry_uri=s.mlflow_tracking_uri)
    repo = Path(s.triton_model_repository)

    app = build_app(s)
    broker = app.broker
    await broker.start()
    loop = None
    try:
        # 1. the first model ever: validated, then promoted over the absolute floor (recall ~0.6)
        v1, run1, uri1 = log_candidate(s.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.3))
        await publish_event(broker, candidate_event(v1, run1, uri1), service="test")
        d1 = (await decisions_so_far(s, 1))[v1]
        assert (d1.decision, d1.candidate_version, d1.champion_version) == ("promoted", v1, None)
        assert "first model" in d1.reason and d1.evidence.n == 60
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v1

        loop = ClientLoop(s.triton_grpc_url, encode(world.known_images[0]))
        loop.start()
        await wait_for(lambda: len(loop.ok) >= 3, timeout_s=60)

        # 2. a better challenger: loaded beside the champion, shadowed on the 60 test tiles (not
        #    enough: min 70), then on live tiles, then promoted on evidence at its last look (74
        #    pairs). Two of the 16 live tiles are in its training lineage: they never become pairs.
        live = live_tiles(s.tile_root)
        v2, run2, uri2 = log_candidate(s.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.0),
                                       trained_on=[t.tile_id for t in live[:2]])
        await publish_event(broker, candidate_event(v2, run2, uri2), service="test")
        await wait_for(lambda: status(s).get("shadow", {}).get("n") == 60, timeout_s=240)
        st = status(s)
        assert st["serving"] == {"champion": v1, "challenger": v2, "previous": None}
        assert st["aliases"] == {"champion": v1, "challenger": v2}
        assert st["shadow"]["by_source"] == {"test": 60}
        trained_on = metric("emberwatch_gatekeeper_shadow_tiles_total", outcome="trained_on")
        for tile in live:
            await publish_event(broker, tile, service="test")
        d2 = (await decisions_so_far(s, 2))[v2]
        assert (d2.decision, d2.candidate_version, d2.champion_version) == ("promoted", v2, v1), d2.reason
        assert d2.evidence.n == 74 and d2.evidence.challenger_only_correct > d2.evidence.champion_only_correct
        assert metric("emberwatch_gatekeeper_shadow_tiles_total", outcome="trained_on") == trained_on + 2
        rows = Gatekeeper(s).registry.download_lineage(v2)  # what a fresh gatekeeper would fetch
        assert {r["tile_id"] for r in rows if r["split"] == "train"} == {t.tile_id for t in live[:2]}
        assert d2.evidence.p_value is not None and d2.evidence.p_value <= d2.evidence.alpha
        assert d2.evidence.rule == "superior" and d2.basis == "gate" and "Newcombe" in d2.evidence.method
        assert {d.metric for d in d2.evidence.deltas} == {"wildfire_recall", "specificity"}
        assert d2.evidence.n_wildfire + d2.evidence.n_fire_free == 74
        spec = next(d for d in d2.evidence.deltas if d.metric == "specificity")
        drift = Gatekeeper(s).drift_used()  # the promotion used its budget
        assert drift["specificity"] == pytest.approx(max(0.0, -spec.ci_low), abs=1e-5)
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v2
        run = mlflow.get_run(run2)
        assert run.data.metrics["gate_n"] == 74 and "gate_mcnemar_p" in run.data.metrics
        assert run.data.params["gate_min_pairs"] == "70.0"
        assert run.data.params["gate_primary_metric"] == "wildfire_recall"
        doc = json.loads(Path(mlflow.download_artifacts(run2, "gatekeeper/promoted.json",
                                                          str(tmp))).read_text())
        assert doc["gate"]["verdict"] == "promote" and doc["pairs_by_source"] == {"test": 60, "live": 14}
        await wait_for(lambda: loop.ok[-1:] == [v2], timeout_s=30)
        # model-quality metrics of the shadow, per version
        pairs = "emberwatch_model_shadow_pairs_total"
        assert metric(pairs, model=MODEL, version=v2, champion=v1, source="test") == 60
        assert metric(pairs, model=MODEL, version=v2, champion=v1, source="live") == 14
        predictions = "emberwatch_model_predictions_total"
        assert metric(predictions, model=MODEL, version=v1, source="test") == 120  # first model + shadow
        assert metric(predictions, model=MODEL, version=v2, source="test") == 60
        assert metric(predictions, model=MODEL, version=v2, source="live") == 14
        assert metric("emberwatch_model_wildfire_probability_count", model=MODEL, version=v2, source="live") == 14
        assert metric("emberwatch_model_shadow_started_timestamp_seconds", model=MODEL, version=v2) == 0
        assert (s.gatekeeper_dir / "references" / f"{v2}.json").is_file()

        # 2b. between shadows the champion alone scores live labelled tiles (one Triton call each)
        scored = metric("emberwatch_gatekeeper_champion_tiles_total", outcome="scored")
        called_fire = sum(metric(predictions, model=MODEL, version=v2, source="live", outcome=o) for o in ("tp", "fp"))
        later = live_tiles(s.tile_root, seed=8)
        for tile in later:
            await publish_event(broker, tile, service="test")
        await wait_for(lambda: metric("emberwatch_gatekeeper_champion_tiles_total", outcome="scored")
                       == scored + 16, timeout_s=120)
        assert metric(predictions, model=MODEL, version=v2, source="live") == 30
        assert metric(predictions, model=MODEL, version=v2, source="live", outcome="tp") >= 4

        # 2c. every live tile a champion called a wildfire is a detection (detections.v1), once:
        #     in shadow with the challenger's opinion beside it, between shadows the champion's alone
        now_called = sum(metric(predictions, model=MODEL, version=v2, source="live", outcome=o) for o in ("tp", "fp"))
        in_shadow = {t.tile_id for t in live[2:]}
        alone = {t.tile_id for t in later}
        expected = now_called - called_fire
        assert expected >= 4
        # the topic also holds the shadow's detections: read until every later one has arrived
        records = await read_until(s.kafka_bootstrap_servers, Detection.TOPIC, timeout_s=60, done=lambda rs: sum(
            Detection.from_bytes(r.value).tile_id in alone for r in rs) >= expected)
        detections = [Detection.from_bytes(r.value) for r in records]
        assert len({d.event_id for d in detections}) == len(detections)
        later_ones = [d for d in detections if d.tile_id in alone]
        assert len(later_ones) == expected
        assert all(d.model_version == v2 and d.challenger_version is None and d.wildfire_probability >= 0.5
                   and d.label in ("wildfire", "nowildfire") for d in later_ones)
        shadow_ones = [d for d in detections if d.tile_id in in_shadow]
        assert shadow_ones and all(d.model_version == v1 and d.challenger_version == v2
                                   and d.challenger_probability is not None for d in shadow_ones)

        # 2d. the same tiles again (a replay): set aside without inference, counted and detected once
        replayed = metric("emberwatch_gatekeeper_champion_tiles_total", outcome="replayed")
        scored_now = metric("emberwatch_gatekeeper_champion_tiles_total", outcome="scored")
        for tile in later:
            await publish_event(broker, tile, service="test")
        await wait_for(lambda: metric("emberwatch_gatekeeper_champion_tiles_total", outcome="replayed")
                       == replayed + 16, timeout_s=60)
        assert metric("emberwatch_gatekeeper_champion_tiles_total", outcome="scored") == scored_now
        assert metric(predictions, model=MODEL, version=v2, source="live") == 30

        # 3. broken candidates are rejected; the champion is untouched
        v3, run3, uri3 = log_candidate(s.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.0),
                                       corrupt="npz")
        await publish_event(broker, candidate_event(v3, run3, uri3), service="test")
        v4, run4, uri4 = log_candidate(s.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.1),
                                       corrupt="probs")
        await publish_event(broker, candidate_event(v4, run4, uri4), service="test")
        got = await decisions_so_far(s, 4)
        d3, d4 = got[v3], got[v4]
        assert (d3.decision, d3.candidate_version, d3.champion_version) == ("rejected", v3, v2)
        assert "could not load" in d3.reason
        assert (d4.decision, d4.candidate_version) == ("rejected", v4)
        assert "differ from the trainer's Keras outputs" in d4.reason
        assert status(s)["serving"]["champion"] == v2
        assert int(v3) not in head_versions_on_disk(repo) and int(v4) not in head_versions_on_disk(repo)

        # 4. rollback: one command, the previous champion answers again. The caller shares nothing
        #    with the gatekeeper but the broker (its own state directory, no Triton repository).
        #    A challenger in shadow against v2 is ended by the rollback, with its own decision.
        v5, run5, uri5 = log_candidate(s.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.1))
        await publish_event(broker, candidate_event(v5, run5, uri5), service="test")
        await wait_for(lambda: status(s).get("shadow", {}).get("n") == 60, timeout_s=240)
        # a service issuer "test" (speaking for test:*), trusted by the gatekeeper
        signer = CommandSigner("test", Ed25519PrivateKey.generate())
        trust(trusted_dir(s), signer.issuer, public_pem(signer.public_key()))
        caller = base.model_copy(update={"state_dir": tmp / "caller",
                                         "triton_model_repository": tmp / "caller" / "none"})
        back = model_command("rollback", MODEL, requested_by="test:ops", signer=signer, reason="v2 misbehaves",
                             wait_s=120)
        d5 = await send_command(caller, back, wait_s=120)
        ended = (await decisions_so_far(s, 6))[v5]
        assert (ended.decision, ended.basis, ended.champion_version) == ("rejected", "operator", v2)
        assert "rolled back" in ended.reason and ended.requested_by == "test:ops"
        assert "shadow" not in status(s)
        assert (d5.decision, d5.candidate_version, d5.champion_version) == ("rolled_back", v2, v1)
        assert (d5.requested_by, d5.command_id, d5.refused) == ("test:ops", back.event_id, False)
        assert d5.issuer == "test"
        assert "v2 misbehaves" in d5.reason
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v1
        await wait_for(lambda: loop.ok[-1:] == [v1], timeout_s=30)
        published = (await decisions_so_far(s, 6))[v2]
        assert published.decision == "rolled_back" and published.event_id == d5.event_id

        # 5. an operator promotes a version by hand (validated, no shadow); again no downtime
        d6 = await send_command(caller, model_command("promote", MODEL, version=v2, requested_by="test:ops",
                                                      signer=signer, wait_s=120), wait_s=120)
        assert (d6.decision, d6.candidate_version, d6.champion_version) == ("promoted", v2, v1)
        assert d6.requested_by == "test:ops" and not d6.refused
        await wait_for(lambda: loop.ok[-1:] == [v2], timeout_s=30)
        assert not (tmp / "caller").exists()  # the caller kept no state of its own
        st = status(s)
        assert st["serving"]["champion"] == v2 and st["history"] == [v1, v2]
        assert st["loaded"] == {v2: True, v1: True}
        assert st["aliases"] == {"champion": v2, "challenger": None}
    finally:
        if loop is not None:
            loop.stop.set()
            loop.join(timeout=30)
        await broker.stop()

    assert loop.failures == [], loop.failures[:3]
    seen = [v for i, v in enumerate(loop.ok) if i == 0 or loop.ok[i - 1] != v]  # runs of one version
    assert seen == [v1, v2, v1, v2], seen
    assert len(loop.ok) > 20
