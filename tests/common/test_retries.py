"""The shared retry helper: bounded by attempts or time, retries only what it is told to, logs each retry."""

from __future__ import annotations

import logging

import pytest

from emberwatch.common.retries import Backoff, async_retrying, retrying


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
