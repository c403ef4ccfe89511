"""The tiler's handler: every new fire becomes a wildfire tile plus matched fire-free tiles.

For each ``fires.observed.v1`` event the tiler remembers the fire's location (so negatives keep
their distance from every fire seen so far). For a *new* fire it plans one positive tile at the fire
and ``k`` negatives 10–50 km away (chosen once per fire, reused on replays), assigns each tile the
split of its own spatial cell, fetches the images concurrently from Mapbox, validates them, stores
them content-addressed and announces each on ``tiles.ready.v1`` once. Tiles already announced for
this fire are skipped, so a replay refetches nothing and publishes nothing twice.

Negatives are chosen by ``services/tiler/choose_negatives.py`` (same region, on land, same land
cover, away from known fires). Every fire event, new or not, is also checked against the negatives
already announced: one within the exclusion distance is relabelled ``wildfire`` or retired with one
``tiles.relabelled.v1`` event (``services/tiler/relabel_negatives.py``), recorded so a replay
publishes none twice. A negative near a fire that became known after its place was chosen, but
before its tile was announced, is not announced at all.

Several replicas share the work (one consumer group, fires keyed by fire): the registry, the
announced tiles and the relabels live in the coordination database (``services/tiler/state.py``),
and relabel scans and announcements take one exclusive section across every replica, so a fire and a
negative handled at once — in one process or in two — never miss each other, and a tile another
replica announced meanwhile (a rebalance) is not announced twice.

With Sentinel-2 on (``EMBERWATCH_TILER_SENTINEL2``), every fire event is also handed to the Sentinel-2
line (``services/tiler/sentinel2_line.py``), which records a new fire durably and makes its dated pair on
its own timer.

Outcomes: a Mapbox outage or a rejected token makes the handler wait (the message is not committed);
a 422 or an image that stays invalid raises ``PermanentError`` (DLQ with the reason) after the other
tiles of the fire are done; a blank "no coverage" image is counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from emberwatch.common.coordination import ExclusiveSection
from emberwatch.common.tile_store import TileWriter
from emberwatch.contracts import FireObserved, TileReady, TileRelabelled, Topic
from emberwatch.messaging.alerts import Severity, make_alert, publish_alert
from emberwatch.messaging.consumer import Handler, PermanentError, current_record
from emberwatch.messaging.subscription import BulkHandler, Received, Route
from services.tiler.assign_split import assign_split
from services.tiler.choose_negatives import NegativeChooser
from services.tiler.fetch_tile import TileFetcher, TileImage
from services.tiler.metrics import NEGATIVES_DROPPED, TILES_EMITTED, TILES_RELABELLED, TILES_SKIPPED, TILES_STORED
from services.tiler.models import Publish, TileJob
from services.tiler.relabel_negatives import decide, inside_footprint
from services.tiler.sentinel2_line import Sentinel2Line
from services.tiler.settings import SERVICE, TilerSettings
from services.tiler.state import AnnouncedNegative, EmittedIndex, FireRegistry, RelabelLog
from services.tiler.validate_image import ImageRejected

log = logging.getLogger(__name__)


class Handlers:
    def __init__(self, settings: TilerSettings, fetcher: TileFetcher, store: TileWriter,
                 registry: FireRegistry, emitted: EmittedIndex, publish: Publish,
                 relabels: RelabelLog | None = None) -> None:
        self.s = settings
        self.fetcher = fetcher
        self.store = store
        self.registry = registry
        self.emitted = emitted
        self.publish = publish
        self.relabels = relabels if relabels is not None else RelabelLog(registry.engine)
        self.chooser = NegativeChooser(settings, fetcher, registry.near)
        self._busy: dict[str, tuple[asyncio.Lock, int]] = {}  # fire key → (lock, users)
        # Permanent failures of a bulk attempt, by event id, for the one-at-a-time pass that follows.
        self._failed_in_batch: dict[str, PermanentError] = {}
        # Relabel scans and announcements, one at a time across every replica.
        # held by every announcement, relabel scan and deletion of a tile never announced
        self.announce_section = ExclusiveSection(registry.engine, "tiler-announce")
        self.sentinel2: Sentinel2Line | None = None  # set by services/tiler/main.py when the line is on

    @property
    def reach_km(self) -> float:
        """The exclusion distance, less 10 m so a place rounded to 1e-6° never trips on its own fire."""
        return self.s.tiler_negative_exclusion_km * 0.999

    def split_of(self, lat: float, lon: float) -> str:
        s = self.s
        return assign_split(lat, lon, cell_deg=s.tiler_split_cell_deg, val=s.tiler_split_val,
                            test=s.tiler_split_test)

    async def plan(self, fire: FireObserved) -> list[TileJob]:
        """The fire's tile and its negatives (chosen once, recorded, reused on replay)."""
        places = self.registry.negatives_for(fire.fire_key)
        if places is None:
            choice = await self.chooser.choose(fire)
            # Durable before any tile exists; a replica that raced on this fire recorded its own first.
            places = await asyncio.to_thread(self.registry.record_negatives, fire.fire_key, choice.places,
                                             choice.audit)
        jobs = [TileJob("fire", "wildfire", fire.lat, fire.lon, self.split_of(fire.lat, fire.lon))]
        jobs += [TileJob(f"neg-{i}", "nowildfire", lat, lon, self.split_of(lat, lon))
                 for i, (lat, lon) in enumerate(places)]
        return jobs

    async def on_fire(self, fire: FireObserved) -> None:
        """One fire event (the per-record path, and the fallback of :meth:`on_fires`)."""
        failed = self._failed_in_batch.pop(fire.event_id, None)
        if failed is not None:  # this batch's bulk attempt already got a permanent answer: no refetch
            raise failed
        await asyncio.to_thread(self.registry.observe, fire.fire_key, fire.lat, fire.lon)
        await self.relabel_near(fire)
        if self.sentinel2 is not None:
            await self.sentinel2.observe(fire, published_at())
        if fire.change == "new":
            await self._tile_new_fire(fire, published_at())

    async def on_fires(self, batch: list[Received[FireObserved]]) -> None:
        """A whole consumer batch: every location recorded in one transaction, every relabel scan in
        one pass through the exclusive section (one query each, over one connection), then the new
        fires tiled concurrently, at most ``tiler_batch_size`` at a time. A failure raises, and the
        consumer handles the batch again one fire at a time (:meth:`on_fire`)."""
        fires = [r.event for r in batch]
        await asyncio.to_thread(self.registry.observe_many, [(f.fire_key, f.lat, f.lon) for f in fires])
        async with self.announce_section.held():
            near = await asyncio.to_thread(self.emitted.negatives_near_many,
                                           [(f.lat, f.lon) for f in fires], self.reach_km)
            for fire, negatives in zip(fires, near, strict=True):
                if negatives:
                    await self._relabel_near_held(fire, negatives)
        if self.sentinel2 is not None:
            for r in batch:
                await self.sentinel2.observe(r.event, record_time(r.timestamp_ms))
        new = [r for r in batch if r.event.change == "new"]
        at_once = asyncio.Semaphore(self.s.tiler_batch_size)

        async def tile(r: Received[FireObserved]) -> None:
            async with at_once:
                await self._tile_new_fire(r.event, record_time(r.timestamp_ms))

        results = await asyncio.gather(*(tile(r) for r in new), return_exceptions=True)
        for r, result in zip(new, results, strict=True):
            if isinstance(result, PermanentError):
                self._failed_in_batch[r.event.event_id] = result
        failures = [r for r in results if isinstance(r, BaseException)]
        transient = [r for r in failures if not isinstance(r, PermanentError)]
        if transient or failures:
            raise (transient or failures)[0]

    async def _tile_new_fire(self, fire: FireObserved, seen_at: datetime | None) -> None:
        # One fire at a time per key: a batch may hold the same fire twice (replays, re-polls).
        lock, users = self._busy.get(fire.fire_key, (asyncio.Lock(), 0))
        self._busy[fire.fire_key] = (lock, users + 1)
        try:
            async with lock:
                await self._tile_fire(fire, seen_at)
        finally:
            lock, users = self._busy[fire.fire_key]
            if users == 1:
                del self._busy[fire.fire_key]
            else:
                self._busy[fire.fire_key] = (lock, users - 1)

    async def relabel_near(self, fire: FireObserved) -> int:
        """One ``tiles.relabelled.v1`` per announced negative within the exclusion distance of
        ``fire`` (none twice); durable before the offset is committed. Returns how many."""
        async with self.announce_section.held():
            return await self._relabel_near_held(fire)

    async def _relabel_near_held(self, fire: FireObserved,
                                 negatives: list[tuple[AnnouncedNegative, float]] | None = None) -> int:
        """:meth:`relabel_near`, inside the exclusive section (``negatives``: those near the fire,
        when the caller has looked them up already)."""
        s = self.s
        published = 0
        if negatives is None:
            negatives = await asyncio.to_thread(self.emitted.negatives_near, fire.lat, fire.lon, self.reach_km)
        for neg, km in negatives:
            if neg.tile_id in self.relabels:
                continue
            inside = inside_footprint(neg.lat, neg.lon, s.tiler_zoom, s.tiler_size_px, fire.lat, fire.lon)
            d = decide(inside=inside, start_date=fire.start_date, fetched_at=neg.fetched_at)
            event = TileRelabelled.create(
                producer=SERVICE, trace_id=fire.trace_id, tile_id=neg.tile_id, action=d.action,
                previous_label="nowildfire", label="wildfire" if d.action == "relabel" else None,
                fire_key=fire.fire_key, matched_fire_key=neg.fire_key, distance_km=round(km, 3),
                reason=d.reason)
            await self.publish(event)
            await asyncio.to_thread(self.relabels.add, neg.tile_id, d.action, fire.fire_key, event.event_id)
            TILES_RELABELLED.labels(d.action).inc()
            published += 1
            log.warning("negative %s by a later fire", "relabelled" if d.action == "relabel" else "retired",
                        extra={"tile_id": neg.tile_id, "action": d.action, "fire_key": fire.fire_key,
                               "matched_fire_key": neg.fire_key, "distance_km": round(km, 3),
                               "reason": d.reason})
        return published

    def _fire_appeared_near(self, fire: FireObserved, job: TileJob) -> bool:
        return job.label == "nowildfire" and self.registry.near(job.lat, job.lon, self.reach_km,
                                                                other_than=fire.fire_key)

    async def _tile_fire(self, fire: FireObserved, seen_at: datetime | None = None) -> None:
        jobs = await self.plan(fire)
        todo = []
        for job in jobs:
            if (fire.fire_key, job.slot) in self.emitted:
                TILES_SKIPPED.labels(job.label).inc()
            elif self._fire_appeared_near(fire, job):
                NEGATIVES_DROPPED.inc()
                log.warning("negative not tiled: a fire became known near it",
                            extra={"fire_key": fire.fire_key, "slot": job.slot})
            else:
                todo.append(job)
        results = await asyncio.gather(*(self._make_tile(fire, job, seen_at) for job in todo),
                                       return_exceptions=True)
        permanent: list[str] = []
        for job, result in zip(todo, results, strict=True):
            if isinstance(result, tuple):
                tile, fetched_at, image = result
                async with self.announce_section.held():
                    if (fire.fire_key, job.slot) in self.emitted:  # another replica, during a rebalance
                        TILES_SKIPPED.labels(job.label).inc()
                        continue
                    if self._fire_appeared_near(fire, job):
                        NEGATIVES_DROPPED.inc()
                        log.warning("negative not announced: a fire became known near it",
                                    extra={"fire_key": fire.fire_key, "slot": job.slot})
                        continue
                    # Tiles never announced are collected (collect_orphans.py) under this same section:
                    # one stored long ago may be gone by now. A put of the same bytes is a no-op
                    # when it is there.
                    await asyncio.to_thread(self.store.put, image.data, image.ext)
                    await self.publish(tile)
                    await asyncio.to_thread(self.emitted.add, fire.fire_key, job.slot, tile.tile_id,
                                            lat=job.lat, lon=job.lon, fetched_at=fetched_at)
                TILES_EMITTED.labels(job.label).inc()
            elif isinstance(result, ImageRejected) and result.reason == "blank":
                log.warning("no coverage: blank image skipped", extra={"fire_key": fire.fire_key,
                                                                       "slot": job.slot})
            elif isinstance(result, ImageRejected):
                permanent.append(f"{job.slot}: image rejected ({result.reason})")
            elif isinstance(result, PermanentError):
                permanent.append(f"{job.slot}: {result}")
        transient = [r for r in results if isinstance(r, BaseException)
                     and not isinstance(r, ImageRejected | PermanentError)]
        if transient:
            raise transient[0]  # the consumer retries; tiles already announced are skipped then
        if permanent:
            raise PermanentError("; ".join(permanent))

    async def _make_tile(self, fire: FireObserved, job: TileJob,
                         seen_at: datetime | None = None) -> tuple[TileReady, datetime, TileImage]:
        image = await self.fetcher.fetch(job.lat, job.lon)
        fetched_at = datetime.now(UTC)
        stored = await asyncio.to_thread(self.store.put, image.data, image.ext)
        TILES_STORED.labels(job.label, "new" if stored.created else "existing").inc()
        return TileReady.create(
            producer=SERVICE, trace_id=fire.trace_id, tile_id=stored.tile_id, uri=stored.uri,
            lat=job.lat, lon=job.lon, zoom=self.s.tiler_zoom, size_px=self.s.tiler_size_px,
            label=job.label, split=job.split, fire_key=fire.fire_key, provider=self.s.provider,
            fire_observed_at=seen_at), fetched_at, image


def published_at() -> datetime | None:
    """When the fire event being handled was published (its Kafka record timestamp, wall clock):
    the moment the ingestor reported the fire, where the fire-to-prediction latency starts. The
    event's own ``occurred_at`` is the feed's data time, not when anyone saw it."""
    return record_time(getattr(current_record(), "timestamp", None))


def record_time(timestamp_ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC) if timestamp_ms else None


def alert_publisher(publish: Publish) -> Callable[[str, str, str, dict], Awaitable[None]]:
    """An alert callback for the Mapbox client that publishes ``PipelineAlert`` events."""

    async def alert(name: str, severity: Severity, message: str, details: dict) -> None:
        await publish_alert(publish, make_alert(SERVICE, name, severity, message, details))

    return alert


def route(s: TilerSettings, handle_one: Handler[FireObserved], handle_many: BulkHandler[FireObserved] | None = None,
          topic: str = Topic.FIRES_OBSERVED) -> Route:
    """How the tiler consumes ``fires.observed.v1``. With ``handle_many``: batches of up to
    ``kafka_batch_max_records`` fires in one call (one transaction for the whole batch's locations,
    its new fires tiled ``tiler_batch_size`` at a time), ``handle_one`` the per-fire fallback.
    Without it, batches of ``tiler_batch_size`` fires handled concurrently one by one; a batch size
    of 1 is the ordered delivery. Tiles go to ``tiles.ready.v1``, relabels to ``tiles.relabelled.v1``
    and Mapbox trouble to ``pipeline.alerts.v1``."""
    publishes = (Topic.TILES_READY, Topic.TILES_RELABELLED, Topic.PIPELINE_ALERTS)
    if s.tiler_batch_size > 1 and handle_many is not None:
        return Route(topic, FireObserved, handle_one, publishes, handle_many, max_records=s.kafka_batch_max_records)
    mode = "concurrent" if s.tiler_batch_size > 1 else "ordered"
    return Route(topic, FireObserved, handle_one, publishes, mode=mode, max_records=s.tiler_batch_size)


def routes(tiler: Handlers) -> tuple[Route, ...]:
    """What the tiler consumes: one topic, see ``route``."""
    return (route(tiler.s, tiler.on_fire, tiler.on_fires, Topic.FIRES_OBSERVED),)
