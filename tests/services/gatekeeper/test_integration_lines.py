"""Two model lines end to end on real parts (Kafka, MLflow, Triton, the STAC/COG simulator).

The simulator's Sentinel-2 pairs (post-fire SWIR: wildfire, pre-fire control: nowildfire), made by the
tiler's provider, are announced as ``sentinel2-swir`` tiles; the trainer trains that line alone and
announces its candidate; the gatekeeper gates it in its own line beside a Mapbox champion, which stays
untouched; a second Sentinel-2 candidate is compared with the Sentinel-2 champion only; Triton
answers under both public names."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from mlflow import MlflowClient

from emberwatch.common.tile_store import TileStore
from emberwatch.contracts.events import ModelCandidate, ModelDecision, SplitCounts, TileReady
from emberwatch.messaging.broker import build_broker, publish_event
from services.gatekeeper.lines import GatekeeperLines
from services.gatekeeper.main import build_app
from services.tiler.sentinel2.pairing import Ready
from services.tiler.sentinel2.provider import FireWindow, Sentinel2Provider
from services.tiler.sentinel2.search import StacCatalogue
from services.trainer.main import build_service
from services.trainer.settings import TrainerSettings
from simulators.stac.app import parse_fires
from tests.conftest import running_stack
from tests.messaging.helpers import read_all, unique, wait_for
from tests.services.gatekeeper.candidates import IMAGE_SIZE, analytic_head, encode, log_candidate, make_world
from tests.services.gatekeeper.test_integration import gatekeeper_settings
from tests.simulators.stac.helpers import frozen_state, running_simulator

pytestmark = pytest.mark.timeout(900)
SWIR = "sentinel2-swir"
START = datetime(2026, 7, 10, tzinfo=UTC)
SPLITS = ("train",) * 4 + ("val",) * 2 + ("test",) * 2  # per fire: its post-fire tile and its control


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lines")
    with running_stack(tmp / "state", "kafka,mlflow,triton", triton_model_repository=tmp / "repo") as settings:
        yield settings, tmp


def sentinel2_tiles(store: TileStore) -> list[TileReady]:
    """One Sentinel-2 pair per simulated fire, from the STAC/COG simulator over HTTP, as SWIR tiles."""
    now = START + timedelta(days=20)
    fires = [FireWindow(f"bc:S2{i}", lon=-121.0 + 0.25 * i, lat=50.1 + 0.05 * (i % 3), start=START)
             for i in range(12)]
    tiles: list[TileReady] = []
    with running_simulator(frozen_state(now)) as (url, state):
        state.fires = parse_fires([{"lat": f.lat, "lon": f.lon, "hectares": 300, "start": START.isoformat(),
                                    "growth_h": 96} for f in fires])
        provider = Sentinel2Provider(StacCatalogue(url=url))
        for fire in fires:
            if len(tiles) == 2 * len(SPLITS):
                break
            pair = provider.fetch_pair(fire, now)
            if not isinstance(pair.decision, Ready):
                continue
            split = SPLITS[len(tiles) // 2]
            for label, shot in (("wildfire", pair.post), ("nowildfire", pair.pre)):
                stored = store.put(shot.swir.png, "png")
                tiles.append(TileReady.create(
                    producer="test-tiler", tile_id=stored.tile_id, uri=stored.uri, lat=fire.lat, lon=fire.lon,
                    zoom=14, size_px=224, label=label, split=split, fire_key=fire.fire_key,
                    provider="sentinel2-earth-search", product=SWIR, acquired_at=shot.scene.acquired_at,
                    scene_id=shot.scene.scene_id, cloud_fraction=shot.cloud_fraction))
    assert len(tiles) == 2 * len(SPLITS), f"only {len(tiles) // 2} fires gave a clear pair"
    return tiles


def line_settings(base, tmp, model: str):
    common = dict(model_name=model, model_lines=f"mapbox,{SWIR}", tiler_tile_root=tmp / "tiles",
                  kafka_max_attempts=2, kafka_retry_backoff_s=0.1)
    trainer = TrainerSettings(**{
        **base.model_dump(), **common, "image_size": IMAGE_SIZE, "trainer_units": "16",
        "trainer_learning_rates": "0.003", "trainer_epochs": 6, "trainer_patience": 3, "trainer_batch_size": 8,
        "trainer_min_train_per_class": 4, "trainer_min_val_per_class": 2, "trainer_min_test_per_class": 2,
        "trainer_known_images": 2, "trainer_known_margin": 0.0, "trainer_leakage_check": False,
        "trainer_train_after_new_tiles": 2 * len(SPLITS), "trainer_debounce_s": 0.3, "trainer_max_wait_s": 30,
        "trainer_group_id": unique("trainer")})
    gate = gatekeeper_settings(base, **common, gatekeeper_group_id=unique("gatekeeper"),
                               gatekeeper_floor_min_per_class=2, gatekeeper_floor_recall=0.0,
                               gatekeeper_floor_specificity=0.0, gatekeeper_min_pairs=4,
                               gatekeeper_min_wildfire_pairs=2, gatekeeper_min_fire_free_pairs=2,
                               gatekeeper_max_pairs=4, gatekeeper_check_every=1)
    return trainer, gate


async def decisions(settings, expect: int) -> list[ModelDecision]:
    records = await read_all(settings.kafka_bootstrap_servers, ModelDecision.TOPIC, expect, timeout_s=300)
    return sorted((ModelDecision.from_bytes(r.value) for r in records), key=lambda d: d.occurred_at)


def infer(url: str, model: str, image: bytes) -> tuple[np.ndarray, str]:
    client = grpcclient.InferenceServerClient(url)
    inp = grpcclient.InferInput("IMAGE_BYTES", [1, 1], "BYTES")
    inp.set_data_from_numpy(np.array([[image]], dtype=np.object_))
    result = client.infer(model, [inp])
    return result.as_numpy("PROBABILITIES"), result.as_numpy("MODEL_VERSION")[0, 0].decode()


async def test_a_sentinel2_line_trains_and_is_gated_beside_an_untouched_mapbox_champion(stack):
    base, tmp = stack
    model = unique("emberwatch-lines")
    swir_model = f"{model}-{SWIR}"
    trainer_s, gate_s = line_settings(base, tmp, model)
    mlflow = MlflowClient(gate_s.mlflow_tracking_uri, registry_uri=gate_s.mlflow_tracking_uri)
    tiles = sentinel2_tiles(TileStore(gate_s.tile_root))

    # 1. the trainer: the Sentinel-2 tiles make that line's training due, not Mapbox's
    trainer_broker, trainer = build_service(trainer_s)
    await trainer_broker.start()
    await trainer.start()
    try:
        for tile in tiles:
            await publish_event(trainer_broker, tile, service="test-tiler")
        records = await read_all(trainer_s.kafka_bootstrap_servers, ModelCandidate.TOPIC, 1, timeout_s=300)
    finally:
        await trainer.stop()
        await trainer_broker.stop()
    [swir_candidate] = [ModelCandidate.from_bytes(r.value) for r in records]
    assert (swir_candidate.product, swir_candidate.model_name) == (SWIR, swir_model)
    assert [o.product for o in trainer.outcomes] == [SWIR]
    assert trainer.schedulers["mapbox"].attempts == 0
    run = mlflow.get_run(swir_candidate.run_id)
    assert run.data.params["product"] == SWIR and run.data.tags["product"] == SWIR
    assert {c: dict(v) for c, v in swir_candidate.counts.items()}["train"] == {"wildfire": 4, "nowildfire": 4}

    # 2. a Mapbox champion, then the gatekeeper of both lines takes both candidates
    world = make_world(gate_s.state_dir, gate_s.tile_root, n_train_each=20, n_test_each=6)
    m1, mrun, muri = log_candidate(gate_s.mlflow_tracking_uri, model, world, analytic_head(world, 0.3))
    app = build_app(gate_s)
    broker = app.broker
    await broker.start()
    try:
        await publish_event(broker, ModelCandidate.create(
            producer="test", model_name=model, version=m1, run_id=mrun, artifact_uri=muri, dataset_digest="d",
            counts={"test": SplitCounts(wildfire=6, nowildfire=6)}, metrics={}), service="test")
        first = {d.product: d for d in await decisions(gate_s, 2)}
        assert (first["mapbox"].model_name, first["mapbox"].decision, first["mapbox"].candidate_version) == (
            model, "promoted", m1)
        swir_first = first[SWIR]
        assert (swir_first.model_name, swir_first.candidate_version, swir_first.champion_version) == (
            swir_model, swir_candidate.version, None)
        assert swir_first.decision == "promoted" and swir_first.basis == "floor", swir_first.reason
        assert mlflow.get_model_version_by_alias(swir_model, "champion").version == swir_candidate.version

        # 3. a second Sentinel-2 candidate is compared with the Sentinel-2 champion, never with Mapbox's
        s2, s2run, s2uri = log_candidate(gate_s.mlflow_tracking_uri, swir_model, world, analytic_head(world, 0.0))
        await publish_event(broker, ModelCandidate.create(
            producer="test", model_name=swir_model, version=s2, run_id=s2run, artifact_uri=s2uri, product=SWIR,
            dataset_digest="d2", counts={"test": SplitCounts(wildfire=6, nowildfire=6)}, metrics={}),
            service="test")
        second = [d for d in await decisions(gate_s, 3) if d.candidate_version == s2 and d.product == SWIR]
        assert second and second[-1].model_name == swir_model
        assert second[-1].champion_version == swir_candidate.version, second[-1].reason
        assert second[-1].evidence.n >= 4

        # 4. Mapbox's line is as it was: its champion, no shadow, its state file where it always was
        lines = GatekeeperLines(gate_s)
        mapbox, swir = lines.lines["mapbox"], lines.lines[SWIR]
        assert mapbox.serving.roles()["champion"] == m1 and mapbox.state.shadow is None
        assert mapbox.history() == [m1]
        assert mlflow.get_model_version_by_alias(model, "champion").version == m1
        assert (gate_s.state_dir / "gatekeeper" / "state.json").is_file()
        assert (gate_s.state_dir / "gatekeeper" / "lines" / SWIR / "state.json").is_file()
        assert swir.history()[0] == swir_candidate.version

        # 5. Triton serves each line's champion under its own public name
        image = encode(world.known_images[0])
        await wait_for(lambda: infer(gate_s.triton_grpc_url, "wildfire", image)[1] == m1, timeout_s=60)
        probs, served = await asyncio.to_thread(infer, gate_s.triton_grpc_url, "wildfire_sentinel2_swir", image)
        assert served == swir.serving.roles()["champion"] and probs.shape == (1, 2)
    finally:
        await broker.stop()
