"""Publish→consume throughput and latency of enveloped events through the local broker (Tansu).

Starts a private Tansu on a free port, then for each payload size publishes N events through the
shared FastStream wiring and consumes them with the shared at-least-once consumer (validation +
commit per message), side by side with a raw aiokafka producer/consumer on the same broker.
Prints a table. Usage: python benchmarks/bench_broker.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.contracts import TileReady  # noqa: E402
from emberwatch.messaging.broker import build_broker  # noqa: E402
from emberwatch.messaging.consumer import subscribe  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402


def tile_event(i: int) -> TileReady:
    tid = f"{i:064x}"
    return TileReady.create(producer="bench", tile_id=tid, uri=f"file:///tiles/{tid}.jpg", lat=50.0,
                            lon=-120.0, zoom=15, size_px=350, label="wildfire", split="train",
                            fire_key=f"bc:{i}", provider="mapbox-static")


async def bench_emberwatch(settings, n: int, topic: str) -> dict:
    received: list[float] = []
    sent_at: dict[str, float] = {}
    done = asyncio.Event()

    async def handle(event: TileReady) -> None:
        received.append(time.perf_counter() - sent_at[event.event_id])
        if len(received) >= n:
            done.set()

    consumer_broker = build_broker(settings, "bench-consumer")
    subscribe(consumer_broker, topic, TileReady, handle, service="bench", group_id=f"g-{topic}",
              session_timeout_ms=6000)
    await consumer_broker.start()
    await asyncio.sleep(4)  # group join (about half the session timeout on Tansu)
    producer = build_broker(settings, "bench-producer")
    await producer.start()
    events = [tile_event(i) for i in range(n)]
    t0 = time.perf_counter()
    for e in events:
        sent_at[e.event_id] = time.perf_counter()
        await producer.publish(e.to_bytes(), topic=topic, key=e.key().encode())
    t_pub = time.perf_counter() - t0
    await asyncio.wait_for(done.wait(), 300)
    t_all = time.perf_counter() - t0
    await producer.stop()
    await consumer_broker.stop()
    lat = sorted(received)
    return {"publish/s": n / t_pub, "end-to-end/s": n / t_all,
            "p50 ms": 1000 * statistics.median(lat), "p99 ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


async def bench_raw(settings, n: int, topic: str) -> dict:
    payloads = [tile_event(i).to_bytes() for i in range(n)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=0)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=f"g-{topic}", auto_offset_reset="earliest",
                                enable_auto_commit=True, session_timeout_ms=6000)
    await consumer.start()
    await producer.start()
    await asyncio.sleep(4)
    lat: list[float] = []
    t0 = time.perf_counter()

    async def consume():
        while len(lat) < n:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for recs in batch.values():
                for r in recs:
                    lat.append(now - float(r.key.decode()))

    task = asyncio.create_task(consume())
    for p in payloads:
        await producer.send_and_wait(topic, p, key=str(time.perf_counter()).encode())
    t_pub = time.perf_counter() - t0
    await asyncio.wait_for(task, 300)
    t_all = time.perf_counter() - t0
    await producer.stop()
    await consumer.stop()
    lat.sort()
    return {"publish/s": n / t_pub, "end-to-end/s": n / t_all,
            "p50 ms": 1000 * statistics.median(lat), "p99 ms": 1000 * lat[int(0.99 * (len(lat) - 1))]}


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = stack_settings(Path(tmp), "kafka")
        manage.up(settings)
        try:
            size = len(tile_event(0).to_bytes())
            rows = [
                ("raw aiokafka (send_and_wait, auto-commit)", await bench_raw(settings, n, "bench-raw")),
                ("emberwatch publish_event + subscribe (validate, commit per msg)",
                 await bench_emberwatch(settings, n, "bench-ew")),
            ]
        finally:
            manage.down(settings)
    table = Table(title=f"Local broker (Tansu, memory), {n} TileReady events of {size} B")
    table.add_column("path")
    for col in rows[0][1]:
        table.add_column(col, justify="right")
    for name, r in rows:
        table.add_row(name, *(f"{v:,.1f}" for v in r.values()))
    Console().print(table)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
