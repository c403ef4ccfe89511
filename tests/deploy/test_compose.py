"""compose.yaml: valid against the compose-spec schema, and wired the way the design says."""

from __future__ import annotations

import configparser
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from emberwatch.common.config import Settings
from emberwatch.contracts import Topic
from emberwatch.contracts.topics import ALL_TOPICS, dlq_topic
from emberwatch.operations.create_topics import planned_configs, planned_partitions

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
    for part in ("kafka", "mlflow", "triton", "prometheus", "grafana", "postgres", "seaweedfs"):
        assert part in services
    for name in SERVICES:
        assert services[name]["command"] == ["run", name]
        if name != "trainer":
            assert services[name]["image"] == "emberwatch:latest"
    # the trainer: the same Dockerfile with TensorFlow for CUDA, on the GPU it reserves
    trainer = services["trainer"]
    assert trainer["image"] == "emberwatch-trainer-gpu:latest" and trainer["build"]["context"] == "."
    assert trainer["build"]["args"]["TENSORFLOW"].startswith("tensorflow[and-cuda]==2.21")
    assert trainer["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert 'ARG TENSORFLOW=""' in (REPO / "Dockerfile").read_text()
    # the gatekeeper lays the backbone out for Triton's onnxruntime backend on the GPU
    assert services["gatekeeper"]["environment"]["EMBERWATCH_TRITON_BACKBONE_RUNTIME"] == "onnxruntime-gpu"
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on undefined {dep}"
    assert "--model-control-mode=explicit" in " ".join(services["triton"]["command"])
    console = services["console"]
    assert console["command"] == ["console"] and console["image"] == "emberwatch:latest"
    assert console["ports"] == ["127.0.0.1:8090:8090"]  # the host's loopback only


def test_mlflow_serves_on_postgresql_and_s3_behind_basic_auth():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    mlflow = compose["services"]["mlflow"]
    script = " ".join(mlflow["command"])
    # PostgreSQL without a password in any URL: libpq reads it from PGPASSWORD, set from the secret
    assert "--backend-store-uri=postgresql://mlflow@postgres:5432/mlflow" in script
    assert 'export PGPASSWORD="$$(cat /run/secrets/postgres_password)"' in script
    assert "--artifacts-destination=s3://mlflow/artifacts" in script
    assert "--app-name=basic-auth" in script
    hosts = re.search(r"--allowed-hosts=(\S+)", script).group(1).split(",")
    assert {"mlflow", "mlflow:5000"} <= set(hosts), "the services reach it as mlflow:5000"
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    # The basic-auth config keeps its users in the same PostgreSQL database and holds no password.
    ini = configparser.ConfigParser()
    ini.read(REPO / "deploy/compose/mlflow-basic-auth.ini")
    assert "admin_password" not in ini["mlflow"]
    assert ini["mlflow"]["database_uri"] == "postgresql://mlflow@postgres:5432/mlflow"
    # its credential cache is per worker: with one worker a password changed through the API applies at once
    assert int(ini["mlflow"].get("auth_cache_ttl_seconds", "0")) == 0 or "--workers=1" in script
    mounted = {m.split(":")[1]: m.split(":")[0] for m in mlflow["volumes"]}
    assert mounted["/etc/mlflow/basic_auth.ini"] == "./deploy/compose/mlflow-basic-auth.ini"
    assert mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    # The init jobs the server and the services wait for
    assert mlflow["depends_on"]["s3-init"] == {"condition": "service_completed_successfully"}
    for name in ("trainer", "gatekeeper", "notifier", "console"):
        svc = compose["services"][name]
        assert svc["depends_on"]["mlflow-init"] == {"condition": "service_completed_successfully"}
        assert svc["environment"]["EMBERWATCH_MLFLOW_TRACKING_USERNAME"] == compose["services"]["mlflow-init"]["command"][1]
        assert {"source": "mlflow_service_password", "target": "EMBERWATCH_MLFLOW_TRACKING_PASSWORD"} in svc["secrets"]
        assert not [k for k in svc["environment"] if "PASSWORD" in k], f"{name}: a password in its environment"


def test_triton_is_published_with_the_clients_admin_apis_restricted_to_the_gatekeepers_key():
    """The flags in compose.yaml are the client's (restricted_api_flags: same API groups, same header)
    and the local stack's TLS ones (grpc_tls_flags, tested on a real tritonserver in
    tests/common/test_triton_grpc_tls.py), with the certificate and key from compose secrets."""
    from emberwatch.common.triton_client import grpc_tls_flags, restricted_api_flags

    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    triton = compose["services"]["triton"]
    script = " ".join(triton["command"]).replace("$$", "$")
    assert script.count("exec tritonserver ") == 1
    assert 'TRITON_ADMIN_KEY="$(cat /run/secrets/triton_admin_key)"' in script
    for flag in restricted_api_flags("$TRITON_ADMIN_KEY"):
        assert f'"{flag}"' in script, flag
    for flag in grpc_tls_flags(Path("/run/secrets/triton_tls_cert"), Path("/run/secrets/triton_tls_key")):
        assert f" {flag}" in script, flag
    # inference: HTTP (no TLS in Triton) on the host's loopback, gRPC over TLS; metrics (8002) stay inside
    assert triton["ports"] == ["127.0.0.1:8000:8000", "8001:8001"]
    assert triton["secrets"] == ["triton_admin_key", "triton_tls_cert", "triton_tls_key"]
    holders = {name: [s for s in svc.get("secrets") or [] if "triton_admin_key" in str(s)]
               for name, svc in compose["services"].items()
               if "triton_admin_key" in str(svc.get("secrets")) or "TRITON_ADMIN_KEY" in str(svc.get("environment"))}
    assert holders == {"triton": ["triton_admin_key"],
                       "gatekeeper": [{"source": "triton_admin_key", "target": "EMBERWATCH_TRITON_ADMIN_KEY"}]}


def test_the_services_secrets_are_files_named_after_the_settings_they_fill():
    """Each Emberwatch service's compose secret lands where Settings reads it: /run/secrets/<variable>."""
    from emberwatch.common.config import DEFAULT_SECRETS_DIR
    from emberwatch.common.config_doc import settings_rows

    assert str(DEFAULT_SECRETS_DIR) == "/run/secrets"  # where compose mounts them
    variables = {var for var, _, _ in settings_rows()}
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    targets = {}
    for name, svc in compose["services"].items():
        if svc.get("image") not in ("emberwatch:latest", "emberwatch-trainer-gpu:latest"):
            continue
        for secret in svc.get("secrets") or []:
            if isinstance(secret, dict) and str(secret.get("target", "")).startswith("EMBERWATCH_"):
                assert secret["target"] in variables, f"{name}: {secret['target']} is no setting"
                targets.setdefault(secret["source"], set()).add((name, secret["target"]))
        env = svc.get("environment") or {}
        assert not [k for k in env if re.search(r"TOKEN|KEY|WEBHOOK|SECRET|PASSWORD", k)], \
            f"{name}: a secret in its environment"
    assert targets == {
        "mapbox_token": {("tiler", "EMBERWATCH_MAPBOX_TOKEN"), ("console", "EMBERWATCH_MAPBOX_TOKEN")},
        "discord_webhook_url": {("notifier", "EMBERWATCH_DISCORD_WEBHOOK_URL")},
        "triton_admin_key": {("gatekeeper", "EMBERWATCH_TRITON_ADMIN_KEY")},
        # the Ed25519 keys that sign operator commands (docs/security.md)
        "command_key_console": {("console", "EMBERWATCH_COMMAND_SIGNING_KEY")},
        "command_key_discord_bot": {("notifier", "EMBERWATCH_COMMAND_SIGNING_KEY")},
        "mlflow_service_password": {(svc, "EMBERWATCH_MLFLOW_TRACKING_PASSWORD")
                                    for svc in ("trainer", "gatekeeper", "notifier", "console")},
        # each Kafka client its own SCRAM user's password (deploy/k8s/base/kafka/acls.tsv)
        **{f"kafka_password_{svc}": {(svc, "EMBERWATCH_KAFKA_SASL_PASSWORD")}
           for svc in ("ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console", "topics")},
    }
    # the console's named operators (scrypt hashes) where its settings look: /run/secrets/console_operators
    assert "console_operators" in compose["services"]["console"]["secrets"]


def kafka_server_properties() -> dict[str, str]:
    """The broker's server.properties as deploy/compose/kafka-start writes it ($secrets: /run/secrets)."""
    script = (REPO / "deploy" / "compose" / "kafka-start").read_text()
    body = script.split('cat > "$config" <<PROPERTIES\n', 1)[1].split("\nPROPERTIES\n", 1)[0]
    return {k: v.replace("$secrets", "/run/secrets")
            for k, _, v in (line.partition("=") for line in body.splitlines() if line and not line.startswith("#"))}


def test_kafka_keeps_its_log_on_the_volume_and_creates_no_topic_by_itself():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    broker = kafka_server_properties()  # written by deploy/compose/kafka-start
    assert f"kafka-data:{broker['log.dirs']}" in kafka["volumes"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])  # a base64 UUID, fixed
    assert broker["auto.create.topics.enable"] == "false"
    assert broker["log.retention.hours"] == "-1"  # a topic without retention.ms of its own is kept
    topics = compose["services"]["topics"]
    assert topics["command"] == ["create-topics"] and topics["restart"] == "no"
    # The job's partitions are valid for the contracts (every topic and DLQ gets created).
    settings = Settings(**{k.removeprefix("EMBERWATCH_").lower(): v for k, v in topics["environment"].items()})
    planned = planned_partitions(settings)
    assert set(planned) == {t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))}
    assert planned[Topic.FIRES_OBSERVED] == 3
    # ... and retention per topic: facts forever, alerts 14 days, DLQs 30 days
    configs = planned_configs(settings)
    day_ms = 24 * 3600 * 1000
    assert configs[Topic.FIRES_OBSERVED]["retention.ms"] == configs[Topic.LABELS_FEEDBACK]["retention.ms"] == "-1"
    assert configs[Topic.PIPELINE_ALERTS]["retention.ms"] == str(14 * day_ms)
    assert {configs[dlq_topic(t)]["retention.ms"] for t in ALL_TOPICS} == {str(30 * day_ms)}
    for name in SERVICES + ("console",):
        assert compose["services"][name]["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
        env = compose["services"][name]["environment"]
        assert env["EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS"] == topics["environment"]["EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS"]


def test_the_s3_store_is_a_published_image_with_its_bucket_made_once_it_is_healthy():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert not any("minio" in str(svc.get("image", "")) for svc in services.values())
    assert re.fullmatch(r"chrislusf/seaweedfs:\d+\.\d+", services["seaweedfs"]["image"])
    script = " ".join(services["seaweedfs"]["command"])
    assert "weed server" in script and "-s3 " in script and "-s3.config=" in script
    init = services["s3-init"]
    assert init["depends_on"] == {"seaweedfs": {"condition": "service_healthy"}}
    assert init["command"] == ["http://seaweedfs:8333", "mlflow"]


def test_create_bucket_makes_the_bucket_once(tmp_path, monkeypatch):
    """deploy/compose/create_bucket.py against moto's S3 server, with its keys from secret files."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        (tmp_path / "s3_access_key").write_text("testing\n")
        (tmp_path / "s3_secret_key").write_text("testing-secret\n")
        monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
        script = runpy.run_path(str(REPO / "deploy/compose/create_bucket.py"))
        endpoint = f"http://{host}:{port}"
        assert script["ensure_bucket"](endpoint, "mlflow") is True
        assert script["ensure_bucket"](endpoint, "mlflow") is False
        (tmp_path / "s3_secret_key").write_text("")
        with pytest.raises(SystemExit, match="s3_secret_key is empty"):
            script["ensure_bucket"](endpoint, "other")
    finally:
        server.stop()


def test_grafana_needs_a_sign_in_with_the_admin_password_from_a_secret():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
    prometheus = compose["services"]["prometheus"]
    assert not any("lifecycle" in arg for arg in prometheus["command"])


def test_the_secrets_directory_keeps_its_files_out_of_git():
    ignore = (REPO / "secrets/.gitignore").read_text().split()
    assert ignore[0] == "*"
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    for spec in compose["secrets"].values():
        assert spec["file"].startswith("./secrets/")
        ignored = subprocess.run(["git", "check-ignore", "-q", spec["file"]], cwd=REPO, timeout=30)
        assert ignored.returncode == 0, f"{spec['file']} would be committed"
    assert subprocess.run(["git", "check-ignore", "-q", "secrets/README.md"], cwd=REPO, timeout=30).returncode == 1


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_compose_prometheus_config_is_valid():
    result = subprocess.run(["promtool", "check", "config", "--syntax-only",
                             str(REPO / "monitoring/prometheus/prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
