"""The tiler's durable bookkeeping under ``<state_dir>/tiler``: append-only JSON lines, fsynced.

* :class:`FireRegistry` — every fire location seen so far (for the negatives' exclusion distance)
  and the fire-free places chosen per fire, so a replay reuses the same places.
* :class:`EmittedIndex` — the (fire, slot) tiles already announced on ``tiles.ready.v1``, written
  after the publish is acknowledged, so a replay neither refetches nor republishes them.

Lines are appended without blocking the event loop; the handler fsyncs (in a thread) before the
record matters: the negatives before their tiles are fetched, the emitted index before the offset is
committed. A torn last line (crash mid-write) is ignored on load.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

from emberwatch.common.geo import haversine_km

BUCKET_DEG = 0.5


class _JsonLines:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def append(self, record: dict) -> None:
        """Append one line (to the page cache: fast); :meth:`sync` makes it durable."""
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def sync(self) -> None:
        """fsync the file (blocking: call it in a thread from async code)."""
        if self.path.exists():
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class FireRegistry:
    def __init__(self, path: Path) -> None:
        self._log = _JsonLines(path)
        self._buckets: dict[tuple[int, int], set[tuple[float, float]]] = defaultdict(set)
        self._negatives: dict[str, list[tuple[float, float]]] = {}
        for rec in self._log.load():
            if "negatives" in rec:
                self._negatives[rec["fire_key"]] = [tuple(p) for p in rec["negatives"]]
            elif "lat" in rec:
                self._add(rec["lat"], rec["lon"])

    @staticmethod
    def _bucket(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / BUCKET_DEG), math.floor(lon / BUCKET_DEG)

    def _add(self, lat: float, lon: float) -> bool:
        point = (round(lat, 5), round(lon, 5))
        bucket = self._buckets[self._bucket(*point)]
        if point in bucket:
            return False
        bucket.add(point)
        return True

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def observe(self, fire_key: str, lat: float, lon: float) -> bool:
        """Remember a fire location (appended once per distinct location); True if it was new."""
        if self._add(lat, lon):
            self._log.append({"fire_key": fire_key, "lat": round(lat, 5), "lon": round(lon, 5)})
            return True
        return False

    def near(self, lat: float, lon: float, km: float) -> bool:
        """Whether a known fire lies within ``km`` of (lat, lon)."""
        dlat = km / 111.0
        dlon = km / (111.0 * max(math.cos(math.radians(lat)), 0.01))
        r0, c0 = self._bucket(lat - dlat, lon - dlon)
        r1, c1 = self._bucket(lat + dlat, lon + dlon)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                for plat, plon in self._buckets.get((r, c), ()):
                    if haversine_km(lat, lon, plat, plon) < km:
                        return True
        return False

    def sync(self) -> None:
        self._log.sync()

    def negatives_for(self, fire_key: str) -> list[tuple[float, float]] | None:
        return self._negatives.get(fire_key)

    def record_negatives(self, fire_key: str, places: list[tuple[float, float]]) -> None:
        self._negatives[fire_key] = list(places)
        self._log.append({"fire_key": fire_key, "negatives": [list(p) for p in places]})


class EmittedIndex:
    def __init__(self, path: Path) -> None:
        self._log = _JsonLines(path)
        self._done: dict[tuple[str, str], str] = {
            (r["fire_key"], r["slot"]): r["tile_id"] for r in self._log.load() if "slot" in r}

    def __len__(self) -> int:
        return len(self._done)

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._done

    def sync(self) -> None:
        self._log.sync()

    def add(self, fire_key: str, slot: str, tile_id: str) -> None:
        if (fire_key, slot) in self._done:
            return
        self._done[(fire_key, slot)] = tile_id
        self._log.append({"fire_key": fire_key, "slot": slot, "tile_id": tile_id})
