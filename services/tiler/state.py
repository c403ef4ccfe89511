"""The tiler's durable bookkeeping under ``<state_dir>/tiler``: append-only JSON lines, fsynced.

* :class:`FireRegistry` — every fire location seen so far (for the negatives' exclusion distance)
  and the fire-free places chosen per fire, so a replay reuses the same places.
* :class:`EmittedIndex` — the (fire, slot) tiles already announced on ``tiles.ready.v1``, written
  after the publish is acknowledged, so a replay neither refetches nor republishes them. A negative's
  record also holds its location and the time its image was fetched, so a later fire near it can be
  found (:meth:`EmittedIndex.negatives_near`); records written before carry neither (the location
  then comes from the registry's recorded places, the fetch time stays unknown).
* :class:`RelabelLog` — the ``tiles.relabelled.v1`` events announced (one per tile), so a replay
  publishes none twice.

Lines are appended without blocking the event loop; the handler fsyncs (in a thread) before the
record matters: the negatives before their tiles are fetched, the emitted index before the offset is
committed. A torn last line (crash mid-write) is ignored on load.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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


def _bucket(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / BUCKET_DEG), math.floor(lon / BUCKET_DEG)


def _buckets_around(lat: float, lon: float, km: float):
    dlat = km / 111.0
    dlon = km / (111.0 * max(math.cos(math.radians(lat)), 0.01))
    r0, c0 = _bucket(lat - dlat, lon - dlon)
    r1, c1 = _bucket(lat + dlat, lon + dlon)
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            yield r, c


class FireRegistry:
    def __init__(self, path: Path) -> None:
        self._log = _JsonLines(path)
        self._buckets: dict[tuple[int, int], dict[tuple[float, float], str]] = defaultdict(dict)
        self._negatives: dict[str, list[tuple[float, float]]] = {}
        for rec in self._log.load():
            if "negatives" in rec:
                self._negatives[rec["fire_key"]] = [tuple(p) for p in rec["negatives"]]
            elif "lat" in rec:
                self._add(rec["lat"], rec["lon"], rec.get("fire_key", ""))

    @staticmethod
    def _bucket(lat: float, lon: float) -> tuple[int, int]:
        return _bucket(lat, lon)

    def _add(self, lat: float, lon: float, fire_key: str) -> bool:
        point = (round(lat, 5), round(lon, 5))
        bucket = self._buckets[self._bucket(*point)]
        if point in bucket:
            return False
        bucket[point] = fire_key
        return True

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def observe(self, fire_key: str, lat: float, lon: float) -> bool:
        """Remember a fire location (appended once per distinct location); True if it was new."""
        if self._add(lat, lon, fire_key):
            self._log.append({"fire_key": fire_key, "lat": round(lat, 5), "lon": round(lon, 5)})
            return True
        return False

    def near(self, lat: float, lon: float, km: float, *, other_than: str | None = None) -> bool:
        """Whether a known fire (other than the fire ``other_than``) lies within ``km`` of (lat, lon)."""
        for key in _buckets_around(lat, lon, km):
            for (plat, plon), fire_key in self._buckets.get(key, {}).items():
                if (other_than is None or fire_key != other_than) and haversine_km(lat, lon, plat, plon) < km:
                    return True
        return False

    def sync(self) -> None:
        self._log.sync()

    def negatives_for(self, fire_key: str) -> list[tuple[float, float]] | None:
        return self._negatives.get(fire_key)

    def record_negatives(self, fire_key: str, places: list[tuple[float, float]],
                         audit: dict | None = None) -> None:
        """The fire's places, for good; ``audit`` (how they were chosen) is kept beside them."""
        self._negatives[fire_key] = list(places)
        record = {"fire_key": fire_key, "negatives": [list(p) for p in places]}
        if audit:
            record["audit"] = audit
        self._log.append(record)


@dataclass(frozen=True)
class AnnouncedNegative:
    fire_key: str  # the fire it was matched to
    slot: str
    tile_id: str
    lat: float
    lon: float
    fetched_at: datetime | None  # None: an old record, the fetch time is unknown


class EmittedIndex:
    def __init__(self, path: Path, places: Callable[[str], list[tuple[float, float]] | None] | None = None) -> None:
        """``places(fire_key)``: the registry's recorded negatives, for old records without a location."""
        self._log = _JsonLines(path)
        self._done: dict[tuple[str, str], str] = {}
        self._negatives: dict[tuple[int, int], list[AnnouncedNegative]] = defaultdict(list)
        for r in self._log.load():
            if "slot" not in r or (r["fire_key"], r["slot"]) in self._done:
                continue
            self._done[(r["fire_key"], r["slot"])] = r["tile_id"]
            if not r["slot"].startswith("neg-"):
                continue
            lat, lon = r.get("lat"), r.get("lon")
            if lat is None and places is not None:
                recorded = places(r["fire_key"]) or []
                i = int(r["slot"].split("-", 1)[1])
                if i < len(recorded):
                    lat, lon = recorded[i]
            if lat is None:
                continue  # nowhere to put it: no later fire can be matched to it
            at = r.get("fetched_at")
            self._index(AnnouncedNegative(r["fire_key"], r["slot"], r["tile_id"], lat, lon,
                                          datetime.fromisoformat(at) if at else None))

    def _index(self, neg: AnnouncedNegative) -> None:
        self._negatives[_bucket(neg.lat, neg.lon)].append(neg)

    def __len__(self) -> int:
        return len(self._done)

    def __contains__(self, item: tuple[str, str]) -> bool:
        return item in self._done

    def sync(self) -> None:
        self._log.sync()

    def add(self, fire_key: str, slot: str, tile_id: str, *, lat: float | None = None,
            lon: float | None = None, fetched_at: datetime | None = None) -> None:
        if (fire_key, slot) in self._done:
            return
        self._done[(fire_key, slot)] = tile_id
        record: dict = {"fire_key": fire_key, "slot": slot, "tile_id": tile_id}
        if lat is not None and lon is not None:
            record.update(lat=lat, lon=lon)
            if slot.startswith("neg-"):
                self._index(AnnouncedNegative(fire_key, slot, tile_id, lat, lon, fetched_at))
        if fetched_at is not None:
            record["fetched_at"] = fetched_at.isoformat()
        self._log.append(record)

    def negatives_near(self, lat: float, lon: float, km: float) -> list[tuple[AnnouncedNegative, float]]:
        """Announced negatives closer than ``km`` to (lat, lon), with their distance, nearest first."""
        out = []
        for key in _buckets_around(lat, lon, km):
            for neg in self._negatives.get(key, ()):
                d = haversine_km(lat, lon, neg.lat, neg.lon)
                if d < km:
                    out.append((neg, d))
        return sorted(out, key=lambda nd: (nd[1], nd[0].tile_id))


class RelabelLog:
    """The tiles a ``tiles.relabelled.v1`` event was announced for (one event per tile, ever)."""

    def __init__(self, path: Path) -> None:
        self._log = _JsonLines(path)
        self._done: dict[str, dict] = {r["tile_id"]: r for r in self._log.load() if "tile_id" in r}

    def __contains__(self, tile_id: str) -> bool:
        return tile_id in self._done

    def __len__(self) -> int:
        return len(self._done)

    def add(self, tile_id: str, action: str, fire_key: str, event_id: str) -> None:
        if tile_id in self._done:
            return
        rec = {"tile_id": tile_id, "action": action, "fire_key": fire_key, "event_id": event_id}
        self._done[tile_id] = rec
        self._log.append(rec)

    def sync(self) -> None:
        self._log.sync()
