"""What the notifier does with each event.

A candidate, a decision or an important alert is posted at once; a low-priority alert (an
``info`` alert, or a ``new fire`` style alert) waits in the durable digest queue and is posted with
its burst as one digest. Every event is posted exactly once: before posting we look its id up in
the delivery store (replays and restarts are suppressed), and we record it as posted only after
Discord confirmed the message. Candidates, decisions and detections arrive a fetched batch at a
time: what was already posted (a replay) is looked up for the whole batch at once and suppressed
with one log line. Discord's permanent refusals go to the DLQ; its outages are retried (see
``discord_webhook``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from emberwatch.contracts import Detection, ModelCandidate, ModelDecision, PipelineAlert
from emberwatch.contracts.envelope import Envelope
from emberwatch.messaging.consumer import PermanentError
from emberwatch.messaging.subscription import Received, Route
from services.notifier.delivery_store import DeliveryStore
from services.notifier.discord_webhook import DiscordRejected, DiscordUnavailable, DiscordWebhook
from services.notifier.fit_discord_limits import fit_discord_limits
from services.notifier.metrics import DIGEST_SIZE, DUPLICATES, POSTS, SHORTENED, UNCERTAIN
from services.notifier.models import Topics
from services.notifier.render import Renderer, mark_uncertain

log = logging.getLogger(__name__)

# Called with (event body, topic, error text) when digest events must go to the DLQ.
DeadLetter = Callable[[bytes, str, str], Awaitable[None]]

E = TypeVar("E", ModelCandidate, ModelDecision, Detection)


def _kind(event: Envelope) -> str:
    """The ``kind`` a post of ``event`` is counted under (as ``_post_once`` counts it)."""
    if isinstance(event, ModelDecision):
        return event.decision
    return "detection" if isinstance(event, Detection) else "candidate"


class Handlers:
    def __init__(
        self,
        *,
        store: DeliveryStore,
        webhook: DiscordWebhook,
        renderer: Renderer,
        digest_severities: frozenset[str],
        digest_alerts: frozenset[str],
        digest_window_s: float,
        digest_max_events: int,
        dead_letter: DeadLetter,
    ) -> None:
        self.store, self.webhook, self.renderer = store, webhook, renderer
        self.digest_severities, self.digest_alerts = digest_severities, digest_alerts
        self.digest_window_s, self.digest_max_events = digest_window_s, digest_max_events
        self.dead_letter = dead_letter
        self._digest_lock = asyncio.Lock()
        # Discord's refusals met in a batch, for the one-at-a-time pass that follows it (the
        # subscription's fallback): the event goes to the DLQ without asking Discord twice.
        self._refused: dict[str, PermanentError] = {}

    # --- the topics -----------------------------------------------------------------------
    async def on_candidate(self, event: ModelCandidate) -> None:
        await self._post_once(event, "candidate", self.renderer.candidate(event))

    async def on_decision(self, event: ModelDecision) -> None:
        await self._post_once(event, event.decision, self.renderer.decision(event))

    async def on_alert(self, event: PipelineAlert) -> None:
        if self.is_low_priority(event):
            if self.store.enqueue(event.event_id, event.TOPIC, event.to_bytes()):
                log.info("alert queued for the digest", extra={"event_id": event.event_id})
            else:
                DUPLICATES.labels("digest").inc()
                log.info("duplicate alert suppressed", extra={"event_id": event.event_id})
            return
        await self._post_once(event, "alert", self.renderer.alert(event))

    async def on_detection(self, event: Detection) -> None:
        """A live tile the champion called a wildfire: posted with the buttons a person answers with."""
        await self._post_once(event, "detection", self.renderer.detection(event))

    # --- the same, a fetched batch at a time (a replay is mostly events already posted) ----------
    async def on_candidates(self, batch: list[Received[ModelCandidate]]) -> None:
        await self._post_new([r.event for r in batch], self.on_candidate)

    async def on_decisions(self, batch: list[Received[ModelDecision]]) -> None:
        await self._post_new([r.event for r in batch], self.on_decision)

    async def on_detections(self, batch: list[Received[Detection]]) -> None:
        await self._post_new([r.event for r in batch], self.on_detection)

    async def _post_new(self, events: list[E], post: Callable[[E], Awaitable[None]]) -> None:
        """Post the events of a batch that were never posted, in order; the others are suppressed
        with one lookup and one log line for the batch (a replay of 20,000 detections is 20,000
        duplicates, not 20,000 log lines)."""
        seen = self.store.states([e.event_id for e in events])
        suppressed = Counter(_kind(e) for e in events if seen.get(e.event_id) in ("posted", "queued"))
        for kind, count in suppressed.items():
            DUPLICATES.labels(kind).inc(count)
        if suppressed:
            log.info("duplicate events suppressed", extra={"events": sum(suppressed.values()),
                                                            "kinds": dict(suppressed)})
        for event in events:
            if seen.get(event.event_id) not in ("posted", "queued"):
                try:
                    await post(event)
                except PermanentError as exc:
                    self._refused[event.event_id] = exc
                    raise

    def is_low_priority(self, event: PipelineAlert) -> bool:
        return event.severity in self.digest_severities or event.alert in self.digest_alerts

    # --- posting ---------------------------------------------------------------------------------
    async def _post_once(self, event: Envelope, kind: str, payload: dict[str, Any]) -> None:
        refused = self._refused.pop(event.event_id, None)
        if refused is not None:  # refused a moment ago in its batch: straight to the DLQ
            raise refused
        state = self.store.state(event.event_id)
        if state in ("posted", "queued"):
            DUPLICATES.labels(kind).inc()
            log.info("duplicate event suppressed", extra={"event_id": event.event_id, "kind": kind})
            return
        uncertain = self.store.begin(event.event_id, kind)
        if uncertain:
            UNCERTAIN.inc()
            log.warning("posting again after an unconfirmed attempt",
                        extra={"event_id": event.event_id, "kind": kind})
            payload = mark_uncertain(payload)
        message_id = await self._send(payload, kind, [event.event_id])
        self.store.mark_posted([event.event_id], kind, message_id)
        log.info("posted to Discord", extra={"event_id": event.event_id, "kind": kind,
                                             "message_id": message_id})

    async def _send(self, payload: dict[str, Any], kind: str, event_ids: list[str]) -> str | None:
        fitted = fit_discord_limits(payload)
        if fitted != payload:
            SHORTENED.inc()
        try:
            result = await self.webhook.post(fitted)
        except DiscordRejected:
            POSTS.labels(kind, "rejected").inc()
            for event_id in event_ids:
                self.store.forget_attempt(event_id)
            raise
        except DiscordUnavailable:
            POSTS.labels(kind, "failed").inc()
            for event_id in event_ids:
                self.store.forget_attempt(event_id)
            raise
        POSTS.labels(kind, "posted").inc()
        return result.message_id

    # --- the digest ------------------------------------------------------------------------------
    def digest_due(self, now: float | None = None) -> bool:
        count, oldest = self.store.queue_stats()
        if not count:
            return False
        now = time.time() if now is None else now
        return count >= self.digest_max_events or (oldest is not None and now - oldest >= self.digest_window_s)

    async def flush_digest(self) -> int:
        """Post one digest of the oldest queued events; returns how many it carried (0: none)."""
        async with self._digest_lock:
            queued = self.store.queued(self.digest_max_events)
            if not queued:
                return 0
            alerts: list[PipelineAlert] = []
            broken = []
            for item in queued:
                try:
                    alerts.append(PipelineAlert.from_bytes(item.body))
                except ValueError as exc:
                    broken.append((item, exc))
            for item, exc in broken:  # cannot happen for rows we wrote, but never lose one silently
                await self.dead_letter(item.body, item.topic, f"unreadable queued event: {exc}")
                self.store.drop_queued([item.event_id])
            if not alerts:
                return 0
            ids = [a.event_id for a in alerts]
            payload = self.renderer.digest(alerts)
            if any(item.attempts > 0 for item in queued):
                UNCERTAIN.inc()
                payload = mark_uncertain(payload)
            self.store.note_digest_attempt(ids)
            try:
                message_id = await self._send(payload, "digest", [])
            except DiscordRejected as exc:
                log.error("digest refused by Discord; its events go to the DLQ",
                          extra={"events": len(alerts), "error": str(exc)})
                for alert in alerts:
                    await self.dead_letter(alert.to_bytes(), alert.TOPIC, str(exc))
                self.store.drop_queued(ids)
                return 0
            except DiscordUnavailable:
                self.store.clear_digest_attempts(ids)  # Discord said no: nothing was posted
                raise
            self.store.mark_posted(ids, "digest", message_id)
            DIGEST_SIZE.observe(len(alerts))
            log.info("digest posted", extra={"events": len(alerts), "message_id": message_id})
            return len(alerts)

    async def run_digest_loop(self, stop: asyncio.Event, poll_s: float = 0.25, retry_s: float = 5.0) -> None:
        """Post digests until ``stop`` is set; a Discord outage keeps the events queued.

        Stopping waits for a digest in flight (so shutdown does not open the crash window).
        """

        async def pause(seconds: float) -> None:
            try:
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            except TimeoutError:
                pass

        while not stop.is_set():
            try:
                if self.digest_due():
                    await self.flush_digest()
                    continue
            except DiscordUnavailable as exc:
                log.warning("digest not posted yet, will retry", extra={"error": str(exc)})
                await pause(retry_s)
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive; the events stay queued
                log.exception("digest loop error")
                await pause(retry_s)
                continue
            await pause(poll_s)


def routes(n: Handlers, topics: Topics, *, detections: bool) -> tuple[Route, ...]:
    """What the notifier consumes (one consumer group per topic: the notifier's group id plus the
    suffix); every handler posts to Discord, none publishes an event. Candidates, decisions and
    detections a batch at a time: what was already posted (a replay) is suppressed with one lookup
    per batch, and a batch that keeps failing is handled again one record at a time (the DLQ path).
    Alerts one at a time: the digest queues some of them. Detections only when ``detections``."""
    table = (
        Route(topics.candidates, ModelCandidate, n.on_candidate, handle_many=n.on_candidates,
              group_suffix="-candidates"),
        Route(topics.decisions, ModelDecision, n.on_decision, handle_many=n.on_decisions, group_suffix="-decisions"),
        Route(topics.alerts, PipelineAlert, n.on_alert, group_suffix="-alerts"),
    )
    if detections:
        table += (Route(topics.detections, Detection, n.on_detection, handle_many=n.on_detections,
                        group_suffix="-detections"),)
    return table
