"""The whole loop end to end: the README's main command, `emberwatch demo`, at its defaults.

Only the ports are chosen at run time (so a leftover process cannot break the run) and the state
directory is a temporary one; every other setting is what a user gets. It proves what the README
promises: fires ingested → tiles → training → candidate → validation in Triton → a champion → a
later candidate judged against it in shadow on evidence → Discord → a prediction through Triton.
Then: the source tree is untouched, a Triton kill is recovered without a warning, bytes that are not
an image get a client error, a second run continues without duplicate work, Prometheus answers the
dashboards' queries, and `stack down` leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from emberwatch.operations.run_demo import message_fingerprint
from tests.e2e.demo_env import demo_env

pytestmark = [pytest.mark.timeout(1800), pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emberwatch.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _prom_query(env: dict[str, str], query: str) -> list:
    port = env["EMBERWATCH_PROMETHEUS_PORT"]
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def _git_status() -> set[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                         capture_output=True, text=True)
    return set(out.stdout.splitlines()) if out.returncode == 0 else set()


def _log_problems(log: Path, since_line: int) -> list[str]:
    """Warning/error lines a service logged after line ``since_line`` of its log."""
    lines = log.read_text(errors="replace").splitlines()[since_line:] if log.is_file() else []
    bad = []
    for line in lines:
        try:
            level = str(json.loads(line).get("level", "")).lower()
        except ValueError:
            level = "warning" if ("Traceback" in line or " WARNING" in line or " ERROR" in line) else ""
        if level in ("warning", "error", "critical"):
            bad.append(line[:300])
    return bad


def _tiles(state: Path) -> list[Path]:
    return [p for p in (state / "tiles").rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]


def test_demo_at_the_readme_defaults_runs_the_whole_loop(tmp_path):
    state = tmp_path / "state"
    env = demo_env(state, COLUMNS="160")
    tree_before = _git_status()
    try:
        first = _cli(env, "demo")
        print(first.stdout[-6000:], first.stderr[-3000:])
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "demo complete" in first.stdout
        assert "Champion and its evidence" in first.stdout and "Latest shadow comparison" in first.stdout
        assert "prediction through Triton" in first.stdout
        assert "duplicate events seen: 0" in first.stdout
        assert "Leakage check (shortcut baselines beside the CNN)" in first.stdout  # every training checks

        # Nothing was written into the source tree; the served repository is under the state dir.
        assert _git_status() == tree_before, sorted(_git_status() ^ tree_before)
        repo = state / "triton_models"
        assert (repo / "wildfire" / "serving.json").is_file() and (repo / "backbone" / "1" / "backbone.onnx").is_file()

        # Tiles are content-addressed: each file's name is the sha256 of its bytes.
        tiles = _tiles(state)
        assert tiles
        assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.stem for p in tiles[:200])

        # The Discord simulator got exactly one post per notified event.
        posts = httpx.get(f"http://127.0.0.1:{env['EMBERWATCH_DISCORD_SIM_PORT']}/api/_posted").json()["messages"]
        assert posts
        bodies = Counter(message_fingerprint(p) for p in posts)
        assert max(bodies.values()) == 1, "a message was posted twice"

        # Prometheus scrapes the services; the dashboards' series exist.
        for query in ("faststream_received_messages_total", "emberwatch_ingestor_polls_total",
                      "emberwatch_tiler_tiles_stored_total", "emberwatch_trainer_trainings_total",
                      "emberwatch_notifier_posts_total", "nv_inference_request_success"):
            assert _prom_query(env, query), f"Prometheus has no series for {query}"

        # `stack status` lists every part the demo started, simulators and services included.
        status = _cli(env, "stack", "status", timeout=60)
        for part in ("kafka", "mlflow", "triton", "prometheus", "sim-cwfis", "sim-mapbox", "sim-discord",
                     "ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console"):
            assert part in status.stdout, status.stdout
        # The operator console runs beside it, on the run's fires, with the demo's operator `demo`: its
        # secret is in the file the demo names, and signing in with it names that operator.
        console = f"http://127.0.0.1:{env['EMBERWATCH_CONSOLE_PORT']}"
        assert httpx.get(f"{console}/api/me", timeout=10).json()["signin_enabled"] is True
        secret_file = state / "console" / "demo-operator-secret"
        signed_in = httpx.post(f"{console}/api/signin", json={"secret": secret_file.read_text().strip()},
                               headers={"Origin": console}, timeout=10)
        assert signed_in.status_code == 200 and signed_in.json() == {"user": "demo"}, signed_in.text
        assert httpx.get(f"{console}/api/fires", timeout=30).json()["fires"]

        # Bytes that are not an image: a client error (400), not a server error.
        triton = f"http://127.0.0.1:{env['EMBERWATCH_TRITON_HTTP_PORT']}"
        body = {"inputs": [{"name": "IMAGE_BYTES", "shape": [1, 1], "datatype": "BYTES",
                            "data": ["this is not an image"]}]}
        r = httpx.post(f"{triton}/v2/models/wildfire/infer", json=body, timeout=30)
        assert r.status_code == 400, (r.status_code, r.text)

        # Triton killed (SIGKILL), then `stack up`: the gatekeeper re-loads what is served, quietly.
        gk_log = state / "logs" / "gatekeeper.log"
        log_mark = len(gk_log.read_text(errors="replace").splitlines())
        record = json.loads((state / "run" / "triton.json").read_text())
        os.killpg(record["pid"], 9)
        time.sleep(15)  # the gatekeeper's watchdog and live tiles meet a Triton that is gone
        up = _cli(env, "stack", "up", timeout=300)
        assert up.returncode == 0, up.stderr[-2000:]
        image = tiles[0]
        deadline = time.monotonic() + 120
        while True:
            predicted = _cli(env, "predict", str(image), "--protocol", "grpc", timeout=60)
            if predicted.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert predicted.returncode == 0, predicted.stderr[-2000:]
        assert "model version" in predicted.stdout
        time.sleep(12)  # one more watchdog round after the recovery
        # A candidate the trainer finishes meanwhile may carry leakage warnings: those are about its
        # data, logged by design, not about the outage.
        problems = [p for p in _log_problems(gk_log, log_mark) if "candidate carries warnings" not in p]
        assert not problems, problems[:5]

        # A second run continues: no duplicate tiles, no duplicate facts, a new shadow decision.
        n_tiles = len(tiles)
        second = _cli(env, "demo")
        print(second.stdout[-3000:])
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        tiles2 = _tiles(state)
        assert len(tiles2) >= n_tiles
        assert "duplicate events seen: 0" in second.stdout
        assert _git_status() == tree_before
    finally:
        down = _cli(env, "stack", "down", timeout=180)
        print(down.stderr[-2000:])
    # Nothing left running from this state dir.
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(tmp_path) in text and str(os.getpid()) != cmdline.parent.name:
            leftovers.append(text.replace("\0", " ")[:200])
    assert not leftovers, leftovers
