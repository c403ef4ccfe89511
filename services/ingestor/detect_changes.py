"""Compare the fires in the feed now with the fires tracked so far: new, updated, out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from services.ingestor.models import Change, FireRecord


def detect_changes(
    tracked: Mapping[str, FireRecord],
    current: Mapping[str, FireRecord],
    snapshot_at: datetime,
    *,
    in_scope: Callable[[FireRecord], bool] = lambda r: True,
    admits: Callable[[FireRecord], bool] = lambda r: True,
) -> tuple[list[Change], dict[str, FireRecord], list[str]]:
    """Returns (changes, the fires tracked from now on, keys dropped by a filter without an event).

    - ``new``: in the feed, not tracked, admitted by the filters, not already extinguished (EX);
    - ``updated``: tracked and its size, stage or position changed;
    - ``out``: tracked and gone from the feed (``snapshot_at`` of this poll), or its stage is EX.
    A tracked fire still in the feed but now outside the filters' scope is dropped quietly (it is
    not out; the filters changed).
    """
    changes: list[Change] = []
    nxt: dict[str, FireRecord] = {}
    dropped: list[str] = []
    for key, rec in current.items():
        old = tracked.get(key)
        if old is None:
            if rec.stage != "EX" and admits(rec):
                changes.append(Change("new", rec, rec.snapshot_at or snapshot_at))
                nxt[key] = rec
            continue
        if not in_scope(rec):
            dropped.append(key)
            continue
        if rec.stage == "EX":
            changes.append(Change("out", rec, rec.snapshot_at or snapshot_at))
            continue
        if not rec.same_fire_state(old):
            changes.append(Change("updated", rec, rec.snapshot_at or snapshot_at))
        nxt[key] = rec
    for key, old in tracked.items():
        if key not in current:
            changes.append(Change("out", old, snapshot_at))
    return changes, nxt, dropped
