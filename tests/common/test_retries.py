"""The shared retry helper: bounded by attempts or time, retries only what it is told to, logs each retry."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from tenacity import RetryCallState

from emberwatch.common.retries import Backoff, async_retrying, retry_after_seconds, retrying


class Counter:
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1


def test_retries_then_succeeds_logging_and_counting_each_retry(caplog):
    calls, counter = [], Counter()

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "ok"

    caplog.set_level(logging.WARNING)
    out = retrying(Backoff(attempts=5, first_s=0.001, max_s=0.002), what="the thing",
                   logger=logging.getLogger("t"), counter=counter)(flaky)
    assert out == "ok" and len(calls) == 3 and counter.n == 2
    assert caplog.text.count("the thing failed; retrying") == 2


def test_what_is_not_retryable_fails_at_once():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        retrying(Backoff(attempts=5, first_s=0.001), what="x", logger=logging.getLogger("t"),
                 retry_on=lambda e: isinstance(e, ConnectionError))(broken)
    assert len(calls) == 1


async def test_the_attempts_bound_holds_and_the_last_error_is_raised():
    calls = []
    with pytest.raises(ConnectionError):
        async for attempt in async_retrying(Backoff(attempts=3, first_s=0.001, max_s=0.001), what="x",
                                            logger=logging.getLogger("t")):
            with attempt:
                calls.append(1)
                raise ConnectionError("still down")
    assert len(calls) == 3


def test_a_time_bound_alone_is_allowed_and_no_bound_is_not():
    calls = []

    def down():
        calls.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        retrying(Backoff(attempts=None, total_s=0.05, first_s=0.01, max_s=0.01), what="x",
                 logger=logging.getLogger("t"))(down)
    assert 2 <= len(calls) <= 10
    with pytest.raises(ValueError):
        Backoff(attempts=None, total_s=None).stop()


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds("Tue, 01 Dec 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Tue, 01 Dec 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


class AskedToWait(Exception):
    def __init__(self, seconds):
        super().__init__("busy")
        self.retry_after = seconds


def _state_after(exc: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_a_servers_retry_after_is_a_lower_bound_capped_at_max():
    wait = Backoff(attempts=5, first_s=0.1, max_s=10.0).wait()
    assert wait(_state_after(ConnectionError(), 1)) == pytest.approx(0.1)
    assert wait(_state_after(AskedToWait(4.0), 1)) == pytest.approx(4.0)
    assert wait(_state_after(AskedToWait(600.0), 1)) == pytest.approx(10.0)


def test_full_jitter_stays_between_zero_and_the_exponential_cap():
    wait = Backoff(attempts=9, first_s=1.0, max_s=5.0, full_jitter=True).wait()
    seen = [wait(_state_after(ConnectionError(), attempt)) for attempt in (1, 2, 3, 4, 5) for _ in range(50)]
    assert all(0.0 <= s <= 5.0 for s in seen)
    assert max(wait(_state_after(ConnectionError(), 1)) for _ in range(50)) <= 1.0
    assert len({round(s, 6) for s in seen}) > 10  # jittered, not a fixed schedule
