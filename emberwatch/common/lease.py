"""A lease: one active instance of a service, however many run; a standby takes over when it dies.

The trainer and the gatekeeper must act once: two trainers would train the same data at once, two
gatekeepers could promote different versions. Each holds a lease named after the service in the
coordination database (``emberwatch/common/coordination.py``) before it starts consuming:

* **Acquire** is one conditional ``UPDATE``: it succeeds when the lease is free, expired or already
  ours. A takeover increments ``epoch``, a fencing token that the holder can record with what it does.
* **Expiry** is ``now + ttl`` in the database's clock (PostgreSQL's ``clock_timestamp()``; SQLite's
  host clock, one host anyway), so instances on different nodes never compare their own clocks.
* **The holder renews** every ``ttl / 3``. It counts itself active only until the start of its last
  successful renewal plus ``ttl`` less a margin, on its own monotonic clock. A standby can take over
  only after the database's expiry, which is later. So a holder that cannot renew (database
  unreachable, process paused) has stopped acting before anyone else may start: never two at once.
* **A standby** polls every ``ttl / 5``; it takes over within ``ttl + ttl / 5`` of the holder's last
  renewal. A holder that stops cleanly releases the lease, and the standby takes over at its next
  poll.

:func:`ensure_held` is the check before a side effect that cannot be undone (registering a model
version, moving an alias): it raises :class:`LeaseLost` once the holder is past its deadline.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Column, Engine, Float, Integer, String, Table, and_, case, or_, select, text, update

from emberwatch.common.coordination import METADATA, insert_or_keep

log = logging.getLogger(__name__)

LEASES = Table(
    "leases", METADATA,
    Column("name", String, primary_key=True),
    Column("holder", String, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),  # seconds, in the database's clock
)


class LeaseLost(RuntimeError):
    """This instance no longer holds its lease: it must not act."""


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is someone else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    def __init__(self, engine: Engine, name: str, *, ttl_s: float, holder: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0:
            raise ValueError("a lease needs ttl_s > 0")
        self.engine = engine
        self.name = name
        self.ttl_s = ttl_s
        self.holder = holder or holder_id()
        self.margin_s = min(1.0, ttl_s / 10)  # for clock-rate drift between this host and the database
        self.epoch: int | None = None
        self._monotonic = monotonic
        self._active_until = float("-inf")
        insert_or_keep(engine, LEASES, [{"name": name, "holder": "", "epoch": 0, "expires_at": 0.0}])

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    @property
    def poll_every_s(self) -> float:
        return self.ttl_s / 5

    def _now(self, conn) -> float:  # noqa: ANN001 - a SQLAlchemy connection
        if self.engine.dialect.name == "postgresql":
            return float(conn.execute(text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar_one())
        return time.time()

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or ours (renewing it then); True when held."""
        started = self._monotonic()
        with self.engine.begin() as conn:
            now = self._now(conn)
            mine = LEASES.c.holder == self.holder
            if self.epoch is not None:
                mine = and_(mine, LEASES.c.epoch == self.epoch)
            taken = conn.execute(
                update(LEASES)
                .where(and_(LEASES.c.name == self.name, or_(mine, LEASES.c.expires_at < now)))
                .values(holder=self.holder, expires_at=now + self.ttl_s,
                        epoch=case((mine, LEASES.c.epoch), else_=LEASES.c.epoch + 1))).rowcount == 1
            if taken:
                self.epoch = conn.execute(select(LEASES.c.epoch).where(LEASES.c.name == self.name)).scalar_one()
        if taken:
            self._active_until = started + self.ttl_s - self.margin_s
        return taken

    def renew(self) -> bool:
        """Extend a lease held; False when it was lost (another instance took it)."""
        if self.epoch is None:
            return False
        return self.try_acquire()

    def current_holder(self) -> tuple[str, int, float]:
        """(holder, epoch, seconds until it expires) as the database has them."""
        with self.engine.connect() as conn:
            now = self._now(conn)
            holder, epoch, expires_at = conn.execute(
                select(LEASES.c.holder, LEASES.c.epoch, LEASES.c.expires_at).where(LEASES.c.name == self.name)).one()
        return holder, epoch, expires_at - now

    def release(self) -> None:
        """Give the lease up now (a clean stop): a standby takes it at its next poll."""
        self._active_until = float("-inf")
        if self.epoch is None:
            return
        with self.engine.begin() as conn:
            conn.execute(update(LEASES).where(and_(LEASES.c.name == self.name, LEASES.c.holder == self.holder,
                                                   LEASES.c.epoch == self.epoch)).values(expires_at=0.0))

    @property
    def active(self) -> bool:
        """Whether this instance may act now (its own clock, before the database's expiry)."""
        return self._monotonic() < self._active_until

    def seconds_left(self) -> float:
        return self._active_until - self._monotonic()

    def ensure_held(self) -> None:
        if not self.active:
            raise LeaseLost(f"lease {self.name!r} (epoch {self.epoch}) is no longer held by this instance")


_current: Lease | None = None


def set_current(lease: Lease | None) -> None:
    global _current
    _current = lease


def current() -> Lease | None:
    """The lease this process runs under (None: a service that needs none, or a test's handlers)."""
    return _current


def ensure_held() -> None:
    """Before a side effect that cannot be undone: raises :class:`LeaseLost` if this process runs
    under a lease it no longer holds."""
    if _current is not None:
        _current.ensure_held()
