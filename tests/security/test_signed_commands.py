"""Operators who are who they say: only commands signed by a trusted issuer's key, for a person that
key may speak for, in time and never seen before, are carried out.

The pure signing and key-file logic first; then a real gatekeeper process (`emberwatch run
gatekeeper`) on the real broker (Tansu), with a challenger in shadow: unsigned, forged, altered,
expired, replayed, unknown-issuer and impersonating commands are each answered `refused` with the
reason and change nothing; a valid signed command is carried out; a revoked key stops working."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from emberwatch.cli.main import app
from emberwatch.common.config import Settings
from emberwatch.common.telemetry import free_port
from emberwatch.contracts.envelope import utcnow
from emberwatch.contracts.events import ModelCommand, ModelDecision
from emberwatch.operations.create_topics import create_topics
from emberwatch.operations.send_command import model_command, send_command
from emberwatch.security.command_keys import (
    SigningKeyMissing,
    TrustedKeys,
    create_key_pair,
    ensure_local_keys,
    key_file_stem,
    load_signer,
    public_pem,
    trust,
    trusted_dir,
)
from emberwatch.security.command_signing import (
    SIGNED_FIELDS,
    CommandSigner,
    Unverified,
    canonical_content,
    may_speak_for,
    verify_command,
)
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.shadow_state import Shadow
from tests.conftest import REPO, env_for
from tests.messaging.helpers import unique
from tests.support.process_group import stop_group

OPS = CommandSigner("operator:ops", Ed25519PrivateKey.generate())
CONSOLE = CommandSigner("console", Ed25519PrivateKey.generate())


def signed(signer: CommandSigner = OPS, *, requested_by: str = "cli:ops", model_name: str = "m",
           kind: str = "reject", **fields) -> ModelCommand:
    occurred_at = fields.pop("occurred_at", utcnow())
    expires_at = fields.pop("expires_at", occurred_at + timedelta(seconds=60))
    return signer.sign(ModelCommand.create(producer="test", command=kind, model_name=model_name,
                                           requested_by=requested_by, occurred_at=occurred_at,
                                           expires_at=expires_at, **fields))


def lookup(*signers: CommandSigner):
    keys = {s.issuer: s.public_key() for s in signers}
    return keys.get


def refusal(command: ModelCommand, keys) -> str:
    with pytest.raises(Unverified) as caught:
        verify_command(command, keys)
    return caught.value.reason


# --- the pure logic ------------------------------------------------------------------------------
def test_a_signed_command_verifies_and_survives_the_wire():
    c = signed(version="7", reason="hotfix")
    assert c.issuer == "operator:ops" and len(base64.b64decode(c.signature)) == 64
    assert verify_command(ModelCommand.from_bytes(c.to_bytes()), lookup(OPS)) == "operator:ops"


def test_changing_any_signed_field_breaks_the_signature():
    c = signed(kind="promote", version="7", reason="hotfix")
    changed = {"command": "rollback", "model_name": "other", "version": "8", "requested_by": "cli:boss",
               "reason": "something else", "issuer": "console", "event_id": "another-id",
               "occurred_at": c.occurred_at - timedelta(seconds=1),
               "expires_at": c.expires_at + timedelta(hours=1)}
    assert set(changed) == set(SIGNED_FIELDS)  # every signed field is tried
    for name, value in changed.items():
        altered = c.model_copy(update={name: value})
        assert canonical_content(altered) != canonical_content(c), name
        assert refusal(altered, lookup(OPS, CONSOLE)) == "bad_signature", name


def test_unsigned_forged_and_unknown_issuers_do_not_verify():
    unsigned = ModelCommand.create(producer="test", command="rollback", model_name="m", requested_by="cli:ops")
    assert refusal(unsigned, lookup(OPS)) == "unsigned"
    assert refusal(signed().model_copy(update={"signature": None}), lookup(OPS)) == "unsigned"
    forger = CommandSigner("operator:ops", Ed25519PrivateKey.generate())  # the right name, another key
    assert refusal(signed(forger), lookup(OPS)) == "bad_signature"
    mallory = CommandSigner("operator:mallory", Ed25519PrivateKey.generate())
    assert refusal(signed(mallory, requested_by="cli:mallory"), lookup(OPS)) == "unknown_issuer"


def test_a_key_speaks_only_for_whom_it_may():
    assert refusal(signed(requested_by="cli:alice"), lookup(OPS)) == "impersonation"
    assert refusal(signed(CONSOLE, requested_by="discord:bob"), lookup(CONSOLE)) == "impersonation"
    assert verify_command(signed(CONSOLE, requested_by="console:alice"), lookup(CONSOLE)) == "console"
    assert may_speak_for("operator:ops", "cli:ops") and may_speak_for("operator:ops", "console:ops")
    assert not may_speak_for("operator:ops", "cli:ops2") and not may_speak_for("operator:ops", "ops")
    assert not may_speak_for("operator:ops", "cli:") and not may_speak_for("console", ":alice")
    assert may_speak_for("discord-bot", "discord:ops#7") and not may_speak_for("discord-bot", "console:x")
    assert not may_speak_for("console", "cli:alice")


def test_the_contract_keeps_old_commands_parsing_and_refuses_malformed_signing_fields():
    old = ModelCommand.create(producer="test", command="rollback", model_name="m", requested_by="cli:ops")
    assert old.issuer is None and old.signature is None
    assert ModelCommand.from_bytes(old.to_bytes()) == old
    good = signed()
    for field, value in [("issuer", "operator:../../etc"), ("issuer", "Console"), ("issuer", "x" * 100),
                         ("signature", "not base64!"), ("signature", "A" * 200)]:
        with pytest.raises(ValidationError, match=field):
            ModelCommand.model_validate(good.model_dump(mode="json") | {field: value})


def test_key_files_are_private_never_overwritten_and_revocable(tmp_path):
    pair = create_key_pair(tmp_path / "keys", "operator:alice")
    assert pair.private_path.name == "operator.alice.key" and pair.public_path.name == "operator.alice.pub"
    assert stat.S_IMODE(pair.private_path.stat().st_mode) == 0o600
    before = pair.private_path.read_bytes()
    with pytest.raises(FileExistsError):
        create_key_pair(tmp_path / "keys", "operator:alice")
    assert pair.private_path.read_bytes() == before

    settings = Settings(state_dir=tmp_path / "state", command_keys_dir=tmp_path / "keys")
    signer = load_signer(settings, "operator:alice")
    assert "PRIVATE" not in repr(signer) and signer.issuer == "operator:alice"
    trusted = TrustedKeys(tmp_path / "trusted")
    assert trusted("operator:alice") is None
    trust(trusted.directory, "operator:alice", pair.public_pem)
    c = signed(signer, requested_by="cli:alice")
    assert verify_command(c, trusted) == "operator:alice" and trusted.issuers() == ["operator:alice"]
    (trusted.directory / "operator.alice.pub").unlink()  # revoked
    assert refusal(c, trusted) == "unknown_issuer"
    with pytest.raises(ValueError):
        trust(trusted.directory, "console", b"not a key")
    (trusted.directory / "console.pub").write_bytes(b"x" * 10_000)  # not a key: ignored, not trusted
    assert trusted("console") is None


def test_a_signing_key_comes_from_the_secret_or_the_keys_dir_and_its_absence_is_explained(tmp_path):
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    from_secret = load_signer(Settings(state_dir=tmp_path, command_signing_key=SecretStr(pem)), "console")
    assert public_pem(from_secret.public_key()) == public_pem(key.public_key())
    with pytest.raises(SigningKeyMissing, match="emberwatch keys create console --service"):
        load_signer(Settings(state_dir=tmp_path), "console")
    with pytest.raises(SigningKeyMissing, match="not an unencrypted Ed25519 private key") as caught:
        load_signer(Settings(state_dir=tmp_path, command_signing_key=SecretStr("-----BEGIN nonsense")), "console")
    assert "nonsense" not in str(caught.value)
    assert key_file_stem("operator:a.b") == "operator.a.b" and key_file_stem("discord-bot") == "discord-bot"
    with pytest.raises(ValueError):
        key_file_stem("operator:../x")


def test_the_local_stack_makes_its_keys_once_and_a_revoked_one_stays_revoked(tmp_path):
    settings = Settings(state_dir=tmp_path)
    made = ensure_local_keys(settings, ["console", "discord-bot", "operator:ops"])
    assert made == ["console", "discord-bot", "operator:ops"]
    trusted = TrustedKeys(trusted_dir(settings))
    assert trusted.issuers() == ["console", "discord-bot", "operator:ops"]
    keys = {p.name: p.read_bytes() for p in (tmp_path / "keys").glob("*.key")}
    (trusted.directory / "discord-bot.pub").unlink()
    assert ensure_local_keys(settings, ["console", "discord-bot", "operator:ops"]) == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").glob("*.key")} == keys  # none overwritten
    assert trusted("discord-bot") is None  # revoked stays revoked


def test_keys_cli_creates_trusts_and_revokes(tmp_path):
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "alice", "--dir", str(tmp_path / "mine")])
    assert made.exit_code == 0, made.output
    assert "BEGIN PUBLIC KEY" in made.output and "PRIVATE" not in made.output
    assert stat.S_IMODE((tmp_path / "mine" / "operator.alice.key").stat().st_mode) == 0o600
    again = runner.invoke(app, ["keys", "create", "alice", "--dir", str(tmp_path / "mine")])
    assert again.exit_code == 1 and "never overwritten" in again.output
    trusted = str(tmp_path / "trusted")
    ok = runner.invoke(app, ["keys", "trust", "operator:alice", str(tmp_path / "mine" / "operator.alice.pub"),
                             "--trusted-dir", trusted])
    assert ok.exit_code == 0, ok.output
    listed = runner.invoke(app, ["keys", "list", "--trusted-dir", trusted])
    assert "operator:alice" in listed.output
    bad = runner.invoke(app, ["keys", "trust", "console", str(tmp_path / "mine" / "operator.alice.key"),
                              "--trusted-dir", trusted])
    assert bad.exit_code == 1 and not (tmp_path / "trusted" / "console.pub").exists()  # a private key is no .pub
    gone = runner.invoke(app, ["keys", "revoke", "operator:alice", "--trusted-dir", trusted])
    assert gone.exit_code == 0 and not (tmp_path / "trusted" / "operator.alice.pub").exists()


def test_the_cli_without_a_key_sends_nothing_and_says_how_to_make_one(tmp_path):
    env = dict(os.environ, EMBERWATCH_STATE_DIR=str(tmp_path), EMBERWATCH_COMMAND_ISSUER="operator:nobody",
               EMBERWATCH_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")
    done = subprocess.run([sys.executable, "-m", "emberwatch.cli.main", "rollback", "--wait-s", "1"], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "emberwatch keys create nobody" in done.stderr.replace("\n", " ")


# --- a real gatekeeper on the real broker ------------------------------------------------------
def refusals(url: str) -> dict[str, float]:
    text = httpx.get(url, timeout=3).text
    return {s.labels["reason"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "emberwatch_gatekeeper_command_refusals_total"}


def wait_metrics(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError(f"the gatekeeper's /metrics never answered:\n{log.read_text()[-3000:]}")


@pytest.mark.timeout(600)
async def test_the_gatekeeper_carries_out_only_commands_it_can_verify(kafka_settings, tmp_path):
    await create_topics(kafka_settings)
    model = unique("signed-model")
    state = tmp_path / "gk"
    gk_settings = GatekeeperSettings(
        state_dir=state, triton_model_repository=tmp_path / "repo", triton_url="127.0.0.1:9",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", model_name=model)
    trust(trusted_dir(gk_settings), OPS.issuer, public_pem(OPS.public_key()))
    trust(trusted_dir(gk_settings), CONSOLE.issuer, public_pem(CONSOLE.public_key()))
    Gatekeeper(gk_settings).shadows.save(Shadow(model_name=model, candidate_version="5", champion_version="2",
                                                run_id="r"))  # a challenger in shadow, no champion serving
    shadow_file = state / "gatekeeper" / "state.json"  # the one state store, shadow included

    def models_state() -> dict:  # all but the command bookkeeping (a refusal's answer is kept for a redelivery)
        kept = json.loads(shadow_file.read_text())["state"]
        return {k: v for k, v in kept.items() if k not in ("answers", "seen_commands")}

    shadow_before = models_state()

    port = free_port()
    env = env_for(kafka_settings) | {
        "EMBERWATCH_STATE_DIR": str(state), "EMBERWATCH_MODEL_NAME": model,
        "EMBERWATCH_TRITON_MODEL_REPOSITORY": str(tmp_path / "repo"), "EMBERWATCH_TRITON_URL": "127.0.0.1:9",
        "EMBERWATCH_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "EMBERWATCH_GATEKEEPER_SERVING_CHECK_S": "0", "EMBERWATCH_METRICS_PORT": str(port),
        "EMBERWATCH_GATEKEEPER_GROUP_ID": unique("gatekeeper"),
    }
    log = tmp_path / "gatekeeper.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "run", "gatekeeper"], env=env,
                                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    metrics = f"http://127.0.0.1:{port}/metrics"
    caller = kafka_settings.model_copy(update={"state_dir": tmp_path / "caller"})
    try:
        wait_metrics(metrics, proc, log)
        counted = refusals(metrics)

        async def answer(command: ModelCommand) -> ModelDecision:
            decision = await send_command(caller, command, wait_s=90)
            assert decision.command_id == command.event_id
            return decision

        mallory = CommandSigner("operator:mallory", Ed25519PrivateKey.generate())
        forger = CommandSigner("operator:ops", Ed25519PrivateKey.generate())
        now = utcnow()
        hostile = {
            "unsigned": (ModelCommand.create(producer="test", command="reject", model_name=model,
                                             requested_by="cli:ops", expires_at=now + timedelta(seconds=60)),
                         "it is not signed"),
            "forged": (signed(forger, model_name=model), "signature does not verify"),
            "tampered": (signed(model_name=model, reason="routine").model_copy(update={"version": "5"}),
                         "signature does not verify"),
            "unknown": (signed(mallory, requested_by="cli:mallory", model_name=model),
                        "issuer operator:mallory is not trusted"),
            "impersonating": (signed(requested_by="cli:alice", model_name=model), "may not speak for"),
            "bot for the console": (signed(CONSOLE, requested_by="discord:eve", model_name=model),
                                    "may not speak for"),
            "expired": (signed(model_name=model, occurred_at=now - timedelta(hours=2),
                               expires_at=now - timedelta(hours=1)), "expired at"),
            "no expiry": (signed(model_name=model, expires_at=None), "has no expires_at"),
            "too long": (signed(model_name=model, expires_at=now + timedelta(days=30)), "further ahead"),
        }
        for name, (command, why) in hostile.items():
            d = await answer(command)
            assert d.refused and d.decision == "rejected" and why in d.reason, (name, d.reason)
            assert models_state() == shadow_before, name  # nothing changed
        unverified = [await answer(hostile[n][0]) for n in ("unsigned", "forged", "unknown")]
        assert all(d.requested_by is None and d.issuer is None for d in unverified)  # no claim is believed

        # a valid command, signed by a trusted person for themselves: carried out
        valid = model_command("reject", model, requested_by="cli:ops", signer=OPS, reason="not this one",
                              wait_s=90)
        done = await answer(valid)
        assert not done.refused and done.decision == "rejected" and done.candidate_version == "5", done.reason
        assert (done.requested_by, done.issuer) == ("cli:ops", "operator:ops") and "not this one" in done.reason
        assert json.loads(shadow_file.read_text())["state"]["shadow"] is None  # the shadow ended

        # the same command again: a replay, refused, nothing redone
        again = await answer(valid)
        assert again.refused and "it was replayed" in again.reason and again.event_id != done.event_id
        assert "(its first answer: rejected)" in again.reason

        # the console's key vouches for its signed-in operator
        console = await answer(signed(CONSOLE, requested_by="console:alice", model_name=model))
        assert (console.requested_by, console.issuer) == ("console:alice", "console")
        assert "no challenger is in shadow" in console.reason  # verified; refused only as impossible

        # revoking: the .pub leaves the trusted keys, the next command of that key is refused
        (trusted_dir(gk_settings) / "operator.ops.pub").unlink()
        revoked = await answer(signed(model_name=model))
        assert revoked.refused and "issuer operator:ops is not trusted" in revoked.reason

        now_counted = refusals(metrics)
        grew = {k: now_counted.get(k, 0) - counted.get(k, 0) for k in now_counted}
        expected = {"unsigned": 2, "bad_signature": 3, "unknown_issuer": 3, "impersonation": 2,
                    "expired": 3, "replayed": 1, "not_possible": 1}
        # at least once each (a command redelivered after a rebalance under load is refused and counted again)
        assert {k for k, n in grew.items() if n} == set(expected), grew
        assert all(grew[k] >= n for k, n in expected.items()), grew
    finally:
        stop_group(proc, 30)
    assert not (tmp_path / "caller").exists()  # the caller kept nothing: no key, no state
