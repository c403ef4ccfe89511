"""Operator commands end to end on the real broker (Tansu), MLflow and Triton, with the gatekeeper in
another process (`emberwatch run gatekeeper`, its own state directory) and callers that share no
filesystem with it: `emberwatch reject|promote|rollback|approve|models` as processes and the Discord
bot's command functions. Every answer is a decision on models.decisions.v1 that says who asked, whose
key signed the command (the keys `emberwatch stack up` made: the CLI user's and the bot's) and which
command it answers; impossible commands are answered with the reason."""

from __future__ import annotations

import asyncio
import getpass
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient

from emberwatch.common.telemetry import free_port
from emberwatch.contracts.events import ModelCandidate, ModelDecision, SplitCounts
from emberwatch.messaging.broker import build_broker, publish_event
from emberwatch.stack import manage
from services.notifier.bot_commands import BotCommands, Invoker
from services.notifier.operations import LocalOperations
from services.notifier.settings import NotifierSettings
from tests.conftest import REPO, env_for, stack_settings
from tests.messaging.helpers import read_all, unique
from tests.services.gatekeeper.candidates import IMAGE_SIZE, analytic_head, log_candidate, make_world

pytestmark = pytest.mark.timeout(900)
MODEL = "emberwatch-commands-test"
OTHER = "some-other-model"  # no gatekeeper serves it
CLI_USER = f"cli:{getpass.getuser()}"
CLI_ISSUER = f"operator:{getpass.getuser()}"  # the person's own key, made by `emberwatch stack up`
OPS_ROLE = 42
OPERATOR = Invoker(user_id=7, name="ops#7", role_ids=frozenset({OPS_ROLE}))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("commands")
    settings = stack_settings(tmp / "stack", "kafka,mlflow,triton", triton_model_repository=tmp / "repo")
    manage.up(settings)
    try:
        yield settings, tmp
    finally:
        manage.down(settings)


def scrape(port: int, name: str, labels: str = "") -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name}{labels} "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def eventually(check, timeout_s: float, what: str, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        assert proc.poll() is None, f"the gatekeeper exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
        await asyncio.sleep(1.0)
    raise AssertionError(f"{what} did not happen within {timeout_s}s; the gatekeeper's log:\n"
                         f"{log.read_text()[-4000:]}")


async def decisions(settings) -> list[ModelDecision]:
    records = await read_all(settings.kafka_bootstrap_servers, ModelDecision.TOPIC, 10**6, timeout_s=2)
    found = [ModelDecision.from_bytes(r.value) for r in records]
    return sorted((d for d in found if d.model_name in (MODEL, OTHER)), key=lambda d: d.occurred_at)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emberwatch.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=240)


async def test_cli_and_bot_commands_are_carried_out_by_the_gatekeeper_in_another_process(stack):
    base, tmp = stack
    gk_state, caller_state = tmp / "gatekeeper-state", tmp / "caller-state"
    keys = base.state_dir / "keys"  # made by `stack up`: the local CLI user's, console's and bot's keys
    metrics_port = free_port()
    gk_env = env_for(base) | {
        "EMBERWATCH_STATE_DIR": str(gk_state), "EMBERWATCH_TRITON_MODEL_REPOSITORY": str(tmp / "repo"),
        "EMBERWATCH_MODEL_NAME": MODEL, "EMBERWATCH_IMAGE_SIZE": str(IMAGE_SIZE),
        "EMBERWATCH_GATEKEEPER_MIN_PAIRS": "100000", "EMBERWATCH_GATEKEEPER_MAX_PAIRS": "100000",
        "EMBERWATCH_GATEKEEPER_FLOOR_RECALL": "0.3", "EMBERWATCH_GATEKEEPER_FLOOR_SPECIFICITY": "0.3",
        "EMBERWATCH_GATEKEEPER_FLOOR_MIN_PER_CLASS": "20", "EMBERWATCH_GATEKEEPER_UNLOAD_GRACE_S": "0.2",
        "EMBERWATCH_GATEKEEPER_VALIDATION_MAX_LATENCY_MS": "20000", "EMBERWATCH_METRICS_PORT": str(metrics_port),
        "EMBERWATCH_GATEKEEPER_GROUP_ID": unique("gatekeeper"),
        "EMBERWATCH_COMMAND_TRUSTED_KEYS_DIR": str(keys / "trusted"),  # the public keys only
    }
    # the callers: the broker's address and nothing else of the gatekeeper's (not even a filesystem)
    caller_env = env_for(base) | {
        "EMBERWATCH_STATE_DIR": str(caller_state), "EMBERWATCH_MODEL_NAME": MODEL,
        "EMBERWATCH_TRITON_MODEL_REPOSITORY": str(caller_state / "no-repository"),
        "COLUMNS": "400",  # rich wraps at 80 columns without a terminal
        "EMBERWATCH_COMMAND_KEYS_DIR": str(keys),
    }
    caller = base.model_copy(update={"state_dir": caller_state, "command_keys_dir": keys,
                                     "triton_model_repository": caller_state / "no-repository"})
    mlflow = MlflowClient(base.mlflow_tracking_uri, registry_uri=base.mlflow_tracking_uri)
    # the candidates' backbone is built where the gatekeeper finds it cached, as the trainer's is when
    # they share a state directory (a random backbone built in two processes may differ)
    world = make_world(gk_state, gk_state / "tiles")  # the gatekeeper's tile store (its default root)
    log = tmp / "gatekeeper.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "emberwatch.cli.main", "run", "gatekeeper"],
                                env=gk_env, cwd=REPO, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        broker = build_broker(caller, "test")
        await broker.start()

        async def candidate(quantile: float) -> str:
            version, run_id, uri = log_candidate(base.mlflow_tracking_uri, MODEL, world,
                                                 analytic_head(world, quantile))
            await publish_event(broker, ModelCandidate.create(
                producer="test", model_name=MODEL, version=version, run_id=run_id, artifact_uri=uri,
                dataset_digest="sha256:test", counts={"train": SplitCounts(wildfire=30, nowildfire=30)},
                metrics={"val_accuracy": 0.9}), service="test")
            return version

        async def decided(version: str, kind: str):
            async def check():
                found = [d for d in await decisions(base) if d.candidate_version == version]
                assert all(d.decision == kind for d in found), [(d.decision, d.reason) for d in found]
                return found[0] if found else None
            return await eventually(check, 480, f"v{version} {kind}", proc, log)

        async def in_shadow():
            return scrape(metrics_port, "emberwatch_gatekeeper_shadow_pairs", '{product="mapbox"}') == 60

        try:
            v1 = await candidate(0.3)  # the first model: promoted over the floor
            d1 = await decided(v1, "promoted")
            assert d1.requested_by is None and d1.command_id is None  # the gate's own decision
            v2 = await candidate(0.0)  # waits in shadow (the gate needs 100000 pairs)
            await eventually(in_shadow, 240, f"v{v2} in shadow", proc, log)
        finally:
            await broker.stop()

        # --- the CLI, as processes that share nothing with the gatekeeper but the broker ---------
        rejected = cli(caller_env, "reject", "--reason", "not this one")
        assert rejected.returncode == 0, rejected.stderr
        assert f"version {v2} rejected, requested by {CLI_USER}" in rejected.stdout
        promoted = cli(caller_env, "promote", v2, "--reason", "hotfix", "--wait-s", "120")
        assert promoted.returncode == 0, promoted.stderr
        assert f"version {v2} promoted to champion (champion before: {v1}), requested by {CLI_USER}" \
            in promoted.stdout and "hotfix" in promoted.stdout
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v2
        back = cli(caller_env, "rollback", "--wait-s", "120")
        assert back.returncode == 0, back.stderr
        assert f"rolled back from version {v2} to {v1}, requested by {CLI_USER}" in back.stdout
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v1
        unknown = cli(caller_env, "promote", "99")
        assert unknown.returncode == 1 and "refused" in unknown.stderr
        assert f"{MODEL} has no registered version 99" in unknown.stderr.replace("\n", " ")

        # --- the Discord bot's commands --------------------------------------------------------
        notifier = NotifierSettings(**caller.model_dump(), notifier_command_wait_s=120)
        bot = BotCommands(LocalOperations(notifier), {OPS_ROLE}, MODEL)
        reply = await bot.promote(OPERATOR, v2)
        assert reply.ok, reply.text
        assert f"version {v2} promoted to champion" in reply.text and "discord:ops#7" in reply.text
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v2
        reply = await bot.rollback(OPERATOR)
        assert reply.ok and f"rolled back from version {v2} to {v1}" in reply.text, reply.text
        reply = await bot.rollback(OPERATOR)  # v1 was the first champion: nothing before it
        assert not reply.ok and "no previous champion" in reply.text, reply.text
        reply = await bot.promote(OPERATOR, v2, model_name=OTHER)  # the model option counts
        assert not reply.ok and f"serves {MODEL}, not {OTHER}" in reply.text, reply.text
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v1

        # --- a person approves a challenger in shadow ------------------------------------------
        broker = build_broker(caller, "test")
        await broker.start()
        try:
            v3 = await candidate(0.1)
            await eventually(in_shadow, 240, f"v{v3} in shadow", proc, log)
        finally:
            await broker.stop()
        guarded = cli(caller_env, "rollback", "--from", v3)
        assert guarded.returncode == 1 and f"version {v3} is not the champion" in guarded.stderr
        approved = cli(caller_env, "approve", v3, "--wait-s", "120")
        assert approved.returncode == 0, approved.stderr
        assert f"version {v3} promoted to champion (champion before: {v1}), requested by {CLI_USER}" \
            in approved.stdout and "approved by" in approved.stdout
        assert mlflow.get_model_version_by_alias(MODEL, "champion").version == v3

        # --- `emberwatch models` from MLflow, Triton and the decisions alone --------------------
        shown = cli(caller_env, "models")
        assert shown.returncode == 0, shown.stderr
        assert "head versions loaded:" in shown.stdout and "wildfire ready" in shown.stdout
        assert f"version {v3} promoted to champion" in shown.stdout and CLI_USER in shown.stdout
        assert "loaded" in shown.stdout and "champion" in shown.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    answers = [d for d in await decisions(base) if d.command_id is not None]
    assert [(d.decision, d.candidate_version, d.requested_by, d.issuer, d.refused) for d in answers] == [
        ("rejected", v2, CLI_USER, CLI_ISSUER, False),
        ("promoted", v2, CLI_USER, CLI_ISSUER, False),
        ("rolled_back", v2, CLI_USER, CLI_ISSUER, False),
        ("rejected", "99", CLI_USER, CLI_ISSUER, True),
        ("promoted", v2, "discord:ops#7", "discord-bot", False),
        ("rolled_back", v2, "discord:ops#7", "discord-bot", False),
        ("rejected", v1, "discord:ops#7", "discord-bot", True),
        ("rejected", v2, "discord:ops#7", "discord-bot", True),
        ("rejected", v3, CLI_USER, CLI_ISSUER, True),
        ("promoted", v3, CLI_USER, CLI_ISSUER, False),
    ]
    other = next(d for d in answers if OTHER in d.reason)
    assert other.model_name == OTHER and other.champion_version is None  # the model asked for
    assert len({d.command_id for d in answers}) == len(answers)  # one answer per command
    # every answer to a command is its own event, never the gate's decision about that version
    ids = {d.event_id for d in answers}
    assert len(ids) == len(answers) and d1.event_id not in ids
    assert proc.returncode == 0, log.read_text()[-4000:]
    assert not caller_state.exists()  # the callers kept no state: the gatekeeper's is its own
    assert (gk_state / "gatekeeper" / "state.json").is_file()  # its answers among its state
