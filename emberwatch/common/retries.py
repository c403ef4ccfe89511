"""Retries with backoff, one way everywhere (tenacity underneath).

A ``Backoff`` says how long to keep trying (attempts and/or total seconds) and how to wait between
tries (exponential from ``first_s`` up to ``max_s``, plus optional jitter); ``async_retrying`` /
``retrying`` turn it into tenacity loops that log every retry the same way (and count it when a
counter is given). Services build their ``Backoff`` from their settings; nothing is hard-coded at
the call site.

A server's own word on when to come back is honoured: an exception with a ``retry_after`` attribute
(seconds, e.g. parsed from an HTTP ``Retry-After`` by ``retry_after_seconds``, the one reader of such
values) makes the next wait at least that long, capped at ``max_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential,
    wait_random,
    wait_random_exponential,
)


def retry_after_seconds(*values: str | float | None, now: datetime | None = None) -> float | None:
    """Seconds a server asks to wait before the next try: the first readable of ``values``, in the
    caller's order of preference (an HTTP ``Retry-After``, delta-seconds or an HTTP date; a number from
    a body or another header such as Discord's ``X-RateLimit-Reset-After``); None if none is readable."""
    for value in values:
        seconds = _seconds_from(value, now)
        if seconds is not None:
            return seconds
    return None


def _seconds_from(value: str | float | None, now: datetime | None) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int | float):
        return max(0.0, float(value)) if value == value else None  # NaN is unreadable
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Backoff:
    attempts: int | None = 3  # None: bounded by total_s only
    total_s: float | None = None  # None: bounded by attempts only
    first_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 0.0  # added uniform jitter (ignored with full_jitter)
    full_jitter: bool = False  # wait uniformly between 0 and the exponential cap (AWS "full jitter")

    def stop(self):
        stops = []
        if self.attempts is not None:
            stops.append(stop_after_attempt(max(1, self.attempts)))
        if self.total_s is not None:
            stops.append(stop_after_delay(self.total_s))
        if not stops:
            raise ValueError("a Backoff needs attempts or total_s")
        return stops[0] if len(stops) == 1 else stop_any(*stops)

    def wait(self) -> Callable[[RetryCallState], float]:
        if self.full_jitter:
            base = wait_random_exponential(multiplier=self.first_s, max=self.max_s)
        else:
            base = wait_exponential(multiplier=self.first_s, max=self.max_s)
            if self.jitter_s > 0:
                base = base + wait_random(0, self.jitter_s)

        def wait(state: RetryCallState) -> float:
            delay = base(state)
            exc = state.outcome.exception() if state.outcome else None
            asked = getattr(exc, "retry_after", None)
            if isinstance(asked, int | float):
                delay = max(delay, min(float(asked), self.max_s))
            return delay

        return wait


def log_retry(logger: logging.Logger | None, what: str, counter: Any = None,
              extra: dict[str, Any] | None = None,
              on_retry: Callable[[BaseException | None], None] | None = None) -> Callable[[RetryCallState], None]:
    """A ``before_sleep`` callback: one warning line per retry (what, attempt, error, sleep).

    ``counter`` is incremented on every retry; ``on_retry`` is called with the failure (e.g. to count
    it by reason). Without a logger the retry is counted but not logged.
    """

    def before_sleep(state: RetryCallState) -> None:
        if counter is not None:
            counter.inc()
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None:
            on_retry(exc)
        if logger is None:
            return
        logger.warning(f"{what} failed; retrying", extra={
            **(extra or {}), "attempt": state.attempt_number, "error": f"{type(exc).__name__}: {exc}"[:500],
            "sleep_s": round(state.next_action.sleep, 2) if state.next_action else None})

    return before_sleep


def _retry(on: Callable[[BaseException], bool] | None):
    return retry_if_exception(on or (lambda exc: isinstance(exc, Exception)))


def async_retrying(backoff: Backoff, *, what: str, logger: logging.Logger | None,
                   retry_on: Callable[[BaseException], bool] | None = None, counter: Any = None,
                   extra: dict[str, Any] | None = None, reraise: bool = True,
                   on_retry: Callable[[BaseException | None], None] | None = None,
                   sleep: Callable[[float], Awaitable[None]] | None = None) -> AsyncRetrying:
    """``sleep``: what waits between tries (default ``asyncio.sleep``; tests may pass their own)."""
    return AsyncRetrying(stop=backoff.stop(), wait=backoff.wait(), retry=_retry(retry_on),
                         before_sleep=log_retry(logger, what, counter, extra, on_retry), reraise=reraise,
                         **({"sleep": sleep} if sleep is not None else {}))


def retrying(backoff: Backoff, *, what: str, logger: logging.Logger | None,
             retry_on: Callable[[BaseException], bool] | None = None, counter: Any = None,
             extra: dict[str, Any] | None = None, reraise: bool = True,
             on_retry: Callable[[BaseException | None], None] | None = None) -> Retrying:
    return Retrying(stop=backoff.stop(), wait=backoff.wait(), retry=_retry(retry_on),
                    before_sleep=log_retry(logger, what, counter, extra, on_retry), reraise=reraise)
