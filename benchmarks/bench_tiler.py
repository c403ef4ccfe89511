"""Tiler throughput against the Mapbox simulator with added latency, vs a one-request-at-a-time loop.

Starts a private Tansu and the Mapbox simulator (its own process, ``latency_ms`` added to every
request), then measures side by side:

* ``reference loop``: what the reference project does — for each location one ``GET`` of the Static
  Images API (a new connection each time, like ``requests.get``), bytes written to a file;
* ``tiler, one fire at a time``: the real tiler (fetch, validate, content-addressed store, state,
  TileReady published to Kafka) on the shared one-message-at-a-time consumer (``tiler_batch_size=1``);
  each fire's positive and negative are fetched concurrently;
* ``tiler, batches``: the same with the concurrent batch consumer (default settings: 16 fires per
  batch, at most 16 requests in flight), over ``TILES`` tiles, sampling this process's RSS at the
  start, the middle and the end.

The simulator serves ``pool`` imagery (pre-rendered scenes, stamped per request) so that its own
rendering, on the same 2 cores, does not cap the measurement; ``--render`` renders every image.

Usage: python benchmarks/bench_tiler.py [TILES] [--baseline N] [--latency-ms MS] [--in-flight K] [--render]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from emberwatch.common.telemetry import free_port  # noqa: E402
from emberwatch.contracts import FireObserved, TileReady  # noqa: E402
from emberwatch.messaging.broker import build_broker  # noqa: E402
from emberwatch.stack import manage  # noqa: E402
from services.tiler.main import build_tiler, consume  # noqa: E402
from services.tiler.settings import TilerSettings  # noqa: E402
from tests.conftest import stack_settings  # noqa: E402

TOKEN = "pk.bench"
console = Console(width=150)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def locations(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(round(rng.uniform(49.0, 62.0), 5), round(rng.uniform(-128.0, -66.0), 5)) for _ in range(n)]


def start_simulator(latency_ms: float, render: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, EMBERWATCH_MAPBOX_SIM_LATENCY_MS=str(latency_ms),
               EMBERWATCH_MAPBOX_SIM_TOKENS=TOKEN, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "simulators.mapbox.main", str(port)], env=env, cwd=REPO,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_admin/stats", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("simulator did not start") from None
            time.sleep(0.1)
    httpx.post(f"{url}/_admin/config", json={"imagery": "render" if render else "pool"})
    return proc, url


def sim_stats(url: str, reset: bool = False) -> dict:
    if reset:
        return httpx.post(f"{url}/_admin/reset").json()
    return httpx.get(f"{url}/_admin/stats").json()


def reference_loop(url: str, n: int, out: Path) -> dict:
    """One request at a time, a new connection per request, bytes to a file."""
    out.mkdir(parents=True, exist_ok=True)
    sim_stats(url, reset=True)
    started = time.perf_counter()
    for i, (lat, lon) in enumerate(locations(n, seed=1)):
        r = httpx.get(f"{url}/styles/v1/mapbox/satellite-v9/static/{lon},{lat},15,0/350x350",
                      params={"access_token": TOKEN}, timeout=30)
        r.raise_for_status()
        (out / f"{i}.jpg").write_bytes(r.content)
    seconds = time.perf_counter() - started
    return {"tiles": n, "seconds": seconds, "max_in_flight": sim_stats(url)["max_in_flight"]}


def fire(i: int, lat: float, lon: float) -> FireObserved:
    return FireObserved.create(producer="bench", fire_key=f"bench:{i}", source="cwfis-csv", agency="ab",
                               name=f"B{i}", lat=lat, lon=lon, hectares=20.0, change="new",
                               snapshot_at=datetime(2026, 7, 1, tzinfo=UTC))


async def run_tiler(kafka, url: str, tiles: int, batch: int, in_flight: int, workdir: Path,
                    tag: str) -> dict:
    token_file = workdir / "token"
    token_file.write_text(TOKEN)
    s = TilerSettings(kafka_bootstrap_servers=kafka.kafka_bootstrap_servers, state_dir=workdir / tag,
                      mapbox_api_url=url, tiler_token_file=token_file, tiler_negatives_per_fire=1,
                      tiler_batch_size=batch, tiler_max_in_flight=in_flight, kafka_session_timeout_ms=6000)
    topic = f"{FireObserved.TOPIC}.bench-{tag}"
    broker = build_broker(s, f"bench-{tag}")
    emitted = 0
    handled = 0
    marks: dict[str, float] = {}
    done = asyncio.Event()
    goal = 0  # fires

    async def publish(event) -> None:
        nonlocal emitted
        await broker.publish(event.to_bytes(), topic=f"{event.TOPIC}.bench-{tag}", key=event.key().encode())
        if isinstance(event, TileReady):
            emitted += 1

    tiler, client = build_tiler(s, publish)

    async def on_fire(event: FireObserved) -> None:
        nonlocal handled
        try:
            await tiler.on_fire(event)
        finally:  # counted whatever the outcome (a rejected image must not hang the benchmark)
            handled += 1
            if goal and handled - 1 >= goal // 2 and "mid" not in marks:
                marks["mid"] = rss_mb()
            if goal and handled - 1 >= goal:
                done.set()

    consume(broker, s, topic, on_fire, group_id=f"bench-{tag}")
    await broker.start()
    try:
        await broker.publish(fire(-1, 45.0, -75.0).to_bytes(), topic=topic, key=b"warm-up")
        while handled < 1:  # group joined, connections open, pools warm
            await asyncio.sleep(0.05)
        warm = emitted
        sim_stats(url, reset=True)
        marks["start"] = rss_mb()
        goal = tiles // 2
        started = time.perf_counter()
        for i, (lat, lon) in enumerate(locations(tiles // 2, seed=2)):
            f = fire(i, lat, lon)
            await broker.publish(f.to_bytes(), topic=topic, key=f.key().encode())
        await asyncio.wait_for(done.wait(), timeout=1800)
        seconds = time.perf_counter() - started
        marks["end"] = rss_mb()
    finally:
        await broker.stop()
        await client.aclose()
    stats = sim_stats(url)
    files = sum(1 for p in (workdir / tag / "tiles").rglob("*") if p.is_file())
    return {"tiles": emitted - warm, "seconds": seconds, "max_in_flight": stats["max_in_flight"],
            "client_max_in_flight": client.max_in_flight_seen, "files": files, **marks}


def render_cost(n: int = 200) -> dict:
    """Milliseconds to render (and JPEG-encode) one 350×350 simulator image; half show a fire."""
    import statistics

    from simulators.mapbox.app import _encode
    from simulators.mapbox.imagery import Fire, FireField, render_static

    places = locations(n, seed=3)
    rng = random.Random(4)
    fires = FireField([Fire(lat, lon, rng.choice([1.0, 20.0, 300.0, 5000.0])) for lat, lon in places[::2]])
    render_ms, encode_ms = [], []
    for lat, lon in places:
        t0 = time.perf_counter()
        arr = render_static(lat, lon, 15, 350, 350, fires=fires)
        t1 = time.perf_counter()
        _encode(arr, "jpg90")
        render_ms.append((t1 - t0) * 1000)
        encode_ms.append((time.perf_counter() - t1) * 1000)
    fire_ms, plain_ms = render_ms[::2], render_ms[1::2]
    q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))]  # noqa: E731
    return {"fire_p50": statistics.median(fire_ms), "fire_p90": q(fire_ms, 0.9),
            "plain_p50": statistics.median(plain_ms), "plain_p90": q(plain_ms, 0.9),
            "encode_p50": statistics.median(encode_ms)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tiles", nargs="?", type=int, default=5000)
    ap.add_argument("--baseline", type=int, default=100, help="Tiles for the reference loop.")
    ap.add_argument("--sequential", type=int, default=300, help="Tiles for the one-fire-at-a-time tiler.")
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--render", action="store_true", help="Render every image (simulator CPU-bound).")
    ap.add_argument("--render-cost-only", action="store_true", help="Only time the simulator's renderer.")
    args = ap.parse_args()

    cost = render_cost()
    cost_table = Table(title="Simulator imagery cost per 350×350 image (ms, this process, 200 places)")
    for col in ("render, fire in view p50 / p90", "render, no fire p50 / p90", "JPEG q90 encode p50"):
        cost_table.add_column(col, justify="right")
    cost_table.add_row(f"{cost['fire_p50']:.1f} / {cost['fire_p90']:.1f}",
                       f"{cost['plain_p50']:.1f} / {cost['plain_p90']:.1f}", f"{cost['encode_p50']:.1f}")
    console.print(cost_table)
    if args.render_cost_only:
        return

    work = Path(tempfile.mkdtemp(prefix="bench-tiler-"))
    kafka = stack_settings(work / "stack", "kafka")
    manage.up(kafka)
    sim, url = start_simulator(args.latency_ms, args.render)
    try:
        rows = []
        ref = reference_loop(url, args.baseline, work / "reference")
        rows.append(("reference loop (1 request at a time)", ref))
        console.print(f"reference: {ref['tiles'] / ref['seconds']:.1f} tiles/s")
        seq = asyncio.run(run_tiler(kafka, url, args.sequential, 1, args.in_flight, work, "seq"))
        rows.append(("tiler, one fire at a time (shared subscribe)", seq))
        console.print(f"tiler, one fire at a time: {seq['tiles'] / seq['seconds']:.1f} tiles/s")
        fast = asyncio.run(run_tiler(kafka, url, args.tiles, 16, args.in_flight, work, "batch"))
        rows.append((f"tiler, batches of 16 fires, ≤{args.in_flight} in flight", fast))
    finally:
        os.killpg(sim.pid, 15)
        sim.wait(10)
        manage.down(kafka)
        shutil.rmtree(work, ignore_errors=True)

    base = ref["tiles"] / ref["seconds"]
    table = Table(title=f"Tiler vs reference loop — simulator +{args.latency_ms:.0f} ms per request, "
                        f"{'rendered' if args.render else 'pooled'} imagery, zoom 15, 350×350")
    for col in ("path", "tiles", "seconds", "tiles/s", "speed-up", "max in flight (sim)",
                "RSS MB start / mid / end"):
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, r in rows:
        rate = r["tiles"] / r["seconds"]
        rss = (f"{r['start']:.0f} / {r['mid']:.0f} / {r['end']:.0f}" if "start" in r and "mid" in r else "-")
        table.add_row(name, f"{r['tiles']:,}", f"{r['seconds']:.1f}", f"{rate:.1f}", f"{rate / base:.1f}×",
                      str(r["max_in_flight"]), rss)
    console.print(table)
    console.print(f"tiles stored (batch run, warm-up included): {fast['files']:,}; client-side max in flight: "
                  f"{fast['client_max_in_flight']}")


if __name__ == "__main__":
    main()
