"""What the gatekeeper does with each event (docs/architecture.md: Services, Promotion).

A candidate is placed in Triton's repository, loaded and validated; then it scores the held-out test
tiles beside the champion (shadow), and every live tile that arrives while it is in shadow; the gate
promotes it only on evidence, or rejects it with the reason; a live tile the champion calls a wildfire
is published as a detection (detections.v1), for a person to confirm; a candidate's warnings (its leakage
check) travel with its decision. A tiles.relabelled.v1 event (a later fire near a fire-free tile)
retires or relabels that tile for the shadow and every later evaluation. An operator's command
(models.commands.v1: promote, rollback, approve, reject) is carried out here too, and answered. Each
decision goes to models.decisions.v1. Live tiles and relabels arrive a batch at a time: what the
batch holds that was already handled (a replay) is set aside with one look, and relabels take one
durable write per batch. The blocking work (Triton, MLflow) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging

from faststream.kafka import KafkaBroker

from emberwatch.common.safe_paths import UnsafePath
from emberwatch.common.tile_store import PERMANENT as TILE_GONE
from emberwatch.common.tile_store import check_tile_uri
from emberwatch.contracts.events import (
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    TileReady,
    TileRelabelled,
)
from emberwatch.messaging.broker import publish_event
from emberwatch.messaging.bulk_consumer import Received
from emberwatch.messaging.consumer import PermanentError
from services.gatekeeper.gatekeeper import SERVICE, Gatekeeper
from services.gatekeeper.operator_commands import OperatorCommands
from services.gatekeeper.registry import UntrustedCandidate

log = logging.getLogger(__name__)


class Handlers:
    def __init__(self, broker: KafkaBroker, gatekeeper: Gatekeeper):
        self.broker = broker
        self.gatekeeper = gatekeeper
        self.commands = OperatorCommands(gatekeeper)

    async def _publish(self, decisions: list[ModelDecision]) -> None:
        for decision in decisions:
            await publish_event(self.broker, decision, service=SERVICE)
        while self.gatekeeper.detections:
            await publish_event(self.broker, self.gatekeeper.detections[0], service=SERVICE)
            self.gatekeeper.detections.pop(0)
        while self.gatekeeper.alerts:
            await publish_event(self.broker, self.gatekeeper.alerts[0], service=SERVICE)
            self.gatekeeper.alerts.pop(0)

    async def on_candidate(self, candidate: ModelCandidate) -> None:
        try:
            decisions = await asyncio.to_thread(self.gatekeeper.on_candidate, candidate)
        except (UntrustedCandidate, UnsafePath) as exc:  # not MLflow's record, or a name leaving the state
            raise PermanentError(f"candidate {candidate.model_name}:{candidate.version} refused: {exc}") from exc
        await self._publish(decisions)

    def _check_tiles(self, tiles: list[TileReady]) -> None:
        """Every tile's URI is its place in the configured store, before anything else is done with it."""
        for tile in tiles:
            try:
                check_tile_uri(tile.uri, tile.tile_id, self.gatekeeper.settings)
            except TILE_GONE as exc:
                raise PermanentError(f"tile {tile.tile_id}: {exc}") from exc

    async def on_tile(self, tile: TileReady) -> None:
        self._check_tiles([tile])
        try:
            decisions = await asyncio.to_thread(self.gatekeeper.on_tile, tile)
        except TILE_GONE as exc:  # a missing tile or a URI no reader accepts never gets better
            raise PermanentError(str(exc)) from exc
        await self._publish(decisions)

    async def on_tiles(self, batch: list[Received[TileReady]]) -> None:
        self._check_tiles([r.event for r in batch])  # one refused: the per-tile pass sends it to the DLQ alone
        try:
            decisions = await asyncio.to_thread(self.gatekeeper.on_tiles, [r.event for r in batch])
        except TILE_GONE as exc:  # one tile of the batch: the per-tile pass sends it to the DLQ alone
            raise PermanentError(str(exc)) from exc
        await self._publish(decisions)

    async def on_relabel(self, event: TileRelabelled) -> None:
        await asyncio.to_thread(self.gatekeeper.on_relabel, event)

    async def on_relabels(self, batch: list[Received[TileRelabelled]]) -> None:
        await asyncio.to_thread(self.gatekeeper.on_relabels, [r.event for r in batch])

    async def on_feedback(self, event: LabelFeedback) -> None:
        await asyncio.to_thread(self.gatekeeper.on_feedback, event)

    async def on_command(self, command: ModelCommand) -> None:
        decisions = await asyncio.to_thread(self.commands.on_command, command)
        await self._publish(decisions)
