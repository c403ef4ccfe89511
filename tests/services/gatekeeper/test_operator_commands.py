"""Operator commands that need no Triton: every impossible command is answered with the reason and
changes nothing, an error on the way is answered too, a redelivered command is refused as replayed.
(Unsigned, forged, altered, expired and impersonating commands: tests/security/test_signed_commands.py.)
(Commands carried out against real servers: test_integration.py, tests/operations/test_send_command.py.)"""

from __future__ import annotations

from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY

from emberwatch.contracts.envelope import utcnow
from emberwatch.contracts.events import ModelCommand, ModelDecision
from emberwatch.security.command_keys import public_pem, trust, trusted_dir
from emberwatch.security.command_signing import CommandSigner
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.serving import repository as triton_repo
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.shadow_state import Shadow


SIGNER = CommandSigner("operator:ops", Ed25519PrivateKey.generate())  # asks as cli:ops


def settings(tmp_path) -> GatekeeperSettings:
    # nothing listens on port 9 (Triton); MLflow is a local SQLite registry with no model in it
    s = GatekeeperSettings(state_dir=tmp_path / "state", triton_model_repository=tmp_path / "repo",
                           triton_url="127.0.0.1:9", mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                           model_name="m")
    trust(trusted_dir(s), SIGNER.issuer, public_pem(SIGNER.public_key()))
    return s


def command(kind: str, version: str | None = None, **over) -> ModelCommand:
    """A command signed by a trusted operator's key, holding for a minute unless ``expires_at`` says."""
    occurred_at = over.pop("occurred_at", utcnow())
    expires_at = over.pop("expires_at", occurred_at + timedelta(seconds=60))
    return SIGNER.sign(ModelCommand.create(
        producer="test", command=kind, model_name=over.pop("model_name", "m"), version=version,
        requested_by="cli:ops", occurred_at=occurred_at, expires_at=expires_at, **over))


def commands_total(command: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("emberwatch_gatekeeper_commands_total",
                                     {"command": command, "outcome": outcome}) or 0.0


def answer(gk: Gatekeeper, c: ModelCommand) -> ModelDecision:
    [decision] = gk.on_command(c)
    assert (decision.command_id, decision.requested_by, decision.decision) == (c.event_id, "cli:ops", "rejected")
    return decision


def test_impossible_commands_are_refused_with_the_reason_and_change_nothing(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    ops = gk
    refused_before = commands_total("rollback", "refused")

    other = answer(ops, command("promote", "3", model_name="other"))
    assert other.refused and other.model_name == "other" and other.champion_version is None
    assert "this gatekeeper serves m, not other" in other.reason
    assert "no previous champion" in answer(ops, command("rollback")).reason
    assert "no challenger is in shadow" in answer(ops, command("approve")).reason
    assert "no challenger is in shadow" in answer(ops, command("reject")).reason
    assert "m has no registered version 3" in answer(ops, command("promote", "3")).reason

    triton_repo.write_serving(gk.serving.repo, champion="2")
    gk.shadows.save(Shadow(model_name="m", candidate_version="5", champion_version="2", run_id="r"))
    assert "already the champion" in answer(ops, command("promote", "2")).reason
    wrong = answer(ops, command("reject", "4"))
    assert "version 4 is not in shadow (the challenger is version 5)" in wrong.reason
    assert (wrong.candidate_version, wrong.champion_version, wrong.refused) == ("4", "2", True)
    assert "version 7 is not the champion (the champion is 2)" in answer(ops, command("rollback", "7")).reason

    expired = answer(ops, command("reject", expires_at=utcnow() - timedelta(seconds=1)))
    assert "expired" in expired.reason and expired.candidate_version == "5"  # the challenger it named
    stale = answer(ops, command("reject", occurred_at=utcnow() - timedelta(hours=1)))
    assert "expired" in stale.reason  # older than EMBERWATCH_GATEKEEPER_COMMAND_MAX_AGE_S

    assert gk.shadows.load() is not None and gk.serving.champion() == "2"  # nothing changed
    assert gk.decision_for("m", "5") is None and gk.decision_for("m", "3") is None
    assert commands_total("rollback", "refused") == refused_before + 2


def test_a_command_that_fails_on_the_way_is_answered_with_the_error(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    triton_repo.write_serving(gk.serving.repo, champion="2", previous="1")
    gk.store.save(gk.state.with_(champions=("1", "2")))
    failed_before = commands_total("rollback", "failed")
    # version 1's head is not on disk: it would come from MLflow, which has no such model
    failed = answer(gk, command("rollback"))
    assert failed.refused and failed.reason.startswith("rollback refused: it failed: ")
    assert commands_total("rollback", "failed") == failed_before + 1
    assert gk.serving.champion() == "2"


async def test_a_redelivered_command_is_refused_as_replayed_not_redone(tmp_path):
    gk = Gatekeeper(settings(tmp_path))
    published = []

    class Broker:
        async def publish(self, body, **kwargs):
            published.append((body, kwargs))

    handlers = Handlers(Broker(), gk)
    c = command("rollback")
    before = commands_total("rollback", "refused")
    await handlers.on_command(c)
    await handlers.on_command(c)
    first, again = (ModelDecision.from_bytes(body) for body, _ in published)
    assert first.command_id == again.command_id == c.event_id and first.event_id != again.event_id
    assert "no previous champion" in first.reason and (first.issuer, first.requested_by) == ("operator:ops", "cli:ops")
    assert again.refused and "it was replayed" in again.reason and "(its first answer: rejected, refused)" in again.reason
    assert published[0][1]["topic"] == ModelDecision.TOPIC and published[0][1]["key"] == first.key().encode()
    assert commands_total("rollback", "refused") == before + 2
    restarted = Gatekeeper(gk.settings)
    assert ModelDecision.model_validate(restarted.state.answers[c.event_id]) == first  # kept across restarts
    third = restarted.on_command(c)  # a restarted gatekeeper remembers it too
    assert "it was replayed" in third[-1].reason
