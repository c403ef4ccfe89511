"""The tiler's handler: every new fire becomes a wildfire tile plus matched fire-free tiles.

For each ``fires.observed.v1`` event the tiler remembers the fire's location (so negatives keep
their distance from every fire seen so far). For a *new* fire it plans one positive tile at the fire
and ``k`` negatives 10–50 km away (chosen once per fire, reused on replays), assigns each tile the
split of its own spatial cell, fetches the images concurrently from Mapbox, validates them, stores
them content-addressed and announces each on ``tiles.ready.v1`` once. Tiles already announced for
this fire are skipped, so a replay refetches nothing and publishes nothing twice.

Outcomes: a Mapbox outage or a rejected token makes the handler wait (the message is not committed);
a 422 or an image that stays invalid raises ``PermanentError`` (DLQ with the reason) after the other
tiles of the fire are done; a blank "no coverage" image is counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from emberwatch.common.tile_store import TileStore
from emberwatch.contracts import FireObserved, TileReady
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.alerts import Severity, make_alert, publish_alert
from emberwatch.messaging.consumer import PermanentError
from services.tiler.assign_split import assign_split
from services.tiler.fetch_tile import TileFetcher
from services.tiler.metrics import TILES_EMITTED, TILES_SKIPPED, TILES_STORED
from services.tiler.sample_negatives import sample_negatives
from services.tiler.settings import SERVICE, TilerSettings
from services.tiler.state import EmittedIndex, FireRegistry
from services.tiler.validate_image import ImageRejected

log = logging.getLogger(__name__)

Publish = Callable[[Envelope], Awaitable[None]]


@dataclass(frozen=True)
class TileJob:
    slot: str  # "fire" or "neg-<i>": one place per fire and slot, forever
    label: str
    lat: float
    lon: float
    split: str


class Tiler:
    def __init__(self, settings: TilerSettings, fetcher: TileFetcher, store: TileStore,
                 registry: FireRegistry, emitted: EmittedIndex, publish: Publish) -> None:
        self.s = settings
        self.fetcher = fetcher
        self.store = store
        self.registry = registry
        self.emitted = emitted
        self.publish = publish
        self._busy: dict[str, tuple[asyncio.Lock, int]] = {}  # fire key → (lock, users)

    def split_of(self, lat: float, lon: float) -> str:
        s = self.s
        return assign_split(lat, lon, cell_deg=s.tiler_split_cell_deg, val=s.tiler_split_val,
                            test=s.tiler_split_test)

    def plan(self, fire: FireObserved) -> list[TileJob]:
        """The fire's tile and its negatives (chosen once, recorded, reused on replay)."""
        s = self.s
        places = self.registry.negatives_for(fire.fire_key)
        if places is None:
            places = sample_negatives(
                fire.fire_key, fire.lat, fire.lon, k=s.tiler_negatives_per_fire,
                near_fire=self.registry.near, min_km=s.tiler_negative_min_km,
                max_km=s.tiler_negative_max_km, exclusion_km=s.tiler_negative_exclusion_km)
            if len(places) < s.tiler_negatives_per_fire:
                log.warning("fewer negatives than asked: too many fires nearby",
                            extra={"fire_key": fire.fire_key, "found": len(places)})
            self.registry.record_negatives(fire.fire_key, places)
        jobs = [TileJob("fire", "wildfire", fire.lat, fire.lon, self.split_of(fire.lat, fire.lon))]
        jobs += [TileJob(f"neg-{i}", "nowildfire", lat, lon, self.split_of(lat, lon))
                 for i, (lat, lon) in enumerate(places)]
        return jobs

    async def on_fire(self, fire: FireObserved) -> None:
        if self.registry.observe(fire.fire_key, fire.lat, fire.lon) and fire.change != "new":
            await asyncio.to_thread(self.registry.sync)
        if fire.change != "new":
            return
        # One fire at a time per key: a batch may hold the same fire twice (replays, re-polls).
        lock, users = self._busy.get(fire.fire_key, (asyncio.Lock(), 0))
        self._busy[fire.fire_key] = (lock, users + 1)
        try:
            async with lock:
                await self._tile_fire(fire)
        finally:
            lock, users = self._busy[fire.fire_key]
            if users == 1:
                del self._busy[fire.fire_key]
            else:
                self._busy[fire.fire_key] = (lock, users - 1)

    async def _tile_fire(self, fire: FireObserved) -> None:
        jobs = self.plan(fire)
        await asyncio.to_thread(self.registry.sync)  # the places are durable before any tile exists
        todo = []
        for job in jobs:
            if (fire.fire_key, job.slot) in self.emitted:
                TILES_SKIPPED.labels(job.label).inc()
            else:
                todo.append(job)
        results = await asyncio.gather(*(self._make_tile(fire, job) for job in todo), return_exceptions=True)
        permanent: list[str] = []
        for job, result in zip(todo, results, strict=True):
            if isinstance(result, TileReady):
                await self.publish(result)
                self.emitted.add(fire.fire_key, job.slot, result.tile_id)
                TILES_EMITTED.labels(job.label).inc()
            elif isinstance(result, ImageRejected) and result.reason == "blank":
                log.warning("no coverage: blank image skipped", extra={"fire_key": fire.fire_key,
                                                                       "slot": job.slot})
            elif isinstance(result, ImageRejected):
                permanent.append(f"{job.slot}: image rejected ({result.reason})")
            elif isinstance(result, PermanentError):
                permanent.append(f"{job.slot}: {result}")
        if any(isinstance(r, TileReady) for r in results):
            await asyncio.to_thread(self.emitted.sync)  # before the consumer commits the offset
        transient = [r for r in results if isinstance(r, BaseException)
                     and not isinstance(r, ImageRejected | PermanentError)]
        if transient:
            raise transient[0]  # the consumer retries; tiles already announced are skipped then
        if permanent:
            raise PermanentError("; ".join(permanent))

    async def _make_tile(self, fire: FireObserved, job: TileJob) -> TileReady:
        image = await self.fetcher.fetch(job.lat, job.lon)
        stored = await asyncio.to_thread(self.store.put, image.data, image.ext)
        TILES_STORED.labels(job.label, "new" if stored.created else "existing").inc()
        return TileReady.create(
            producer=SERVICE, trace_id=fire.trace_id, tile_id=stored.tile_id, uri=stored.uri,
            lat=job.lat, lon=job.lon, zoom=self.s.tiler_zoom, size_px=self.s.tiler_size_px,
            label=job.label, split=job.split, fire_key=fire.fire_key, provider=self.s.provider)


def alert_publisher(publish: Publish) -> Callable[[str, str, str, dict], Awaitable[None]]:
    """An alert callback for the Mapbox client that publishes ``PipelineAlert`` events."""

    async def alert(name: str, severity: Severity, message: str, details: dict) -> None:
        await publish_alert(publish, make_alert(SERVICE, name, severity, message, details))

    return alert
