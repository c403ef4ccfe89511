"""The console beside a real gatekeeper (its own process), Triton and MLflow: the champion's and the
challenger's predictions on each tile of a fire, the shadow's progress against the gate's minimums,
the candidates' plots from MLflow, and a signed-in approve that the gatekeeper carries out.

A first model is promoted over the floor; a second one enters shadow (the gate's minimums are set
too high for it to decide alone); a fire and its tiles arrive; the page shows both models on each
tile; an operator approves the challenger in the browser and the page shows the gatekeeper's answer.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.common.tile_store import TileStore
from emberwatch.common.triton_client import Triton
from emberwatch.contracts import FireObserved, ModelDecision, TileReady
from emberwatch.contracts.events import ModelCandidate, SplitCounts
from emberwatch.operations.create_topics import create_topics
from emberwatch.stack import manage
from services.trainer.evaluate import plot_confusion, plot_training_curves
from tests.conftest import REPO, env_for, stack_settings
from tests.services.console.conftest import (
    check_screenshot,
    console_process,
    make_operators,
    publish,
    read_all,
    run_async,
    sign_in,
)
from tests.services.gatekeeper.candidates import (
    IMAGE_SIZE,
    analytic_head,
    log_candidate,
    make_world,
    scenes,
    write_tiles,
)
from tests.support.process_group import stop_group

pytestmark = pytest.mark.timeout(900)
MODEL = "emberwatch-console-test"
MIN_PAIRS = 500  # far above what the test sends: the gate never decides alone, the operator does


@dataclass
class System:
    settings: Settings
    console_url: str
    gatekeeper_metrics: str
    v1: str
    v2: str
    run1: str
    run2: str
    fire_tiles: list[TileReady]
    secrets: dict[str, str]  # the console's operators: name -> secret


def _wait(what: str, check: Callable[[], object], timeout_s: float = 240.0, logs: Path | None = None) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    tail = logs.read_text(errors="replace")[-4000:] if logs and logs.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def _decisions(settings: Settings) -> dict[str, ModelDecision]:
    return {d.candidate_version: d for d in (ModelDecision.from_bytes(b)
                                             for b in read_all(settings, ModelDecision.TOPIC))}


def _candidate(version: str, run_id: str, uri: str) -> ModelCandidate:
    return ModelCandidate.create(
        producer="test", model_name=MODEL, version=version, run_id=run_id, artifact_uri=uri,
        dataset_digest="sha256:test", counts={"train": SplitCounts(wildfire=30, nowildfire=30)},
        metrics={"val_accuracy": 0.9, "val_recall": 0.85})


def _log_plots(tracking_uri: str, run_id: str) -> None:
    """The plots the trainer logs with every run, drawn by the trainer's own code."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        plots = Path(tmp) / "plots"
        plot_confusion({"val": np.array([[20, 4], [3, 21]]), "test": np.array([[25, 5], [6, 24]])},
                       plots / "confusion_matrix.png")
        plot_training_curves({"loss": [0.9, 0.6, 0.5], "val_loss": [0.8, 0.66, 0.6],
                              "accuracy": [0.6, 0.75, 0.8], "val_accuracy": [0.62, 0.7, 0.78]},
                             plots / "training_curves.png")
        MlflowClient(tracking_uri).log_artifacts(run_id, str(plots), "plots")


def _gatekeeper_metric(url: str, name: str, **labels: str) -> float | None:
    text = httpx.get(url, timeout=3).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("console-gk")
    settings = stack_settings(tmp / "state", "kafka,mlflow,triton", triton_model_repository=tmp / "repo")
    manage.up(settings)
    gatekeeper = None
    try:
        run_async(lambda: create_topics(settings))
        world = make_world(settings.state_dir, settings.tile_root)  # the readers' tile store
        v1, run1, uri1 = log_candidate(settings.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.3))
        _log_plots(settings.mlflow_tracking_uri, run1)

        metrics_port = free_port()
        env = env_for(settings) | {
            "EMBERWATCH_TRITON_MODEL_REPOSITORY": str(tmp / "repo"), "EMBERWATCH_IMAGE_SIZE": str(IMAGE_SIZE),
            "EMBERWATCH_MODEL_NAME": MODEL, "EMBERWATCH_METRICS_PORT": str(metrics_port),
            "EMBERWATCH_GATEKEEPER_MIN_PAIRS": str(MIN_PAIRS), "EMBERWATCH_GATEKEEPER_MIN_WILDFIRE_PAIRS": "40",
            "EMBERWATCH_GATEKEEPER_MIN_FIRE_FREE_PAIRS": "45", "EMBERWATCH_GATEKEEPER_FLOOR_RECALL": "0.3",
            "EMBERWATCH_GATEKEEPER_FLOOR_SPECIFICITY": "0.3", "EMBERWATCH_GATEKEEPER_FLOOR_MIN_PER_CLASS": "20",
            "EMBERWATCH_GATEKEEPER_UNLOAD_GRACE_S": "0.5", "EMBERWATCH_GATEKEEPER_VALIDATION_MAX_LATENCY_MS": "20000",
        }
        gk_log = tmp / "gatekeeper.log"
        gk_out = gk_log.open("wb")
        gatekeeper = subprocess.Popen(
            [sys.executable, "-c", "from emberwatch.cli.main import app; app()", "run", "gatekeeper"],
            cwd=REPO, env=env, stdout=gk_out, stderr=subprocess.STDOUT, start_new_session=True)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        # 1. the first model: validated, promoted over the floor by the gatekeeper
        publish(settings, _candidate(v1, run1, uri1))
        d1 = _wait("the first model's decision", lambda: _decisions(settings).get(v1), logs=gk_log)
        assert d1.decision == "promoted", d1.reason

        # 2. a second model enters shadow: its 60 test tiles are paired, the gate waits for more
        v2, run2, uri2 = log_candidate(settings.mlflow_tracking_uri, MODEL, world, analytic_head(world, 0.0))
        publish(settings, _candidate(v2, run2, uri2))
        _wait("the shadow of the second model", lambda: _gatekeeper_metric(
            metrics_url, "emberwatch_model_shadow_class_pairs", version=v2, label="wildfire"), logs=gk_log)

        # 3. a fire and its tiles: one burn scene (its own tile) and three fire-free scenes
        images, labels = scenes(11, 4)
        records = write_tiles(settings.tile_root, images[[0, 4, 5, 6]], labels[[0, 4, 5, 6]], "console")
        fire_tiles = [TileReady.create(producer="test", tile_id=r["tile_id"], uri=r["uri"], lat=55.0, lon=-110.0,
                                       zoom=14, size_px=IMAGE_SIZE, label=r["label"], split="test", fire_key="F",
                                       provider="test") for r in records]
        publish(settings, FireObserved.create(
            producer="test", fire_key="F", source="cwfis-csv", agency="ab", name="Fire F", lat=55.0, lon=-110.0,
            start_date=datetime(2026, 7, 1, tzinfo=UTC), hectares=120.0, stage_of_control="OC", change="new",
            snapshot_at=datetime(2026, 7, 1, 12, tzinfo=UTC)), *fire_tiles)

        # and a fire whose only tile is not an image (a corrupt download): set aside with Triton's reason
        junk = b"\x89PNG\r\n\x1a\n this is not a picture" + os.urandom(16)
        junk_path = TileStore(settings.tile_root).path_for(hashlib.sha256(junk).hexdigest(), "png")
        junk_path.parent.mkdir(parents=True, exist_ok=True)
        junk_path.write_bytes(junk)
        corrupt = TileReady.create(producer="test", tile_id=hashlib.sha256(junk).hexdigest(), uri=junk_path.as_uri(),
                                   lat=56.0, lon=-111.0, zoom=14, size_px=IMAGE_SIZE, label="wildfire", split="test",
                                   fire_key="G", provider="test")
        publish(settings, FireObserved.create(
            producer="test", fire_key="G", source="cwfis-csv", agency="ab", name="Fire G", lat=56.0, lon=-111.0,
            start_date=None, hectares=3.0, stage_of_control="UC", change="new",
            snapshot_at=datetime(2026, 7, 1, 12, tzinfo=UTC)), corrupt)

        secrets = make_operators(tmp / "operators", ("dana",))
        console_env = {"EMBERWATCH_CONSOLE_OPERATORS_FILE": str(tmp / "operators"), "EMBERWATCH_CONSOLE_MODEL_NAME": MODEL,
                       "EMBERWATCH_CONSOLE_GATEKEEPER_METRICS_URL": metrics_url}
        with console_process(settings, tmp / "console.log", console_env, fires=2, tiles=5) as url:
            yield System(settings, url, metrics_url, v1, v2, run1, run2, fire_tiles, secrets)
    finally:
        if gatekeeper is not None:
            stop_group(gatekeeper, 30)
        manage.down(settings)


# The map's view where fires F (55, -110) and G (56, -111) are drawn apart (clusters end at zoom 8).
UNCLUSTERED_VIEW = "map.setView([55.5, -110.5], 8, {animate: false})"


def _tiles(system: System, fire_key: str = "F") -> list[dict]:
    return httpx.get(f"{system.console_url}/api/tiles", params={"fire_key": fire_key}, timeout=5).json()["tiles"]


def test_each_tile_shows_both_models_as_triton_scores_them(system: System) -> None:
    def all_scored() -> list[dict] | None:
        tiles = _tiles(system)
        done = all(t["prediction"] and t["prediction"]["challenger"] for t in tiles)
        return tiles if done and len(tiles) == 4 else None

    tiles = _wait("both models' predictions on the fire's 4 tiles", all_scored, timeout_s=120)
    # what Triton itself says of the same bytes, asked directly
    triton = Triton(system.settings.triton_url)
    data = [Path(t.uri.removeprefix("file://")).read_bytes() for t in system.fire_tiles]
    direct = triton.score_bytes(data, f"{system.v1},{system.v2}")
    by_id = {t["tile_id"]: t for t in tiles}
    for i, tile in enumerate(system.fire_tiles):
        p = by_id[tile.tile_id]["prediction"]
        assert (p["champion"]["version"], p["challenger"]["version"]) == (system.v1, system.v2)
        assert p["champion"]["wildfire"] == pytest.approx(float(direct.wildfire(system.v1)[i]), abs=1e-4)
        assert p["challenger"]["wildfire"] == pytest.approx(float(direct.wildfire(system.v2)[i]), abs=1e-4)
        assert p["disagree"] == ((p["champion"]["wildfire"] >= 0.5) != (p["challenger"]["wildfire"] >= 0.5))

    fires = httpx.get(f"{system.console_url}/api/fires", timeout=5).json()
    (f,) = [f for f in fires["fires"] if f["fire_key"] == "F"]
    own = by_id[system.fire_tiles[0].tile_id]["prediction"]
    assert f["prediction"]["champion"] == own["champion"] and f["prediction"]["tiles_scored"] == 4
    assert f["prediction"]["disagree"] == any(t["prediction"]["disagree"] for t in tiles)
    assert f"challenger {system.v2} in shadow" in fires["predictions"]


def test_a_tile_triton_cannot_read_is_set_aside_with_the_reason(system: System) -> None:
    (tile,) = _wait("the corrupt tile set aside", lambda: [t for t in _tiles(system, "G") if t["prediction"]],
                    timeout_s=120)
    assert tile["prediction"]["champion"] is None and tile["prediction"]["problem"]
    fires = {f["fire_key"]: f for f in httpx.get(f"{system.console_url}/api/fires", timeout=5).json()["fires"]}
    assert fires["G"]["prediction"] is None  # nothing scored: the map says "not scored yet"
    assert fires["F"]["prediction"]["tiles_scored"] == 4  # the good tiles were scored all the same


def test_models_page_data_shows_roles_links_and_the_shadow_against_the_gate(system: System) -> None:
    m = httpx.get(f"{system.console_url}/api/models", timeout=10).json()
    assert (m["champion"], m["challenger"], m["previous"]) == (system.v1, system.v2, None)
    champion = m["roles"]["champion"]
    assert champion["run_id"] == system.run1 and champion["mlflow_run_url"].endswith(f"/#/runs/{system.run1}")
    assert champion["mlflow_version_url"].endswith(f"/#/models/{MODEL}/versions/{system.v1}")
    assert m["gate"]["available"] and m["gate"]["minimums"] == {"all": MIN_PAIRS, "wildfire": 40, "nowildfire": 45}
    shadow = m["gate"]["shadow"]
    assert (shadow["challenger"], shadow["champion"]) == (system.v2, system.v1)
    assert shadow["pairs"]["all"] == shadow["pairs"]["wildfire"] + shadow["pairs"]["nowildfire"] >= 60
    expected = _gatekeeper_metric(system.gatekeeper_metrics, "emberwatch_model_shadow_class_pairs",
                                  version=system.v2, label="wildfire")
    assert shadow["pairs"]["wildfire"] == expected


def test_plots_come_from_the_runs_mlflow_artifacts(system: System) -> None:
    url = system.console_url
    for name in ("training_curves.png", "confusion_matrix.png"):
        r = httpx.get(f"{url}/api/runs/{system.run1}/plots/{name}", timeout=60)
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n", r.text[:200]
    missing = httpx.get(f"{url}/api/runs/{system.run2}/plots/training_curves.png", timeout=60)
    assert missing.status_code == 404 and "has no plots/training_curves.png" in missing.text
    unknown = httpx.get(f"{url}/api/runs/{'0' * 32}/plots/training_curves.png", timeout=5)
    assert unknown.status_code == 404 and "no models.candidates.v1 event names it" in unknown.text
    assert httpx.get(f"{url}/api/runs/{system.run1}/plots/secrets.txt", timeout=5).status_code == 404


def test_a_signed_in_approve_reaches_the_gatekeeper_and_the_page_shows_its_decision(system: System, browser,
                                                                                    tmp_path) -> None:
    """Also the screenshots in docs/images (EMBERWATCH_DOCS_SCREENSHOTS=docs/images writes them)."""
    context = browser.new_context(base_url=system.console_url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto("/")
        # F and G lie close enough to share a cluster at the opening zoom: look from nearer
        page.evaluate(UNCLUSTERED_VIEW)
        page.wait_for_selector(".fire-marker[data-fire-key='F']:not(.pred-none)", timeout=60000)
        page.click(".fire-marker[data-fire-key='F']")
        page.wait_for_function("() => document.querySelectorAll('.tile .prediction').length === 4")
        texts = page.eval_on_selector_all(".tile .prediction", "els => els.map(e => e.textContent)")
        assert all(f"champion v{system.v1}" in t and f"challenger v{system.v2}" in t for t in texts), texts
        page.wait_for_function("() => [...document.querySelectorAll('.tile img')]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length === 4")
        check_screenshot("console-map.png", page.screenshot(full_page=True), tmp_path)

        page.goto("/models")
        page.wait_for_selector(f"#gate[data-challenger='{system.v2}']")
        assert f"/ {MIN_PAIRS}" in page.text_content("#gate .gate-row[data-kind='all']")
        page.wait_for_function("() => [...document.querySelectorAll(\"[data-role='champion'] img.plot\")]"
                               ".filter(i => i.complete && i.naturalWidth > 0).length === 2")
        # the challenger's run has no plots: each says so in words instead of a broken image
        page.wait_for_function("() => document.querySelectorAll(\"[data-role='challenger'] img.plot\").length === 0")
        assert "no training curves plot" in page.text_content("[data-role='challenger']")
        check_screenshot("console-models.png", page.screenshot(full_page=True), tmp_path)
        sign_in(page, system.secrets, "dana")
        page.select_option("#command-kind", "approve")
        page.fill("#command-reason", "both classes look right on the map")
        page.click("#command-send")
        page.wait_for_selector("#command-status:has-text('answer: promoted')", timeout=120000)
        assert page.text_content("#champion") == system.v2
        assert page.text_content("#previous") == system.v1
        decision = _decisions(system.settings)[system.v2]
        assert (decision.decision, decision.basis, decision.requested_by) == ("promoted", "operator", "console:dana")
        assert "both classes look right on the map" in decision.reason

        # the new champion alone is served now: every tile is scored again, with it
        page.goto("/")
        page.evaluate(UNCLUSTERED_VIEW)
        page.click(".fire-marker[data-fire-key='F']")
        page.wait_for_function(
            f"() => [...document.querySelectorAll('.tile .prediction')].every(e => e.textContent.startsWith("
            f"'champion v{system.v2}') && !e.textContent.includes('challenger'))", timeout=60000)
    finally:
        context.close()
