"""What the gatekeeper does with each topic: one small function each, consuming one topic and
publishing what the gatekeeper's core decided (decisions on models.decisions.v1, detections on
detections.v1, alerts on pipeline.alerts.v1). The blocking work (Triton, MLflow) runs in a worker
thread.

Each imagery product with a model line has a gatekeeper of its own (services/gatekeeper/lines.py),
and every event goes to its line:

- models.candidates.v1: a candidate is loaded, validated, shadowed beside the champion and promoted
  only on evidence, or rejected with the reason (an event MLflow does not bear out goes to the DLQ);
- tiles.ready.v1: every live tile is scored by the champion and the challenger in shadow (by the
  champion alone between shadows); one the champion calls a wildfire is a detection; what a batch
  holds that was already handled (a replay) is set aside with one look;
- tiles.relabelled.v1: a later fire retires or relabels a fire-free tile (one write per batch);
- labels.feedback.v1: a person's label on a tile wins over the automatic one;
- models.commands.v1: an operator's promote, rollback, approve or reject, carried out and answered.

And one that no topic brings: the gatekeeper's own clock (``on_tick``, every
``EMBERWATCH_GATEKEEPER_TICK_S``) decides a shadow past its time limit when no tile comes.
"""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker

from emberwatch.common.safe_paths import UnsafePath
from emberwatch.common.tile_store import PERMANENT as TILE_GONE
from emberwatch.common.tile_store import check_tile_uri
from emberwatch.contracts.events import (
    Detection,
    LabelFeedback,
    ModelCandidate,
    ModelCommand,
    ModelDecision,
    PipelineAlert,
    TileReady,
    TileRelabelled,
)
from emberwatch.messaging.broker import publish_event
from emberwatch.messaging.consumer import PermanentError
from emberwatch.messaging.subscription import Received, Route
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.lines import GatekeeperLines, NoLine
from services.gatekeeper.registry import UntrustedCandidate
from services.gatekeeper.settings import SERVICE


class Handlers:
    def __init__(self, broker: KafkaBroker, gatekeeper: Gatekeeper | GatekeeperLines):
        self.broker = broker
        self.gatekeeper = gatekeeper

    async def _publish(self, events: list) -> None:
        for event in events:
            await publish_event(self.broker, event, service=SERVICE)

    async def on_candidate(self, candidate: ModelCandidate) -> None:
        try:
            events = await asyncio.to_thread(self.gatekeeper.on_candidate, candidate)
        # not MLflow's record, a name leaving the state, or a product without a model line
        except (UntrustedCandidate, UnsafePath, NoLine) as exc:
            raise PermanentError(f"candidate {candidate.model_name}:{candidate.version} refused: {exc}") from exc
        await self._publish(events)

    def _check_tiles(self, tiles: list[TileReady]) -> None:
        """Every tile's URI is its place in the configured store, before anything else is done with it."""
        for tile in tiles:
            try:
                check_tile_uri(tile.uri, tile.tile_id, self.gatekeeper.settings)
            except TILE_GONE as exc:
                raise PermanentError(f"tile {tile.tile_id}: {exc}") from exc

    async def on_tile(self, tile: TileReady) -> None:
        self._check_tiles([tile])
        await self._score(self.gatekeeper.on_tile, tile)

    async def on_tiles(self, batch: list[Received[TileReady]]) -> None:
        tiles = [r.event for r in batch]
        self._check_tiles(tiles)  # one refused: the per-tile pass sends it to the DLQ alone
        await self._score(self.gatekeeper.on_tiles, tiles)

    async def _score(self, run, tiles) -> None:
        try:
            events = await asyncio.to_thread(run, tiles)
        except TILE_GONE as exc:  # a missing tile or a URI no reader accepts never gets better
            raise PermanentError(str(exc)) from exc
        await self._publish(events)

    async def on_relabel(self, event: TileRelabelled) -> None:
        await asyncio.to_thread(self.gatekeeper.on_relabels, [event])

    async def on_relabels(self, batch: list[Received[TileRelabelled]]) -> None:
        await asyncio.to_thread(self.gatekeeper.on_relabels, [r.event for r in batch])

    async def on_feedback(self, event: LabelFeedback) -> None:
        await asyncio.to_thread(self.gatekeeper.on_feedback, event)

    async def on_command(self, command: ModelCommand) -> None:
        await self._publish(await asyncio.to_thread(self.gatekeeper.on_command, command))

    async def on_tick(self) -> None:
        await self._publish(await asyncio.to_thread(self.gatekeeper.on_tick))


def routes(h: Handlers) -> tuple[Route, ...]:
    """What the gatekeeper consumes, one consumer group per topic (the gatekeeper's group id plus the
    suffix), and the topics each handler publishes to."""
    decides = (ModelDecision.TOPIC, PipelineAlert.TOPIC)
    return (
        Route(ModelCandidate.TOPIC, ModelCandidate, h.on_candidate, publishes=decides),
        Route(TileReady.TOPIC, TileReady, h.on_tile, handle_many=h.on_tiles, group_suffix="-shadow",
              publishes=(*decides, Detection.TOPIC)),
        Route(TileRelabelled.TOPIC, TileRelabelled, h.on_relabel, handle_many=h.on_relabels,
              group_suffix="-relabels"),
        Route(ModelCommand.TOPIC, ModelCommand, h.on_command, group_suffix="-commands", publishes=decides),
        Route(LabelFeedback.TOPIC, LabelFeedback, h.on_feedback, group_suffix="-feedback"),
    )
