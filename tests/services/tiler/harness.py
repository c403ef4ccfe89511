"""Run the real tiler handler against the real broker and the simulator, on private topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY

from emberwatch.common.config import Settings
from emberwatch.contracts import FireObserved, PipelineAlert, TileReady
from emberwatch.contracts.topics import dlq_topic
from emberwatch.messaging.broker import build_broker
from services.tiler.main import build_tiler, consume
from services.tiler.settings import TilerSettings
from tests.messaging.helpers import read_all, unique

FAST = dict(
    tiler_retry_attempts=2, tiler_retry_backoff_s=0.05, tiler_retry_backoff_max_s=0.2,
    tiler_outage_backoff_max_s=0.2, tiler_auth_recheck_s=0.1, tiler_auth_probe_s=3600,
    tiler_request_timeout_s=5, tiler_negatives_per_fire=2, kafka_max_attempts=2, kafka_retry_backoff_s=0.05,
)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def fire(key: str, lat: float, lon: float, change: str = "new", hectares: float = 50.0) -> FireObserved:
    return FireObserved.create(producer="test", fire_key=key, source="cwfis-csv", agency="ab", name=key,
                               lat=lat, lon=lon, hectares=hectares, change=change,
                               snapshot_at=datetime(2026, 7, 1, tzinfo=UTC))


@dataclass
class Run:
    settings: TilerSettings
    servers: str
    suffix: str
    topic_in: str
    broker: object
    handled: list[str] = field(default_factory=list)
    tiler: object = None  # services.tiler.handlers.Handlers

    def out(self, model) -> str:
        return f"{model.TOPIC}.{self.suffix}"

    async def send(self, *fires: FireObserved, key: bytes | None = None) -> None:
        """Publish fires in order; one ``key`` for all keeps them on one partition, in order."""
        for f in fires:
            await self.broker.publish(f.to_bytes(), topic=self.topic_in, key=key or f.key().encode())

    async def tiles(self, expect: int, timeout_s: float = 30) -> list[TileReady]:
        recs = await read_all(self.servers, self.out(TileReady), expect, timeout_s)
        return [TileReady.from_bytes(r.value) for r in recs]

    async def alerts(self, expect: int, timeout_s: float = 30) -> list[PipelineAlert]:
        recs = await read_all(self.servers, self.out(PipelineAlert), expect, timeout_s)
        return [PipelineAlert.from_bytes(r.value) for r in recs]

    async def dead(self, expect: int, timeout_s: float = 30) -> list:
        return await read_all(self.servers, dlq_topic(self.topic_in), expect, timeout_s)


def tiler_settings(kafka: Settings, state_dir: Path, sim_url: str, token_file: Path, **overrides) -> TilerSettings:
    values = dict(FAST, kafka_bootstrap_servers=kafka.kafka_bootstrap_servers, state_dir=state_dir,
                  mapbox_api_url=sim_url, tiler_token_file=token_file, kafka_session_timeout_ms=6000)
    values.update(overrides)
    return TilerSettings(**values)


@contextlib.asynccontextmanager
async def running_tiler(settings: TilerSettings, *, suffix: str | None = None, topic_in: str | None = None,
                        group: str | None = None) -> AsyncIterator[Run]:
    """The tiler consuming ``topic_in`` and publishing to ``<topic>.<suffix>``; stopped on exit."""
    suffix = suffix or unique("t")
    topic_in = topic_in or f"{FireObserved.TOPIC}.{suffix}"
    broker = build_broker(settings, "tiler-test")
    run = Run(settings, settings.kafka_bootstrap_servers, suffix, topic_in, broker)

    async def publish(event) -> None:
        await broker.publish(event.to_bytes(), topic=f"{event.TOPIC}.{suffix}", key=event.key().encode())

    tiler, client = build_tiler(settings, publish)

    async def handle(event: FireObserved) -> None:
        await tiler.on_fire(event)
        run.handled.append(event.fire_key)

    async def handle_many(batch) -> None:  # noqa: ANN001 - as services/tiler/main.py wires it
        await tiler.on_fires(batch)
        run.handled.extend(r.event.fire_key for r in batch)

    consume(broker, settings, topic_in, handle, group_id=group or unique("tiler"), handle_many=handle_many)
    run.tiler = tiler
    await broker.start()
    stop, timers = asyncio.Event(), []
    if tiler.sentinel2 is not None:  # as services/tiler/main.py starts it with the app
        timers.append(asyncio.create_task(tiler.sentinel2.run_forever(stop)))
    try:
        yield run
    finally:
        stop.set()
        for timer in timers:
            await timer
        await broker.stop()
        await client.aclose()
