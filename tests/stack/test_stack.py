"""`emberwatch stack up|status|down` with every real part, on ports chosen at run time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emberwatch.stack import manage, processes
from tests.conftest import env_for, stack_settings

pytestmark = pytest.mark.timeout(400)


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def _cli(settings, *args: str) -> subprocess.CompletedProcess:
    env = env_for(settings) | {
        "EMBERWATCH_STACK_PARTS": settings.stack_parts,
        **{f"EMBERWATCH_{k.upper()}": str(getattr(settings, k)) for k in (
            "kafka_port", "mlflow_port", "triton_http_port", "triton_grpc_port",
            "triton_metrics_port", "prometheus_port")},
        "COLUMNS": "200",
    }
    return subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "stack", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_stack_up_status_down_leaves_nothing_behind(tmp_path):
    settings = stack_settings(tmp_path / "state", "kafka,mlflow,triton,prometheus")
    up = _cli(settings, "up")
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        statuses = {s.name: s for s in manage.status(settings)}
        assert {n: s.state for n, s in statuses.items()} == {
            "kafka": "up", "mlflow": "up", "triton": "up", "prometheus": "up"}
        pgids = {n: s.pid for n, s in statuses.items()}

        # Real answers from each part.
        assert httpx.get(f"{settings.mlflow_tracking_uri}/health").status_code == 200
        assert httpx.get(f"http://{settings.triton_url}/v2/health/ready").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{settings.triton_metrics_port}/metrics").status_code == 200
        prom = httpx.get(f"http://127.0.0.1:{settings.prometheus_port}/api/v1/targets").json()
        assert prom["status"] == "success"

        # `up` twice is harmless: same processes.
        again = _cli(settings, "up")
        assert again.returncode == 0, again.stderr
        assert {s.name: s.pid for s in manage.status(settings)} == pgids

        # `status` lists every part with its address; exit 0 while all are up.
        st = _cli(settings, "status")
        assert st.returncode == 0
        for name in pgids:
            assert name in st.stdout
        assert str(settings.kafka_port) in st.stdout

        # A part that stops is reported down, and status exits 1.
        os.killpg(pgids["prometheus"], signal.SIGKILL)
        processes._wait_group_gone(pgids["prometheus"], 10)
        assert manage.part_status(settings, "prometheus").state == "down"
        st = _cli(settings, "status")
        assert st.returncode == 1
        assert "down" in st.stdout
    finally:
        down = _cli(settings, "down")
    assert down.returncode == 0, down.stderr
    for name, pgid in pgids.items():
        assert _group_members(pgid) == [], f"{name} left processes behind"
    assert all(s.state == "down" for s in manage.status(settings))


def test_down_never_signals_a_process_it_did_not_start(tmp_path):
    settings = stack_settings(tmp_path / "state", "kafka")
    # A stale PID file that points at a process `up` did not start (this test's own sleep).
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        processes.ProcessRecord(name="kafka", pid=stranger.pid, argv=["/x/tansu", "broker"], started_at=0).save(
            manage.pid_path(settings, "kafka"))
        assert manage.part_status(settings, "kafka").state == "down"
        assert manage.down(settings) == []
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_up_refuses_a_port_taken_by_something_else(kafka_settings, tmp_path):
    settings = stack_settings(tmp_path / "state", "kafka", kafka_port=kafka_settings.kafka_port)
    with pytest.raises(manage.StackError, match="not started by this stack"):
        manage.up(settings)
