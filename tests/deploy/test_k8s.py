"""deploy/k8s: rendered with Kustomize (``kubectl kustomize``), every standard resource valid against
the Kubernetes schemas (``kubernetes-validate``, strict), and wired the way the architecture says:
single-instance services with ``Recreate``, the tiler scaled by KEDA on its consumer lag, GPUs for
Triton and the trainer, secrets from Secret objects only to the services that use them, nothing
published outside the cluster. Nothing here is applied to a cluster."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from emberwatch.common.config import SERVICE_NAMES, Settings
from emberwatch.contracts import Topic
from emberwatch.operations.create_topics import parse_partitions
from services.console.settings import ConsoleSettings
from services.gatekeeper.settings import GatekeeperSettings
from services.ingestor.settings import IngestorSettings
from services.notifier.settings import NotifierSettings
from services.tiler.settings import TilerSettings
from services.trainer.settings import TrainerSettings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "base"
KUBERNETES_VERSION = "1.31.0"
SINGLE_INSTANCE = ("ingestor", "trainer", "gatekeeper", "notifier", "console")
# Which Secret objects each workload may read; any other reference is a leak.
TILE_SERVICES = ("tiler", "trainer", "gatekeeper", "console")  # who writes or reads tiles
SECRETS = {"tiler": {"emberwatch-mapbox", "emberwatch-tiles-s3", "emberwatch-coordination"}, "trainer": {"emberwatch-tiles-s3", "emberwatch-coordination"},
           "gatekeeper": {"emberwatch-tiles-s3", "emberwatch-coordination"},
           "notifier": {"emberwatch-discord", "emberwatch-command-signing"},
           "console": {"emberwatch-console", "emberwatch-mapbox", "emberwatch-tiles-s3", "emberwatch-command-signing"},
           "mlflow": {"emberwatch-postgres", "emberwatch-s3", "emberwatch-mlflow-auth"},
           "postgres": {"emberwatch-postgres"},
           "triton": {"emberwatch-triton-admin"}}
# ... and, as files (deploy/k8s/base/logins/*.yaml), each service its own Kafka user's password and the
# brokers' CA; the MLflow clients the services' MLflow password; the gatekeeper Triton's admin key.
for _name in ("ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console"):
    SECRETS[_name] = SECRETS.get(_name, set()) | {f"emberwatch-kafka-{_name}", "emberwatch-kafka-ca"}
for _name in ("trainer", "gatekeeper", "notifier", "console"):
    SECRETS[_name].add("emberwatch-mlflow-service")
SECRETS["gatekeeper"] |= {"emberwatch-triton-admin", "emberwatch-command-keys"}  # + the trusted command keys
SECRET_WORDS = ("TOKEN", "PASSWORD", "SECRET", "WEBHOOK", "ACCESS_KEY")


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not found: `bash scripts/setup` installs Debian's kubernetes-client"
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def test_every_standard_resource_validates_against_the_kubernetes_schemas(rendered):
    standard = [d for d in rendered if "." not in d["apiVersion"].split("/")[0] or
                d["apiVersion"].startswith(("apps/", "batch/", "policy/", "networking.k8s.io/"))]
    assert {d["kind"] for d in standard} >= {"Namespace", "ConfigMap", "Deployment", "StatefulSet",
                                              "Service", "PersistentVolumeClaim"}
    for doc in standard:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert all(d["metadata"].get("namespace") == "emberwatch" for d in rendered if d["kind"] != "Namespace")


def test_every_service_runs_once_or_scales_as_designed(rendered):
    deployments = by_kind(rendered, "Deployment")
    for name in SERVICE_NAMES:
        assert containers(deployments[name])[0]["args"] == ["run", name]
    for name in SINGLE_INSTANCE:
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", name
    for name, workload in {**deployments, **by_kind(rendered, "StatefulSet")}.items():
        for c in containers(workload):
            assert c.get("livenessProbe") and c.get("readinessProbe"), f"{name}: no probes"
            assert c["resources"]["requests"] and c["resources"]["limits"].get("memory"), name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name
    for name in SERVICE_NAMES:  # a service's health is its /metrics server
        probe = containers(deployments[name])[0]["readinessProbe"]["httpGet"]
        assert probe == {"path": "/metrics", "port": "metrics"}


def test_the_tiler_scales_on_its_consumer_lag_within_its_partitions(rendered):
    (scaled,) = [d for d in rendered if d["kind"] == "ScaledObject"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "tiler"
    assert "tiler" in by_kind(rendered, "Deployment")
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert all(isinstance(v, str) for v in meta.values())  # KEDA takes trigger metadata as strings
    assert meta["topic"] == Topic.FIRES_OBSERVED
    assert meta["consumerGroup"] == TilerSettings.model_fields["tiler_group_id"].default
    config = by_kind(rendered, "ConfigMap")["emberwatch-env"]["data"]
    assert meta["bootstrapServers"] == config["EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS"]
    assert meta["allowIdleConsumers"] == "false"  # never more replicas than partitions
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    # The topics job creates fires.observed.v1 with at least as many partitions as replicas.
    job = by_kind(rendered, "Job")["create-topics"]
    assert containers(job)[0]["args"] == ["create-topics"]
    assert job["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "emberwatch-env"}}]
    partitions = parse_partitions(config["EMBERWATCH_KAFKA_TOPIC_PARTITIONS"])
    # As many replicas as partitions, sharing their fire registry (tests/services/tiler/test_replicas.py).
    assert spec["maxReplicaCount"] == partitions[Topic.FIRES_OBSERVED]
    tiler = containers(by_kind(rendered, "Deployment")["tiler"])[0]
    assert "EMBERWATCH_COORDINATION_URL" in {e["name"] for e in tiler["env"]}
    volumes = by_kind(rendered, "Deployment")["tiler"]["spec"]["template"]["spec"]["volumes"]
    assert not any("persistentVolumeClaim" in v for v in volumes), "a replica keeps nothing on its own disk"
    assert int(meta["lagThreshold"]) > 0


def test_the_gpu_paths_are_configured(rendered):
    """The trainer runs the CUDA TensorFlow image; the gatekeeper lays the backbone out for Triton's
    onnxruntime backend on the GPU."""
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    [trainer] = deployments["trainer"]["spec"]["template"]["spec"]["containers"]
    assert trainer["image"].startswith("emberwatch-trainer-gpu")
    [gatekeeper] = deployments["gatekeeper"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in gatekeeper.get("env", [])}
    assert env["EMBERWATCH_TRITON_BACKBONE_RUNTIME"] == "onnxruntime-gpu"


def test_triton_and_the_trainer_run_on_gpu_nodes(rendered):
    deployments = by_kind(rendered, "Deployment")
    for name in ("triton", "trainer"):
        assert containers(deployments[name])[0]["resources"]["limits"]["nvidia.com/gpu"] == 1
        tolerations = deployments[name]["spec"]["template"]["spec"]["tolerations"]
        assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)
    triton = containers(deployments["triton"])[0]
    assert "--model-control-mode=explicit" in " ".join(triton.get("command", []) + triton.get("args", []))
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_secrets_come_from_secret_objects_and_only_to_who_uses_them(rendered):
    workloads = {**by_kind(rendered, "Deployment"), **by_kind(rendered, "StatefulSet")}
    for name, workload in workloads.items():
        used = set()
        for c in containers(workload):
            for env in c.get("env", []):
                if "value" in env and not (env["name"].endswith("_FILE") and env["value"].startswith("/run/secrets/")):
                    assert not any(w in env["name"] for w in SECRET_WORDS), \
                        f"{name}: {env['name']} is written in the manifest"
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.add(ref["name"])
            assert not c.get("envFrom") or all("secretRef" not in e for e in c["envFrom"]), name
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                used.add(volume["secret"]["secretName"])
            used |= {s["secret"]["name"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s}
        assert used <= SECRETS.get(name, set()), f"{name} reads secrets it does not use: {used}"
    assert not [d for d in rendered if d["kind"] == "Secret"], "secret values belong outside the repo"
    for key in by_kind(rendered, "ConfigMap")["emberwatch-env"]["data"]:
        assert not any(w in key for w in SECRET_WORDS), key


def test_tiles_live_in_s3_where_every_node_reads_them(rendered):
    """The tile store is a bucket (no tiles volume), its keys from their own Secret, not MLflow's."""
    config = by_kind(rendered, "ConfigMap")["emberwatch-env"]["data"]
    settings = Settings(tile_store_url=config["EMBERWATCH_TILE_STORE_URL"])  # valid, as a service reads it
    assert settings.tile_store_url.startswith("s3://emberwatch-tiles/")
    deployments = by_kind(rendered, "Deployment")
    for name in TILE_SERVICES:
        env = {e["name"]: e for e in containers(deployments[name])[0].get("env", [])}
        for var, key in (("EMBERWATCH_S3_ACCESS_KEY_ID", "access-key-id"),
                         ("EMBERWATCH_S3_SECRET_ACCESS_KEY", "secret-access-key"),
                         ("EMBERWATCH_S3_ENDPOINT_URL", "endpoint-url")):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == ("emberwatch-tiles-s3", key), (name, var)
        assert "EMBERWATCH_TILER_TILE_ROOT" not in env, name
    claims = {v["persistentVolumeClaim"]["claimName"] for d in deployments.values()
              for v in d["spec"]["template"]["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
    assert "tiles" not in claims and "tiles" not in by_kind(rendered, "PersistentVolumeClaim")


def test_nothing_is_published_outside_the_cluster(rendered):
    for name, svc in by_kind(rendered, "Service").items():
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", name


def test_every_emberwatch_variable_in_the_manifests_is_a_real_setting(rendered):
    known = set()
    for cls in (Settings, IngestorSettings, TilerSettings, TrainerSettings, GatekeeperSettings,
                NotifierSettings, ConsoleSettings):
        known |= {f"EMBERWATCH_{f.upper()}" for f in cls.model_fields}
    names = set(by_kind(rendered, "ConfigMap")["emberwatch-env"]["data"])
    for workload in by_kind(rendered, "Deployment").values():
        for c in containers(workload):
            names |= {e["name"] for e in c.get("env", [])}
    unknown = {n for n in names if n.startswith("EMBERWATCH_")} - known
    assert not unknown, f"not settings of any service (typo?): {sorted(unknown)}"


def test_the_console_serves_inside_the_cluster_with_its_health_as_probes(rendered):
    console = by_kind(rendered, "Deployment")["console"]
    (c,) = containers(console)
    assert c["args"] == ["console"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = {e["name"]: e for e in c["env"]}
    assert env["EMBERWATCH_CONSOLE_HOST"]["value"] == "0.0.0.0"  # reachable by its Service, nothing more
    assert "EMBERWATCH_CONSOLE_OPERATOR_TOKEN" not in env  # no shared token: named operators only
    logins = {v["name"]: v for v in console["spec"]["template"]["spec"]["volumes"]}["logins"]["projected"]["sources"]
    operators = [s["secret"] for s in logins if s.get("secret", {}).get("name") == "emberwatch-console"]
    assert operators == [{"name": "emberwatch-console", "items": [{"key": "operators", "path": "console_operators"}]}]
    assert by_kind(rendered, "Service")["console"]["spec"]["ports"][0]["port"] == 8090


STANDBY = REPO / "deploy" / "k8s" / "overlays" / "standby"
LEASED = ("trainer", "gatekeeper")  # run under a lease (run_service(..., single_active=True))


@pytest.fixture(scope="module")
def standby() -> list[dict]:
    result = subprocess.run([shutil.which("kubectl") or "kubectl", "kustomize", str(STANDBY)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_standby_overlay_runs_two_of_each_leased_service_on_different_nodes(standby, rendered):
    for doc in standby:
        if "." not in doc["apiVersion"].split("/")[0] or doc["apiVersion"].startswith(("apps/", "batch/")):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    deployments, claims = by_kind(standby, "Deployment"), by_kind(standby, "PersistentVolumeClaim")
    for name in LEASED:
        spec = deployments[name]["spec"]
        assert spec["replicas"] == 2
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
        [rule] = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert rule["topologyKey"] == "kubernetes.io/hostname"
        apart = rule["labelSelector"]["matchLabels"]  # its own pods only
        assert apart == {"app.kubernetes.io/name": name} and apart.items() <= spec["selector"]["matchLabels"].items()
        for volume in spec["template"]["spec"]["volumes"]:
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim:  # every volume either node may mount
                assert claims[claim]["spec"]["accessModes"] == ["ReadWriteMany"], (name, claim)
        main = (REPO / "services" / name / "main.py").read_text()
        assert "single_active=True" in main, f"{name} must run under its lease to have a standby"
    # everything else is the base, unchanged
    base = {(d["kind"], d["metadata"]["name"]): d for d in rendered}
    for doc in standby:
        key = (doc["kind"], doc["metadata"]["name"])
        if key[1] not in LEASED and key[1] not in {f"{n}-state" for n in LEASED}:
            assert doc == base[key], key
