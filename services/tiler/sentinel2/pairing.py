"""Which scenes make a fire's pair, or why not yet: pure decision logic, no I/O.

The fire tile comes from the clearest acquisition between the fire's start and its end (or now while it
burns); its control is the same place's last clear acquisition before the start, within a look-back.
Without a clear post-start scene the fire is retried later, as new acquisitions are catalogued, and given
up after ``give_up_after`` from the start (or once its end is past by the longest cataloguing delay:
nothing newer can show it), with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.tiler.sentinel2.scene_choice import Assessed, clearest, latest_clear


@dataclass(frozen=True)
class PairPolicy:
    max_cloud_fraction: float = 0.2
    pre_fire_lookback: timedelta = timedelta(days=60)
    retry_every: timedelta = timedelta(hours=12)
    give_up_after: timedelta = timedelta(days=20)
    catalogue_delay: timedelta = timedelta(days=2)  # the longest acquisition-to-catalogue delay expected


@dataclass(frozen=True)
class Ready:
    post: Assessed
    pre: Assessed | None  # None: no clear scene in the look-back before the start
    pre_missing_reason: str | None = None


@dataclass(frozen=True)
class RetryLater:
    at: datetime
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


Decision = Ready | RetryLater | GiveUp


def search_window(start: datetime, end: datetime | None, now: datetime, policy: PairPolicy) -> tuple[datetime, datetime]:
    """The acquisition times to search: the look-back before the start up to the end (or now)."""
    return start - policy.pre_fire_lookback, min(end, now) if end else now


def decide(scenes: list[Assessed], start: datetime, end: datetime | None, now: datetime,
           policy: PairPolicy) -> Decision:
    """The pair to make from the assessed scenes, or when to look again, or why to stop."""
    last = min(end, now) if end else now
    during = [s for s in scenes if start <= s.acquired_at <= last]
    before = [s for s in scenes if start - policy.pre_fire_lookback <= s.acquired_at < start]
    post = clearest(during, policy.max_cloud_fraction)
    if post is not None:
        pre = latest_clear(before, policy.max_cloud_fraction)
        reason = None if pre else (f"no acquisition clear over the fire in the {policy.pre_fire_lookback.days} days "
                                   "before its start")
        return Ready(post=post, pre=pre, pre_missing_reason=reason)
    seen = f"{len(during)} acquisition(s) since the start, none with at most " \
           f"{policy.max_cloud_fraction:.0%} cloud over the fire"
    if end is not None and now >= end + policy.catalogue_delay:
        return GiveUp(reason=f"the fire ended and {seen}")
    if now >= start + policy.give_up_after:
        return GiveUp(reason=f"{seen} within {policy.give_up_after.days} days")
    return RetryLater(at=now + policy.retry_every, reason=seen)
