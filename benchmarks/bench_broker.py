"""Publish→consume throughput and latency of enveloped events through the local broker (Tansu).

Starts a private Tansu on a free port and creates one single-partition topic per path. Each path
publishes N ``TileReady`` events and consumes them in the same process, side by side in one run:

* raw aiokafka, batched: ``send`` without waiting per chunk then wait for the acks; ``getmany`` and
  one manual commit per fetched batch (the ceiling: no envelope, no validation, no metrics);
* Emberwatch batched: ``publish_events`` (the services' producer path) and ``subscribe`` (the
  services' consumer: validation against the contract, retries/DLQ wiring, metrics, one commit per
  handled batch);
* Emberwatch one at a time: ``publish_event`` per event (each waits for its ack), same consumer.

Prints a table with the ratio to raw. Usage: python benchmarks/bench_broker.py [N] [--chunk C]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.contracts import TileReady  # noqa: E402
from emberwatch.messaging.broker import build_broker, publish_event, publish_events  # noqa: E402
from emberwatch.messaging.consumer import subscribe  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402

GROUP_JOIN_S = 4  # about half the session timeout on Tansu


def on_topic(topic: str) -> type[TileReady]:
    """``TileReady`` routed to the benchmark's own topic (the contract's topic is shared)."""
    return type("BenchTileReady", (TileReady,), {"TOPIC": topic})


def tile_event(i: int, model: type[TileReady] = TileReady) -> TileReady:
    tid = f"{i:064x}"
    return model.create(producer="bench", tile_id=tid, uri=f"file:///tiles/{tid}.jpg", lat=50.0,
                        lon=-120.0, zoom=15, size_px=350, label="wildfire", split="train",
                        fire_key=f"bc:{i}", provider="mapbox-static")


def summary(n: int, t_pub: float, t_all: float, lat: list[float]) -> dict:
    lat = sorted(lat)
    return {"publish/s": n / t_pub, "end-to-end/s": n / t_all,
            "p50 ms": 1000 * statistics.median(lat), "p99 ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


async def create_topics(settings, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in names])
    finally:
        await admin.close()


async def bench_emberwatch(settings, n: int, topic: str, chunk: int, *, batched: bool) -> dict:
    received: list[float] = []
    sent_at: dict[str, float] = {}
    done = asyncio.Event()

    async def handle(event: TileReady) -> None:
        received.append(time.perf_counter() - sent_at[event.event_id])
        if len(received) >= n:
            done.set()

    model = on_topic(topic)
    consumer_broker = build_broker(settings, "bench-consumer")
    subscribe(consumer_broker, topic, model, handle, service="bench", group_id=f"g-{topic}",
              session_timeout_ms=6000, max_records=settings.kafka_batch_max_records)
    await consumer_broker.start()
    await asyncio.sleep(GROUP_JOIN_S)
    producer = build_broker(settings, "bench-producer")
    await producer.start()
    events = [tile_event(i, model) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        part = events[start:start + chunk]
        now = time.perf_counter()
        for e in part:
            sent_at[e.event_id] = now
        if batched:
            await publish_events(producer, part, service="bench")
        else:
            for e in part:
                sent_at[e.event_id] = time.perf_counter()
                await publish_event(producer, e, service="bench")
    t_pub = time.perf_counter() - t0
    await asyncio.wait_for(done.wait(), 600)
    t_all = time.perf_counter() - t0
    await producer.stop()
    await consumer_broker.stop()
    return summary(n, t_pub, t_all, received)


async def bench_raw(settings, n: int, topic: str, chunk: int) -> dict:
    payloads = [tile_event(i).to_bytes() for i in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=0,
                                max_batch_size=settings.kafka_producer_batch_bytes, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=f"g-{topic}", auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=6000)
    await consumer.start()
    await producer.start()
    await asyncio.sleep(GROUP_JOIN_S)
    lat: list[float] = []
    sent_at: list[float] = [0.0] * n

    async def consume() -> None:
        while len(lat) < n:
            batch = await consumer.getmany(timeout_ms=100, max_records=settings.kafka_batch_max_records)
            now = time.perf_counter()
            for recs in batch.values():
                for r in recs:
                    lat.append(now - sent_at[int(r.key)])
            if batch:
                await consumer.commit()

    task = asyncio.create_task(consume())
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        now = time.perf_counter()
        futures = []
        for i in range(start, min(n, start + chunk)):
            sent_at[i] = now
            futures.append(await producer.send(topic, payloads[i], key=str(i).encode()))
        await asyncio.gather(*futures)
    t_pub = time.perf_counter() - t0
    await asyncio.wait_for(task, 600)
    t_all = time.perf_counter() - t0
    await producer.stop()
    await consumer.stop()
    return summary(n, t_pub, t_all, lat)


async def main(n: int, chunk: int, single_n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = stack_settings(Path(tmp), "kafka")
        manage.up(settings)
        try:
            await create_topics(settings, ["bench-raw", "bench-ew", "bench-ew-single"])
            size = len(tile_event(0).to_bytes())
            raw = await bench_raw(settings, n, "bench-raw", chunk)
            batched = await bench_emberwatch(settings, n, "bench-ew", chunk, batched=True)
            single = await bench_emberwatch(settings, single_n, "bench-ew-single", chunk, batched=False)
        finally:
            manage.down(settings)
    rows = [
        (f"raw aiokafka, batched (send per chunk of {chunk}, getmany, commit per batch)", n, raw),
        ("Emberwatch publish_events + subscribe (validate, metrics, commit per batch)", n, batched),
        ("Emberwatch publish_event one at a time (waits each ack) + subscribe", single_n, single),
    ]
    table = Table(title=f"Local broker (Tansu, memory), one partition, TileReady events of {size} B, "
                        f"consumer batches ≤ {settings.kafka_batch_max_records}")
    table.add_column("path")
    table.add_column("events", justify="right")
    for col in raw:
        table.add_column(col, justify="right")
    table.add_column("end-to-end vs raw", justify="right")
    for name, count, r in rows:
        table.add_row(name, f"{count:,}", *(f"{v:,.0f}" for v in r.values()),
                      f"{r['end-to-end/s'] / raw['end-to-end/s']:.0%}")
    Console(width=200).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=20000, help="events per batched path")
    parser.add_argument("--chunk", type=int, default=1000, help="events handed to the producer at once")
    parser.add_argument("--single", type=int, default=5000, help="events for the one-at-a-time path")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.chunk, args.single))
