"""Leases on SQLite and on a real PostgreSQL: one holder, takeover after expiry, fencing epochs, and
a holder that cannot renew stops counting itself active before anyone else may take over."""

from __future__ import annotations

import time
import uuid

import pytest

from emberwatch.common.coordination import open_coordination
from emberwatch.common.lease import Lease, LeaseLost

TTL = 1.0


@pytest.fixture
def engine(coordination: str):
    return open_coordination(coordination)


def pair(engine) -> tuple[Lease, Lease]:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    return Lease(engine, name, ttl_s=TTL, holder="a"), Lease(engine, name, ttl_s=TTL, holder="b")


def test_one_holder_and_renewals_keep_the_epoch(engine) -> None:
    a, b = pair(engine)
    assert a.try_acquire() and a.active and a.epoch == 1
    assert not b.try_acquire() and not b.active
    holder, epoch, left = b.current_holder()
    assert (holder, epoch) == ("a", 1) and 0 < left <= TTL
    for _ in range(4):  # renewing past several ttls keeps the standby out
        time.sleep(TTL / 3)
        assert a.renew() and a.epoch == 1
        assert not b.try_acquire()


def test_a_standby_takes_over_after_expiry_never_while_the_holder_is_active(engine) -> None:
    a, b = pair(engine)
    assert a.try_acquire()
    started = time.monotonic()
    while not b.try_acquire():  # a stops renewing (it died, or cannot reach the database)
        assert time.monotonic() - started < TTL + 2, "no takeover"
        time.sleep(0.02)
    assert not a.active, "two instances would act at once"
    assert time.monotonic() - started >= TTL - a.margin_s
    assert b.epoch == 2 and b.active
    with pytest.raises(LeaseLost):
        a.ensure_held()
    assert not a.renew(), "the old holder cannot renew a lease taken over"
    b.ensure_held()


def test_release_lets_the_standby_in_at_once(engine) -> None:
    a, b = pair(engine)
    assert a.try_acquire()
    a.release()
    assert not a.active
    assert b.try_acquire() and b.epoch == 2


def test_a_restarted_holder_is_someone_else() -> None:
    from emberwatch.common.lease import holder_id

    assert holder_id() != holder_id()
