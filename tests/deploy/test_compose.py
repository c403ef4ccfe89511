"""compose.yaml: valid against the compose-spec schema, and wired the way the design says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier")


def test_compose_validates_against_the_compose_spec():
    exe = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(REPO / "compose.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_part_and_every_service_from_one_image():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    for part in ("kafka", "mlflow", "triton", "prometheus", "grafana", "postgres", "minio"):
        assert part in services
    for name in SERVICES:
        assert services[name]["command"] == ["run", name]
        assert services[name]["image"] == "emberwatch:latest"
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on undefined {dep}"
    assert "--model-control-mode=explicit" in services["triton"]["command"]
    assert "postgresql://" in " ".join(services["mlflow"]["command"])
    assert "s3://" in " ".join(services["mlflow"]["command"])
    console = services["console"]
    assert console["command"] == ["console"] and console["image"] == "emberwatch:latest"
    assert console["ports"] == ["127.0.0.1:8090:8090"]  # the host's loopback only
    # Secrets only come from the host environment.
    text = (REPO / "compose.yaml").read_text()
    assert "EMBERWATCH_MAPBOX_TOKEN: ${MAPBOX_TOKEN" in text
    assert "EMBERWATCH_CONSOLE_OPERATOR_TOKEN: ${CONSOLE_OPERATOR_TOKEN" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_compose_prometheus_config_is_valid():
    result = subprocess.run(["promtool", "check", "config", "--syntax-only",
                             str(REPO / "monitoring/prometheus/prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
