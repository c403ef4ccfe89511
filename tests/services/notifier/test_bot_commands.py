"""The bot's commands without Discord: role checks, the stack status, the MLflow champion alias,
and what /promote and /rollback call."""

from __future__ import annotations

import pytest

from services.notifier.bot import COMMANDS, build_bot
from services.notifier.bot_commands import DENIED, BotCommands, Invoker, Operations
from services.notifier.operations import LocalOperations, call_with_accepted, resolve_callable
from services.notifier.settings import NotifierSettings

pytestmark = pytest.mark.timeout(120)

OPS_ROLE = 111
OPERATOR = Invoker(user_id=1, name="ops#1", role_ids=frozenset({999, OPS_ROLE}))
STRANGER = Invoker(user_id=2, name="stranger#2", role_ids=frozenset({999}))

CALLS: list[dict] = []


def record_promote(model_name: str, version: str, requested_by: str) -> str:
    """A promote function as the CLI will provide it (used through its module:function name)."""
    CALLS.append({"op": "promote", "model_name": model_name, "version": version, "by": requested_by})
    return f"v{version} is champion"


def record_rollback(model: str, **kwargs) -> None:
    CALLS.append({"op": "rollback", "model": model, **kwargs})


def settings_for(tmp_path, **overrides) -> NotifierSettings:
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return NotifierSettings(mlflow_tracking_uri=db, state_dir=tmp_path, **overrides)


def commands(settings: NotifierSettings, roles=frozenset({OPS_ROLE})) -> BotCommands:
    return BotCommands(LocalOperations(settings), roles, settings.notifier_model_name)


async def test_only_configured_roles_may_use_any_command(tmp_path):
    bot = commands(settings_for(tmp_path))
    assert isinstance(bot.ops, Operations)
    assert await bot.status(STRANGER) == DENIED
    assert await bot.champion(STRANGER) == DENIED
    assert await bot.promote(STRANGER, "3") == DENIED
    assert await bot.rollback(STRANGER) == DENIED
    nobody = commands(settings_for(tmp_path), roles=frozenset())  # empty list: nobody, not everybody
    assert await nobody.status(OPERATOR) == DENIED


async def test_status_reports_the_stacks_parts(kafka_settings, tmp_path):
    settings = NotifierSettings(**{**kafka_settings.model_dump(), "mlflow_tracking_uri": "http://127.0.0.1:1"})
    reply = await commands(settings).status(OPERATOR)
    assert "**kafka** up" in reply.text and reply.ok


async def test_champion_reads_the_mlflow_alias(tmp_path):
    from mlflow import MlflowClient

    settings = settings_for(tmp_path, notifier_model_name="emberwatch-test")
    bot = commands(settings)
    reply = await bot.champion(OPERATOR)
    assert not reply.ok and "no champion yet" in reply.text

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    client.create_registered_model("emberwatch-test")
    for _ in range(3):
        client.create_model_version("emberwatch-test", source=str(tmp_path / "model"))
    client.set_registered_model_alias("emberwatch-test", "champion", "2")
    client.set_registered_model_alias("emberwatch-test", "challenger", "3")
    reply = await bot.champion(OPERATOR)
    assert reply.ok and "**v2**" in reply.text and "champion" in reply.text
    other = await bot.champion(OPERATOR, model_name="unknown-model")
    assert not other.ok


async def test_promote_and_rollback_say_when_they_are_not_wired(tmp_path):
    settings = settings_for(tmp_path, notifier_promote_callable="emberwatch.cli.main:no_such_promote",
                            notifier_rollback_callable="emberwatch.not_a_module:rollback")
    bot = commands(settings)
    promote = await bot.promote(OPERATOR, "4")
    rollback = await bot.rollback(OPERATOR)
    assert not promote.ok and "not wired" in promote.text and "no_such_promote" in promote.text
    assert not rollback.ok and "not wired" in rollback.text


async def test_promote_and_rollback_call_the_configured_functions(tmp_path):
    CALLS.clear()
    module = __name__
    settings = settings_for(tmp_path, notifier_promote_callable=f"{module}:record_promote",
                            notifier_rollback_callable=f"{module}:record_rollback")
    bot = commands(settings)
    reply = await bot.promote(OPERATOR, "v5")
    assert reply.ok and "v5 is champion" in reply.text and not reply.ephemeral
    assert (await bot.promote(OPERATOR, "five")).ok is False  # not a version number: nothing called
    reply = await bot.rollback(OPERATOR)
    assert reply.ok and "done" in reply.text
    assert CALLS == [
        {"op": "promote", "model_name": "emberwatch-resnet50", "version": "5", "by": "discord:ops#1"},
        {"op": "rollback", "model": "emberwatch-resnet50", "model_name": "emberwatch-resnet50",
         "requested_by": "discord:ops#1"},
    ]


def test_call_with_accepted_passes_only_declared_arguments():
    assert call_with_accepted(lambda version: version, version="3", model="m") == "3"
    assert resolve_callable("os.path:join")("a", "b") == "a/b"


async def test_the_discord_bot_registers_four_slash_commands_without_connecting(tmp_path):
    bot = build_bot(commands(settings_for(tmp_path)), guild_id=None)
    try:
        registered = {c.name: c for c in bot.tree.get_commands()}
        assert set(registered) == set(COMMANDS)
        assert [p.name for p in registered["promote"].parameters] == ["version", "model"]
        assert registered["promote"].parameters[0].required
        assert not bot.is_ready()
    finally:
        await bot.close()
