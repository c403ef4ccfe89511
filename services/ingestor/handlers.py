"""The ingestor's poll cycle, as docs/architecture.md#services tells it.

Every poll fetches each configured CWFIS feed (a conditional request: an unchanged feed costs a
304), parses what came back, and keeps it as that feed's last good snapshot — unless the feed
answered with something that is not a snapshot (an error page, garbage, a cut-off body, a
suspicious collapse in size): then it logs why, raises a ``pipeline.alerts.v1`` alert and keeps
the last good snapshot, so no fire is marked out because a feed misbehaved. The feeds' snapshots
are merged (one fire reported by both feeds is one fire), filtered, and compared with the fires
tracked so far: each new, updated or extinguished/vanished fire becomes a ``fires.observed.v1``
event keyed by its fire key. Events go out before the state is saved: a crash in between re-emits
the same events (same ids, same bytes) instead of losing them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx

from emberwatch.contracts import FireObserved, PipelineAlert
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.alerts import make_alert, publish_alert
from services.ingestor import metrics
from services.ingestor.detect_changes import detect_changes
from services.ingestor.fetch_feed import FetchError, RetryPolicy, Validators, fetch
from services.ingestor.filters import FireFilter
from services.ingestor.merge_feeds import merge_feeds
from services.ingestor.models import (
    SOURCE_CSV,
    SOURCE_WFS,
    Change,
    FeedError,
    ParseResult,
)
from services.ingestor.parse_feed import parse
from services.ingestor.settings import SERVICE, IngestorSettings
from services.ingestor.state_store import FeedSnapshot, IngestorState, StateStore

log = logging.getLogger(__name__)
MAX_REJECTION_LOGS = 50

Publish = Callable[[Envelope], Awaitable[None]]


@dataclass(frozen=True)
class Feed:
    source: str  # cwfis-csv | cwfif-wfs
    url: str
    kind: str  # legacy-csv | wfs-csv | wfs-geojson
    params: dict[str, str] | None = None


def feeds_from_settings(s: IngestorSettings) -> list[Feed]:
    """The feeds that are switched on (an empty URL switches a feed off)."""
    feeds = []
    if s.cwfis_csv_url.strip():
        feeds.append(Feed(SOURCE_CSV, s.cwfis_csv_url.strip(), "legacy-csv"))
    if s.cwfis_wfs_url.strip():
        fmt = s.ingestor_wfs_format.strip()
        kind = "wfs-csv" if fmt.lower() == "csv" else "wfs-geojson"
        wanted = {"service": "WFS", "version": "2.0.0", "request": "GetFeature",
                  "typeNames": s.ingestor_wfs_layer, "outputFormat": fmt}
        if s.ingestor_wfs_cql_filter.strip():
            wanted["CQL_FILTER"] = s.ingestor_wfs_cql_filter.strip()
        given = {k.lower() for k, _ in parse_qsl(urlsplit(s.cwfis_wfs_url).query)}
        params = {k: v for k, v in wanted.items() if k.lower() not in given}
        feeds.append(Feed(SOURCE_WFS, s.cwfis_wfs_url.strip(), kind, params))
    return feeds


@dataclass
class FeedOutcome:
    source: str
    outcome: str  # ok, not_modified, unchanged, unavailable, http_error, malformed, suspect
    snapshot: FeedSnapshot | None = None  # the feed's snapshot after this poll (new or kept)
    new_data: bool = False
    reason: str | None = None
    error: str | None = None


@dataclass
class PollReport:
    outcomes: dict[str, FeedOutcome] = field(default_factory=dict)
    events: list[FireObserved] = field(default_factory=list)
    alerts: list[PipelineAlert] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Handlers:
    """Polls the feeds and publishes what changed (``fires.observed.v1``; feed trouble on
    ``pipeline.alerts.v1``); it consumes no topic. ``publish`` sends one event to its topic."""

    def __init__(self, settings: IngestorSettings, publish: Publish, *,
                 client: httpx.AsyncClient | None = None, store: StateStore | None = None) -> None:
        self.settings = settings
        self.publish = publish
        self.feeds = feeds_from_settings(settings)
        self.filter = FireFilter.from_settings(settings.ingestor_agencies, settings.ingestor_bbox,
                                               settings.ingestor_daydelta)
        self.policy = RetryPolicy(settings.ingestor_retry_attempts, settings.ingestor_retry_backoff_s,
                                  settings.ingestor_retry_backoff_max_s,
                                  settings.ingestor_total_timeout_s, settings.ingestor_max_feed_bytes)
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.ingestor_read_timeout_s,
                                  connect=settings.ingestor_connect_timeout_s),
            headers={"User-Agent": "emberwatch-ingestor/0.1"}, follow_redirects=True)
        self.store = store or StateStore(settings.state_dir)
        self.state = self.store.load()
        self._failing: dict[str, tuple[str, float]] = {}  # source -> (reason, when last alerted)
        self._update_gauges()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    # --- one poll ------------------------------------------------------------------------------
    async def poll_once(self) -> PollReport:
        started = time.perf_counter()
        report = PollReport()
        outcomes = await asyncio.gather(*(self._poll_feed(f) for f in self.feeds))
        report.outcomes = {o.source: o for o in outcomes}
        enabled = {f.source for f in self.feeds}
        feeds = {o.source: o.snapshot for o in outcomes if o.snapshot is not None}
        new_data = any(o.new_data for o in outcomes) or set(self.state.feeds) - enabled
        new_state = IngestorState(feeds=feeds, tracked=self.state.tracked)
        if new_data and feeds:
            merged = merge_feeds({name: snap.fires for name, snap in feeds.items()})
            snapshot_at = max(s.snapshot_at for s in feeds.values())
            # a feed switched off is not a feed that lost its fires: what only it reported is
            # no longer tracked, without an "out" event
            switched_off = set(self.state.feeds) - enabled
            before = {k: r for k, r in self.state.tracked.items()
                      if k in merged or r.source not in switched_off}
            changes, tracked, dropped = detect_changes(
                before, merged, snapshot_at, in_scope=self.filter.in_scope,
                admits=lambda r: self.filter.admits(r, r.snapshot_at or snapshot_at))
            report.events = [self._event(c) for c in changes]
            report.dropped = dropped + [k for k in self.state.tracked if k not in before]
            if dropped:
                log.info("fires no longer tracked: outside the filters now",
                         extra={"count": len(dropped), "fire_keys": dropped[:20]})
            await self._publish_all(report.events)  # before the state is saved: at-least-once
            new_state.tracked = tracked
            for ev in report.events:
                metrics.EVENTS.labels(ev.change).inc()
        changed_state = new_data or any(
            o.outcome == "unchanged" for o in outcomes)  # validators moved on
        self.state = new_state
        if changed_state:
            self.store.save(new_state)
        for o in outcomes:
            metrics.POLLS.labels(o.source, o.outcome).inc()
            alert = self._alert_for(o)
            if alert is not None:
                report.alerts.append(alert)
                await self._publish_alert(alert, o.source)
        self._update_gauges()
        metrics.POLL_SECONDS.observe(time.perf_counter() - started)
        log.info("poll done", extra={
            "outcomes": {s: o.outcome for s, o in report.outcomes.items()},
            "events": dict(Tally(e.change for e in report.events)), "tracked": len(self.state.tracked)})
        return report

    async def _poll_feed(self, feed: Feed) -> FeedOutcome:
        prev = self.state.feeds.get(feed.source)
        validators = Validators(prev.etag, prev.last_modified) if prev else Validators()
        now = _now()
        try:
            res = await fetch(self.client, feed.url, params=feed.params, validators=validators,
                              policy=self.policy, feed=feed.source)
        except FetchError as exc:
            outcome = "unavailable" if exc.retryable else "too_large" if exc.reason == "too_large" else "http_error"
            log.error("feed fetch failed; keeping the last good snapshot", extra={
                "feed": feed.source, "reason": exc.reason, "attempts": exc.attempts, "error": str(exc)})
            return FeedOutcome(feed.source, outcome, prev, reason=exc.reason,
                               error=f"{exc} (after {exc.attempts} attempt(s))")
        if res.not_modified and prev is not None:
            return FeedOutcome(feed.source, "not_modified", replace(prev, fetched_at=now))
        sha = hashlib.sha256(res.body).hexdigest()
        if prev is not None and sha == prev.body_sha256:
            kept = replace(prev, fetched_at=now, etag=res.etag, last_modified=res.last_modified)
            return FeedOutcome(feed.source, "unchanged", kept)
        lm = res.last_modified_at()
        try:
            if "html" in res.content_type.lower():
                raise FeedError("html_page", f"the feed answered with {res.content_type}, not data")
            parsed = await asyncio.to_thread(parse, feed.kind, res.body, (lm or now).year,
                                             self.settings.ingestor_max_text_chars)
            self._count_rows(feed.source, parsed)
            self._check_plausible(parsed, prev)
        except FeedError as exc:
            outcome = "suspect" if exc.reason == "suspect_drop" else "malformed"
            log.error("feed answered with an unusable snapshot; keeping the last good one", extra={
                "feed": feed.source, "reason": exc.reason, "error": str(exc),
                "content_type": res.content_type, "bytes": len(res.body)})
            return FeedOutcome(feed.source, outcome, prev, reason=exc.reason, error=str(exc))
        snapshot_at = lm or parsed.data_time or now
        for rec in parsed.fires.values():
            rec.snapshot_at = snapshot_at
        snap = FeedSnapshot(parsed.fires, snapshot_at, now, res.etag, res.last_modified, sha)
        log.info("feed snapshot", extra={
            "feed": feed.source, "layout": parsed.layout, "rows": parsed.rows,
            "fires": len(parsed.fires), "rejected": len(parsed.rejected),
            "duplicates": parsed.duplicates, "snapshot_at": snapshot_at.isoformat(),
            "attempts": res.attempts})
        return FeedOutcome(feed.source, "ok", snap, new_data=True)

    def _count_rows(self, source: str, parsed: ParseResult) -> None:
        metrics.ROWS.labels(source, "accepted").inc(len(parsed.fires))
        metrics.ROWS.labels(source, "duplicate").inc(parsed.duplicates)
        metrics.ROWS.labels(source, "rejected").inc(len(parsed.rejected))
        for reason, n in parsed.rejected_by_reason().items():
            metrics.ROWS_REJECTED.labels(source, reason).inc(n)
        for kind, n in parsed.warnings.items():
            metrics.ROW_WARNINGS.labels(source, kind).inc(n)
        for rej in parsed.rejected[:MAX_REJECTION_LOGS]:
            log.warning("row rejected", extra={"feed": source, "line": rej.line, "reason": rej.reason,
                                               "detail": rej.detail, "raw": rej.raw})
        if parsed.rejected:
            log.warning("rows rejected in this snapshot", extra={
                "feed": source, "total": len(parsed.rejected),
                "by_reason": parsed.rejected_by_reason(),
                "not_logged_individually": max(0, len(parsed.rejected) - MAX_REJECTION_LOGS)})

    def _check_plausible(self, parsed: ParseResult, prev: FeedSnapshot | None) -> None:
        s = self.settings
        if parsed.rows and len(parsed.rejected) > s.ingestor_max_reject_fraction * parsed.rows:
            raise FeedError("mostly_rejected", f"{len(parsed.rejected)} of {parsed.rows} rows "
                                               f"rejected: {parsed.rejected_by_reason()}")
        if prev is not None and len(prev.fires) >= s.ingestor_drop_check_min_fires:
            kept = len(parsed.fires) / len(prev.fires)
            if 1.0 - kept > s.ingestor_max_drop_fraction:
                raise FeedError("suspect_drop", f"the snapshot has {len(parsed.fires)} fires against "
                                                f"{len(prev.fires)} in the last good one: cut off?")

    # --- events --------------------------------------------------------------------------------
    def _event(self, c: Change) -> FireObserved:
        r = c.record
        return FireObserved.create(
            producer=SERVICE, occurred_at=c.snapshot_at,  # data time, not wall time: replays match
            fire_key=r.fire_key, source=r.source, agency=r.agency, name=r.name, lat=r.lat,
            lon=r.lon, start_date=r.start_date, hectares=r.hectares, stage_of_control=r.stage,
            response_type=r.response_type, change=c.change, snapshot_at=c.snapshot_at)

    async def _publish_all(self, events: list[FireObserved]) -> None:
        if not events:
            return
        gate = asyncio.Semaphore(max(1, self.settings.ingestor_publish_concurrency))

        async def one(ev: FireObserved) -> None:
            async with gate:
                await self.publish(ev)

        results = await asyncio.gather(*(one(e) for e in events), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            metrics.POLLS.labels("all", "publish_failed").inc()
            raise RuntimeError(f"{len(failed)} of {len(events)} events not published; the state is "
                               f"not saved, the next poll re-emits them: {failed[0]!r}") from failed[0]

    # --- alerts --------------------------------------------------------------------------------
    def _alert_for(self, o: FeedOutcome) -> PipelineAlert | None:
        component = f"{SERVICE}:{o.source}"
        if o.outcome in ("ok", "not_modified", "unchanged"):
            if o.source in self._failing:
                reason, _ = self._failing.pop(o.source)
                return make_alert(
                    SERVICE, "feed_recovered", "info", f"CWFIS feed {o.source} answers again (it failed with "
                    f"{reason}).", {"feed": o.source, "previous_reason": reason}, component=component)
            return None
        reason = o.reason or o.outcome
        last = self._failing.get(o.source)
        now = time.monotonic()
        if last and last[0] == reason and now - last[1] < self.settings.ingestor_alert_repeat_s:
            return None
        self._failing[o.source] = (reason, now)
        name = {"unavailable": "feed_unavailable", "http_error": "feed_http_error",
                "malformed": "feed_malformed", "suspect": "feed_suspect",
                "too_large": "feed_too_large"}.get(o.outcome, "feed_error")
        kept = o.snapshot
        keeping = (f"keeping the last good snapshot of {kept.snapshot_at.isoformat()} "
                   f"({len(kept.fires)} fires); no fire is marked out" if kept else
                   "no good snapshot yet; nothing is emitted for this feed")
        return make_alert(
            SERVICE, name, "warning", f"CWFIS feed {o.source}: {o.error}; {keeping}.", component=component,
            details={"feed": o.source, "reason": reason, "outcome": o.outcome,
                     "last_good_snapshot_at": kept.snapshot_at.isoformat() if kept else None,
                     "fires_kept": len(kept.fires) if kept else 0})

    async def _publish_alert(self, alert: PipelineAlert, source: str) -> None:
        if await publish_alert(self.publish, alert):
            metrics.ALERTS.labels(source, alert.alert).inc()

    # --- gauges --------------------------------------------------------------------------------
    def _update_gauges(self) -> None:
        by_stage = Tally(metrics.stage_label(r.stage) for r in self.state.tracked.values())
        for stage in ("OC", "BH", "UC", "EX", "other", "none"):
            metrics.FIRES.labels(stage).set(by_stage.get(stage, 0))
        now = datetime.now(UTC)
        for name, snap in self.state.feeds.items():
            metrics.SNAPSHOT_TIME.labels(name).set(snap.snapshot_at.timestamp())
            metrics.SNAPSHOT_AGE.labels(name).set((now - snap.fetched_at).total_seconds())

    # --- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a failed poll is logged and retried at the next interval."""
        log.info("ingestor polling", extra={"feeds": [f.source for f in self.feeds],
                                            "interval_s": self.settings.ingestor_poll_interval_s})
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll failed; the state was not saved and the next poll retries")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.ingestor_poll_interval_s)
            except TimeoutError:
                self._update_gauges()
