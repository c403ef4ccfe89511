"""One Mapbox request budget for every tiler replica: a token bucket in the coordination database.

Mapbox limits requests per account and token (the Static Images API: 1,250 a minute by default), not
per process: three replicas that each kept to the limit would be rate-limited together. So every
request first takes a token from one shared bucket (``EMBERWATCH_TILER_MAPBOX_REQUESTS_PER_MINUTE``,
bursts of up to ``EMBERWATCH_TILER_MAPBOX_BURST``), and a 429 that one replica receives pauses them
all until the time Mapbox named (``Retry-After`` / ``X-Rate-Limit-Reset``).

Taking a token is one conditional ``UPDATE`` (refill by the time passed, take one if there is one),
atomic on SQLite and PostgreSQL alike, so replicas never over-spend; a replica that gets none waits
the time the next token needs, plus a random part of it (so no replica loses every race). Times are
wall-clock seconds of the host taking the token: hosts are expected to keep NTP time, and a skew of
a second only moves one refill.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from sqlalchemy import Column, Engine, Float, String, Table, and_, case, literal, select, update

from emberwatch.common.coordination import METADATA, insert_or_keep

BUDGETS = Table(
    "tiler_request_budgets", METADATA,
    Column("name", String, primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False),  # wall-clock seconds of the last refill
    Column("paused_until", Float, nullable=False),  # a 429's pause, for every replica
)

MAX_WAIT_STEP_S = 1.0  # re-check at least this often: a pause may be lifted or the rate changed
WAIT_JITTER = 0.25  # a waiting replica sleeps up to this fraction longer than the next token needs


def waiting_time(wait: float, draw: Callable[[float, float], float] = random.uniform) -> float:
    """How long a replica that got no token sleeps: ``wait`` (capped at ``MAX_WAIT_STEP_S``) plus a
    random part of it. Replicas that all missed a token would otherwise wake at the same instant for
    the next one, and the one the scheduler wakes last would lose every race (starve) while the
    others take turns; with the random part, who comes first changes from token to token."""
    step = min(wait, MAX_WAIT_STEP_S)
    return step * (1.0 + draw(0.0, WAIT_JITTER))


class RequestBudget:
    def __init__(self, engine: Engine, *, per_minute: float, burst: int, name: str = "mapbox",
                 clock: Callable[[], float] = time.time) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a request budget needs per_minute > 0 and burst >= 1")
        self.engine = engine
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.name = name
        self.clock = clock
        insert_or_keep(engine, BUDGETS, [{"name": name, "tokens": self.burst, "updated_at": clock(),
                                          "paused_until": 0.0}])

    def _refilled(self, now: float):  # noqa: ANN202 - a SQL expression
        grown = BUDGETS.c.tokens + (literal(now) - BUDGETS.c.updated_at) * self.rate
        return case((grown > self.burst, self.burst), else_=grown)

    def try_take(self) -> float:
        """Take one token: 0.0 when taken, else the seconds until one may be there.

        It looks first (a read, which never waits for a writer) and writes only when a token is
        there to take: replicas that must wait do not queue for the database's write lock, so the
        one that can take is not held up behind them."""
        now = self.clock()
        refilled = self._refilled(now)
        state = select(refilled, BUDGETS.c.paused_until).where(BUDGETS.c.name == self.name)
        with self.engine.connect() as conn:
            tokens, paused_until = conn.execute(state).one()
        if paused_until <= now and tokens >= 1.0:
            take = (update(BUDGETS)
                    .where(and_(BUDGETS.c.name == self.name, BUDGETS.c.paused_until <= now, refilled >= 1.0))
                    .values(tokens=refilled - 1.0, updated_at=now))
            with self.engine.begin() as conn:  # the same condition, atomically: never over-spends
                if conn.execute(take).rowcount == 1:
                    return 0.0
                tokens, paused_until = conn.execute(state).one()  # another replica took it first
        return max(paused_until - now, (1.0 - tokens) / self.rate, 0.001)

    async def take(self) -> None:
        """Wait for a token (without blocking the event loop)."""
        while True:
            wait = await asyncio.to_thread(self.try_take)
            if wait == 0.0:
                return
            await asyncio.sleep(waiting_time(wait))

    def pause_all(self, seconds: float) -> None:
        """Every replica waits ``seconds`` from now before its next request (a 429 said so)."""
        until = self.clock() + seconds
        with self.engine.begin() as conn:
            conn.execute(update(BUDGETS).where(and_(BUDGETS.c.name == self.name, BUDGETS.c.paused_until < until))
                         .values(paused_until=until))
