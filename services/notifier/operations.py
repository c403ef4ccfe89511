"""The real ``Operations`` behind the bot's commands.

* ``stack_status``: whether Kafka, MLflow and Triton answer, probed from the notifier
  (``emberwatch.common.dependency_health``), the same on the local stack and in a cluster.
* ``champion``: the MLflow model registry, alias ``champion`` of the asked model.
* ``promote`` / ``rollback``: a command on models.commands.v1 (``requested_by`` = ``discord:<name>``),
  signed with the bot's key (issuer ``discord-bot``, EMBERWATCH_COMMAND_SIGNING_KEY), carried out by the
  gatekeeper; the answer is its decision on models.decisions.v1
  (``emberwatch.operations.send_command``), awaited for ``EMBERWATCH_NOTIFIER_COMMAND_WAIT_S``.
* ``label``: a ``LabelFeedback`` on labels.feedback.v1 (``labelled_by`` = ``discord:<name>``),
  published and acknowledged; nothing answers it.
"""

from __future__ import annotations

import asyncio

from emberwatch.common.dependency_health import probe_dependencies
from emberwatch.contracts.events import CommandKind, LabelFeedback, ModelDecision
from emberwatch.messaging.broker import build_broker, publish_event
from emberwatch.operations.send_command import model_command, send_command
from emberwatch.security.command_keys import DISCORD_BOT, load_signer
from services.notifier.bot_commands import ChampionInfo, PartStatus
from services.notifier.settings import SERVICE, NotifierSettings


class LocalOperations:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings

    async def stack_status(self) -> list[PartStatus]:
        parts = await asyncio.to_thread(probe_dependencies, self.settings)
        return [PartStatus(p.name, "up" if p.up else "down", p.address) for p in parts]

    async def champion(self, model_name: str) -> ChampionInfo | None:
        return await asyncio.to_thread(self._champion, model_name)

    def _champion(self, model_name: str) -> ChampionInfo | None:
        from mlflow.exceptions import MlflowException

        from emberwatch.common.model_registry import CHAMPION, mlflow_client

        client = mlflow_client(self.settings.mlflow_tracking_uri)
        try:
            mv = client.get_model_version_by_alias(model_name, CHAMPION)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        return ChampionInfo(model_name=model_name, version=str(mv.version), run_id=mv.run_id,
                            source=mv.source, aliases=tuple(sorted(mv.aliases or ())),
                            description=mv.description)

    async def _send(self, command: CommandKind, model_name: str, version: str | None,
                    requested_by: str) -> ModelDecision:
        wait_s = self.settings.notifier_command_wait_s
        signer = load_signer(self.settings, DISCORD_BOT)  # vouches for the Discord user it names
        event = model_command(command, model_name, requested_by=requested_by, signer=signer, version=version,
                              wait_s=wait_s, producer=SERVICE)
        return await send_command(self.settings, event, wait_s=wait_s, service=SERVICE)

    async def promote(self, model_name: str, version: str, *, requested_by: str) -> ModelDecision:
        return await self._send("promote", model_name, version, requested_by)

    async def rollback(self, model_name: str, *, requested_by: str) -> ModelDecision:
        return await self._send("rollback", model_name, None, requested_by)

    async def label(self, tile_id: str, label: str, *, labelled_by: str, note: str) -> LabelFeedback:
        event = LabelFeedback.create(producer=SERVICE, tile_id=tile_id, label=label, labelled_by=labelled_by,
                                     note=note)
        broker = build_broker(self.settings, SERVICE)
        await broker.start()
        try:
            await publish_event(broker, event, service=SERVICE)
        finally:
            await broker.stop()
        return event
