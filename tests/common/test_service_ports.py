"""Services started by hand coexist: each has its own /metrics port; a taken port is one clear line."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from emberwatch.common.config import SERVICE_NAMES, Settings
from emberwatch.common.service import run_service


def test_every_service_has_its_own_default_port():
    s = Settings()
    ports = [s.service_metrics_port(name) for name in SERVICE_NAMES]
    assert ports == [9101, 9102, 9103, 9104, 9105]
    assert Settings(metrics_port=0).service_metrics_port("tiler") == 0
    assert Settings(services_metrics_base_port=20000).service_metrics_port("notifier") == 20004
    with pytest.raises(ValueError, match="unknown service"):
        s.service_metrics_port("nope")


@pytest.fixture
def restore_logging():
    """run_service configures logging for a service process; give the other tests theirs back."""
    import logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level,
             {n: logging.getLogger(n).level for n in ("aiokafka", "kafka", "httpx", "httpcore")})
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_a_port_in_use_is_one_clear_line_naming_the_setting(monkeypatch, restore_logging):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("EMBERWATCH_METRICS_PORT", str(port))
        from emberwatch.common import config

        config.get_settings.cache_clear()
        built = []
        try:
            with pytest.raises(SystemExit) as exc:
                run_service("tiler", lambda settings: built.append(settings))
        finally:
            config.get_settings.cache_clear()
    message = str(exc.value)
    assert f"127.0.0.1:{port}" in message and "EMBERWATCH_METRICS_PORT" in message
    assert "\n" not in message and built == []


def test_two_services_started_by_hand_both_start(tmp_path):
    """`emberwatch run ingestor` and `emberwatch run tiler` side by side (their /metrics differ)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBERWATCH_")}
    free = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free.append(s.getsockname()[1])
    # A port that accepts connections but never answers: the services start, serve /metrics and wait
    # for the broker's metadata (a refused port would make them exit at once, racing the polling).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    free[0] = silent.getsockname()[1]
    env.update(EMBERWATCH_STATE_DIR=str(tmp_path), EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free[0]}",
               EMBERWATCH_SERVICES_METRICS_BASE_PORT=str(free[1] + 1000 if free[1] < 60000 else 20000),
               EMBERWATCH_CWFIS_CSV_URL="", EMBERWATCH_CWFIS_WFS_URL="")
    base = int(env["EMBERWATCH_SERVICES_METRICS_BASE_PORT"])
    procs = [subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "run", name], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
             for name in ("ingestor", "tiler")]
    try:
        import time

        import httpx

        deadline = time.monotonic() + 60
        up = set()
        while time.monotonic() < deadline and len(up) < 2:
            for i, name in enumerate(("ingestor", "tiler")):
                try:
                    if httpx.get(f"http://127.0.0.1:{base + i}/metrics", timeout=2).status_code == 200:
                        up.add(name)
                except httpx.HTTPError:
                    pass
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.5)
        errors = [p.stderr.read().decode()[-500:] for p in procs if p.poll() is not None]
        assert up == {"ingestor", "tiler"}, errors
    finally:
        import os as _os
        import signal

        silent.close()

        for p in procs:
            if p.poll() is None:
                _os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                _os.killpg(p.pid, signal.SIGKILL)
