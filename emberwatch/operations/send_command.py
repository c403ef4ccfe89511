"""Send an operator's command to the gatekeeper and wait for its answer.

A ``ModelCommand`` goes to models.commands.v1; the gatekeeper (and only it) carries it out and
answers with the models.decisions.v1 decision whose ``command_id`` is the command's event id. The
caller needs nothing but the broker: no Triton repository, no MLflow, no gatekeeper state. The CLI
(``emberwatch promote|rollback|approve|reject``), the console and the Discord bot's /promote and
/rollback use it. Every command is signed by its issuer's key (``emberwatch.security``): the gatekeeper
carries out only what it can verify (docs/security.md).
"""

from __future__ import annotations

import time
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from emberwatch.common.config import Settings
from emberwatch.contracts.envelope import utcnow
from emberwatch.contracts.events import CommandKind, ModelCommand, ModelDecision
from emberwatch.messaging.broker import build_broker, client_options, publish_event
from emberwatch.security.command_keys import cli_issuer, load_signer
from emberwatch.security.command_signing import CommandSigner, person_of

DEFAULT_WAIT_S = 60.0


class CommandError(RuntimeError):
    """The command could not be sent, or no answer came in time (the message says which)."""


class NoAnswer(CommandError):
    """The gatekeeper did not answer within the wait."""


def cli_signer(settings: Settings) -> CommandSigner:
    """The CLI user's signer: ``operator:<name>`` (EMBERWATCH_COMMAND_ISSUER, default the OS user) with
    that person's key. Raises ``SigningKeyMissing`` saying how to make one."""
    return load_signer(settings, cli_issuer(settings))


def cli_user(signer: CommandSigner) -> str:
    """``cli:<name>``: who asks when a command comes from the command line, as the person whose key
    signs it (the gatekeeper lets a person's key speak only for that person)."""
    return f"cli:{person_of(signer.issuer) or signer.issuer}"


def model_command(command: CommandKind, model_name: str, *, requested_by: str, signer: CommandSigner,
                  version: str | None = None, reason: str = "", wait_s: float = DEFAULT_WAIT_S,
                  producer: str = "cli") -> ModelCommand:
    """A command signed by ``signer`` (its issuer vouches for ``requested_by``) that expires when its
    caller stops waiting (the gatekeeper refuses it after that)."""
    now = utcnow()
    return signer.sign(ModelCommand.create(
        producer=producer, occurred_at=now, command=command, model_name=model_name,
        version=None if version is None else str(version).strip().lstrip("vV"),
        requested_by=requested_by, reason=reason, expires_at=now + timedelta(seconds=wait_s)))


async def send_command(settings: Settings, command: ModelCommand, *, wait_s: float = DEFAULT_WAIT_S,
                       service: str = "cli") -> ModelDecision:
    """Publish ``command`` and return the gatekeeper's answer (``refused`` says it was not carried
    out, and ``reason`` why). Raises ``NoAnswer`` after ``wait_s`` seconds without one."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", metadata_max_age_ms=2000)
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise CommandError(f"Kafka at {settings.kafka_bootstrap_servers} did not answer: {exc}") from None
    try:
        await _from_the_end(consumer, ModelDecision.TOPIC)  # the answer comes after the command
        broker = build_broker(settings, service)
        await broker.start()
        try:
            await publish_event(broker, command, service=service)
        finally:
            await broker.stop()
        return await _answer(consumer, command, wait_s)
    finally:
        await consumer.stop()


async def _from_the_end(consumer: AIOKafkaConsumer, topic: str) -> None:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        consumer.subscribe([topic])  # no decision yet: the topic appears with the answer, read it all
        return
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    for tp, end in (await consumer.end_offsets(tps)).items():
        consumer.seek(tp, end)


async def _answer(consumer: AIOKafkaConsumer, command: ModelCommand, wait_s: float) -> ModelDecision:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                try:
                    decision = ModelDecision.from_bytes(record.value or b"")
                except ValueError:
                    continue  # not ours to judge: the decisions' consumers dead-letter it
                if decision.command_id == command.event_id:
                    return decision
    expires = command.expires_at.isoformat(timespec="seconds") if command.expires_at else "never"
    raise NoAnswer(
        f"no answer from the gatekeeper within {wait_s:g}s; is `emberwatch run gatekeeper` running? "
        f"(command {command.event_id}; the gatekeeper refuses it after {expires}, but if it had started "
        "by then it may still be carried out: check `emberwatch models`)")


def describe(decision: ModelDecision) -> str:
    """One line for a person: what the gatekeeper did (or why not), and at whose request."""
    who = f", requested by {decision.requested_by}" if decision.requested_by else ""
    if decision.refused:
        return f"refused{who} — {decision.reason}"
    if decision.decision == "promoted":
        what = (f"version {decision.candidate_version} promoted to champion (champion before: "
                f"{decision.champion_version or 'none'})")
    elif decision.decision == "rolled_back":
        what = f"rolled back from version {decision.candidate_version} to {decision.champion_version}"
    else:
        what = f"version {decision.candidate_version} rejected"
    return f"{what}{who} — {decision.reason}"
