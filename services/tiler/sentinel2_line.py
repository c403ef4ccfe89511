"""The tiler's Sentinel-2 line, beside Mapbox: each new fire's dated pair, made when a clear scene exists.

The consumer only records a new fire (``Sentinel2Fires``, durable before the offset is committed) and
notes the feed's time; the work happens on the tiler's own timer (:meth:`Sentinel2Line.run_forever`),
never blocking the consumer. Each due fire is handed to the provider in a worker thread, at most
``EMBERWATCH_TILER_SENTINEL2_MAX_CONCURRENT_FIRES`` at once, after one token of the shared STAC budget:

* Ready — four images stored content-addressed: the post-fire SWIR and true-colour composites
  (``wildfire``) and the same place's pre-fire pair (``nowildfire``, the control), all in the split of the
  fire's cell, each announced once on ``tiles.ready.v1`` with its product, dates, scene, clouds and (fire
  tiles) indices; the ``EmittedIndex`` makes a replay announce nothing twice.
* RetryLater — the fire stays pending, due again when new acquisitions may be catalogued.
* GiveUp — the reason logged, counted and published as an ``info`` PipelineAlert.
* A STAC or COG failure (outage, 429, 5xx after the client's own retries) — the fire stays pending and is
  tried again after an exponential backoff that honours a server's ``retry_after``; a 429 pauses every
  replica's STAC budget. A hostile answer (an item whose COGs lie on a foreign host, a COG whose box would
  read far too much) is refused by the client and the fire given up with that reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from emberwatch.common.coordination import ExclusiveSection
from emberwatch.common.tile_store import TileWriter
from emberwatch.contracts import FireObserved, TileReady
from emberwatch.messaging.alerts import make_alert, publish_alert
from services.tiler.metrics import (
    SENTINEL2_FIRE_SECONDS,
    SENTINEL2_PAIRS,
    SENTINEL2_PENDING,
    SENTINEL2_TILE_BYTES,
    TILES_EMITTED,
    TILES_SKIPPED,
    TILES_STORED,
)
from services.tiler.models import Publish
from services.tiler.request_budget import RequestBudget
from services.tiler.sentinel2.composites import Composite
from services.tiler.sentinel2.pairing import GiveUp, PairPolicy, Ready, RetryLater
from services.tiler.sentinel2.provider import FireWindow, PairResult, Sentinel2Provider, Sentinel2Tile
from services.tiler.sentinel2.scenes import SceneRefused
from services.tiler.sentinel2.search import KNOWN_ASSET_HOSTS, StacCatalogue
from services.tiler.sentinel2.tile_fields import tile_ready_fields
from services.tiler.sentinel2.windowed_read import ReadRefused
from services.tiler.sentinel2_pending import PendingFire, Sentinel2Fires
from services.tiler.settings import SERVICE, TilerSettings
from services.tiler.state import EmittedIndex

log = logging.getLogger(__name__)

SENTINEL2_ZOOM = 14  # the web zoom whose pixels are nearest Sentinel-2's 10 m
OUTAGE_FIRST_WAIT_S = 5.0


@dataclass(frozen=True)
class PairTile:
    """One image of a fire's pair: where it is announced (slot), its label and what it shows."""

    slot: str
    label: str
    image: Composite
    tile: Sentinel2Tile
    is_fire_tile: bool


def pair_tiles(result: PairResult) -> list[PairTile]:
    """The images a Ready pair announces: the post-fire scene's two composites (wildfire), then the pre-fire
    scene's (nowildfire, the control), when there is one."""
    out = []
    for tile, role, label in ((result.post, "fire", "wildfire"), (result.pre, "control", "nowildfire")):
        if tile is None:
            continue
        for image in (tile.swir, tile.true_colour):
            out.append(PairTile(f"s2-{role}-{image.kind}", label, image, tile, role == "fire"))
    return out


def outage_wait(outages: int, retry_after: float | None, *, first_s: float, max_s: float) -> float:
    """Seconds before a fire is tried again after its ``outages``-th failure in a row: exponential from
    ``first_s``, at least what the server asked (``retry_after``), at most ``max_s``."""
    wait = first_s * 2 ** max(outages - 1, 0)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, max_s)


def retry_after_of(error: BaseException) -> float | None:
    """A server's word on when to come back, where the error carries one."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rate_limited(error: BaseException) -> bool:
    return getattr(error, "status_code", None) == 429 or "429" in str(error)[:300]


class FeedClock:
    """'Now' as the fire feed tells it: the latest snapshot time seen (the demo's simulated season)."""

    def __init__(self, floor: datetime | None = None) -> None:
        self.latest = floor or datetime(1970, 1, 1, tzinfo=UTC)

    def observe(self, at: datetime) -> None:
        self.latest = max(self.latest, at.astimezone(UTC))

    def __call__(self) -> datetime:
        return self.latest


def wall_clock() -> datetime:
    return datetime.now(UTC)


def catalogue_from(s: TilerSettings) -> StacCatalogue:
    extra = tuple(h.strip() for h in s.tiler_sentinel2_asset_hosts.split(",") if h.strip())
    if s.tiler_sentinel2_planetary_computer:
        base = StacCatalogue.planetary_computer()
        return StacCatalogue(url=base.url, collections=base.collections, modifier=base.modifier,
                             asset_hosts=KNOWN_ASSET_HOSTS + extra)
    return StacCatalogue(url=s.tiler_sentinel2_stac_url.rstrip("/"), asset_hosts=KNOWN_ASSET_HOSTS + extra)


def policy_from(s: TilerSettings) -> PairPolicy:
    return PairPolicy(max_cloud_fraction=s.tiler_sentinel2_max_cloud_fraction,
                      pre_fire_lookback=timedelta(days=s.tiler_sentinel2_lookback_days),
                      retry_every=timedelta(hours=s.tiler_sentinel2_retry_hours),
                      give_up_after=timedelta(days=s.tiler_sentinel2_give_up_days))


class Sentinel2Line:
    def __init__(self, settings: TilerSettings, provider: Sentinel2Provider, fires: Sentinel2Fires,
                 store: TileWriter, emitted: EmittedIndex, announce_section: ExclusiveSection, publish: Publish,
                 split_of: Callable[[float, float], str], budget: RequestBudget | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.s = settings
        self.provider = provider
        self.fires = fires
        self.store = store
        self.emitted = emitted
        self.announce_section = announce_section
        self.publish = publish
        self.split_of = split_of
        self.budget = budget
        self.feed = FeedClock(fires.latest_start()) if settings.tiler_sentinel2_clock == "feed" else None
        self.clock = clock or self.feed or wall_clock
        self.wake = asyncio.Event()
        self.lease_s = settings.tiler_sentinel2_outage_backoff_max_s + 600.0

    async def observe(self, fire: FireObserved, observed_at: datetime | None) -> None:
        """Every fire event: a new fire is recorded (durable before the commit), an ``out`` one gets its end."""
        if self.feed is not None:
            self.feed.observe(fire.snapshot_at)
        if fire.change == "new":
            start = fire.start_date or fire.snapshot_at
            if await asyncio.to_thread(self.fires.add, fire.fire_key, fire.lat, fire.lon, start, fire.trace_id,
                                       observed_at, self.clock()):
                self.wake.set()
        elif fire.change == "out":
            await asyncio.to_thread(self.fires.ended, fire.fire_key, fire.snapshot_at)
        elif self.feed is not None:
            self.wake.set()  # the feed's clock moved: a pending fire may be due

    async def run_due(self) -> int:
        """Try every fire due now, ``max_concurrent_fires`` at a time; returns how many were tried."""
        at_once = asyncio.Semaphore(self.s.tiler_sentinel2_max_concurrent_fires)
        tried = 0
        while True:
            due = await asyncio.to_thread(self.fires.claim_due, self.clock(),
                                          self.s.tiler_sentinel2_max_concurrent_fires * 4, self.lease_s)
            if not due:
                break

            async def attempt(p: PendingFire) -> None:
                async with at_once:
                    await self.attempt(p)

            await asyncio.gather(*(attempt(p) for p in due))
            tried += len(due)
        SENTINEL2_PENDING.set(await asyncio.to_thread(self.fires.count))
        return tried

    async def run_forever(self, stop: asyncio.Event) -> None:
        """The timer: due fires every ``check_interval_s``, and at once when a new fire arrives."""
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.run_due()
            except Exception:  # the coordination database away: the next round tries again
                log.exception("sentinel-2 round failed")
            waits = [asyncio.create_task(self.wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(waits, timeout=self.s.tiler_sentinel2_check_interval_s,
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def attempt(self, p: PendingFire) -> None:
        """One try at a fire's pair; its outcome recorded in the pending list."""
        extra = {"fire_key": p.fire_key}
        now = self.clock()
        if self.budget is not None:
            await self.budget.take()
        window = FireWindow(p.fire_key, lon=p.lon, lat=p.lat, start=p.start, end=p.end)
        try:
            result = await asyncio.to_thread(self.provider.fetch_pair, window, now)
            if isinstance(result.decision, Ready):
                await self._announce(p, result)
        except (ReadRefused, SceneRefused) as refused:
            await self._give_up(p, f"refused what the catalogue served: {refused}")
            return
        except Exception as error:  # noqa: BLE001 - an outage of the catalogue or a COG host: tried again
            wait = outage_wait(p.outages + 1, retry_after_of(error), first_s=OUTAGE_FIRST_WAIT_S,
                               max_s=self.s.tiler_sentinel2_outage_backoff_max_s)
            if rate_limited(error) and self.budget is not None:
                await asyncio.to_thread(self.budget.pause_all, wait)
            reason = f"{type(error).__name__}: {str(error)[:200]}"
            await asyncio.to_thread(self.fires.outage, p.fire_key, wait, reason)
            SENTINEL2_PAIRS.labels("outage").inc()
            log.warning("sentinel-2 search or read failed; the fire is tried again",
                        extra={**extra, "error": type(error).__name__, "wait_s": round(wait, 1)})
            return
        SENTINEL2_FIRE_SECONDS.observe(result.seconds)
        if result.refused_items:
            log.warning("sentinel-2 items refused", extra={**extra, "refused": len(result.refused_items),
                                                          "first": result.refused_items[0][:300]})
        decision = result.decision
        if isinstance(decision, Ready):
            await asyncio.to_thread(self.fires.made, p.fire_key)
            SENTINEL2_PAIRS.labels("made").inc()
            if decision.pre_missing_reason:
                log.info("sentinel-2 fire tile without a control",
                         extra={**extra, "reason": decision.pre_missing_reason})
        elif isinstance(decision, RetryLater):
            await asyncio.to_thread(self.fires.retry_at, p.fire_key, decision.at, decision.reason)
            SENTINEL2_PAIRS.labels("retried").inc()
            log.info("no clear sentinel-2 scene yet", extra={**extra, "reason": decision.reason,
                                                             "due_at": decision.at.isoformat()})
        elif isinstance(decision, GiveUp):
            await self._give_up(p, decision.reason)

    async def _give_up(self, p: PendingFire, reason: str) -> None:
        await asyncio.to_thread(self.fires.give_up, p.fire_key, reason)
        SENTINEL2_PAIRS.labels("given_up").inc()
        log.warning("sentinel-2 pair given up", extra={"fire_key": p.fire_key, "reason": reason[:500]})
        await publish_alert(self.publish, make_alert(
            SERVICE, "sentinel2_given_up", "info", f"no Sentinel-2 pair for fire {p.fire_key}: {reason}",
            {"fire_key": p.fire_key, "lat": p.lat, "lon": p.lon, "start": p.start.isoformat()}))

    async def _announce(self, p: PendingFire, result: PairResult) -> None:
        split = self.split_of(p.lat, p.lon)
        for tile in (result.post, result.pre):
            if tile is not None:
                SENTINEL2_TILE_BYTES.observe(tile.bytes_read)
        for t in pair_tiles(result):
            if (p.fire_key, t.slot) in self.emitted:
                TILES_SKIPPED.labels(t.label).inc()
                continue
            stored = await asyncio.to_thread(self.store.put, t.image.png, "png")
            TILES_STORED.labels(t.label, "new" if stored.created else "existing").inc()
            event = TileReady.create(
                producer=SERVICE, trace_id=p.trace_id, tile_id=stored.tile_id, uri=stored.uri, lat=p.lat,
                lon=p.lon, zoom=SENTINEL2_ZOOM, size_px=self.provider.size_px, label=t.label, split=split,
                fire_key=p.fire_key, fire_observed_at=p.observed_at,
                **tile_ready_fields(t.tile, t.image, result.evidence, t.is_fire_tile))
            async with self.announce_section.held():
                if (p.fire_key, t.slot) in self.emitted:  # another replica meanwhile
                    TILES_SKIPPED.labels(t.label).inc()
                    continue
                await asyncio.to_thread(self.store.put, t.image.png, "png")  # orphan collection: see handlers
                await self.publish(event)
                await asyncio.to_thread(self.emitted.add, p.fire_key, t.slot, stored.tile_id,
                                        fetched_at=datetime.now(UTC))
            TILES_EMITTED.labels(t.label).inc()


def build_sentinel2_line(s: TilerSettings, engine: Engine, store: TileWriter, emitted: EmittedIndex,
                         announce_section: ExclusiveSection, publish: Publish, split_of: Callable[[float, float], str],
                         clock: Callable[[], datetime] | None = None) -> Sentinel2Line:
    """The line as the settings describe it (its STAC budget shared by every replica)."""
    budget = None
    if s.tiler_sentinel2_requests_per_minute > 0:
        budget = RequestBudget(engine, per_minute=s.tiler_sentinel2_requests_per_minute,
                               burst=s.tiler_sentinel2_burst, name="sentinel2-stac")
    provider = Sentinel2Provider(catalogue_from(s), policy_from(s))
    return Sentinel2Line(s, provider, Sentinel2Fires(engine), store, emitted, announce_section, publish, split_of,
                         budget, clock)
