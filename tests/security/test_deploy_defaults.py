"""Deployed defaults closed: images run as an unprivileged user; in deploy/k8s every pod is non-root,
no password is on a command line, Triton's admin APIs answer only the gatekeeper's key, MLflow asks
for a login, MLflow and the coordination database are separate PostgreSQL users, and NetworkPolicies
deny everything but the flows the system needs.

Checked on the Dockerfiles' text and on the manifests rendered by Kustomize (``kubectl kustomize``) and
validated against the Kubernetes schemas (tests/deploy/test_k8s.py). Nothing here builds an image or
applies a manifest to a cluster: there is neither a Docker engine nor a cluster on this machine."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emberwatch.common.triton_client import restricted_api_flags
from tests.deploy.test_k8s import by_kind, rendered  # noqa: F401 - rendered is a fixture, used by name

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s" / "base"
SERVICES = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console")




def pods(docs: list[dict]) -> dict[str, dict]:
    """Every pod template: Deployments, StatefulSets and Jobs."""
    return {name: d["spec"]["template"] for kind in ("Deployment", "StatefulSet", "Job")
            for name, d in by_kind(docs, kind).items()}


# --- images ---------------------------------------------------------------------------------------
def _final_user(dockerfile: str) -> str | None:
    stage = dockerfile.split("\nFROM ")[-1]
    users = re.findall(r"^USER\s+(\S+)", stage, re.MULTILINE)
    return users[-1] if users else None


@pytest.mark.parametrize(("dockerfile", "uid"), [("Dockerfile", "10001"), ("Dockerfile.triton", "1000")])
def test_images_run_as_an_unprivileged_user(dockerfile, uid):
    text = (REPO / dockerfile).read_text()
    user = _final_user(text)
    assert user is not None and user.split(":")[0] == uid, f"{dockerfile}: USER {user}"
    assert user.split(":")[0] not in ("0", "root")
    assert text.rindex("\nUSER ") > max(text.rindex("RUN "), text.rindex("COPY "))  # nothing runs as root after


def test_the_images_users_are_the_ones_kubernetes_runs(rendered):
    uids = {name: t["spec"]["securityContext"].get("runAsUser") for name, t in pods(rendered).items()}
    assert {uids[s] for s in SERVICES} == {10001}
    assert uids["triton"] == 1000 and uids["mlflow"] == 10001


# --- Kubernetes -----------------------------------------------------------------------------------
def test_every_pod_runs_as_non_root_without_privilege(rendered):
    for name, template in pods(rendered).items():
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec.get("automountServiceAccountToken") is False, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])
            assert not sc.get("privileged"), name


URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")
PASSWORD_ASSIGNED = re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)\s*[=:]\s*['\"]?[A-Za-z0-9+/_.-]{4,}")


def test_no_container_command_carries_a_password(rendered):
    secret_vars = set()
    for template in pods(rendered).values():
        for c in template["spec"]["containers"]:
            secret_vars |= {e["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
                            and re.search(r"PASSWORD|SECRET|TOKEN|KEY|WEBHOOK|URL", e["name"])}
    for name, template in pods(rendered).items():
        for c in template["spec"]["containers"]:
            for arg in c.get("command", []) + c.get("args", []):
                assert not URL_WITH_PASSWORD.search(arg), (name, arg)
                assert not PASSWORD_ASSIGNED.search(arg), (name, arg)
                # Kubernetes expands $(VAR) into argv: never a variable that holds a secret
                assert not {v for v in re.findall(r"\$\((\w+)\)", arg) if v in secret_vars}, (name, arg)


def test_the_check_finds_a_password_on_a_command_line():
    assert URL_WITH_PASSWORD.search("--backend-store-uri=postgresql://mlflow:hunter22@postgres:5432/mlflow")
    assert PASSWORD_ASSIGNED.search("--password=hunter22")
    assert not URL_WITH_PASSWORD.search("--backend-store-uri=postgresql://mlflow@postgres:5432/mlflow")


def test_triton_serves_its_admin_apis_only_to_the_gatekeepers_key(rendered):
    deployments = by_kind(rendered, "Deployment")
    (triton,) = deployments["triton"]["spec"]["template"]["spec"]["containers"]
    script = " ".join(triton.get("command", []) + triton.get("args", []))
    assert script.count("exec tritonserver ") == 1
    assert 'TRITON_ADMIN_KEY="$(cat /run/secrets/triton_admin_key)"' in script
    for flag in restricted_api_flags("$TRITON_ADMIN_KEY"):
        assert f'"{flag}"' in script, flag
    holders = set()
    for name, template in pods(rendered).items():
        for volume in template["spec"].get("volumes", []):
            sources = [volume.get("secret", {}).get("secretName")] + \
                [s["secret"]["name"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
            if "emberwatch-triton-admin" in sources:
                holders.add(name)
    assert holders == {"triton", "gatekeeper"}


def test_mlflow_asks_for_a_login_and_keeps_the_database_password_off_its_command_line(rendered):
    (mlflow,) = by_kind(rendered, "Deployment")["mlflow"]["spec"]["template"]["spec"]["containers"]
    args = mlflow["args"]
    assert "--app-name=basic-auth" in args
    (store,) = [a for a in args if a.startswith("--backend-store-uri=")]
    assert store == "--backend-store-uri=postgresql://mlflow@postgres:5432/mlflow"
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "emberwatch-postgres", "key": "mlflow-password"}
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "emberwatch-mlflow-auth"
    # the same basic-auth config and service-user script as compose's (tested there against real servers)
    for k8s, compose in (("basic_auth.ini", "mlflow-basic-auth.ini"),
                         ("mlflow_service_user.py", "mlflow_service_user.py")):
        assert (BASE / "mlflow" / k8s).read_text() == (REPO / "deploy" / "compose" / compose).read_text(), k8s
    job = by_kind(rendered, "Job")["mlflow-init"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"][-1].endswith("mlflow_service_user.py") and job["args"] == ["http://mlflow:5000", "emberwatch"]
    for name in ("trainer", "gatekeeper", "notifier", "console"):
        (c,) = by_kind(rendered, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
        assert {"name": "EMBERWATCH_MLFLOW_TRACKING_USERNAME", "value": "emberwatch"} in c["env"], name


def test_mlflow_and_the_coordination_database_are_separate_users(rendered):
    postgres = by_kind(rendered, "StatefulSet")["postgres"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in postgres["containers"][0]["env"]}
    assert env["POSTGRES_USER"] == "postgres"  # the superuser: no service logs in as it
    assert env["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    script = by_kind(rendered, "ConfigMap")["postgres-init"]["data"]["users.sh"]
    for role, db in (("mlflow", "mlflow"), ("emberwatch", "emberwatch")):
        assert f"CREATE ROLE {role} LOGIN PASSWORD :'" in script
        assert f"CREATE DATABASE {db} OWNER {role};" in script
        assert f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;" in script
    assert "cat /run/secrets/postgres/" in script and "psql -v ON_ERROR_STOP=1" in script
    readme = (REPO / "deploy" / "k8s" / "README.md").read_text()
    assert "postgresql://emberwatch:" in readme and "postgresql://mlflow:" not in readme


# --- NetworkPolicies ------------------------------------------------------------------------------
def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] != "In" or labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _flows(rendered: list[dict]) -> tuple[set, set]:
    """(egress, ingress) as sets of (pod, peer, port): peer is a pod name, 'ns:<namespace>' or a CIDR."""
    labels = {name: t["metadata"]["labels"] for name, t in pods(rendered).items()}
    egress, ingress = set(), set()

    def peers(entry: dict) -> set[str]:
        out = set()
        for peer in entry:
            if "ipBlock" in peer:
                out.add(peer["ipBlock"]["cidr"])
            elif "namespaceSelector" in peer:
                out.add("ns:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
            else:
                out |= {n for n, lab in labels.items() if _selects(peer["podSelector"], lab)}
        return out

    for policy in by_kind(rendered, "NetworkPolicy").values():
        spec = policy["spec"]
        selected = {n for n, lab in labels.items() if _selects(spec["podSelector"], lab)}
        for rule in spec.get("egress", []):
            egress |= {(p, peer, port["port"]) for p in selected for peer in peers(rule["to"])
                       for port in rule["ports"]}
        for rule in spec.get("ingress", []):
            ingress |= {(p, peer, port["port"]) for p in selected for peer in peers(rule["from"])
                        for port in rule["ports"]}
    return egress, ingress


def test_network_policies_deny_by_default(rendered):
    policies = by_kind(rendered, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"].get("matchLabels", {}).keys() <= {"app.kubernetes.io/part-of"}  # every pod of ours
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny and "egress" not in deny
    assert all(set(p["spec"]["policyTypes"]) <= {"Ingress", "Egress"} for p in policies.values())


def test_network_policies_allow_exactly_the_flows_the_system_needs(rendered):
    egress, ingress = _flows(rendered)
    names = set(pods(rendered))
    for pod in names:
        assert (pod, "ns:kube-system", 53) in egress, f"{pod} cannot resolve names"
    kafka_clients = {p for p, peer, port in egress if peer == "ns:kafka"}
    assert kafka_clients == {*SERVICES, "create-topics", "kafka-init"}
    # who reaches MLflow, Triton, PostgreSQL: on both ends
    expected = {"mlflow": ({"trainer", "gatekeeper", "notifier", "console"}, {5000}),
                "triton": ({"gatekeeper", "console"}, {8000, 8001}),
                "postgres": ({"mlflow", "tiler", "trainer", "gatekeeper"}, {5432})}
    for server, (clients, ports) in expected.items():
        assert {(p, port) for p, peer, port in egress if peer == server} == \
            {(c, port) for c in clients for port in ports}
        assert {(peer, port) for p, peer, port in ingress if p == server and not peer.startswith("ns:")} == \
            {(c, port) for c in clients for port in ports}, server
    # the outside world: HTTPS only, to public addresses, from who fetches (S3, CWFIS, Mapbox, Discord)
    outside = {(p, port) for p, peer, port in egress if "/" in peer}
    assert {port for _, port in outside} == {443}
    assert {p for p, _ in outside} == {*SERVICES, "mlflow"}
    # Prometheus scrapes /metrics; operators reach only the console, through the ingress controller
    scraped = {(p, port) for p, peer, port in ingress if peer == "ns:monitoring"}
    assert {(s, 9100) for s in SERVICES if s != "console"} | {("console", 8090), ("triton", 8002)} <= scraped
    assert {p for p, peer, _ in ingress if peer == "ns:ingress-nginx"} == {"console"}
    # nothing else comes in: every ingress is one of those
    allowed_in = {"ns:monitoring", "ns:ingress-nginx"} | names
    assert {peer for _, peer, _ in ingress} <= allowed_in
    assert {(p, peer) for p, peer, _ in ingress if peer in names} == \
        {(s, c) for s, (clients, _) in expected.items() for c in clients} | {("gatekeeper", "console")}


def test_every_kafka_workload_logs_in_as_its_own_principal(rendered):
    config = by_kind(rendered, "ConfigMap")["emberwatch-env"]["data"]
    assert config["EMBERWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["EMBERWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for name, template in pods(rendered).items():
        containers = template["spec"]["containers"]
        user = [e["value"] for c in containers for e in c.get("env", [])
                if e["name"] == "EMBERWATCH_KAFKA_SASL_USERNAME"]
        if name not in (*SERVICES, "create-topics"):
            assert not user, name
            continue
        expected = "topics" if name == "create-topics" else name
        assert user == [expected], name
        (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "logins"]
        files = {(s["secret"]["name"], i["path"]) for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
        assert (f"emberwatch-kafka-{expected}", "EMBERWATCH_KAFKA_SASL_PASSWORD") in files
        assert ("emberwatch-kafka-ca", Path(config["EMBERWATCH_KAFKA_SSL_CAFILE"]).name) in files
        mounts = [m for c in containers for m in c.get("volumeMounts", []) if m["name"] == "logins"]
        assert mounts == [{"name": "logins", "mountPath": "/run/secrets", "readOnly": True}], name
    (scaled,) = [d for d in rendered if d["kind"] == "ScaledObject"]
    assert scaled["spec"]["triggers"][0]["authenticationRef"]["name"] == "tiler-kafka"
