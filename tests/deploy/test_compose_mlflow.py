"""compose.yaml's MLflow, run here as the compose file runs it (no Docker): ``mlflow server`` with the
flags of its command, deploy/compose/mlflow-basic-auth.ini and the admin password from the
environment; then the mlflow-init job's script (deploy/compose/mlflow_service_user.py) and what the
services do as the user it makes. SQLite and a local directory stand in for PostgreSQL and S3."""

from __future__ import annotations

import os
import re
import runpy
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from emberwatch.common.telemetry import free_port

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "admin-pass-for-the-test"
SERVICE_PASSWORD = "service-pass-for-the-test"


def compose_server_flags() -> list[str]:
    """The flags of compose.yaml's `mlflow server` that decide auth and hosts."""
    script = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["mlflow"]["command"][0]
    command = re.search(r"exec (mlflow server .*?)$", script.replace("\\\n", " "), re.MULTILINE | re.DOTALL).group(1)
    words = shlex.split(command)
    return [w for w in words if w.startswith(("--app-name", "--allowed-hosts", "--workers"))]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    ini = (REPO / "deploy/compose/mlflow-basic-auth.ini").read_text()
    ini = re.sub(r"^database_uri = .*$", f"database_uri = sqlite:///{tmp}/basic_auth.db", ini, flags=re.MULTILINE)
    (tmp / "basic_auth.ini").write_text(ini)
    port = free_port()
    flags = compose_server_flags()
    flags = [f"{f},127.0.0.1:{port}" if f.startswith("--allowed-hosts=") else f for f in flags]
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp / "basic_auth.ini"),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD, "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-key-for-the-test",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", *flags,
         f"--backend-store-uri=sqlite:///{tmp}/mlflow.db", f"--artifacts-destination={tmp}/artifacts",
         "--host=127.0.0.1", f"--port={port}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def test_compose_runs_mlflow_with_basic_auth_and_named_hosts():
    flags = compose_server_flags()
    assert "--app-name=basic-auth" in flags
    assert any(f.startswith("--allowed-hosts=") for f in flags)


def test_health_answers_without_credentials_and_the_rest_needs_them(mlflow_server):
    assert httpx.get(f"{mlflow_server}/health", timeout=10).status_code == 200  # compose's healthcheck
    search = f"{mlflow_server}/api/2.0/mlflow/experiments/search"
    assert httpx.post(search, json={"max_results": 1}, timeout=10).status_code == 401
    assert httpx.post(search, json={"max_results": 1}, auth=("admin", "wrong"), timeout=10).status_code == 401
    assert httpx.post(search, json={"max_results": 1}, auth=("admin", ADMIN_PASSWORD), timeout=10).status_code == 200


def test_only_the_compose_host_names_are_served(mlflow_server):
    """--allowed-hosts: the services reach it as mlflow:5000; a foreign Host header is refused."""
    search = f"{mlflow_server}/api/2.0/mlflow/experiments/search"
    ok = httpx.post(search, json={"max_results": 1}, auth=("admin", ADMIN_PASSWORD),
                    headers={"Host": "mlflow:5000"}, timeout=10)
    assert ok.status_code == 200
    foreign = httpx.post(search, json={"max_results": 1}, auth=("admin", ADMIN_PASSWORD),
                         headers={"Host": "attacker.example"}, timeout=10)
    assert foreign.status_code in (400, 403)


def test_the_init_job_makes_the_services_user_who_can_do_the_services_work(mlflow_server, tmp_path, monkeypatch):
    (tmp_path / "mlflow_admin_password").write_text(ADMIN_PASSWORD + "\n")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("MLFLOW_SERVICE_PASSWORD", SERVICE_PASSWORD)
    script = runpy.run_path(str(REPO / "deploy/compose/mlflow_service_user.py"))
    assert script["main"](mlflow_server, "emberwatch") == "created"
    assert script["main"](mlflow_server, "emberwatch") == "password set"  # idempotent

    # As the services sign in (MLFLOW_TRACKING_USERNAME/PASSWORD, compose's x-mlflow-client-env):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "emberwatch")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SERVICE_PASSWORD)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.create_experiment("compose-test")  # the trainer
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    client.create_registered_model("compose-test-model")
    version = client.create_model_version("compose-test-model", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("compose-test-model", "champion", version.version)  # the gatekeeper
    assert client.get_model_version_by_alias("compose-test-model", "champion").version == version.version
    # It is no admin: it cannot create users.
    denied = httpx.post(f"{mlflow_server}/api/2.0/mlflow/users/create", auth=("emberwatch", SERVICE_PASSWORD),
                        json={"username": "x", "password": "y"}, timeout=10)
    assert denied.status_code == 403
