"""Sentinel-2 per fire: STAC search + SCL assessment + windowed reads, seconds and bytes per tile, against the simulator.

    flock /tmp/ew-heavy.lock .venv/bin/python benchmarks/bench_sentinel2.py [FIRES] [--workers N]

Starts the STAC/COG simulator (simulators/stac) in this process over real HTTP (uvicorn, a free port), its
clock frozen 20 days after the fires' start and no random faults, places FIRES fires (default 20) at
seeded points across southern Canada, and runs ``Sentinel2Provider.fetch_pair`` for each, twice: cold
(the simulator renders and encodes each COG on its first request, on the same 2 cores) and warm (its COG
cache holds them: the client's own cost over local HTTP). Per fire: seconds, bytes the client counted
(COG block index + headers) per tile, bytes the simulator served, and the decision.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cachetools import LRUCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.tiler.sentinel2.provider import FireWindow, Sentinel2Provider
from services.tiler.sentinel2.search import StacCatalogue
from simulators.stac.app import Clock, SimState, create_app, parse_fires
from tests.support.serve_app import serve_in_thread

START = datetime(2026, 7, 10, tzinfo=UTC)


def _fires(n: int, seed: int) -> list[FireWindow]:
    rng = random.Random(seed)
    return [FireWindow(f"sim:{i}", lon=round(rng.uniform(-125, -70), 4), lat=round(rng.uniform(46, 56), 4),
                       start=START + timedelta(hours=rng.uniform(0, 72))) for i in range(n)]


def _pass(url: str, provider: Sentinel2Provider, fires: list[FireWindow], now: datetime) -> list[dict]:
    rows = []
    for fire in fires:
        before = httpx.get(f"{url}/_admin/stats").json().get("cog_bytes", 0)
        result = provider.fetch_pair(fire, now)
        served = httpx.get(f"{url}/_admin/stats").json().get("cog_bytes", 0) - before
        tiles = [t for t in (result.post, result.pre) if t is not None]
        rows.append({"fire": fire.fire_key, "seconds": round(result.seconds, 3),
                     "decision": type(result.decision).__name__, "tiles": len(tiles),
                     "bytes_per_tile": [t.bytes_read for t in tiles], "bytes_counted": result.bytes_read,
                     "bytes_served": served,
                     "dnbr": round(result.evidence.dnbr, 3) if result.evidence and result.evidence.dnbr else None,
                     "hot_pixels": result.evidence.hot_pixels if result.evidence else None})
    return rows


def _summary(rows: list[dict]) -> dict:
    per_tile = [b for r in rows for b in r["bytes_per_tile"]]
    served_per_tile = [r["bytes_served"] / r["tiles"] for r in rows if r["tiles"]]
    return {"fires": len(rows), "ready": sum(r["decision"] == "Ready" for r in rows),
            "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 3),
            "seconds_max": round(max(r["seconds"] for r in rows), 3),
            "bytes_per_tile_p50": int(statistics.median(per_tile)) if per_tile else None,
            "bytes_per_tile_max": max(per_tile) if per_tile else None,
            "served_per_tile_p50": int(statistics.median(served_per_tile)) if served_per_tile else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fires", nargs="?", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    now = START + timedelta(days=20)
    fires = _fires(args.fires, args.seed)
    state = SimState(clock=Clock(now, speed=0.0), fault_rate=0.0)
    state.cache = LRUCache(maxsize=4096)  # hold every COG of the run for the warm pass
    state.fires = parse_fires([{"lat": f.lat, "lon": f.lon, "hectares": 300, "start": f.start.isoformat(),
                                "growth_h": 96} for f in fires])
    with serve_in_thread(create_app(state), "stac simulator") as url:
        provider = Sentinel2Provider(StacCatalogue(url=url), workers=args.workers)
        cold = _pass(url, provider, fires, now)
        warm = _pass(url, provider, fires, now)
    print(json.dumps({"cold": _summary(cold), "warm": _summary(warm), "per_fire_warm": warm}, indent=1))


if __name__ == "__main__":
    main()
