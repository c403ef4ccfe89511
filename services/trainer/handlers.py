"""The trainer's handlers.

A ``tiles.ready.v1`` event is recorded in the durable tile index (before the offset is committed) and
counts towards the next training; a ``tiles.relabelled.v1`` event (a fire reported later lies near
a fire-free tile) retires or relabels that tile for every later training. A ``training.requests.v1``
command makes a training due. When one
is due, the trainer embeds only the tiles its cache has not seen, checks the data, searches the head,
runs the leakage check (location-only and hand-statistics baselines on the same splits), logs the
run to MLflow, registers the version (the gatekeeper alone sets aliases) and announces it on
``models.candidates.v1``, with the leakage check's warning when a baseline comes close to the CNN.

Each model line (``EMBERWATCH_MODEL_LINES``) has its own scheduler: a product's tiles make only its own
line's training due; the lines train one after the other.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from faststream.kafka import KafkaBroker

from emberwatch.common.retries import Backoff, async_retrying
from emberwatch.common.tile_store import UnsupportedTileUri, check_tile_uri
from emberwatch.contracts import (
    LabelFeedback,
    ModelCandidate,
    TileReady,
    TileRelabelled,
    Topic,
    TrainingRequest,
)
from emberwatch.contracts.events import SplitCounts
from emberwatch.contracts.products import MAPBOX
from emberwatch.messaging.alerts import Severity, make_alert, publish_alert
from emberwatch.messaging.broker import publish_event
from emberwatch.messaging.consumer import PermanentError, current_origin
from emberwatch.messaging.subscription import Received, Route
from services.trainer import metrics as m
from services.trainer.models import TrainingOutcome
from services.trainer.pipeline import Trainer
from services.trainer.schedule import TrainingScheduler
from services.trainer.settings import SERVICE

log = logging.getLogger(__name__)



class Handlers:
    def __init__(self, trainer: Trainer, broker: KafkaBroker) -> None:
        self.trainer = trainer
        self.broker = broker
        s = trainer.settings
        # one scheduler per model line: a product's new tiles make only its own line's training due
        self.schedulers = {
            product: TrainingScheduler(
                functools.partial(self.train_and_announce, product=product),
                threshold=s.trainer_train_after_new_tiles,
                debounce_s=s.trainer_debounce_s,
                max_wait_s=s.trainer_max_wait_s,
                schedule_s=s.trainer_schedule_s,
                failure_retry_s=s.trainer_failure_retry_s,
                initial_new=trainer.index.new_since_training(product),
            )
            for product in s.lines()
        }
        self.scheduler = next(iter(self.schedulers.values()))  # the first line's (Mapbox by default)
        self._one_training = asyncio.Lock()  # the lines train one after the other, never side by side
        self.outcomes: list[TrainingOutcome] = []
        self._loop_tasks: list[asyncio.Task] = []
        m.KNOWN_TILES.set(trainer.index.count())

    def _tiles_arrived(self, product: str | None, n: int = 1) -> None:
        """New or changed tiles of ``product`` count towards its line (none when it has no line)."""
        scheduler = self.schedulers.get(product or MAPBOX)
        if scheduler is not None:
            scheduler.tiles_arrived(n)

    # --- consumers ---------------------------------------------------------------------------
    async def on_tile_ready(self, event: TileReady) -> None:
        try:  # a URI outside the configured store is refused before it is recorded
            check_tile_uri(event.uri, event.tile_id, self.trainer.settings)
        except UnsupportedTileUri as exc:
            raise PermanentError(f"tile {event.tile_id}: {exc}") from exc
        topic, partition, offset = current_origin()
        new = await asyncio.to_thread(
            self.trainer.index.record, tile_id=event.tile_id, label=event.label, split=event.split,
            uri=event.uri, fire_key=event.fire_key, lat=event.lat, lon=event.lon, product=event.product,
            dnbr=event.dnbr, hot_pixels=event.hot_pixels, visible=event.visible,
            event_id=event.event_id, topic=topic, partition=partition, offset=offset,
        )
        if new:
            m.TILES_RECORDED.inc()
            m.KNOWN_TILES.inc()
            self._tiles_arrived(event.product)

    async def on_tiles_ready(self, batch: list[Received[TileReady]]) -> None:
        """A fetched batch of tiles, recorded in one durable transaction before the offsets are
        committed. A tile the trainer cannot read fails the batch, which is then handled one tile at
        a time (``on_tile_ready``) so that only that tile goes to the DLQ."""
        for r in batch:
            try:
                check_tile_uri(r.event.uri, r.event.tile_id, self.trainer.settings)
            except UnsupportedTileUri as exc:
                raise PermanentError(f"tile {r.event.tile_id}: {exc}") from exc
        rows = [dict(tile_id=r.event.tile_id, label=r.event.label, split=r.event.split, uri=r.event.uri,
                     fire_key=r.event.fire_key, lat=r.event.lat, lon=r.event.lon, product=r.event.product,
                     dnbr=r.event.dnbr, hot_pixels=r.event.hot_pixels, visible=r.event.visible,
                     event_id=r.event.event_id, topic=r.topic, partition=r.partition, offset=r.offset)
                for r in batch]
        new = await asyncio.to_thread(self.trainer.index.record_many, rows)
        if new:
            m.TILES_RECORDED.inc(new)
            m.KNOWN_TILES.inc(new)
            if len({r.event.product for r in batch}) == 1:
                self._tiles_arrived(batch[0].event.product, new)
            else:  # a mixed batch: which of its tiles were new is not known, so each counts once
                for r in batch:
                    self._tiles_arrived(r.event.product)

    async def on_tile_relabelled(self, event: TileRelabelled) -> None:
        """A fire reported later lies near a fire-free tile: the next training leaves it out (retire)
        or counts it as a wildfire tile (relabel). Recorded before the offset is committed."""
        changed = await asyncio.to_thread(
            self.trainer.index.relabel, tile_id=event.tile_id, action=event.action, label=event.label,
            fire_key=event.fire_key, event_id=event.event_id)
        if changed:
            m.TILES_RELABELLED.labels(event.action).inc()
            log.info("tile label changed by a later fire", extra={
                "tile_id": event.tile_id, "action": event.action, "fire_key": event.fire_key,
                "distance_km": event.distance_km})
            self._tiles_arrived(await asyncio.to_thread(self.trainer.index.product_of, event.tile_id))

    async def on_label_feedback(self, event: LabelFeedback) -> None:
        """A person's label on a tile: it wins over the automatic one in the next training.
        Recorded before the offset is committed; a redelivered event changes nothing."""
        changed = await asyncio.to_thread(
            self.trainer.index.record_human_label, tile_id=event.tile_id, label=event.label,
            labelled_by=event.labelled_by, event_id=event.event_id, given_at=event.occurred_at.isoformat())
        if changed:
            m.HUMAN_LABELS.labels(event.label).inc()
            log.info("a person labelled a tile", extra={
                "tile_id": event.tile_id, "label": event.label, "labelled_by": event.labelled_by})
            self._tiles_arrived(await asyncio.to_thread(self.trainer.index.product_of, event.tile_id))

    async def on_training_request(self, event: TrainingRequest) -> None:
        log.info("training requested", extra={"reason": event.reason, "requested_by": event.requested_by})
        for scheduler in self.schedulers.values():  # the request names no product: every line trains
            scheduler.request(f"{event.reason} (by {event.requested_by})")

    # --- training ------------------------------------------------------------------------------
    async def train_and_announce(self, reason: str, product: str = MAPBOX) -> bool:
        """Run one training of ``product``'s line in a worker thread; announce its candidate. True when handled."""
        async with self._one_training:
            return await self._train_and_announce(reason, product)

    async def _train_and_announce(self, reason: str, product: str) -> bool:
        try:
            outcome = await asyncio.to_thread(self.trainer.train, reason, product)
        except Exception as exc:
            m.TRAININGS.labels("failed").inc()
            log.exception("training failed", extra={"reason": reason, "product": product})
            await self._alert("training_failed", "critical", f"training failed: {type(exc).__name__}: {exc}",
                              {"reason": reason, "product": product})
            return False
        self.outcomes.append(outcome)
        if outcome.status == "skipped":
            # a requested training of a line that has no tiles at all is not news: only Mapbox alerts then
            has_tiles = product == MAPBOX or any(sum(c.values()) for c in (outcome.check.counts.values()
                                                                          if outcome.check else ()))
            if "requested:" in reason and has_tiles:
                what = "training data" if product == MAPBOX else f"{product} training data"
                await self._alert("training_skipped", "warning",
                                  f"{what} fails the checks: " + "; ".join(outcome.problems),
                                  {"counts": outcome.check.counts if outcome.check else {}, "product": product})
            return True
        await self._announce(outcome)
        await asyncio.to_thread(self.trainer.index.mark_trained, outcome.seq, product)
        return True

    async def _announce(self, outcome: TrainingOutcome) -> None:
        cand = outcome.candidate
        assert cand is not None and outcome.check is not None
        event = ModelCandidate.create(
            producer=SERVICE, model_name=cand.model_name, version=cand.version, run_id=cand.run_id,
            artifact_uri=cand.artifact_uri, product=outcome.product, dataset_digest=outcome.dataset_digest,
            counts={split: SplitCounts(**c) for split, c in outcome.check.counts.items()},
            metrics=cand.metrics, backbone_id=self.trainer.backbone.backbone_id,
            backbone_weights=self.trainer.backbone.weights_source, leakage=cand.leakage,
        )
        if cand.leakage and cand.leakage.get("warning"):
            log.warning("candidate carries a leakage warning", extra={"version": cand.version,
                                                                      "warning": cand.leakage["warning"]})
        backoff = Backoff(attempts=self.trainer.settings.trainer_publish_attempts, first_s=0.5, max_s=10)
        async for attempt in async_retrying(backoff, what="publishing the candidate", logger=log,
                                            extra={"version": cand.version}):
            with attempt:
                await publish_event(self.broker, event, service=SERVICE)
        m.CANDIDATES.inc()
        log.info("candidate announced", extra={"model": cand.model_name, "version": cand.version, "run_id": cand.run_id,
                                               "reused": cand.reused, "seconds": round(outcome.seconds, 2)})

    async def _alert(self, alert: str, severity: Severity, message: str, details: dict[str, Any]) -> None:
        await publish_alert(lambda e: publish_event(self.broker, e, service=SERVICE),
                            make_alert(SERVICE, alert, severity, message, details))

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not self._loop_tasks:
            self._loop_tasks = [asyncio.create_task(scheduler.loop(), name=f"trainer-scheduler-{product}")
                                for product, scheduler in self.schedulers.items()]

    async def stop(self) -> None:
        tasks, self._loop_tasks = self._loop_tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass


def routes(h: Handlers) -> tuple[Route, ...]:
    """What the trainer consumes, one consumer group per topic (the trainer's group id plus the
    suffix), and what follows: the tiles and requests make a training due, whose candidate goes to
    ``models.candidates.v1`` (and its alerts to ``pipeline.alerts.v1``)."""
    trains = (Topic.MODELS_CANDIDATES, Topic.PIPELINE_ALERTS)
    return (
        Route(Topic.TILES_READY, TileReady, h.on_tile_ready, handle_many=h.on_tiles_ready, publishes=trains),
        Route(Topic.TILES_RELABELLED, TileRelabelled, h.on_tile_relabelled, publishes=trains,
              group_suffix="-relabels"),
        Route(Topic.TRAINING_REQUESTS, TrainingRequest, h.on_training_request, publishes=trains,
              group_suffix="-requests"),
        Route(Topic.LABELS_FEEDBACK, LabelFeedback, h.on_label_feedback, publishes=trains,
              group_suffix="-feedback"),
    )
