"""The logic of the bot's slash commands, without Discord: plain async functions over an injected
``Operations`` object, so they are testable (and usable) with no Discord connection.

Who may run them: members holding one of the configured role ids (``EMBERWATCH_NOTIFIER_BOT_ROLE_IDS``).
An empty list allows nobody — the safe default for commands that move the champion.

What they do (see ``operations.LocalOperations``):
* ``/status`` — whether Kafka, MLflow and Triton answer (``emberwatch.common.dependency_health``).
* ``/champion`` — the registered model version behind the MLflow alias ``champion``.
* ``/promote`` and ``/rollback`` — a command on models.commands.v1 with ``requested_by`` =
  ``discord:<name>`` and the asked model; the gatekeeper carries it out and its decision is the
  reply (a refusal says why; no answer in time says so).
* ``/label TILE fire|no-fire [note]`` — a person's label on a tile (its id, as the console and the
  posts show it): one ``LabelFeedback`` on labels.feedback.v1 with ``labelled_by`` =
  ``discord:<name>``; the trainer and the gatekeeper take it over the automatic label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import re

from emberwatch.contracts.events import LabelFeedback, ModelDecision
from emberwatch.operations.send_command import describe
from services.notifier.discord_markdown import as_code, as_text


@dataclass(frozen=True)
class Invoker:
    """Who runs a command (from the Discord interaction)."""

    user_id: int
    name: str
    role_ids: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Reply:
    text: str
    ok: bool = True
    ephemeral: bool = True


@dataclass(frozen=True)
class PartStatus:
    name: str
    state: str
    address: str


@dataclass(frozen=True)
class ChampionInfo:
    model_name: str
    version: str
    run_id: str | None
    source: str | None
    aliases: tuple[str, ...] = ()
    description: str | None = None


@runtime_checkable
class Operations(Protocol):
    async def stack_status(self) -> list[PartStatus]: ...

    async def champion(self, model_name: str) -> ChampionInfo | None: ...

    async def promote(self, model_name: str, version: str, *, requested_by: str) -> ModelDecision: ...

    async def rollback(self, model_name: str, *, requested_by: str) -> ModelDecision: ...

    async def label(self, tile_id: str, label: str, *, labelled_by: str, note: str) -> LabelFeedback: ...


def is_allowed(invoker: Invoker, allowed_role_ids: Iterable[int]) -> bool:
    allowed = frozenset(allowed_role_ids)
    return bool(allowed) and not allowed.isdisjoint(invoker.role_ids)


DENIED = Reply("You are not allowed to use this command (it needs one of the configured roles).", ok=False)


async def status_command(ops: Operations, invoker: Invoker, *, allowed_role_ids: Iterable[int]) -> Reply:
    if not is_allowed(invoker, allowed_role_ids):
        return DENIED
    parts = await ops.stack_status()
    if not parts:
        return Reply("No parts are configured.")
    lines = [f"{'🟢' if p.state == 'up' else '🔴' if p.state == 'down' else '🟡'} **{p.name}** "
             f"{p.state} `{p.address}`" for p in parts]
    healthy = all(p.state == "up" for p in parts)
    return Reply(("All parts up.\n" if healthy else "Some parts are not up.\n") + "\n".join(lines), ok=healthy)


async def champion_command(ops: Operations, invoker: Invoker, *, allowed_role_ids: Iterable[int],
                           model_name: str) -> Reply:
    if not is_allowed(invoker, allowed_role_ids):
        return DENIED
    info = await ops.champion(model_name)
    if info is None:
        return Reply(f"`{model_name}` has no champion yet.", ok=False)
    aliases = ", ".join(info.aliases) or "champion"
    text = f"Champion of `{info.model_name}`: **v{info.version}** (aliases: {aliases})"
    if info.run_id:
        text += f"\nrun `{info.run_id}`"
    return Reply(text)


async def promote_command(ops: Operations, invoker: Invoker, version: str, *,
                          allowed_role_ids: Iterable[int], model_name: str) -> Reply:
    if not is_allowed(invoker, allowed_role_ids):
        return DENIED
    version = version.strip().lstrip("vV")
    if not version.isdigit():
        return Reply(f"`{as_code(version[:40])}` is not a model version number.", ok=False)
    try:
        decision = await ops.promote(model_name, version, requested_by=f"discord:{invoker.name}")
    except Exception as exc:  # noqa: BLE001 - the operator sees why it failed (e.g. no answer in time)
        return Reply(f"Promotion of `{model_name}` v{version} failed: {as_text(exc)}", ok=False)
    if decision.refused:
        return Reply(f"Promotion of `{model_name}` v{version} was refused: {as_text(decision.reason)}", ok=False)
    return Reply(f"Promotion of `{model_name}` v{version}: {as_text(describe(decision))}", ephemeral=False)


async def rollback_command(ops: Operations, invoker: Invoker, *, allowed_role_ids: Iterable[int],
                           model_name: str) -> Reply:
    if not is_allowed(invoker, allowed_role_ids):
        return DENIED
    try:
        decision = await ops.rollback(model_name, requested_by=f"discord:{invoker.name}")
    except Exception as exc:  # noqa: BLE001
        return Reply(f"Rollback of `{model_name}` failed: {as_text(exc)}", ok=False)
    if decision.refused:
        return Reply(f"Rollback of `{model_name}` was refused: {as_text(decision.reason)}", ok=False)
    return Reply(f"Rollback of `{model_name}`: {as_text(describe(decision))}", ephemeral=False)


TILE_ID = re.compile(r"^[0-9a-f]{64}$")
LABELS = {"fire": "wildfire", "no-fire": "nowildfire", "wildfire": "wildfire", "nowildfire": "nowildfire"}


async def label_command(ops: Operations, invoker: Invoker, tile_id: str, label: str, note: str = "", *,
                        allowed_role_ids: Iterable[int]) -> Reply:
    if not is_allowed(invoker, allowed_role_ids):
        return DENIED
    tile_id = tile_id.strip().lower()
    if not TILE_ID.match(tile_id):
        return Reply(f"`{as_code(tile_id[:80])}` is not a tile id (64 hex characters, the sha256 of the image).", ok=False)
    if (given := LABELS.get(label.strip().lower())) is None:
        return Reply(f"`{as_code(label[:40])}` is not a label: use `fire` or `no-fire`.", ok=False)
    try:
        event = await ops.label(tile_id, given, labelled_by=f"discord:{invoker.name}", note=note.strip()[:2000])
    except Exception as exc:  # noqa: BLE001 - the person sees why it failed (e.g. Kafka down)
        return Reply(f"The label for tile `{tile_id[:12]}…` was not sent: {as_text(exc)}", ok=False)
    words = "a fire" if given == "wildfire" else "not a fire"
    return Reply(f"Thanks: tile `{tile_id[:12]}…` recorded as **{words}** by {as_text(event.labelled_by)}; the next "
                 "training uses it.", ephemeral=False)


class BotCommands:
    """The five commands bound to one ``Operations``, role list and default model name."""

    def __init__(self, ops: Operations, allowed_role_ids: Iterable[int], model_name: str) -> None:
        self.ops, self.allowed, self.model_name = ops, frozenset(allowed_role_ids), model_name

    async def status(self, invoker: Invoker) -> Reply:
        return await status_command(self.ops, invoker, allowed_role_ids=self.allowed)

    async def champion(self, invoker: Invoker, model_name: str | None = None) -> Reply:
        return await champion_command(self.ops, invoker, allowed_role_ids=self.allowed,
                                      model_name=model_name or self.model_name)

    async def promote(self, invoker: Invoker, version: str, model_name: str | None = None) -> Reply:
        return await promote_command(self.ops, invoker, version, allowed_role_ids=self.allowed,
                                     model_name=model_name or self.model_name)

    async def rollback(self, invoker: Invoker, model_name: str | None = None) -> Reply:
        return await rollback_command(self.ops, invoker, allowed_role_ids=self.allowed,
                                      model_name=model_name or self.model_name)

    async def label(self, invoker: Invoker, tile_id: str, label: str, note: str = "") -> Reply:
        return await label_command(self.ops, invoker, tile_id, label, note, allowed_role_ids=self.allowed)
