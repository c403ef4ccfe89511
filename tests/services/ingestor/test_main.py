"""`emberwatch run ingestor` as a process: polls the simulator, publishes, serves /metrics, and stops
cleanly on SIGTERM with its state saved."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta

import httpx
import pytest

from emberwatch.common.telemetry import free_port
from simulators.cwfis.app import SimConfig
from simulators.cwfis.season import season_start, snapshot
from tests.conftest import env_for
from tests.messaging.helpers import wait_for
from tests.services.ingestor.helpers import fire_events
from tests.simulators.cwfis.serve import running_sim

pytestmark = pytest.mark.timeout(120)
SEED, N_FIRES = 801, 600
T0 = season_start(2026) + timedelta(days=40)


async def test_the_service_polls_publishes_and_stops_on_sigterm(kafka_settings, tmp_path):
    state_file = tmp_path / "ingestor" / "state.json"
    metrics_port = free_port()
    expected = {st.fire.fire_key for st in snapshot(SEED, T0, N_FIRES) if st.stage != "EX"}
    with running_sim(SimConfig(seed=SEED, n_fires=N_FIRES, start_at=T0, speed=0.0)) as sim:
        env = env_for(kafka_settings)
        env.update({
            "EMBERWATCH_STATE_DIR": str(tmp_path), "EMBERWATCH_CWFIS_CSV_URL": sim.csv_url,
            "EMBERWATCH_CWFIS_WFS_URL": sim.wfs_url, "EMBERWATCH_INGESTOR_POLL_INTERVAL_S": "0.3",
            "EMBERWATCH_METRICS_PORT": str(metrics_port), "EMBERWATCH_LOG_FORMAT": "json",
        })
        log = tmp_path / "ingestor.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "run", "ingestor"],
                                    env=env, stderr=err, stdout=err, start_new_session=True)
            try:
                def tracked() -> set[str]:
                    if not state_file.exists():
                        return set()
                    return {r["fire_key"] for r in json.loads(state_file.read_text())["tracked"]}

                await wait_for(lambda: tracked() == expected, timeout_s=60)
                metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
                assert 'emberwatch_ingestor_polls_total{outcome="ok",source="cwfis-csv"}' in metrics
                assert 'emberwatch_ingestor_events_total{change="new"}' in metrics
                assert "emberwatch_ingestor_snapshot_age_seconds" in metrics
                polls = sim.state()["requests"]["csv"]
                await wait_for(lambda: sim.state()["requests"]["csv"] >= polls + 2, timeout_s=30)
                assert sim.state()["requests"].get("csv:304", 0) >= 2  # conditional re-polls
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
                    raise
    lines = log.read_text().splitlines()
    assert rc == 0, "\n".join(lines[-20:])
    assert any('"service stopped"' in ln for ln in lines)
    events = [e for e in await fire_events(kafka_settings.kafka_bootstrap_servers)
              if e.change == "new" and e.fire_key in expected
              and e.snapshot_at.replace(minute=0) == T0.replace(minute=0)]
    assert {e.fire_key for e in events} == expected
