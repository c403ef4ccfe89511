"""How fast a consuming service drains a backlog of its topic: the trainer's durable tile index and
the tiler's shared fire registry.

Starts a private Tansu on a free port, publishes N valid ``TileReady`` events to ``tiles.ready`` and
N ``FireObserved`` updates (re-polls of 1,000 known fires, the bulk of a season's replay) to
``fires.observed`` (one partition each) and then, side by side in one run:

* raw aiokafka: one consumer reads the whole topic (``getmany``), no validation, no side effect;
* the trainer's subscription as it is wired (``services/trainer/main.py``: batches validated and
  recorded in one SQLite transaction each, ``synchronous=FULL``, commit per batch);
* the trainer's per-record handler through ``subscribe`` (one transaction per tile), the way the
  trainer consumed before, on fewer events;
* the tiler as it is wired (``services/tiler/main.py``): each update recorded in the coordination
  database (SQLite here) and checked against the announced negatives. New fires are not in it: they
  wait on Mapbox (``benchmarks/bench_tiler.py``);
* the gatekeeper's live-tile subscription as it is wired, on a replay of tiles its champion has
  already scored (set aside without inference; new tiles wait on inference, serving.md);
* the gatekeeper's relabel subscription as it is wired (one durable write of its corrections per
  batch), and one relabel at a time on fewer events (a JSON rewrite per relabel, as it was);
* the notifier as it is wired (``services/notifier/main.py``), replaying detections it has already
  posted: each is looked up in its delivery store and suppressed. New detections wait on Discord's
  rate limit (5 posts per 2 s), not on the consumer.

The services log as they run (JSON at INFO, to a file).

The drain rate counts from the first event handled to the last (group join excluded). Prints a
table. Usage: python benchmarks/bench_drain.py [N] [--single M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from rich.console import Console  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.common.config import narrow  # noqa: E402
from emberwatch.common.logging import configure_logging  # noqa: E402
from emberwatch.contracts import Detection, FireObserved, TileReady, TileRelabelled, Topic  # noqa: E402
from emberwatch.messaging.broker import build_broker, publish_events  # noqa: E402
from emberwatch.messaging.subscription import Delivery, subscribe  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from services.gatekeeper.gatekeeper import SERVICE as GATEKEEPER  # noqa: E402
from services.gatekeeper.gatekeeper import Gatekeeper  # noqa: E402
from services.gatekeeper.handlers import Handlers as GatekeeperHandlers  # noqa: E402
from services.gatekeeper.metrics import CHAMPION_TILES  # noqa: E402
from services.gatekeeper.serving.repository import write_serving  # noqa: E402
from services.gatekeeper.settings import GatekeeperSettings  # noqa: E402
from services.notifier.delivery_store import DeliveryStore  # noqa: E402
from services.notifier.main import build_app as build_notifier_app  # noqa: E402
from services.notifier.settings import NotifierSettings  # noqa: E402
from services.tiler.main import build_tiler, consume  # noqa: E402
from services.tiler.settings import TilerSettings  # noqa: E402
from services.trainer.handlers import SERVICE  # noqa: E402
from services.trainer.handlers import Handlers as TrainerHandlers  # noqa: E402
from services.trainer.main import build_service  # noqa: E402
from services.trainer.pipeline import Trainer  # noqa: E402
from services.trainer.settings import TrainerSettings  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402


def tile(i: int) -> TileReady:
    tid = f"{i:064x}"
    return TileReady.create(producer="bench", tile_id=tid, uri=f"file:///tiles/{tid}.jpg",
                            lat=50.0 + i * 1e-4, lon=-120.0, zoom=15, size_px=350,
                            label="wildfire" if i % 2 else "nowildfire", split="train",
                            fire_key=f"bc:{i}", provider="mapbox-static")


def fire_update(i: int) -> FireObserved:
    from datetime import UTC, datetime, timedelta

    k = i % 1000
    return FireObserved.create(producer="bench", fire_key=f"bc:{k}", source="cwfis-csv", agency="bc",
                               name=f"f{k}", lat=50.0 + (k // 40) * 0.2, lon=-125.0 + (k % 40) * 0.2,
                               hectares=10.0 + i, change="updated",
                               snapshot_at=datetime(2026, 7, 1, tzinfo=UTC) + timedelta(minutes=i // 1000))


def relabel(i: int) -> TileRelabelled:
    return TileRelabelled.create(producer="bench", tile_id=f"{i:064x}", action="retire" if i % 3 else "relabel",
                                 previous_label="nowildfire", label=None if i % 3 else "wildfire",
                                 fire_key=f"later:{i}", matched_fire_key=f"bc:{i}", distance_km=1.0,
                                 reason="a later fire")


def detection(i: int) -> Detection:
    tid = f"{i:064x}"
    return Detection.create(producer="bench", tile_id=tid, uri=f"file:///tiles/{tid}.jpg", lat=50.0,
                            lon=-120.0, fire_key=f"bc:{i}", label="wildfire", model_name="wildfire",
                            model_version="1", wildfire_probability=0.9, threshold=0.5)


async def fill(settings, n: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                                   for t in (Topic.TILES_READY, Topic.FIRES_OBSERVED, Topic.DETECTIONS,
                                             Topic.TILES_RELABELLED)])
    finally:
        await admin.close()
    producer = build_broker(settings, "bench-fill")
    await producer.start()
    try:
        for make in (tile, fire_update, detection, relabel):
            events = [make(i) for i in range(n)]
            for start in range(0, n, 1000):
                await publish_events(producer, events[start:start + 1000], service="bench")
    finally:
        await producer.stop()


async def timed_drain(start: Awaitable[None], handled: Callable[[], int], n: int) -> dict:
    """Start a service's consumers and time its drain of ``n`` events: from the first handled to the
    last, polled every 10 ms while the broker starts (a fast drain may be under way, or done, before
    ``start()`` returns: start-up goes on joining the service's other subscriptions)."""
    starting = asyncio.create_task(start)
    first, started = None, time.perf_counter()
    deadline = time.perf_counter() + 900
    while (count := handled()) < n and time.perf_counter() < deadline:
        if count and first is None:
            first = time.perf_counter()
        await asyncio.sleep(0.01)
    took = time.perf_counter() - (first or started)
    await starting
    return {"events": count, "s": took, "events/s": count / took if took else float("nan")}


async def drain_raw(settings, n: int, topic: str = Topic.TILES_READY) -> dict:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=f"bench-raw-{topic}", auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    seen, first = 0, None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.kafka_batch_max_records)
            got = sum(len(v) for v in batch.values())
            if got and first is None:
                first = time.perf_counter()
            seen += got
        took = time.perf_counter() - first
    finally:
        await consumer.stop()
    return {"events": n, "s": took, "events/s": n / took}


def received(service: str, topic: str) -> int:
    """Records the service's subscription to ``topic`` took in (FastStream's middleware counts them)."""
    labels = {"app_name": service, "broker": "kafka", "handler": topic}
    return int(REGISTRY.get_sample_value("faststream_received_messages_total", labels) or 0)


async def drain_trainer(settings, n: int, state: Path, group: str, *, per_record: bool) -> dict:
    s = narrow(settings, TrainerSettings).model_copy(update={"state_dir": state, "trainer_group_id": group})
    if per_record:
        broker = build_broker(s, SERVICE)
        handlers = TrainerHandlers(Trainer(s), broker)
        subscribe(broker, Topic.TILES_READY, TileReady, handlers.on_tile_ready,
                  Delivery.from_settings(s, service=SERVICE, group_id=group, max_records=1))
    else:
        broker, handlers = build_service(s)
    index = handlers.trainer.index  # the scheduler is not started: no training interferes
    try:
        return await timed_drain(broker.start(), index.count, n)
    finally:
        await broker.stop()


async def drain_tiler(settings, n: int, state: Path) -> dict:
    s = narrow(settings, TilerSettings).model_copy(update={"state_dir": state, "mapbox_api_url": "http://127.0.0.1:9"})
    broker = build_broker(s, "tiler")

    async def publish(event) -> None:  # nothing is published for updates of fires without negatives
        raise AssertionError(f"unexpected publish: {event}")

    tiler, client = build_tiler(s, publish)
    consume(broker, s, Topic.FIRES_OBSERVED, tiler.on_fire, group_id=s.tiler_group_id, handle_many=tiler.on_fires)
    try:
        return await timed_drain(broker.start(), lambda: received("tiler", Topic.FIRES_OBSERVED), n)
    finally:
        await broker.stop()
        await client.aclose()


async def drain_notifier(settings, n: int, state: Path) -> dict:
    """A replay of detections the notifier has already posted (a reset consumer group, `emberwatch
    replay`): each is looked up in the delivery store and suppressed. New posts wait on Discord's rate
    limit (5 per 2 s), not on the consumer: the webhook here is a closed port, and nothing is posted."""
    s = narrow(settings, NotifierSettings).model_copy(update={
        "state_dir": state, "discord_webhook_url": SecretStr("http://127.0.0.1:9/api/webhooks/1/bench")})
    store = DeliveryStore(s.state_file)
    store.mark_posted([detection(i).event_id for i in range(n)], "detection", "bench")
    store.close()
    app = build_notifier_app(s)
    try:
        return await timed_drain(app.start(), lambda: received("notifier", Topic.DETECTIONS), n)
    finally:
        await app.stop()


async def drain_gatekeeper_relabels(settings, n: int, state: Path, group: str, *, per_record: bool) -> dict:
    """The gatekeeper's relabel subscription as ``services/gatekeeper/main.py`` wires it (bulk: one
    durable write of the corrections per batch), or one event at a time (a write per relabel)."""
    s = narrow(settings, GatekeeperSettings).model_copy(update={"state_dir": state})
    broker = build_broker(s, GATEKEEPER)
    handlers = GatekeeperHandlers(broker, Gatekeeper(s))
    if per_record:
        subscribe(broker, Topic.TILES_RELABELLED, TileRelabelled, handlers.on_relabel,
                  Delivery.from_settings(s, service=GATEKEEPER, group_id=group, max_records=1))
    else:
        subscribe(broker, Topic.TILES_RELABELLED, TileRelabelled, handlers.on_relabel,
                  Delivery.from_settings(s, service=GATEKEEPER, group_id=group, mode="bulk"),
                  handle_many=handlers.on_relabels)
    corrections = handlers.gatekeeper.corrections
    try:
        return await timed_drain(broker.start(), lambda: len(corrections), n)
    finally:
        await broker.stop()


async def drain_gatekeeper_replay(settings, n: int, state: Path) -> dict:
    """The gatekeeper's live-tile subscription as wired, on a replay of tiles its champion has
    already scored (a reset consumer group, ``emberwatch replay``): set aside a batch at a time,
    without inference. New tiles drain at the inference rate instead (serving.md)."""
    s = narrow(settings, GatekeeperSettings).model_copy(update={
        "state_dir": state, "triton_model_repository": state / "repo", "triton_url": "127.0.0.1:9"})
    broker = build_broker(s, GATEKEEPER)
    gatekeeper = Gatekeeper(s)
    write_serving(gatekeeper.serving.repo, champion="1")
    gatekeeper.live_scores.record_many("1", [(tile(i).tile_id, 0.5) for i in range(n)])
    handlers = GatekeeperHandlers(broker, gatekeeper)
    subscribe(broker, Topic.TILES_READY, TileReady, handlers.on_tile,
              Delivery.from_settings(s, service=GATEKEEPER, group_id="bench-gk-tiles", mode="bulk"),
              handle_many=handlers.on_tiles)
    replayed = CHAMPION_TILES.labels("replayed")
    try:
        return await timed_drain(broker.start(), lambda: int(replayed._value.get()), n)
    finally:
        await broker.stop()


async def main(n: int, single: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # The services log as they do when they run (JSON at INFO), into a file rather than the table.
        configure_logging("INFO", "json")
        logging.getLogger().handlers[0].setStream(open(Path(tmp) / "services.log", "w"))  # noqa: SIM115
        settings = stack_settings(Path(tmp), "kafka")
        manage.up(settings)
        try:
            await fill(settings, n)
            rows = [
                ("raw aiokafka getmany (no validation, no side effect)", await drain_raw(settings, n)),
                ("trainer as wired: bulk delivery, one transaction per batch",
                 await drain_trainer(settings, n, Path(tmp) / "bulk", "bench-bulk", per_record=False)),
                ("trainer per record: subscribe + on_tile_ready (one transaction per tile)",
                 await drain_trainer(settings, single, Path(tmp) / "single", "bench-single",
                                     per_record=True)),
                ("raw aiokafka getmany on fires.observed", await drain_raw(settings, n, Topic.FIRES_OBSERVED)),
                ("tiler as wired: fire updates into the shared registry (SQLite)",
                 await drain_tiler(settings, n, Path(tmp) / "tiler")),
                ("gatekeeper live tiles as wired: a replay of tiles the champion already scored",
                 await drain_gatekeeper_replay(settings, n, Path(tmp) / "gk-tiles")),
                ("raw aiokafka getmany on tiles.relabelled", await drain_raw(settings, n, Topic.TILES_RELABELLED)),
                ("gatekeeper relabels as wired: bulk delivery, one durable write per batch",
                 await drain_gatekeeper_relabels(settings, n, Path(tmp) / "gk-bulk", "bench-gk-bulk",
                                                 per_record=False)),
                ("gatekeeper relabels per record: one JSON rewrite per relabel (before)",
                 await drain_gatekeeper_relabels(settings, single, Path(tmp) / "gk-single", "bench-gk-single",
                                                 per_record=True)),
                ("raw aiokafka getmany on detections", await drain_raw(settings, n, Topic.DETECTIONS)),
                ("notifier as wired: a replay of detections already posted (delivery store, SQLite)",
                 await drain_notifier(settings, n, Path(tmp) / "notifier")),
            ]
        finally:
            manage.down(settings)
    table = Table(title=f"Draining {n:,} events per topic into the trainer's tile index and the tiler's "
                        f"registry (Tansu, one partition, batches ≤ {settings.kafka_batch_max_records})")
    for col in ("path", "events", "s", "events/s"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, r in rows:
        table.add_row(name, f"{r['events']:,}", f"{r['s']:.2f}", f"{r['events/s']:,.0f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=20000, help="events in the backlog")
    parser.add_argument("--single", type=int, default=2000, help="events for the per-record path")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.single))
