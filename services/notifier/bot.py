"""The Discord bot: a ``discord.Client`` with an ``app_commands`` tree of five slash commands, and the
"this is a fire" / "this is not a fire" buttons under detection posts (``label_buttons.py``).

Each command and each button click only translates the interaction into an ``Invoker`` and calls
``BotCommands`` (``bot_commands.py``), where the logic and the role check live. The buttons are
dynamic items: a click is recognised by its ``custom_id`` alone, so posts made before a restart
keep working. The bot starts from the notifier
only when ``EMBERWATCH_DISCORD_BOT_TOKEN`` is set.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from services.notifier.bot_commands import BotCommands, Invoker, Reply
from services.notifier.label_buttons import CUSTOM_ID, DANGER, custom_id

log = logging.getLogger(__name__)

COMMANDS = ("status", "champion", "promote", "rollback", "label")


def invoker_from(interaction: discord.Interaction) -> Invoker:
    user = interaction.user
    roles = getattr(user, "roles", None) or []  # a Member in a guild; a plain User in DMs has none
    return Invoker(user_id=user.id, name=str(user), role_ids=frozenset(r.id for r in roles))


async def _answer(interaction: discord.Interaction, reply: Reply) -> None:
    allowed = discord.AllowedMentions.none()
    if interaction.response.is_done():
        await interaction.followup.send(reply.text, ephemeral=reply.ephemeral, allowed_mentions=allowed)
    else:
        await interaction.response.send_message(reply.text, ephemeral=reply.ephemeral,
                                                allowed_mentions=allowed)


class LabelButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID):
    """A click on a detection post's button: the same label as ``/label TILE fire|no-fire``."""

    def __init__(self, tile_id: str, label: str) -> None:
        fire = label == "wildfire"
        super().__init__(discord.ui.Button(
            label="This is a fire" if fire else "This is not a fire", custom_id=custom_id(tile_id, label),
            style=discord.ButtonStyle(DANGER) if fire else discord.ButtonStyle.secondary))
        self.tile_id, self.label = tile_id, label

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item,  # type: ignore[override]
                             match) -> LabelButton:
        return cls(match["tile"], match["label"])

    async def answer(self, commands: BotCommands, invoker: Invoker) -> Reply:
        return await commands.label(invoker, self.tile_id, self.label, "from a detection post")

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await interaction.response.defer(ephemeral=False, thinking=True)
        client = interaction.client
        assert isinstance(client, EmberwatchBot)
        await _answer(interaction, await self.answer(client.commands, invoker_from(interaction)))


class EmberwatchBot(discord.Client):
    def __init__(self, commands: BotCommands, *, guild_id: int | None = None) -> None:
        super().__init__(intents=discord.Intents.none())
        self.tree = app_commands.CommandTree(self)
        self.guild_id = guild_id
        self.commands = commands
        _register(self.tree, commands)
        self.add_dynamic_items(LabelButton)

    async def setup_hook(self) -> None:
        if self.guild_id:
            guild = discord.Object(id=self.guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        log.info("slash commands synced", extra={"guild": self.guild_id})


def _register(tree: app_commands.CommandTree, commands: BotCommands) -> None:
    @tree.command(name="status", description="Show the Emberwatch stack's parts and their health.")
    async def status(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await _answer(interaction, await commands.status(invoker_from(interaction)))

    @tree.command(name="champion", description="Show the model version serving as champion.")
    @app_commands.describe(model="Registered model name (default: the configured one).")
    async def champion(interaction: discord.Interaction, model: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await _answer(interaction, await commands.champion(invoker_from(interaction), model))

    @tree.command(name="promote", description="Promote a model version to champion (by hand).")
    @app_commands.describe(version="Model version to promote.", model="Registered model name.")
    async def promote(interaction: discord.Interaction, version: str, model: str | None = None) -> None:
        await interaction.response.defer(ephemeral=False, thinking=True)
        await _answer(interaction, await commands.promote(invoker_from(interaction), version, model))

    @tree.command(name="rollback", description="Roll the champion back to the previous version.")
    @app_commands.describe(model="Registered model name.")
    async def rollback(interaction: discord.Interaction, model: str | None = None) -> None:
        await interaction.response.defer(ephemeral=False, thinking=True)
        await _answer(interaction, await commands.rollback(invoker_from(interaction), model))

    @tree.command(name="label", description="Say whether a tile shows a fire; the next training uses it.")
    @app_commands.describe(tile="The tile id (sha256).", label="fire or no-fire", note="Why (optional).")
    @app_commands.choices(label=[app_commands.Choice(name="fire", value="fire"),
                                 app_commands.Choice(name="no-fire", value="no-fire")])
    async def label(interaction: discord.Interaction, tile: str, label: app_commands.Choice[str],
                    note: str | None = None) -> None:
        await interaction.response.defer(ephemeral=False, thinking=True)
        await _answer(interaction, await commands.label(invoker_from(interaction), tile, label.value, note or ""))


def build_bot(commands: BotCommands, *, guild_id: int | None = None) -> EmberwatchBot:
    """The bot, not yet connected (``await bot.start(token)`` connects)."""
    return EmberwatchBot(commands, guild_id=guild_id)
