"""The fires waiting for their Sentinel-2 pair, durable in the coordination database.

A new fire is recorded here before its event is committed, so no fire is lost to a crash, an outage or
a restart; the tiler's timer takes the fires that are due (``claim_due``) and records what happened:
``made`` (its tiles announced), ``given_up`` (with the reason), or still ``pending`` with when to look
again (``due_at``, on the line's clock: new acquisitions are catalogued as that clock moves) and, after
an outage, not before a wall-clock time (``not_before``). Records are never deleted: a replay of the fire
finds its record and adds nothing. Claiming is one conditional ``UPDATE`` (a lease of ``lease_s``), so
two replicas never work on one fire at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, Float, Integer, String, Table, Text, and_, func, select, update

from emberwatch.common.coordination import METADATA, insert_or_keep

PENDING, MADE, GIVEN_UP = "pending", "made", "given_up"

SENTINEL2_FIRES = Table(
    "tiler_sentinel2_fires", METADATA,
    Column("fire_key", String, primary_key=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("start", String, nullable=False),  # ISO 8601
    Column("end", String),  # ISO 8601 once the feed says the fire is out
    Column("trace_id", String, nullable=False),
    Column("observed_at", String),  # when the fire was reported (wall clock), for TileReady
    Column("state", String, nullable=False, index=True),
    Column("due_at", String, nullable=False),  # ISO 8601 on the line's clock
    Column("not_before", Float, nullable=False),  # wall-clock seconds: outage backoff and claim lease
    Column("outages", Integer, nullable=False),  # failed tries in a row
    Column("searches", Integer, nullable=False),  # tries that found no clear scene yet
    Column("reason", Text),
)


@dataclass(frozen=True)
class PendingFire:
    fire_key: str
    lat: float
    lon: float
    start: datetime
    end: datetime | None
    trace_id: str
    observed_at: datetime | None
    outages: int
    searches: int


def _iso(t: datetime | None) -> str | None:
    """UTC, always with microseconds: the strings sort as the times do."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00") if t else None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Sentinel2Fires:
    def __init__(self, engine: Engine, clock_wall=time.time) -> None:  # noqa: ANN001 - a () -> float
        self.engine = engine
        self.wall = clock_wall

    def add(self, fire_key: str, lat: float, lon: float, start: datetime, trace_id: str,
            observed_at: datetime | None, due_at: datetime) -> bool:
        """Remember a new fire (once: a replay keeps the first record, whatever its state); True if new."""
        return insert_or_keep(self.engine, SENTINEL2_FIRES, [{
            "fire_key": fire_key, "lat": lat, "lon": lon, "start": _iso(start), "end": None,
            "trace_id": trace_id, "observed_at": _iso(observed_at), "state": PENDING, "due_at": _iso(due_at),
            "not_before": 0.0, "outages": 0, "searches": 0, "reason": None}]) == 1

    def ended(self, fire_key: str, end: datetime) -> None:
        """The feed says the fire is out: no scene after ``end`` can show it burning."""
        with self.engine.begin() as conn:
            conn.execute(update(SENTINEL2_FIRES).where(and_(SENTINEL2_FIRES.c.fire_key == fire_key,
                                                            SENTINEL2_FIRES.c.end.is_(None)))
                         .values(end=_iso(end)))

    def claim_due(self, now: datetime, limit: int, lease_s: float) -> list[PendingFire]:
        """Up to ``limit`` pending fires due at ``now``, each leased to the caller for ``lease_s``."""
        wall = self.wall()
        c = SENTINEL2_FIRES.c
        due = (select(SENTINEL2_FIRES).where(and_(c.state == PENDING, c.due_at <= _iso(now),
                                                  c.not_before <= wall))
               .order_by(c.due_at, c.fire_key).limit(limit))
        claimed = []
        with self.engine.connect() as conn:
            rows = conn.execute(due).all()
        for r in rows:
            with self.engine.begin() as conn:
                won = conn.execute(update(SENTINEL2_FIRES).where(and_(c.fire_key == r.fire_key, c.state == PENDING,
                                                                      c.not_before == r.not_before))
                                   .values(not_before=wall + lease_s)).rowcount == 1
            if won:
                claimed.append(PendingFire(r.fire_key, r.lat, r.lon, datetime.fromisoformat(r.start), _time(r.end),
                                           r.trace_id, _time(r.observed_at), r.outages, r.searches))
        return claimed

    def retry_at(self, fire_key: str, due_at: datetime, reason: str) -> None:
        """No clear scene yet: look again at ``due_at`` (the line's clock)."""
        self._set(fire_key, due_at=_iso(due_at), not_before=0.0, outages=0,
                  searches=SENTINEL2_FIRES.c.searches + 1, reason=reason)

    def outage(self, fire_key: str, wait_s: float, reason: str) -> None:
        """The catalogue or a COG failed: try again ``wait_s`` seconds from now (wall clock)."""
        self._set(fire_key, not_before=self.wall() + wait_s, outages=SENTINEL2_FIRES.c.outages + 1, reason=reason)

    def made(self, fire_key: str) -> None:
        self._set(fire_key, state=MADE, reason=None)

    def give_up(self, fire_key: str, reason: str) -> None:
        self._set(fire_key, state=GIVEN_UP, reason=reason)

    def _set(self, fire_key: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(SENTINEL2_FIRES).where(SENTINEL2_FIRES.c.fire_key == fire_key).values(**values))

    def state(self, fire_key: str) -> tuple[str, str | None] | None:
        """(state, reason) of a fire, None if never recorded."""
        with self.engine.connect() as conn:
            row = conn.execute(select(SENTINEL2_FIRES.c.state, SENTINEL2_FIRES.c.reason)
                               .where(SENTINEL2_FIRES.c.fire_key == fire_key)).first()
        return None if row is None else (row.state, row.reason)

    def count(self, state: str = PENDING) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(SENTINEL2_FIRES)
                                .where(SENTINEL2_FIRES.c.state == state)).scalar_one()

    def latest_start(self) -> datetime | None:
        """The latest start among the recorded fires (a feed clock's floor after a restart)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(SENTINEL2_FIRES.c.start))).scalar_one_or_none()
        return _time(value)
