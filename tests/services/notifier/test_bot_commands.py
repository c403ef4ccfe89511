"""The bot's commands without Discord: role checks, the stack status, the MLflow champion alias,
and /promote and /rollback as commands to the gatekeeper (with it running: tests/operations)."""

from __future__ import annotations

import pytest

from emberwatch.contracts import LabelFeedback, ModelCommand, ModelDecision
from emberwatch.operations.send_command import NoAnswer
from emberwatch.security.command_keys import TrustedKeys, ensure_local_keys, trusted_dir
from emberwatch.security.command_signing import verify_command
from services.notifier.bot import COMMANDS, LabelButton, build_bot
from services.notifier.bot_commands import DENIED, BotCommands, Invoker, Operations
from services.notifier.operations import LocalOperations
from services.notifier.settings import NotifierSettings
from services.notifier.render import Links, Renderer
from tests.messaging.helpers import read_all, unique
from tests.services.notifier.helpers import detection

pytestmark = pytest.mark.timeout(120)

OPS_ROLE = 111
OPERATOR = Invoker(user_id=1, name="ops#1", role_ids=frozenset({999, OPS_ROLE}))
STRANGER = Invoker(user_id=2, name="stranger#2", role_ids=frozenset({999}))


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


async def test_status_reports_which_dependencies_answer(kafka_settings, tmp_path):
    settings = NotifierSettings(**{**kafka_settings.model_dump(), "mlflow_tracking_uri": "http://127.0.0.1:1"})
    reply = await commands(settings).status(OPERATOR)
    assert "**kafka** up" in reply.text
    assert "**mlflow** down `http://127.0.0.1:1`" in reply.text and not reply.ok


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


class FakeOperations:
    """Answers /promote and /rollback like the gatekeeper would, and records what was asked."""

    def __init__(self, answer: str = "done") -> None:
        self.answer, self.calls = answer, []

    async def stack_status(self):
        return []

    async def champion(self, model_name):
        return None

    def _decision(self, kind: str, model_name: str, version: str, requested_by: str) -> ModelDecision:
        refused = self.answer == "refused"
        return ModelDecision.create(
            producer="gatekeeper", model_name=model_name, candidate_version=version, champion_version="1",
            decision="rejected" if refused else kind, requested_by=requested_by, command_id="c-1",
            refused=refused, reason="promote refused: no registered version 9" if refused else "by hand")

    async def promote(self, model_name, version, *, requested_by):
        self.calls.append(("promote", model_name, version, requested_by))
        if self.answer == "timeout":
            raise NoAnswer("no answer from the gatekeeper within 1s; is `emberwatch run gatekeeper` running?")
        return self._decision("promoted", model_name, version, requested_by)

    async def rollback(self, model_name, *, requested_by):
        self.calls.append(("rollback", model_name, None, requested_by))
        return self._decision("rolled_back", model_name, "2", requested_by)


async def test_promote_and_rollback_reply_with_the_gatekeepers_answer():
    ops = FakeOperations()
    bot = BotCommands(ops, {OPS_ROLE}, "emberwatch-resnet50")
    reply = await bot.promote(OPERATOR, "v5")
    assert reply.ok and not reply.ephemeral
    assert "version 5 promoted to champion" in reply.text and "discord:ops#1" in reply.text
    assert (await bot.promote(OPERATOR, "five")).ok is False  # not a version number: nothing asked
    reply = await bot.rollback(OPERATOR, model_name="other-model")
    assert reply.ok and "rolled back from version 2 to 1" in reply.text and "`other-model`" in reply.text
    assert ops.calls == [("promote", "emberwatch-resnet50", "5", "discord:ops#1"),
                         ("rollback", "other-model", None, "discord:ops#1")]  # the model option counts

    refused = BotCommands(FakeOperations("refused"), {OPS_ROLE}, "m")
    reply = await refused.promote(OPERATOR, "9")
    assert not reply.ok and "refused" in reply.text and "no registered version 9" in reply.text
    silent = BotCommands(FakeOperations("timeout"), {OPS_ROLE}, "m")
    reply = await silent.promote(OPERATOR, "9")
    assert not reply.ok and "failed" in reply.text and "emberwatch run gatekeeper" in reply.text


async def test_without_a_gatekeeper_promote_sends_the_command_and_says_no_answer_came(kafka_settings,
                                                                                      tmp_path):
    settings = NotifierSettings(**{**kafka_settings.model_dump(), "state_dir": tmp_path,
                                   "notifier_command_wait_s": 2.0})
    model = unique("no-gatekeeper")  # no gatekeeper serves it on this broker
    before = await read_all(kafka_settings.kafka_bootstrap_servers, ModelCommand.TOPIC, 10**6, timeout_s=2)
    reply = await commands(settings).promote(OPERATOR, "4", model_name=model)  # the bot has no key yet
    assert not reply.ok and "no key to sign commands as discord-bot" in reply.text
    assert ensure_local_keys(settings, ["discord-bot"]) == ["discord-bot"]
    reply = await commands(settings).promote(OPERATOR, "4", model_name=model)
    assert not reply.ok and "no answer from the gatekeeper within 2s" in reply.text
    records = await read_all(kafka_settings.kafka_bootstrap_servers, ModelCommand.TOPIC, len(before) + 1)
    ours = [(r.key, ModelCommand.from_bytes(r.value)) for r in records[len(before):]
            if ModelCommand.from_bytes(r.value).model_name == model]
    assert len(ours) == 1
    key, c = ours[0]
    assert key == model.encode()  # one model's commands stay in order on one partition
    assert (c.command, c.version, c.requested_by, c.producer) == ("promote", "4", "discord:ops#1", "notifier")
    assert verify_command(c, TrustedKeys(trusted_dir(settings))) == "discord-bot"  # signed by the bot's key
    assert c.expires_at is not None and 1 < (c.expires_at - c.occurred_at).total_seconds() <= 2.0


async def test_the_discord_bot_registers_five_slash_commands_without_connecting(tmp_path):
    bot = build_bot(commands(settings_for(tmp_path)), guild_id=None)
    try:
        registered = {c.name: c for c in bot.tree.get_commands()}
        assert set(registered) == set(COMMANDS)
        assert [p.name for p in registered["promote"].parameters] == ["version", "model"]
        assert registered["promote"].parameters[0].required
        assert [p.name for p in registered["label"].parameters] == ["tile", "label", "note"]
        assert not bot.is_ready()
    finally:
        await bot.close()


async def test_label_publishes_one_feedback_event_and_bad_input_publishes_nothing(kafka_settings, tmp_path):
    settings = NotifierSettings(**{**kafka_settings.model_dump(), "state_dir": tmp_path})
    servers = kafka_settings.kafka_bootstrap_servers
    before = await read_all(servers, LabelFeedback.TOPIC, 10**6, timeout_s=2)
    bot = commands(settings)
    tile = unique("tile").encode().hex().ljust(64, "0")[:64]
    assert not (await bot.label(OPERATOR, "not-a-tile", "fire")).ok
    assert not (await bot.label(OPERATOR, tile, "smoke")).ok
    stranger = Invoker(user_id=2, name="someone", role_ids=frozenset({5}))
    assert await bot.label(stranger, tile, "fire") == DENIED
    reply = await bot.label(OPERATOR, tile.upper(), "no-fire", "  a sunlit roof  ")
    assert reply.ok and "not a fire" in reply.text and "discord:ops#1" in reply.text
    records = await read_all(servers, LabelFeedback.TOPIC, len(before) + 1)
    ours = [LabelFeedback.from_bytes(r.value) for r in records[len(before):]]
    ours = [f for f in ours if f.tile_id == tile]
    assert len(ours) == 1  # only the valid one, once
    f = ours[0]
    assert (f.label, f.labelled_by, f.note, f.producer) == ("nowildfire", "discord:ops#1", "a sunlit roof", "notifier")
    assert records[len(before):][0].key == tile.encode()


async def test_a_detection_posts_buttons_answer_like_label(kafka_settings, tmp_path):
    """The buttons the renderer puts under a detection post are the bot's dynamic items; a click by an
    operator publishes the same one feedback event as /label, a stranger's click nothing."""
    settings = NotifierSettings(**{**kafka_settings.model_dump(), "state_dir": tmp_path})
    servers = kafka_settings.kafka_bootstrap_servers
    tile = unique("button").encode().hex().ljust(64, "0")[:64]
    payload = Renderer(Links("http://m", "http://g", "d"), "Emberwatch").detection(detection(tile))
    ids = [b["custom_id"] for row in payload["components"] for b in row["components"]]
    template = LabelButton.__discord_ui_compiled_template__
    matches = [template.fullmatch(i) for i in ids]
    assert all(matches) and [m["label"] for m in matches] == ["wildfire", "nowildfire"]
    bot = build_bot(commands(settings), guild_id=None)
    try:
        assert LabelButton in bot._connection._view_store._dynamic_items.values()
        not_fire = await LabelButton.from_custom_id(None, None, matches[1])  # type: ignore[arg-type]
        assert await not_fire.answer(bot.commands, STRANGER) == DENIED
        before = await read_all(servers, LabelFeedback.TOPIC, 10**6, timeout_s=2)
        reply = await not_fire.answer(bot.commands, OPERATOR)
    finally:
        await bot.close()
    assert reply.ok and "not a fire" in reply.text
    records = await read_all(servers, LabelFeedback.TOPIC, len(before) + 1)
    ours = [f for f in (LabelFeedback.from_bytes(r.value) for r in records) if f.tile_id == tile]
    assert [(f.label, f.labelled_by, f.note) for f in ours] == [
        ("nowildfire", "discord:ops#1", "from a detection post")]
