"""Environment for running the whole system on ports chosen at run time (end-to-end tests)."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from emberwatch.common.telemetry import free_port


def _consecutive_free_ports(count: int) -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no run of free ports found")


def demo_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """Every EMBERWATCH_*_PORT free now and state under ``state_dir``; everything else at the
    defaults a user gets (``extra`` for the tests that need otherwise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBERWATCH_")}
    ports = {name: free_port() for name in (
        "KAFKA_PORT", "MLFLOW_PORT", "TRITON_HTTP_PORT", "TRITON_GRPC_PORT", "TRITON_METRICS_PORT",
        "PROMETHEUS_PORT", "CWFIS_SIM_PORT", "MAPBOX_SIM_PORT", "DISCORD_SIM_PORT", "STAC_SIM_PORT",
        "CONSOLE_PORT")}
    env.update({f"EMBERWATCH_{k}": str(v) for k, v in ports.items()})
    env["EMBERWATCH_SERVICES_METRICS_BASE_PORT"] = str(_consecutive_free_ports(5))
    env["EMBERWATCH_STATE_DIR"] = str(state_dir)
    env.update(extra)
    return env
