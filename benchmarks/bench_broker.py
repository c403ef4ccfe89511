"""Publish→consume throughput and latency of enveloped events through the local broker (Tansu).

Starts a private Tansu on a free port and one topic per path and round (one partition, or
``--partitions P``). For each path a consumer runs in its own process per partition (as a service's
replicas do: one group, one partition each) and this process publishes N ``TileReady`` events to it
(the same records on every path: value and key); the paths alternate within each round, and the table
shows each path's median over the rounds, side by side:

* raw aiokafka, batched: ``send`` without waiting per chunk, then wait for the acks; ``getmany`` and
  one manual commit per fetched batch (no envelope, no validation, no metrics), once with aiokafka's
  own partitioner and once with Emberwatch's ``KeyPartitioner`` (the same partitions, less CPU); the
  faster of the two is the ceiling the ratio is taken against;
* Emberwatch batched: ``publish_events`` (the services' batch producer path: events serialised,
  redacted and packed into record batches per partition inside the timed loop) and ``subscribe`` with
  an ordered ``Delivery`` (the services' consumer: validation against the contract, retry/DLQ
  wiring, FastStream's Prometheus middleware, one commit per handled batch);
* Emberwatch bulk: ``publish_events`` and ``subscribe`` with ``Delivery(mode="bulk")`` (the trainer's
  and the tiler's consumer: the same validation and DLQ wiring, one handler call and one commit per
  fetched batch);
* Emberwatch one at a time: ``publish_event`` per event (each waits for its ack), same consumer.

End-to-end counts from the first send to the last event handled; latency is handled time minus the
record's Kafka timestamp (set when it was handed to the producer). The CPU columns say where the two
cores went, per event: the producer (this process, while it publishes), the consumer process (from
ready to its last event) and the broker (Tansu's process over the whole path). Usage:
python benchmarks/bench_broker.py [N] [--chunk C] [--single M] [--rounds R] [--partitions P]
python benchmarks/bench_broker.py [N] --consumers-alone [--rounds R]   (each consumer alone, pre-filled topic)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.common.config import Settings  # noqa: E402
from emberwatch.contracts import TileReady  # noqa: E402
from emberwatch.messaging.broker import build_broker, publish_event, publish_events  # noqa: E402
from emberwatch.messaging.consumer import current_record  # noqa: E402
from emberwatch.messaging.subscription import Delivery, Received, subscribe  # noqa: E402
from emberwatch.messaging.partitioner import KeyPartitioner  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from tests.conftest import env_for, stack_settings  # noqa: E402

def on_topic(topic: str) -> type[TileReady]:
    """``TileReady`` routed to the benchmark's own topic (the contract's topic is shared)."""
    return type("BenchTileReady", (TileReady,), {"TOPIC": topic})


def tile_event(i: int, model: type[TileReady] = TileReady) -> TileReady:
    tid = f"{i:064x}"
    return model.create(producer="bench", tile_id=tid, uri=f"file:///tiles/{tid[:2]}/{tid}.jpg", lat=50.0,
                        lon=-120.0, zoom=15, size_px=350, label="wildfire", split="train",
                        fire_key=f"bc:{i}", provider="mapbox-static")


# --- the consumer process -------------------------------------------------------------------------

def own_partition(consumer) -> int | None:
    """The one partition this member of the group was given, once the group is whole (one each)."""
    assigned = consumer.assignment() if consumer is not None else set()
    return next(iter(assigned)).partition if len(assigned) == 1 else None


async def consume(path: str, topic: str, expect: dict[int, int]) -> dict:
    """One member of the topic's group (one per partition): the events of its own partition
    (``expect``: how many each partition gets), handled as ``path`` says."""
    settings = Settings()
    lat: list[float] = []
    done = asyncio.Event()
    n = 0
    if path == "raw":
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                    group_id=f"g-{topic}", auto_offset_reset="earliest",
                                    enable_auto_commit=False, session_timeout_ms=6000)
        await consumer.start()
        while own_partition(consumer) is None:  # joined the group, and it is whole
            await asyncio.sleep(0.05)
        n = expect[own_partition(consumer)]
        print("ready", flush=True)
        cpu0 = time.process_time()
        while len(lat) < n:
            batch = await consumer.getmany(timeout_ms=100, max_records=settings.kafka_batch_max_records)
            now = time.time()
            for recs in batch.values():
                lat.extend(now - r.timestamp / 1000 for r in recs)
            if batch:
                await consumer.commit()
        last = time.time()
        await consumer.stop()
    else:
        async def handle(event: TileReady) -> None:
            lat.append(time.time() - current_record().timestamp / 1000)
            if len(lat) >= n:
                done.set()

        async def handle_many(batch: list[Received[TileReady]]) -> None:
            now = time.time()
            lat.extend(now - r.timestamp_ms / 1000 for r in batch)
            if len(lat) >= n:
                done.set()

        broker = build_broker(settings, "bench-consumer")
        delivery = Delivery.from_settings(settings, service="bench", group_id=f"g-{topic}", session_timeout_ms=6000)
        if path == "emberwatch-bulk":
            subscribe(broker, topic, on_topic(topic), handle, delivery.but(mode="bulk"), handle_many=handle_many)
        else:
            subscribe(broker, topic, on_topic(topic), handle, delivery)
        await broker.start()
        [sub] = broker.subscribers
        while own_partition(getattr(sub, "consumer", None)) is None:  # joined the group, and it is whole
            await asyncio.sleep(0.05)
        n = expect[own_partition(sub.consumer)]
        print("ready", flush=True)
        cpu0 = time.process_time()
        await done.wait()
        last = time.time()
        await broker.stop()
    cpu = time.process_time() - cpu0
    return {"last": last, "cpu s": cpu, "latencies": lat}


# --- the producer (this process) ------------------------------------------------------------------

async def produce(settings, path: str, topic: str, n: int, chunk: int) -> tuple[float, float, float]:
    """Publish n events; (time of the first send, seconds until all were acknowledged, CPU seconds)."""
    if path in ("raw", "raw-partitioner"):
        events = [tile_event(i) for i in range(n)]  # the same records as the other paths: value and key
        payloads = [(e.to_bytes(), e.key().encode()) for e in events]
        partitioner = KeyPartitioner() if path == "raw-partitioner" else DefaultPartitioner()
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=0,
                                    max_batch_size=settings.kafka_producer_batch_bytes, acks="all",
                                    partitioner=partitioner)
        await producer.start()
        t0, p0, c0 = time.time(), time.perf_counter(), time.process_time()
        for start in range(0, n, chunk):
            futures = [await producer.send(topic, value, key=key) for value, key in payloads[start:start + chunk]]
            await asyncio.gather(*futures)
        took, cpu = time.perf_counter() - p0, time.process_time() - c0
        await producer.stop()
        return t0, took, cpu
    model = on_topic(topic)
    events = [tile_event(i, model) for i in range(n)]
    broker = build_broker(settings, "bench-producer")
    await broker.start()
    t0, p0, c0 = time.time(), time.perf_counter(), time.process_time()
    if path in ("batched", "bulk"):
        for start in range(0, n, chunk):
            await publish_events(broker, events[start:start + chunk], service="bench")
    else:
        for e in events:
            await publish_event(broker, e, service="bench")
    took, cpu = time.perf_counter() - p0, time.process_time() - c0
    await broker.stop()
    return t0, took, cpu


def broker_cpu_s(settings) -> float:
    """CPU seconds Tansu's process has used so far (user + system, all its threads)."""
    record = manage._record(settings, "kafka")
    times = psutil.Process(record.pid).cpu_times() if record else None
    return times.user + times.system if times else float("nan")


def per_partition(n: int, partitions: int) -> dict[int, int]:
    """How many of the benchmark's n events each partition gets (the key decides, as it does for both
    partitioners: aiokafka's and ``KeyPartitioner`` agree)."""
    place, all_partitions = KeyPartitioner(), list(range(partitions))
    counts = Counter(place(tile_event(i).key().encode(), all_partitions, all_partitions) for i in range(n))
    return {p: counts.get(p, 0) for p in all_partitions}


async def run_path(settings, path: str, topic: str, n: int, chunk: int, partitions: int) -> dict:
    """One consumer process per partition (one group), then the events published; their figures."""
    expect = json.dumps(per_partition(n, partitions))
    mode = {"raw": "raw", "raw-partitioner": "raw", "bulk": "emberwatch-bulk"}.get(path, "emberwatch")
    consumers = [subprocess.Popen(
        [sys.executable, __file__, "--consume", mode, "--topic", topic, "--expect", expect, str(n)],
        env=env_for(settings), stdout=subprocess.PIPE, text=True, start_new_session=True)
        for _ in range(partitions)]
    try:
        for consumer in consumers:  # each has its own partition: the group is whole
            assert consumer.stdout.readline().strip() == "ready"
        broker0 = broker_cpu_s(settings)
        t0, t_pub, cpu_pub = await produce(settings, path, topic, n, chunk)
        outs = [json.loads(await asyncio.to_thread(c.stdout.readline)) for c in consumers]
        cpu_broker = broker_cpu_s(settings) - broker0
        for consumer in consumers:
            consumer.wait(60)
    finally:
        for consumer in consumers:
            if consumer.poll() is None:
                consumer.kill()
    lat = sorted(x for out in outs for x in out["latencies"])
    return {"publish/s": n / t_pub, "end-to-end/s": n / (max(out["last"] for out in outs) - t0),
            "p50 ms": 1000 * statistics.median(lat), "p99 ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
            "CPU µs/event: producer": 1e6 * cpu_pub / n,
            "consumer": 1e6 * sum(out["cpu s"] for out in outs) / n, "broker": 1e6 * cpu_broker / n}


PATHS = {  # path: (events, description)
    "raw": "raw aiokafka, batched (send per chunk, getmany, commit per batch), aiokafka's partitioner",
    "raw-partitioner": "raw aiokafka, batched, with Emberwatch's KeyPartitioner (the ceiling)",
    "batched": "Emberwatch publish_events + subscribe, ordered (validate, metrics, commit per batch)",
    "bulk": "Emberwatch publish_events + subscribe, bulk (validate, one handler call per batch)",
    "single": "Emberwatch publish_event one at a time (waits each ack) + subscribe",
}


async def main(n: int, chunk: int, single_n: int, rounds: int, partitions: int) -> None:
    runs: dict[str, list[dict]] = {path: [] for path in PATHS}
    with tempfile.TemporaryDirectory() as tmp:
        settings = stack_settings(Path(tmp), "kafka")
        manage.up(settings)
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
            await admin.start()
            await admin.create_topics([NewTopic(f"bench-{path}-{r}", num_partitions=partitions, replication_factor=1)
                                       for path in PATHS for r in range(rounds)])
            await admin.close()
            size = len(tile_event(0).to_bytes())
            for r in range(rounds):  # paths alternate, so a slow spell of the machine hits them all
                for path in PATHS:
                    count = single_n if path == "single" else n
                    runs[path].append(await run_path(settings, path, f"bench-{path}-{r}", count, chunk, partitions))
        finally:
            manage.down(settings)
    medians = {path: {col: statistics.median(run[col] for run in results) for col in results[0]}
               for path, results in runs.items()}
    ceiling = max(medians["raw"]["end-to-end/s"], medians["raw-partitioner"]["end-to-end/s"])
    where = "one partition" if partitions == 1 else f"{partitions} partitions"
    table = Table(title=f"Local broker (Tansu, memory), {where}, TileReady events of {size} B, "
                        f"a consumer process per partition, batches ≤ {settings.kafka_batch_max_records}; "
                        f"median of {rounds} round(s), paths alternating")
    table.add_column("path")
    table.add_column("events", justify="right")
    for col in medians["raw"]:
        table.add_column(col, justify="right")
    table.add_column("end-to-end per round", justify="right")
    table.add_column("vs the faster raw", justify="right")
    for path, name in PATHS.items():
        r = medians[path]
        per_round = " / ".join(f"{run['end-to-end/s']:,.0f}" for run in runs[path])
        table.add_row(name, f"{single_n if path == 'single' else n:,}",
                      *(f"{v:,.1f}" if "µs" in col or col in ("consumer", "broker") else f"{v:,.0f}"
                        for col, v in r.items()),
                      per_round, f"{r['end-to-end/s'] / ceiling:.0%}")
    Console(width=220).print(table)


# --- each consumer alone, on a pre-filled topic ---------------------------------------------------

async def fill(settings, topic: str, n: int) -> None:
    """Publish ``n`` TileReady events to ``topic`` before any consumer reads it."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5,
                                max_batch_size=settings.kafka_producer_batch_bytes, partitioner=KeyPartitioner())
    await producer.start()
    events = [tile_event(i) for i in range(n)]
    for start in range(0, n, 1000):
        await asyncio.gather(*[await producer.send(topic, e.to_bytes(), key=e.key().encode())
                               for e in events[start:start + 1000]])
    await producer.stop()


async def drain_raw(settings, topic: str, n: int, validate: bool) -> float:
    """Seconds from the first record to the last: getmany and a commit per batch (and the model's parse)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers, group_id=f"g-{topic}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen, first = 0, None
    while seen < n:
        batch = await consumer.getmany(timeout_ms=100, max_records=settings.kafka_batch_max_records)
        if batch and first is None:
            first = time.perf_counter()
        for recs in batch.values():
            seen += len(recs)
            if validate:
                for r in recs:
                    TileReady.from_bytes(r.value)
        if batch:
            await consumer.commit()
    took = time.perf_counter() - first
    await consumer.stop()
    return took


async def drain_subscribed(settings, topic: str, n: int) -> float:
    """Seconds from the first event handled to the last, through ``subscribe`` (ordered)."""
    done, marks = asyncio.Event(), []

    async def handle(event: TileReady) -> None:
        marks.append(time.perf_counter())
        if len(marks) >= n:
            done.set()

    broker = build_broker(settings, "bench-drain")
    subscribe(broker, topic, on_topic(topic), handle,
              Delivery.from_settings(settings, service="bench", group_id=f"g-{topic}"))
    await broker.start()
    await done.wait()
    await broker.stop()
    return marks[-1] - marks[0]


DRAINS = {
    "raw": "raw aiokafka getmany + commit per batch (the ceiling's consumer)",
    "raw-validate": "the same, plus TileReady.from_bytes on every record",
    "subscribe": "subscribe, ordered (FastStream subscriber, validation, DLQ path, metrics)",
}


async def consumers_alone(n: int, rounds: int) -> None:
    """Each consumer draining a pre-filled topic of the same ``n`` events; paths alternate per round."""
    results: dict[str, list[float]] = {path: [] for path in DRAINS}
    with tempfile.TemporaryDirectory() as tmp:
        settings = stack_settings(Path(tmp), "kafka")
        manage.up(settings)
        try:
            topics = {(path, r): f"drain-{path}-{r}" for r in range(rounds) for path in DRAINS}
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
            await admin.start()
            await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in topics.values()])
            await admin.close()
            for topic in topics.values():
                await fill(settings, topic, n)
            for (path, _), topic in topics.items():
                took = await (drain_subscribed(settings, topic, n) if path == "subscribe"
                              else drain_raw(settings, topic, n, validate=path == "raw-validate"))
                results[path].append(n / took)
        finally:
            manage.down(settings)
    table = Table(title=f"Each consumer alone on a pre-filled topic of {n:,} TileReady events, one partition, "
                        f"batches ≤ {settings.kafka_batch_max_records}; first record to last, {rounds} round(s)")
    for col in ("consumer", "records/s per round", "µs per record (median)"):
        table.add_column(col, justify="left" if col == "consumer" else "right")
    for path, name in DRAINS.items():
        table.add_row(name, " / ".join(f"{r:,.0f}" for r in results[path]),
                      f"{1e6 / statistics.median(results[path]):.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=20000, help="events per batched path")
    parser.add_argument("--chunk", type=int, default=1000, help="events handed to the producer at once")
    parser.add_argument("--single", type=int, default=2000, help="events for the one-at-a-time path")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all paths; the table shows medians")
    parser.add_argument("--consumers-alone", action="store_true",
                        help="instead: each consumer alone on a pre-filled topic (what validation costs per record)")
    parser.add_argument("--consume", choices=["raw", "emberwatch", "emberwatch-bulk"], help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--expect", help=argparse.SUPPRESS)
    parser.add_argument("--partitions", type=int, default=1,
                        help="partitions of each topic, with one consumer process each (one group)")
    args = parser.parse_args()
    if args.consume:
        expect = {int(p): count for p, count in json.loads(args.expect).items()}
        print(json.dumps(asyncio.run(consume(args.consume, args.topic, expect))), flush=True)
    elif args.consumers_alone:
        asyncio.run(consumers_alone(args.n, args.rounds))
    else:
        asyncio.run(main(args.n, args.chunk, args.single, args.rounds, args.partitions))
