"""The whole loop end to end: `emberwatch demo` on ports chosen at run time, then checks.

CI runs it on small settings (64 px backbone input). It proves the README's main command: fires
ingested → tiles → training → candidate → validation in Triton → promotion → Discord → prediction,
that a second run continues without duplicate work, that Prometheus scrapes the services and
answers the dashboards' queries, and that `stack down` leaves nothing behind.
"""

from __future__ import annotations

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

pytestmark = [pytest.mark.timeout(1500), pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emberwatch.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _prom_query(env: dict[str, str], query: str) -> list:
    port = env["EMBERWATCH_PROMETHEUS_PORT"]
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10)
    r.raise_for_status()
    return r.json()["data"]["result"]


def test_demo_runs_the_whole_loop_and_reruns_without_duplicates(tmp_path):
    env = demo_env(tmp_path / "state", COLUMNS="160")
    try:
        first = _cli(env, "demo", "--rounds", "3", "--round-timeout-s", "360")
        print(first.stdout[-4000:], first.stderr[-4000:])
        assert first.returncode == 0, first.stderr[-3000:]
        assert "prediction through Triton" in first.stdout
        assert "Champion and its evidence" in first.stdout

        # Every tile stored once (content-addressed), every event once per fact.
        tiles = [p for p in (tmp_path / "state" / "tiles").rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]
        assert tiles
        assert len({p.name for p in tiles}) == len(tiles)

        # The Discord simulator got exactly one post per notified event.
        posts = httpx.get(f"http://127.0.0.1:{env['EMBERWATCH_DISCORD_SIM_PORT']}/api/_posted").json()["messages"]
        assert posts
        bodies = Counter(message_fingerprint(p) for p in posts)
        assert max(bodies.values()) == 1, "a message was posted twice"

        # Prometheus scrapes the services; the dashboards' series exist.
        for query in ("emberwatch_messages_consumed_total", "emberwatch_ingestor_polls_total",
                      "emberwatch_tiler_tiles_stored_total", "emberwatch_trainer_trainings_total",
                      "emberwatch_notifier_posts_total", "nv_inference_request_success"):
            assert _prom_query(env, query), f"Prometheus has no series for {query}"

        # Triton restarted (SIGKILL, then `stack up`): the gatekeeper re-loads what is served.
        state = tmp_path / "state"
        record = json.loads((state / "run" / "triton.json").read_text())
        os.killpg(record["pid"], 9)
        up = _cli(env, "stack", "up", timeout=300)
        assert up.returncode == 0, up.stderr[-2000:]
        image = next(iter(tiles))
        deadline = time.monotonic() + 120
        while True:
            predicted = _cli(env, "predict", str(image), "--protocol", "grpc", timeout=60)
            if predicted.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert predicted.returncode == 0, predicted.stderr[-2000:]
        assert "model version" in predicted.stdout

        # A second run continues: no duplicate tiles, no duplicate facts.
        n_tiles = len(tiles)
        second = _cli(env, "demo", "--rounds", "1", "--round-timeout-s", "120")
        print(second.stdout[-3000:])
        assert second.returncode == 0, second.stderr[-3000:]
        tiles2 = [p for p in (tmp_path / "state" / "tiles").rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]
        assert len({p.name for p in tiles2}) == len(tiles2) >= n_tiles
        assert "duplicate events seen: 0" in second.stdout
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
