"""compose.yaml locked down: a lint over the parsed YAML (pure Python; the compose-spec schema check is
tests/deploy/test_compose.py). Each rule has a test that feeds it a small bad compose dict and sees
it fail, so the lint can fail; then the real compose.yaml must pass every rule.

Rules:

- ``published-port``: nothing is published but inference (Triton 8000/8001, and only while its
  model-repository API is restricted for that protocol: ``--http-restricted-api`` for HTTP,
  ``--grpc-restricted-protocol`` for gRPC), Grafana, and the console on 127.0.0.1.
- ``plaintext-port``: Triton's inference is published on the network only encrypted: gRPC with
  ``--grpc-use-ssl=true`` and its certificate and key from compose secrets; HTTP, which Triton
  cannot serve over TLS, on 127.0.0.1 only.
  Prometheus, MLflow, Kafka, PostgreSQL, the S3 store, Triton's metrics and the services' metrics
  stay on the compose network.
- ``secret-in-file``: a secret (an environment key, or an interpolated variable anywhere in the file,
  whose name has PASSWORD, SECRET, TOKEN, KEY or WEBHOOK) is never a literal or a
  ``${VAR:-default}`` with a default: only ``${VAR:?message}`` or a compose ``secrets:`` file.
- ``secret-not-required``: a secret is never ``${VAR}``, ``${VAR:-}`` or passed through empty.
- ``healthcheck``: every long-running service has a healthcheck and a restart policy (one-shot jobs
  with ``restart: "no"`` excepted), and waits for what it depends on to be healthy (or, for a
  one-shot job, to have completed).
- ``mount-in-read-only``: no bind or volume is mounted inside another target mounted read-only.
- ``unused-secret``: a service receives only the secrets it uses (``SECRETS_USED`` below, from the
  code: the tiler and the console's basemap read the Mapbox token, the notifier the Discord webhook).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY|WEBHOOK", re.IGNORECASE)
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
REQUIRED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}$")
SECRETS_DIR = "/run/secrets/"

# Who may publish which port. Triton's model-control API shares its ports with inference.
TRITON_PORTS = {8000: "--http-restricted-api", 8001: "--grpc-restricted-protocol"}
TRITON_HTTP, TRITON_GRPC = 8000, 8001
LOOPBACK = "127.0.0.1"
CONSOLE_HOST = LOOPBACK
# Triton's gRPC over TLS, its certificate and key read from compose secrets (grpc_tls_flags).
GRPC_TLS = (r"--grpc-use-ssl=true\b", r"--grpc-server-cert=/run/secrets/\S+", r"--grpc-server-key=/run/secrets/\S+")

# The secrets each service uses: environment keys (read by the service's settings or by the MLflow
# client) and compose secrets (files under /run/secrets). Anything else it receives is a leak.
MLFLOW_CLIENT = "mlflow_service_password"  # MLflow's basic auth (use_mlflow_credentials hands it to the client)
KAFKA_CA = "kafka_ca_cert"  # every Kafka client checks the broker's certificate against it


def kafka_user(name: str) -> set[str]:
    """A Kafka client's secrets: the CA and its own SCRAM password (emberwatch/messaging/broker.py)."""
    return {KAFKA_CA, f"kafka_password_{name}"}


KAFKA_USERS = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console", "operator", "topics")
SECRETS_USED: dict[str, set[str]] = {
    "ingestor": kafka_user("ingestor"),
    "tiler": {"mapbox_token"} | kafka_user("tiler"),  # services/tiler/main.py: Mapbox imagery
    "trainer": {MLFLOW_CLIENT} | kafka_user("trainer"),  # services/trainer/registry.py
    # services/gatekeeper/gatekeeper.py: aliases, evidence; Triton's model-repository API (load/unload)
    "gatekeeper": {MLFLOW_CLIENT, "triton_admin_key"} | kafka_user("gatekeeper"),
    # services/notifier: the webhook, the bot (services/notifier/main.py), the champion (operations.py)
    # (the bot token: docs/deployment.md's optional override adds it)
    # ... and the bot's Ed25519 key that signs its operators' commands (emberwatch/security/command_signing.py)
    "notifier": {"discord_webhook_url", "discord_bot_token", MLFLOW_CLIENT, "command_key_discord_bot"}
                | kafka_user("notifier"),
    # services/console (signin.py, read_api.py): sign-in, the basemap proxy (the token stays on the server), run plots
    # ... and the console's Ed25519 key that signs its operators' commands
    "console": {"console_operators", "mapbox_token", MLFLOW_CLIENT, "command_key_console"}
               | kafka_user("console"),
    "topics": kafka_user("topics"),  # `emberwatch create-topics`
    # deploy/compose/kafka-start: the broker's certificate and key, the CA of its clients
    "kafka": {KAFKA_CA, "kafka_broker_pem"},
    # deploy/k8s/base/kafka/kafka-init.sh: the admin's certificate, every user's password
    "kafka-init": {KAFKA_CA, "kafka_admin_pem"} | {f"kafka_password_{u}" for u in KAFKA_USERS},
    "postgres": {"postgres_password"},
    "seaweedfs": {"s3_access_key", "s3_secret_key"},
    "s3-init": {"s3_access_key", "s3_secret_key"},
    "mlflow": {"postgres_password", "s3_access_key", "s3_secret_key", "mlflow_admin_password",
               "mlflow_flask_secret_key"},
    "mlflow-init": {"mlflow_admin_password", "mlflow_service_password"},
    "grafana": {"grafana_admin_password"},
    # its --http-restricted-api / --grpc-restricted-protocol flags; its gRPC certificate and key
    "triton": {"triton_admin_key", "triton_tls_cert", "triton_tls_key"},
}


# --- parsing compose's short and long forms -------------------------------------------------------
# Secrets of optional parts that docs/deployment.md's compose.override.yaml adds (the notifier's Discord bot).
OVERRIDE_SECRETS = {"discord_bot_token"}


def environment(svc: dict) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return {k: (v if sep else None) for k, sep, v in (e.partition("=") for e in env)}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def ports(svc: dict) -> list[tuple[str, int]]:
    """(host ip, container port) of every published port ('' for all interfaces)."""
    out = []
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):  # without "published" it still publishes, on an ephemeral port
            out += [(str(entry.get("host_ip", "")), int(t)) for t in _expand(str(entry["target"]))]
            continue
        spec = str(entry).split("/")[0]
        host_ip = ""
        if spec.startswith("["):  # [::1]:8090:8090
            host_ip, _, spec = spec[1:].partition("]:")
        parts = spec.split(":")
        if len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
        out += [(host_ip, t) for t in _expand(parts[-1])]
    return out


def _expand(target: str) -> list[int]:
    lo, _, hi = target.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def mounts(svc: dict) -> list[tuple[str, bool]]:
    """(container target, read-only) of every bind and volume."""
    out = []
    for entry in svc.get("volumes") or []:
        if isinstance(entry, dict):
            out.append((entry["target"], bool(entry.get("read_only"))))
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:  # an anonymous volume
            out.append((parts[0], False))
        else:
            mode = parts[2].split(",") if len(parts) > 2 else []
            out.append((parts[1], "ro" in mode))
    return out


def secret_names(svc: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []}


def one_shot(svc: dict) -> bool:
    return svc.get("restart") in ("no", False)  # YAML 1.1 reads a bare no as false


def strings(node: object):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def _under(path: str, parent: str) -> bool:
    path, parent = path.rstrip("/"), parent.rstrip("/")
    return path != parent and path.startswith(parent + "/")


# --- the rules ------------------------------------------------------------------------------------
def check_published_ports(compose: dict) -> list[str]:
    problems = []
    for name, svc in compose.get("services", {}).items():
        command = " ".join(svc.get("command") or []) if isinstance(svc.get("command"), list) \
            else str(svc.get("command") or "")
        for host_ip, target in ports(svc):
            if name == "grafana":
                continue
            if name == "console" and host_ip == CONSOLE_HOST:
                continue
            if name == "triton" and target in TRITON_PORTS:
                flag = TRITON_PORTS[target]
                if not re.search(rf"{flag}=\S*model-repository", command):
                    problems.append(f"[published-port] triton publishes {target} with its model-repository "
                                    f"API open (needs {flag}=model-repository:...)")
                if target == TRITON_HTTP and host_ip != LOOPBACK:
                    problems.append(f"[plaintext-port] triton publishes HTTP ({target}) "
                                    f"{'on ' + host_ip if host_ip else 'on every interface'}: Triton's HTTP has "
                                    f"no TLS, publish it on {LOOPBACK} only")
                if target == TRITON_GRPC and host_ip != LOOPBACK and not all(re.search(f, command) for f in GRPC_TLS):
                    problems.append(f"[plaintext-port] triton publishes gRPC ({target}) without TLS "
                                    "(needs --grpc-use-ssl=true --grpc-server-cert=/run/secrets/... "
                                    "--grpc-server-key=/run/secrets/...)")
                continue
            problems.append(f"[published-port] {name} publishes {target}"
                            f"{' on ' + host_ip if host_ip else ' on every interface'}")
    return problems


def check_secret_values(compose: dict) -> list[str]:
    problems = []
    for name, svc in compose.get("services", {}).items():
        for key, value in environment(svc).items():
            if not SECRET_NAME.search(key):
                continue
            if key.endswith("_FILE") and value is not None and value.startswith(SECRETS_DIR):
                continue  # a path to a compose secret
            if value is None or value.strip() == "":
                problems.append(f"[secret-not-required] {name}: {key} is passed through, maybe empty")
            elif REQUIRED.match(value.strip()):
                continue
            elif (m := INTERPOLATION.fullmatch(value.strip())) is not None:
                default = m.group(2) or ""
                if re.match(r"^:?-.", default):
                    problems.append(f"[secret-in-file] {name}: {key} has a default written in the file")
                else:
                    problems.append(f"[secret-not-required] {name}: {key} may be unset or empty "
                                    "(use ${VAR:?message})")
            else:
                problems.append(f"[secret-in-file] {name}: {key} is written in the file")
    # Anywhere else (commands, URLs, extension fields): a secret variable must be required.
    for text in strings(compose):
        for m in INTERPOLATION.finditer(text.replace("$$", "")):  # $$ is a literal $ (a shell's own)
            var, rest = m.group(1) or m.group(3), m.group(2) or ""
            if not SECRET_NAME.search(var) or rest.startswith(":?"):
                continue
            if re.match(r"^:?-.", rest):
                problems.append(f"[secret-in-file] ${{{var}}} has a default written in the file: {text!r}")
            else:
                problems.append(f"[secret-not-required] ${{{var}}} may be unset or empty: {text!r}")
    for secret, spec in (compose.get("secrets") or {}).items():
        if "content" in spec:
            problems.append(f"[secret-in-file] secret {secret} is written in the file")
    return sorted(set(problems))


def check_health(compose: dict) -> list[str]:
    problems = []
    services = compose.get("services", {})
    for name, svc in services.items():
        if not one_shot(svc):
            check = svc.get("healthcheck") or {}
            if not check.get("test") or check.get("disable") or check["test"] in (["NONE"], "NONE"):
                problems.append(f"[healthcheck] {name} runs for good without a healthcheck")
            if svc.get("restart") not in ("always", "unless-stopped") and \
                    not str(svc.get("restart", "")).startswith("on-failure"):
                problems.append(f"[healthcheck] {name} runs for good without a restart policy")
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems += [f"[healthcheck] {name} starts when {d} has started, not when it is healthy"
                         for d in deps]
            continue
        for dep, spec in deps.items():
            target = services.get(dep, {})
            wanted = "service_completed_successfully" if one_shot(target) else "service_healthy"
            if (spec or {}).get("condition") != wanted:
                problems.append(f"[healthcheck] {name} depends on {dep} without condition {wanted}")
    return problems


def check_mounts(compose: dict) -> list[str]:
    problems = []
    for name, svc in compose.get("services", {}).items():
        targets = mounts(svc)
        for parent, read_only in targets:
            if not read_only:
                continue
            problems += [f"[mount-in-read-only] {name}: {child} is mounted inside read-only {parent}"
                         for child, _ in targets if _under(child, parent)]
    return problems


def check_secret_recipients(compose: dict) -> list[str]:
    problems = []
    for name, svc in compose.get("services", {}).items():
        received = {k for k, v in environment(svc).items()
                    if SECRET_NAME.search(k) and not (k.endswith("_FILE") and (v or "").startswith(SECRETS_DIR))}
        received |= secret_names(svc)
        received |= {v[len(SECRETS_DIR):] for k, v in environment(svc).items()
                     if k.endswith("_FILE") and (v or "").startswith(SECRETS_DIR)}
        extra = received - SECRETS_USED.get(name, set())
        if extra:
            problems.append(f"[unused-secret] {name} receives secrets it does not use: {sorted(extra)}")
        for key, value in environment(svc).items():
            if key.endswith("_FILE") and (value or "").startswith(SECRETS_DIR) and \
                    value[len(SECRETS_DIR):] not in secret_names(svc):
                problems.append(f"[unused-secret] {name}: {key} names a secret it is not given")
    return problems


RULES = (check_published_ports, check_secret_values, check_health, check_mounts, check_secret_recipients)


def lint(compose: dict) -> list[str]:
    return [p for rule in RULES for p in rule(compose)]


# --- the real file --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_yaml_passes_the_lint(compose):
    assert lint(compose) == []


def test_every_secret_the_lint_allows_is_one_the_file_defines(compose):
    """The table is not stale: every compose secret it names is defined, every one defined is used."""
    defined = set(compose.get("secrets") or {})
    named = {s for used in SECRETS_USED.values() for s in used if s.islower()} - OVERRIDE_SECRETS
    assert named == defined
    given = {s for svc in compose["services"].values() for s in secret_names(svc)}
    assert given == defined
    for name, spec in compose["secrets"].items():
        assert set(spec) == {"file"}, f"secret {name}: a file outside the repository, nothing else"


# --- each rule fails on a small bad compose -------------------------------------------------------
def good() -> dict:
    """A minimal compose that every rule accepts (so a failure below is the planted fault's)."""
    return {
        "services": {
            "kafka": {"image": "apache/kafka", "restart": "unless-stopped",
                      "healthcheck": {"test": ["CMD", "true"]}},
            "topics": {"image": "emberwatch", "restart": "no",
                       "depends_on": {"kafka": {"condition": "service_healthy"}}},
            "tiler": {"image": "emberwatch", "restart": "unless-stopped",
                      "healthcheck": {"test": ["CMD", "true"]},
                      "environment": {"EMBERWATCH_LOG_LEVEL": "INFO"},
                      "secrets": [{"source": "mapbox_token", "target": "EMBERWATCH_MAPBOX_TOKEN"}],
                      "depends_on": {"kafka": {"condition": "service_healthy"},
                                     "topics": {"condition": "service_completed_successfully"}}},
            "grafana": {"image": "grafana/grafana", "restart": "always", "ports": ["3000:3000"],
                        "healthcheck": {"test": ["CMD", "true"]},
                        "environment": {"GF_SECURITY_ADMIN_PASSWORD__FILE": "/run/secrets/grafana_admin_password"},
                        "secrets": ["grafana_admin_password"],
                        "volumes": ["./prov:/etc/grafana/provisioning:ro", "./dash:/etc/grafana/dashboards:ro"]},
            "console": {"image": "emberwatch", "restart": "unless-stopped", "ports": ["127.0.0.1:8090:8090"],
                        "healthcheck": {"test": ["CMD", "true"]}},
        },
        "secrets": {"grafana_admin_password": {"file": "./secrets/grafana_admin_password"},
                    "mapbox_token": {"file": "./secrets/mapbox_token"}},
    }


def planted(change) -> dict:
    compose = copy.deepcopy(good())
    change(compose["services"])
    return compose


def test_the_good_example_passes():
    assert lint(good()) == []


@pytest.mark.parametrize("service, port", [
    ("prometheus", "9090:9090"), ("mlflow", "5000:5000"), ("kafka", "9092:9092"), ("postgres", "5432:5432"),
    ("seaweedfs", "8333:8333"), ("tiler", "9100:9100"), ("triton", "8002:8002"),
    ("console", "8090:8090"), ("console", "0.0.0.0:8090:8090"), ("kafka", {"target": 9092, "published": 9092}),
    ("triton", "8000:8000"), ("triton", "127.0.0.1:8001:8001"),
])
def test_an_admin_surface_published_fails(service, port):
    def change(services):
        services.setdefault(service, {"image": "x", "restart": "always", "healthcheck": {"test": ["CMD", "true"]}})
        services[service]["ports"] = [port]
    problems = check_published_ports(planted(change))
    assert problems and any(p.startswith("[published-port]") for p in problems)


TLS_FLAGS = ["--grpc-use-ssl=true", "--grpc-server-cert=/run/secrets/triton_tls_cert",
             "--grpc-server-key=/run/secrets/triton_tls_key"]


def triton_publishing(command: list[str], ports: list[str]):
    return lambda s: s.update(triton={"image": "t", "restart": "always", "command": command,
                                      "healthcheck": {"test": ["CMD", "true"]}, "ports": ports})


def test_triton_may_publish_inference_only_with_model_control_restricted():
    ports = ["127.0.0.1:8000:8000", "8001:8001"]
    restricted = ["tritonserver", "--http-restricted-api=model-repository:admin-key=${K:?}",
                  "--grpc-restricted-protocol=model-repository:admin-key=${K:?}", *TLS_FLAGS]
    assert check_published_ports(planted(triton_publishing(restricted, ports))) == []
    http_only = restricted[:2] + TLS_FLAGS
    old_flag = http_only + ["--grpc-restricted-api=model-repository:admin-key=${K:?}"]  # not a Triton flag
    assert check_published_ports(planted(triton_publishing(old_flag, ports))) == \
        check_published_ports(planted(triton_publishing(http_only, ports)))
    assert check_published_ports(planted(triton_publishing(http_only, ports))) == [
        "[published-port] triton publishes 8001 with its model-repository API open "
        "(needs --grpc-restricted-protocol=model-repository:...)"]


def test_triton_publishes_inference_on_the_network_only_over_tls():
    restricted = ["tritonserver", "--http-restricted-api=model-repository:admin-key=${K:?}",
                  "--grpc-restricted-protocol=model-repository:admin-key=${K:?}"]
    # gRPC without TLS, or with a certificate written somewhere other than a compose secret
    for flags in ([], TLS_FLAGS[:1], [*TLS_FLAGS[:2], "--grpc-server-key=/etc/key.pem"]):
        problems = check_published_ports(planted(triton_publishing(restricted + flags, ["8001:8001"])))
        assert problems == ["[plaintext-port] triton publishes gRPC (8001) without TLS (needs --grpc-use-ssl=true "
                            "--grpc-server-cert=/run/secrets/... --grpc-server-key=/run/secrets/...)"], flags
    # HTTP beyond the loopback, on every interface or on one address
    for port in ("8000:8000", "0.0.0.0:8000:8000", "10.0.0.5:8000:8000"):
        problems = check_published_ports(planted(triton_publishing(restricted + TLS_FLAGS, [port])))
        assert len(problems) == 1 and problems[0].startswith("[plaintext-port] triton publishes HTTP (8000)"), port
    # gRPC without TLS on the host's loopback only is the operator's own business
    assert check_published_ports(planted(triton_publishing(restricted, ["127.0.0.1:8001:8001"]))) == []


@pytest.mark.parametrize("value", ["hunter2", "${MAPBOX_TOKEN:-pk.default}", "${MAPBOX_TOKEN-pk.default}"])
def test_a_secret_written_in_the_file_fails(value):
    compose = planted(lambda s: s["tiler"]["environment"].update(EMBERWATCH_MAPBOX_TOKEN=value))
    assert any(p.startswith("[secret-in-file]") for p in check_secret_values(compose))


def test_a_secret_default_inside_a_command_fails():
    compose = planted(lambda s: s["kafka"].update(
        command=["server", "--db=postgresql://u:${POSTGRES_PASSWORD:-mlflow}@db/x"]))
    assert any(p.startswith("[secret-in-file]") for p in check_secret_values(compose))


@pytest.mark.parametrize("env", [
    {"EMBERWATCH_MAPBOX_TOKEN": "${MAPBOX_TOKEN:-}"}, {"EMBERWATCH_MAPBOX_TOKEN": "${MAPBOX_TOKEN}"},
    {"EMBERWATCH_MAPBOX_TOKEN": "$MAPBOX_TOKEN"}, {"EMBERWATCH_MAPBOX_TOKEN": None},
    {"EMBERWATCH_MAPBOX_TOKEN": "${MAPBOX_TOKEN?unset}"}, ["EMBERWATCH_MAPBOX_TOKEN"],
])
def test_a_secret_that_is_not_required_fails(env):
    compose = planted(lambda s: s["tiler"].update(environment=env))
    assert any(p.startswith("[secret-not-required]") for p in check_secret_values(compose))


def test_a_long_running_service_without_a_healthcheck_fails():
    compose = planted(lambda s: s["tiler"].pop("healthcheck"))
    assert check_health(compose) == ["[healthcheck] tiler runs for good without a healthcheck"]
    # A one-shot init job needs none.
    assert check_health(planted(lambda s: s["topics"].pop("healthcheck", None))) == []
    compose = planted(lambda s: s["kafka"].update(healthcheck={"disable": True, "test": ["CMD", "true"]}))
    assert check_health(compose) == ["[healthcheck] kafka runs for good without a healthcheck"]


def test_a_long_running_service_without_a_restart_policy_fails():
    compose = planted(lambda s: s["tiler"].pop("restart"))
    assert check_health(compose) == ["[healthcheck] tiler runs for good without a restart policy"]


@pytest.mark.parametrize("deps", [["kafka"], {"kafka": {"condition": "service_started"}},
                                  {"kafka": {"condition": "service_healthy"},
                                   "topics": {"condition": "service_healthy"}}])
def test_waiting_for_less_than_healthy_or_completed_fails(deps):
    compose = planted(lambda s: s["tiler"].update(depends_on=deps))
    assert any(p.startswith("[healthcheck] tiler depends on") or "not when it is healthy" in p
               for p in check_health(compose))


@pytest.mark.parametrize("volumes", [
    ["./monitoring/prometheus:/etc/prometheus:ro", "./monitoring/rules:/etc/prometheus/rules:ro"],
    ["./prov:/etc/grafana:ro", "grafana-data:/etc/grafana/data"],
    [{"type": "bind", "source": "./a", "target": "/etc/a", "read_only": True},
     {"type": "volume", "source": "v", "target": "/etc/a/b/c"}],
])
def test_a_mount_inside_a_read_only_mount_fails(volumes):
    compose = planted(lambda s: s["grafana"].update(volumes=volumes))
    assert [p for p in check_mounts(compose) if p.startswith("[mount-in-read-only]")]
    # siblings, or a read-write parent, are fine
    assert check_mounts(good()) == []
    assert check_mounts(planted(lambda s: s["grafana"].update(
        volumes=["data:/var/lib/grafana", "./d:/var/lib/grafanax:ro"]))) == []


@pytest.mark.parametrize("change", [
    lambda s: s["console"].update(environment={"EMBERWATCH_DISCORD_WEBHOOK_URL": "${DISCORD_WEBHOOK_URL:?x}"}),
    lambda s: s["kafka"].update(environment={"EMBERWATCH_MAPBOX_TOKEN": "${MAPBOX_TOKEN:?x}"}),
    lambda s: s["console"].update(environment={"EMBERWATCH_TRITON_ADMIN_KEY": "${TRITON_ADMIN_KEY:?x}"}),
    lambda s: s["tiler"].update(secrets=["grafana_admin_password"]),
    # a service's secret in its environment instead of a file
    lambda s: s["tiler"]["environment"].update(EMBERWATCH_MAPBOX_TOKEN="${MAPBOX_TOKEN:?x}"),
    lambda s: s["tiler"]["environment"].update(AWS_SECRET_ACCESS_KEY="${S3_SECRET_KEY:?x}"),
    lambda s: s["grafana"].update(secrets=[]),  # a *_FILE pointing at a secret it is not given
])
def test_a_secret_given_to_a_service_that_does_not_use_it_fails(change):
    assert any(p.startswith("[unused-secret]") for p in check_secret_recipients(planted(change)))
