"""Retries with backoff, one way everywhere (tenacity underneath).

A ``Backoff`` says how long to keep trying (attempts and/or total seconds) and how to wait between
tries (exponential from ``first_s`` up to ``max_s``, plus optional jitter); ``async_retrying`` /
``retrying`` turn it into tenacity loops that log every retry the same way (and count it when a
counter is given). Services build their ``Backoff`` from their settings; nothing is hard-coded at
the call site.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
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
)


@dataclass(frozen=True)
class Backoff:
    attempts: int | None = 3  # None: bounded by total_s only
    total_s: float | None = None  # None: bounded by attempts only
    first_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 0.0

    def stop(self):
        stops = []
        if self.attempts is not None:
            stops.append(stop_after_attempt(max(1, self.attempts)))
        if self.total_s is not None:
            stops.append(stop_after_delay(self.total_s))
        if not stops:
            raise ValueError("a Backoff needs attempts or total_s")
        return stops[0] if len(stops) == 1 else stop_any(*stops)

    def wait(self):
        w = wait_exponential(multiplier=self.first_s, max=self.max_s)
        return w + wait_random(0, self.jitter_s) if self.jitter_s > 0 else w


def log_retry(logger: logging.Logger, what: str, counter: Any = None,
              extra: dict[str, Any] | None = None) -> Callable[[RetryCallState], None]:
    """A ``before_sleep`` callback: one warning line per retry (what, attempt, error, sleep)."""

    def before_sleep(state: RetryCallState) -> None:
        if counter is not None:
            counter.inc()
        exc = state.outcome.exception() if state.outcome else None
        logger.warning(f"{what} failed; retrying", extra={
            **(extra or {}), "attempt": state.attempt_number, "error": f"{type(exc).__name__}: {exc}"[:500],
            "sleep_s": round(state.next_action.sleep, 2) if state.next_action else None})

    return before_sleep


def _retry(on: Callable[[BaseException], bool] | None):
    return retry_if_exception(on or (lambda exc: isinstance(exc, Exception)))


def async_retrying(backoff: Backoff, *, what: str, logger: logging.Logger,
                   retry_on: Callable[[BaseException], bool] | None = None, counter: Any = None,
                   extra: dict[str, Any] | None = None, reraise: bool = True) -> AsyncRetrying:
    return AsyncRetrying(stop=backoff.stop(), wait=backoff.wait(), retry=_retry(retry_on),
                         before_sleep=log_retry(logger, what, counter, extra), reraise=reraise)


def retrying(backoff: Backoff, *, what: str, logger: logging.Logger,
             retry_on: Callable[[BaseException], bool] | None = None, counter: Any = None,
             extra: dict[str, Any] | None = None, reraise: bool = True) -> Retrying:
    return Retrying(stop=backoff.stop(), wait=backoff.wait(), retry=_retry(retry_on),
                    before_sleep=log_retry(logger, what, counter, extra), reraise=reraise)
