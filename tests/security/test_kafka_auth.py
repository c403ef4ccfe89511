"""Kafka is authenticated where it is deployed: SASL/SCRAM-SHA-512 over TLS, one principal per service,
ACLs that let each write only what it publishes and read only what it consumes.

What runs here and what does not:
- The ACL table (deploy/k8s/base/kafka/acls.tsv, applied by kafka-init.sh in compose and Kubernetes)
  is compared with the ACLs derived from the code's own subscriptions and publications, so the two
  cannot drift. ACLs are not enforced by any broker here: Tansu 0.6.0 has no authorizer.
- Our client's TLS path (``EMBERWATCH_KAFKA_SSL_CAFILE`` -> ``build_security``) runs for real: the
  services' broker wiring publishes and consumes through TLS in front of a real Tansu, and refuses a
  certificate from another CA or for another host name.
- Tansu's ``--authentication`` is started for real: a client without credentials and one with a
  wrong password publish nothing. A *successful* SCRAM login cannot be shown on Tansu 0.6.0: its only
  storage engine here (dynostore: memory://, s3://) drops SCRAM credentials (``tansu user create``
  answers OK, the broker then answers ``e=unknown-user`` to every login), and its ``--cert``/``--key``
  options conflict with each other, so it serves no TLS. The compose and Kubernetes brokers are
  Apache Kafka, checked here as configuration only.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import SecretStr

from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.contracts import events as contract_events
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.topics import ALL_TOPICS, Topic, dlq_topic
from emberwatch.messaging.broker import build_broker, build_security, client_options
from emberwatch.stack.parts import tansu_binary
from tests.support.process_group import stop_group

REPO = Path(__file__).resolve().parents[2]
ACL_TABLE = REPO / "deploy" / "k8s" / "base" / "kafka" / "acls.tsv"
SERVICES = ("ingestor", "tiler", "trainer", "gatekeeper", "notifier", "console")
# The operator's CLI (`emberwatch models ...`, `emberwatch train`): the modules it publishes and reads with.
OPERATOR_MODULES = ("send_command.py", "request_training.py", "show_models.py")
SUBSCRIBE_CALLS = {"subscribe", "subscribe_bulk", "consume", "Route", "route"}  # each dead-letters
EVENTS = {name: cls.TOPIC for name, cls in vars(contract_events).items()
          if isinstance(cls, type) and issubclass(cls, Envelope) and isinstance(getattr(cls, "TOPIC", None), str)}

Acl = tuple[str, str, str, str, str]  # principal, resource, pattern, name, operation


# --- the ACLs the code needs ------------------------------------------------------------------------
def _call_name(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _topics_fields(service: str) -> dict[str, str]:
    """The fields of a service's ``Topics`` dataclass (services/<service>/models.py) and their topics."""
    path = REPO / "services" / service / "models.py"
    if not path.exists():
        return {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef) and node.name == "Topics":
            return {s.target.id: _topic_of(s.value, {}) for s in node.body
                    if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None}
    return {}


def _topic_of(node: ast.AST | None, fields: dict[str, str]) -> str | None:
    """The topic an expression names: ``Topic.X``, ``<Event>.TOPIC``, ``topics.<field>``, a literal."""
    if isinstance(node, ast.Constant) and node.value in ALL_TOPICS:
        return node.value
    if not isinstance(node, ast.Attribute):
        return None
    if isinstance(node.value, ast.Name) and node.value.id == "Topic":
        return Topic[node.attr].value
    if node.attr == "TOPIC" and isinstance(node.value, ast.Name):
        return EVENTS.get(node.value.id)
    owner = node.value.attr if isinstance(node.value, ast.Attribute) else getattr(node.value, "id", None)
    if owner == "topics":
        return fields.get(node.attr)
    return None


def _usage(paths: list[Path], fields: dict[str, str]) -> tuple[set[str], set[str], set[str], bool]:
    """(topics read and dead-lettered, topics read without a group, topics written, uses a group)."""
    subscribed, plain_reads, writes = set(), set(), set()
    for path in paths:
        tree = ast.parse(path.read_text())
        direct_consumer = False
        referenced = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                topic = _topic_of(node, fields)
                if topic:
                    referenced.add(topic)
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in SUBSCRIBE_CALLS:
                subscribed |= {t for a in node.args if (t := _topic_of(a, fields))}
            elif name == "subscriber":  # FastStream's raw subscriber (the console): reads, no DLQ
                plain_reads |= set(fields.values())
            elif name == "AIOKafkaConsumer":
                direct_consumer = True
            elif name == "create" and isinstance(node.func, ast.Attribute) and \
                    isinstance(node.func.value, ast.Name) and node.func.value.id in EVENTS:
                writes.add(EVENTS[node.func.value.id])
            elif name == "make_alert":
                writes.add(Topic.PIPELINE_ALERTS.value)
            elif name == "model_command":
                writes.add(Topic.MODELS_COMMANDS.value)
            elif name == "send_command":  # publishes the command, reads the gatekeeper's answer
                writes.add(Topic.MODELS_COMMANDS.value)
                plain_reads.add(Topic.MODELS_DECISIONS.value)
        if direct_consumer:  # a module with its own consumer reads what it names and does not write
            plain_reads |= referenced - writes
    return subscribed, plain_reads, writes, bool(subscribed)


def _group_prefix(service: str) -> str:
    from importlib import import_module

    module = import_module(f"services.{service}.settings")
    (cls,) = [c for c in vars(module).values() if isinstance(c, type) and f"{service}_group_id" in
              getattr(c, "model_fields", {})]
    return cls.model_fields[f"{service}_group_id"].default


def expected_acls() -> set[Acl]:
    acls: set[Acl] = set()

    def grant(principal: str, subscribed: set[str], reads: set[str], writes: set[str], group: bool) -> None:
        for t in subscribed | reads:
            acls.add((principal, "topic", "literal", t, "Read"))
        for t in writes | {dlq_topic(t) for t in subscribed}:
            acls.add((principal, "topic", "literal", t, "Write"))
        if group:
            acls.add((principal, "group", "prefixed", _group_prefix(principal), "Read"))

    for service in SERVICES:
        grant(service, *_usage(sorted((REPO / "services" / service).rglob("*.py")), _topics_fields(service)))
    subscribed, reads, writes, group = _usage([REPO / "emberwatch" / "operations" / m for m in OPERATOR_MODULES], {})
    assert not subscribed and not group, "the operator's CLI reads without a consumer group"
    grant("operator", subscribed, reads, writes, group)
    # KEDA scales the tiler on its lag: it reads the group's offsets and the topic's, nothing else
    scaled = yaml.safe_load((REPO / "deploy" / "k8s" / "base" / "tiler-scaledobject.yaml").read_text())
    (trigger,) = scaled["spec"]["triggers"]
    acls |= {("keda", "topic", "literal", trigger["metadata"]["topic"], "Describe"),
             ("keda", "group", "literal", trigger["metadata"]["consumerGroup"], "Describe")}
    for t in (t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))):  # `emberwatch create-topics`
        acls |= {("topics", "topic", "literal", t, op) for op in ("Create", "Describe", "DescribeConfigs")}
    return acls


def granted_acls(path: Path = ACL_TABLE) -> set[Acl]:
    acls: set[Acl] = set()
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        principal, resource, pattern, name, operations = line.split("\t")
        acls |= {(principal, resource, pattern, name, op) for op in operations.split(",")}
    return acls


def test_the_acl_table_grants_exactly_what_the_code_reads_and_writes():
    expected, granted = expected_acls(), granted_acls()
    assert expected - granted == set(), "the code needs ACLs the table does not grant"
    assert granted - expected == set(), "the table grants ACLs no code uses"


def test_each_principal_writes_only_its_own_topics_and_only_the_gatekeeper_reads_commands():
    acls = granted_acls()
    readers = {p for p, r, _, name, op in acls if r == "topic" and name == Topic.MODELS_COMMANDS and op == "Read"}
    assert readers == {"gatekeeper"}
    writers: dict[str, set[str]] = {}
    for p, r, _, name, op in acls:
        if r == "topic" and op == "Write":
            writers.setdefault(name, set()).add(p)
    assert writers[Topic.FIRES_OBSERVED] == {"ingestor"}
    assert writers[Topic.TILES_READY] == writers[Topic.TILES_RELABELLED] == {"tiler"}
    assert writers[Topic.MODELS_CANDIDATES] == {"trainer"}
    assert writers[Topic.MODELS_DECISIONS] == {"gatekeeper"}
    assert writers[Topic.MODELS_COMMANDS] == {"console", "notifier", "operator"}  # the issuers
    # no wildcard resource, no cluster-wide grant, no group a principal does not own
    assert all(name not in ("*", "") and r in ("topic", "group") for _, r, _, name, _ in acls)
    assert all(name == p or (p, op) == ("keda", "Describe") for p, r, _, name, op in acls if r == "group")


def test_a_table_that_drifts_from_the_code_fails(tmp_path):
    """The comparison can fail: one grant more (the console reading commands), one fewer."""
    lines = ACL_TABLE.read_text().splitlines()
    widened = tmp_path / "widened.tsv"
    widened.write_text("\n".join([*lines, "console\ttopic\tliteral\tmodels.commands.v1\tRead"]) + "\n")
    assert granted_acls(widened) - expected_acls() == {("console", "topic", "literal", "models.commands.v1", "Read")}
    narrowed = tmp_path / "narrowed.tsv"
    narrowed.write_text("\n".join(line for line in lines if not line.startswith("gatekeeper\ttopic\tliteral\t"
                                                                                  "models.commands.v1\t")) + "\n")
    assert ("gatekeeper", "topic", "literal", "models.commands.v1", "Read") in expected_acls() - granted_acls(narrowed)


# --- compose: the broker and who connects as whom ---------------------------------------------------
def compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def kafka_start_properties() -> dict[str, str]:
    script = (REPO / "deploy" / "compose" / "kafka-start").read_text()
    body = script.split('cat > "$config" <<PROPERTIES\n', 1)[1].split("\nPROPERTIES\n", 1)[0]
    return dict(line.partition("=")[::2] for line in body.splitlines() if line)


def test_compose_kafka_authenticates_every_listener_and_denies_what_no_acl_allows():
    props = kafka_start_properties()
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    listeners = {entry.split("://")[0]: entry.split("://")[1] for entry in props["listeners"].split(",")}
    assert set(listeners) == set(protocols)
    assert protocols == {"BROKER": "SASL_SSL", "ADMIN": "SSL", "CONTROLLER": "SSL"}  # no PLAINTEXT
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["listener.name.admin.ssl.client.auth"] == props["listener.name.controller.ssl.client.auth"] \
        == "required"
    assert listeners["CONTROLLER"].startswith("localhost:")  # inside the container only
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    # super users: the broker and the kafka-init job, by certificate; no service principal
    assert set(props["super.users"].split(";")) == {"User:CN=kafka", "User:CN=kafka-admin"}
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    svc = compose()["services"]["kafka"]
    assert "ports" not in svc and set(svc["secrets"]) == {"kafka_ca_cert", "kafka_broker_pem"}


def test_every_compose_kafka_client_is_its_own_principal_over_sasl_ssl():
    services = compose()["services"]
    principals = {p for p, *_ in granted_acls()}
    users = {}
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if not isinstance(env, dict) or "EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS" not in env:
            continue
        assert env["EMBERWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["EMBERWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert env["EMBERWATCH_KAFKA_SSL_CAFILE"] == "/run/secrets/kafka_ca_cert", name
        user = env["EMBERWATCH_KAFKA_SASL_USERNAME"]
        assert {"source": f"kafka_password_{user}", "target": "EMBERWATCH_KAFKA_SASL_PASSWORD"} in svc["secrets"]
        assert "kafka_ca_cert" in svc["secrets"]
        users[name] = user
    assert users == {**{s: s for s in SERVICES}, "topics": "topics"}
    assert set(users.values()) | {"operator", "keda"} == principals  # keda: Kubernetes only
    init = services["kafka-init"]
    assert {f"kafka_password_{p}" for p in principals - {"keda"}} <= set(init["secrets"])
    assert "./deploy/k8s/base/kafka:/opt/kafka-init:ro" in init["volumes"]


# --- kafka-init.sh: secrets only in private files ---------------------------------------------------
def test_kafka_init_passes_no_password_on_a_command_line(tmp_path):
    """kafka-init.sh against recording stand-ins of kafka-configs.sh / kafka-acls.sh (no Kafka broker
    runs here): every argv is free of the passwords, each SCRAM credential comes from a private file,
    and one kafka-acls.sh call is made per row of the table, with that row's grants."""
    secrets, bin_dir, log = tmp_path / "secrets", tmp_path / "bin", tmp_path / "calls"
    secrets.mkdir()
    bin_dir.mkdir()
    (secrets / "kafka_ca_cert").write_text("CA\n")
    (secrets / "kafka_admin_pem").write_text("KEY AND CERT\n")
    passwords = {p: f"pw{p}{'0' * 20}" for p in {p for p, *_ in granted_acls()}}
    for principal, password in passwords.items():
        (secrets / f"kafka_password_{principal}").write_text(password + "\n")
    for tool in ("kafka-configs.sh", "kafka-acls.sh"):
        (bin_dir / tool).write_text(
            "#!/bin/sh\nprintf '%s\\0' \"$(basename \"$0\")\" \"$@\" >> \"$LOG\"; printf '\\n' >> \"$LOG\"\n"
            "while [ $# -gt 0 ]; do case $1 in --add-config-file|--command-config) cat \"$2\" >> \"$LOG.files\";; esac;"
            " shift; done\n")
        (bin_dir / tool).chmod(0o755)
    done = subprocess.run(["sh", str(ACL_TABLE.parent / "kafka-init.sh"), str(ACL_TABLE)], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "KAFKA_BIN": str(bin_dir),
                                                      "KAFKA_INIT_SECRETS": str(secrets), "LOG": str(log),
                                                      "KAFKA_INIT_BOOTSTRAP": "kafka:9094"})
    assert done.returncode == 0, done.stderr
    calls = [line.split("\0")[:-1] for line in log.read_text().splitlines() if line]
    for argv in calls:
        assert not any(pw in arg for pw in passwords.values() for arg in argv), argv
    assert all(pw not in done.stdout + done.stderr for pw in passwords.values())
    files = Path(f"{log}.files").read_text()
    for principal, password in passwords.items():
        assert f"SCRAM-SHA-512=iterations=8192,password={password}\n" in files
    configs = [c for c in calls if c[0] == "kafka-configs.sh"]
    assert sorted(c[c.index("--entity-name") + 1] for c in configs) == sorted(passwords)
    acl_calls = [c for c in calls if c[0] == "kafka-acls.sh"]
    rows = [line for line in ACL_TABLE.read_text().splitlines() if line and not line.startswith("#")]
    assert len(acl_calls) == len(rows)
    seen: set[Acl] = set()
    for argv in acl_calls:
        principal = argv[argv.index("--allow-principal") + 1].removeprefix("User:")
        resource = "topic" if "--topic" in argv else "group"
        name = argv[argv.index(f"--{resource}") + 1]
        pattern = argv[argv.index("--resource-pattern-type") + 1]
        seen |= {(principal, resource, pattern, name, argv[i + 1]) for i, a in enumerate(argv) if a == "--operation"}
    assert seen == granted_acls()
    assert "security.protocol=SSL" in files and "ssl.keystore.location=" in files


def test_kafka_init_refuses_a_password_it_cannot_write_safely(tmp_path):
    secrets = tmp_path
    (secrets / "kafka_ca_cert").write_text("CA\n")
    (secrets / "kafka_admin_pem").write_text("x\n")
    (secrets / "kafka_password_ingestor").write_text('bad"password\n')
    done = subprocess.run(["sh", str(ACL_TABLE.parent / "kafka-init.sh"), str(ACL_TABLE)], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "KAFKA_BIN": "/nonexistent",
                                                      "KAFKA_INIT_SECRETS": str(secrets),
                                                      "KAFKA_INIT_BOOTSTRAP": "kafka:9094"})
    assert done.returncode != 0 and "kafka_password_ingestor" in done.stderr
    assert "bad" not in done.stderr  # the value is never echoed


# --- our client's options ---------------------------------------------------------------------------
def _make_ca(tmp: Path, name: str, host: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``host`` signed by it: (ca cert, server cert, key)."""
    from datetime import datetime, timedelta, timezone
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ip_address(host))] if host[0].isdigit() else [x509.DNSName(host)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / f"{name}-ca.pem", tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_scram_over_tls_options_come_from_the_settings_and_the_secrets_dir(tmp_path, monkeypatch):
    ca, _, _ = _make_ca(tmp_path, "client")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "EMBERWATCH_KAFKA_SASL_PASSWORD").write_text("s3cret-from-the-file\n")
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", str(secrets))
    monkeypatch.delenv("EMBERWATCH_KAFKA_SASL_PASSWORD", raising=False)
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                        kafka_sasl_username="gatekeeper", kafka_ssl_cafile=str(ca))
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("gatekeeper", "s3cret-from-the-file")
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "client-ca"),),)]
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("missing", ["username", "password"])
def test_sasl_without_a_user_or_password_refuses_to_start(missing, monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRETS_DIR", "")
    given = {"kafka_sasl_username": "tiler", "kafka_sasl_password": SecretStr("pw")}
    given.pop(f"kafka_sasl_{missing}")
    with pytest.raises(ValueError, match="EMBERWATCH_KAFKA_SASL_USERNAME and EMBERWATCH_KAFKA_SASL_PASSWORD"):
        build_security(Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", **given))


# --- real brokers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def tansu(*extra: str, advertised_port: int | None = None) -> Iterator[int]:
    """Tansu on a free 127.0.0.1 port (memory storage), advertising ``advertised_port`` if given."""
    port = free_port()
    listen = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port}" if advertised_port else listen
    proc = subprocess.Popen([str(tansu_binary()), "broker", "--listener-url", listen, "--advertised-listener-url",
                             advertised, "--storage-engine", "memory://tansu/", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", port), 1):
                break
            assert proc.poll() is None and time.monotonic() < deadline, "Tansu did not start"
            time.sleep(0.1)
        yield port
    finally:
        stop_group(proc)


class TlsFront:
    """TLS in front of a plain broker (Tansu serves no TLS): each TLS connection is relayed to it."""

    def __init__(self, cert: Path, key: Path, upstream: int, port: int) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.upstream, self.port = upstream, port
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> TlsFront:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, ssl=self.context)
        return self

    async def __aexit__(self, *exc) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


def _tls_settings(port: int, ca: Path) -> Settings:
    return Settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", kafka_security_protocol="SSL",
                    kafka_ssl_cafile=str(ca), kafka_session_timeout_ms=6000)


def test_the_services_broker_wiring_publishes_and_consumes_over_verified_tls(tmp_path):
    from emberwatch.contracts.events import PipelineAlert
    from emberwatch.messaging.alerts import make_alert
    from emberwatch.messaging.broker import publish_event

    ca, cert, key = _make_ca(tmp_path, "kafka")
    other_ca, _, _ = _make_ca(tmp_path, "other")
    elsewhere = tmp_path / "elsewhere"  # a CA the client trusts, its certificate for another host
    elsewhere.mkdir()
    _, wrong_cert, wrong_key = _make_ca(elsewhere, "kafka", host="elsewhere.invalid")
    elsewhere_ca = elsewhere / "kafka-ca.pem"
    front_port, wrong_host_port = free_port(), free_port()

    async def scenario(broker_port: int) -> None:
        async with TlsFront(cert, key, broker_port, front_port), \
                TlsFront(wrong_cert, wrong_key, broker_port, wrong_host_port):
            settings = _tls_settings(front_port, ca)
            broker = build_broker(settings, "tls-test")
            await broker.start()
            try:
                alert = make_alert("tls-test", "over-tls", "info", "published through TLS")
                await publish_event(broker, alert, service="tls-test")
            finally:
                await broker.stop()
            consumer = AIOKafkaConsumer(Topic.PIPELINE_ALERTS.value, **client_options(settings), group_id=None,
                                        auto_offset_reset="earliest", enable_auto_commit=False)
            await consumer.start()
            try:
                records = await consumer.getmany(timeout_ms=10000, max_records=10)
            finally:
                await consumer.stop()
            bodies = [r.value for batch in records.values() for r in batch]
            assert any(PipelineAlert.from_bytes(b).event_id == alert.event_id for b in bodies)
            # a certificate from another CA, a host name the certificate does not carry: refused
            for refused in (_tls_settings(front_port, other_ca), _tls_settings(wrong_host_port, elsewhere_ca)):
                producer = AIOKafkaProducer(**client_options(refused), request_timeout_ms=5000)
                with pytest.raises(KafkaError):
                    await producer.start()
                await producer.stop()

    with tansu(advertised_port=front_port) as port:
        subprocess.run([str(tansu_binary()), "topic", "create", Topic.PIPELINE_ALERTS.value, "--broker",
                        f"tcp://127.0.0.1:{port}", "--partitions", "1"], check=True, capture_output=True, timeout=30)
        asyncio.run(scenario(port))


def test_tansu_with_authentication_takes_nothing_from_a_client_without_valid_credentials():
    async def refused(settings: Settings) -> None:
        producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=5000)
        with pytest.raises((KafkaConnectionError, KafkaError, ValueError, KeyError)):
            await producer.start()
            await producer.send_and_wait(Topic.PIPELINE_ALERTS.value, b"must not land")
        await producer.stop()

    with tansu("--authentication") as port:
        servers = f"127.0.0.1:{port}"
        asyncio.run(refused(Settings(kafka_bootstrap_servers=servers)))  # no credentials
        asyncio.run(refused(Settings(kafka_bootstrap_servers=servers, kafka_security_protocol="SASL_PLAINTEXT",
                                     kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="ingestor",
                                     kafka_sasl_password=SecretStr("not-the-password"))))
