"""Follow the pipeline's topics from the beginning (no consumer group) and keep a tally."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, PipelineAlert, TileReady
from emberwatch.contracts.topics import Topic

WATCHED = (Topic.FIRES_OBSERVED, Topic.TILES_READY, Topic.MODELS_CANDIDATES, Topic.MODELS_DECISIONS,
           Topic.PIPELINE_ALERTS)


@dataclass
class Tally:
    fires: set[str] = field(default_factory=set)
    fire_events: Counter = field(default_factory=Counter)
    tiles: Counter = field(default_factory=Counter)  # by label
    tile_ids: set[str] = field(default_factory=set)
    tile_events: int = 0
    candidates: list[ModelCandidate] = field(default_factory=list)
    decisions: list[ModelDecision] = field(default_factory=list)
    alerts: list[PipelineAlert] = field(default_factory=list)
    event_ids: Counter = field(default_factory=Counter)

    @property
    def duplicate_events(self) -> int:
        return sum(n - 1 for n in self.event_ids.values() if n > 1)

    def add(self, topic: str, value: bytes) -> None:
        model = {Topic.FIRES_OBSERVED: FireObserved, Topic.TILES_READY: TileReady,
                 Topic.MODELS_CANDIDATES: ModelCandidate, Topic.MODELS_DECISIONS: ModelDecision,
                 Topic.PIPELINE_ALERTS: PipelineAlert}[Topic(topic)]
        try:
            event = model.from_bytes(value)
        except ValueError:
            return
        self.event_ids[event.event_id] += 1
        if isinstance(event, FireObserved):
            self.fires.add(event.fire_key)
            self.fire_events[event.change] += 1
        elif isinstance(event, TileReady):
            self.tile_events += 1
            if event.tile_id not in self.tile_ids:
                self.tile_ids.add(event.tile_id)
                self.tiles[event.label] += 1
        elif isinstance(event, ModelCandidate):
            self.candidates.append(event)
        elif isinstance(event, ModelDecision):
            self.decisions.append(event)
        elif isinstance(event, PipelineAlert):
            self.alerts.append(event)


class PipelineWatcher:
    """A background reader of every watched topic; ``tally`` grows as events arrive."""

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self.tally = Tally()
        self._task: asyncio.Task | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(*WATCHED, bootstrap_servers=self.servers,
                                          auto_offset_reset="earliest", enable_auto_commit=False,
                                          group_id=None, metadata_max_age_ms=2000)
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    self.tally.add(tp.topic, r.value)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer:
            await self._consumer.stop()
