"""A fire's history as ``fires.observed.v1`` tells it: stage and hectares at each observation.

The console reads the stream from the beginning, so each start rebuilds the histories. Events may
arrive out of order (a replay, partitions): a history is kept sorted by ``snapshot_at``; an event
delivered twice is counted once. Each fire keeps its last ``MAX_ENTRIES`` observations, and the view
of "what changed" (first seen, last grown) is taken from them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from emberwatch.contracts import FireObserved

MAX_ENTRIES = 200


@dataclass(frozen=True, order=True)
class Observation:
    at: datetime
    event_id: str
    change: str = field(compare=False)
    stage: str | None = field(compare=False)
    hectares: float | None = field(compare=False)

    def view(self) -> dict:
        return {"at": self.at.isoformat(), "change": self.change, "stage": self.stage or "unknown",
                "hectares": self.hectares}


class FireHistory:
    """Every fire's observations, oldest first."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._by_fire: dict[str, list[Observation]] = {}
        self._first_seen: dict[str, datetime] = {}  # kept when old entries are dropped
        self._seen: set[str] = set()

    def record(self, fire: FireObserved) -> None:
        if fire.event_id in self._seen:
            return
        self._seen.add(fire.event_id)
        entries = self._by_fire.setdefault(fire.fire_key, [])
        bisect.insort(entries, Observation(fire.snapshot_at, fire.event_id, fire.change, fire.stage_of_control,
                                           fire.hectares))
        first = self._first_seen.get(fire.fire_key)
        if first is None or fire.snapshot_at < first:
            self._first_seen[fire.fire_key] = fire.snapshot_at
        if len(entries) > self.max_entries:
            del entries[: len(entries) - self.max_entries]

    def of(self, fire_key: str) -> list[dict]:
        return [o.view() for o in self._by_fire.get(fire_key, [])]

    def changes(self, fire_key: str) -> dict:
        """When the fire was first seen and when it last grew (its hectares went up), and from what."""
        entries = self._by_fire.get(fire_key, [])
        grown_at, grown_from = None, None
        for before, after in zip(entries, entries[1:], strict=False):
            if before.hectares is not None and after.hectares is not None and after.hectares > before.hectares:
                grown_at, grown_from = after.at, before.hectares
        first = self._first_seen.get(fire_key)
        return {"first_seen": first.isoformat() if first else None,
                "grown_at": grown_at.isoformat() if grown_at else None, "grown_from_hectares": grown_from}
