"""Async Mapbox client: bounded requests in flight, connection reuse, and every error answer handled.

* at most ``max_in_flight`` requests at once (a semaphore) over one ``httpx.AsyncClient`` pool;
* a request budget shared by every tiler replica (``services/tiler/request_budget.py``): each
  request takes a token first, so the replicas together keep to the account's rate;
* 429: every request pauses until ``Retry-After`` / ``X-Rate-Limit-Reset`` (a shared gate, so the
  other requests do not hammer meanwhile — in the other replicas too, through the budget), then
  retries;
* 5xx, timeouts, connection errors: retried with exponential backoff and jitter (tenacity); when the
  tries run out Mapbox counts as *down*: ``fetch`` waits (backoff, one alert per outage) and tries
  again until it answers or ``outage_max_wait_s`` passes — nothing is lost, nothing goes to a DLQ;
* 401/403: the auth circuit breaker opens (one alert), no request is sent until the token changes
  (re-read from the secrets file/env every ``auth_recheck_s``) or a rare probe is due;
* 400/404/422: :class:`MapboxRejected`, a ``PermanentError`` — the message goes to the DLQ.

The token travels only in the query string; it is never logged or put in an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from emberwatch.common.retries import Backoff, async_retrying, retry_after_seconds
from emberwatch.messaging.consumer import PermanentError
from services.tiler.request_budget import RequestBudget
from services.tiler.metrics import (
    AUTH_BREAKER_OPEN,
    FETCH_SECONDS,
    IN_FLIGHT,
    MAPBOX_DOWN,
    REQUESTS,
    RETRIES,
)

if TYPE_CHECKING:
    from services.tiler.settings_view import TilerView

log = logging.getLogger(__name__)

Alert = Callable[[str, str, str, dict], Awaitable[None]]  # (alert, severity, message, details)


class MapboxError(Exception):
    """Base of the client's errors (never carries the token)."""


class MapboxRejected(PermanentError):
    """Mapbox refused the request's parameters (400/404/422): retrying cannot help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Mapbox {status}: {message}")
        self.status = status


class MapboxAuthError(MapboxError):
    def __init__(self, status: int) -> None:
        super().__init__(f"Mapbox {status}: token rejected")
        self.status = status


class MapboxUnavailable(MapboxError):
    """Mapbox failed (5xx/timeouts) more times than the retry budget allows."""


class MapboxWaitExpired(MapboxError):
    """Mapbox stayed down (or the token stayed rejected) longer than the configured maximum wait."""


class _Transient(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def token_fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()[:16]


class TokenSource:
    """The current token: the secrets file if configured, else ``EMBERWATCH_MAPBOX_TOKEN``, else the
    value settings were built with. Re-read on every call, so a rotated token is picked up live."""

    ENV = "EMBERWATCH_MAPBOX_TOKEN"

    def __init__(self, fallback: str | None = None, token_file: Path | None = None) -> None:
        self._fallback = fallback
        self._file = Path(token_file) if token_file else None

    def current(self) -> str | None:
        if self._file is not None:
            try:
                text = self._file.read_text().strip()
                if text:
                    return text
            except OSError:
                pass
        return os.environ.get(self.ENV) or self._fallback


class AuthBreaker:
    """Open after a 401/403 for the token that got it; closed again by a different token or a probe."""

    def __init__(self, tokens: TokenSource, *, recheck_s: float, probe_s: float) -> None:
        self.tokens = tokens
        self.recheck_s = recheck_s
        self.probe_s = probe_s
        self.open_for: str | None = None  # fingerprint of the rejected token
        self._last_try = 0.0

    @property
    def is_open(self) -> bool:
        return self.open_for is not None

    def trip(self, token: str | None) -> bool:
        """Open for ``token``; True if it was closed (the caller alerts once)."""
        was_open = self.is_open
        self.open_for = token_fingerprint(token)
        self._last_try = time.monotonic()
        AUTH_BREAKER_OPEN.set(1)
        return not was_open

    def close(self) -> None:
        if self.is_open:
            log.info("mapbox token accepted again; auth breaker closed")
        self.open_for = None
        AUTH_BREAKER_OPEN.set(0)

    async def admit(self, deadline: float) -> str | None:
        """The token to use now; waits while the breaker is open for the same token."""
        while True:
            token = self.tokens.current()
            if not self.is_open or token_fingerprint(token) != self.open_for:
                return token
            now = time.monotonic()
            if now - self._last_try >= self.probe_s:
                self._last_try = now
                return token  # one probe: the account may have been fixed without a new token
            if now >= deadline:
                raise MapboxWaitExpired("Mapbox token still rejected after the maximum wait")
            await asyncio.sleep(min(self.recheck_s, max(0.0, deadline - now)))


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    max_in_flight: int = 16
    timeout_s: float = 20.0
    retry_attempts: int = 4
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    rate_limit_max_wait_s: float = 300.0
    outage_max_wait_s: float = 6 * 3600.0
    outage_backoff_max_s: float = 60.0
    auth_recheck_s: float = 5.0
    auth_probe_s: float = 600.0


class MapboxClient:
    def __init__(self, config: ClientConfig | TilerView, tokens: TokenSource, alert: Alert | None = None,
                 budget: RequestBudget | None = None) -> None:
        """``config``: a ``ClientConfig``, or the service's settings seen through ``TilerView``.
        ``budget``: the request budget shared with the other replicas (none: only Mapbox's 429s
        pace this client)."""
        if not 1 <= config.max_in_flight <= 32:
            raise ValueError("max_in_flight must be 1..32")
        self.config = config
        self._budget = budget
        self.breaker = AuthBreaker(tokens, recheck_s=config.auth_recheck_s, probe_s=config.auth_probe_s)
        self._alert = alert
        self._sem = asyncio.Semaphore(config.max_in_flight)
        self._paused_until = 0.0
        self._down_since: float | None = None
        self._in_flight = 0
        self.max_in_flight_seen = 0
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(max_connections=config.max_in_flight,
                                max_keepalive_connections=config.max_in_flight),
            headers={"User-Agent": "emberwatch-tiler/0.1"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _emit(self, alert: str, severity: str, message: str, details: dict) -> None:
        if self._alert is None:
            return
        try:
            await self._alert(alert, severity, message, details)
        except Exception:  # noqa: BLE001 - an alert that cannot be sent must not fail the fetch
            log.exception("could not publish alert", extra={"alert": alert})

    # --- one fetch, surviving outages ------------------------------------------------------------
    async def fetch(self, path: str, params: dict | None = None, *, api: str = "static") -> bytes:
        """The body of a 200 answer for ``path``; waits out outages and a rejected token."""
        cfg = self.config
        deadline = time.monotonic() + cfg.outage_max_wait_s
        pause = cfg.retry_backoff_s
        while True:
            token = await self.breaker.admit(deadline)
            try:
                body = await self._with_retries(path, params or {}, token, api, deadline)
            except MapboxAuthError as exc:
                if self.breaker.trip(token):
                    log.error("mapbox rejected the token; holding requests until it changes",
                              extra={"status": exc.status})
                    await self._emit("mapbox_auth_failed", "critical",
                                     f"Mapbox answered {exc.status} for the configured token; the tiler "
                                     "holds all requests until the token changes.",
                                     {"status": exc.status, "api": api})
                continue
            except MapboxUnavailable as exc:
                now = time.monotonic()
                if now + pause > deadline:
                    raise MapboxWaitExpired(
                        f"Mapbox unavailable for longer than the maximum wait: {exc}") from None
                if self._down_since is None:
                    self._down_since = now
                    MAPBOX_DOWN.set(1)
                    log.warning("mapbox unavailable; waiting for it", extra={"error": str(exc)})
                    await self._emit("mapbox_unavailable", "warning",
                                     f"Mapbox is failing ({exc}); fires wait and are fetched when it is back.",
                                     {"api": api})
                RETRIES.labels("outage").inc()
                await asyncio.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, cfg.outage_backoff_max_s)
                continue
            if self.breaker.is_open:
                self.breaker.close()
            if self._down_since is not None:
                log.info("mapbox is back", extra={"down_s": round(time.monotonic() - self._down_since, 1)})
                self._down_since = None
                MAPBOX_DOWN.set(0)
            return body

    async def _with_retries(self, path: str, params: dict, token: str | None, api: str,
                            deadline: float) -> bytes:
        cfg = self.config

        backoff = Backoff(attempts=cfg.retry_attempts, first_s=cfg.retry_backoff_s,
                          max_s=cfg.retry_backoff_max_s, jitter_s=cfg.retry_backoff_s)
        try:
            async for attempt in async_retrying(
                    backoff, what="mapbox request", logger=None,  # counted; the outage is logged once
                    retry_on=lambda exc: isinstance(exc, _Transient),
                    on_retry=lambda exc: RETRIES.labels(getattr(exc, "reason", "error")).inc()):
                with attempt:
                    return await self._send(path, params, token, api, deadline)
        except _Transient as exc:
            raise MapboxUnavailable(f"{exc.reason} after {cfg.retry_attempts} tries") from None
        raise AssertionError("unreachable")

    # --- one request, with the 429 gate --------------------------------------------------------
    async def _send(self, path: str, params: dict, token: str | None, api: str, deadline: float) -> bytes:
        while True:
            wait = self._paused_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self._budget is not None:
                await self._budget.take()
            query = dict(params)
            if token:
                query["access_token"] = token
            async with self._sem:
                self._in_flight += 1
                self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
                IN_FLIGHT.inc()
                started = time.perf_counter()
                try:
                    response = await self._http.get(path, params=query)
                    body = response.content
                except httpx.TimeoutException:
                    REQUESTS.labels(api, "timeout").inc()
                    raise _Transient("timeout") from None
                except httpx.TransportError as exc:
                    REQUESTS.labels(api, "connection").inc()
                    raise _Transient(f"connection ({type(exc).__name__})") from None
                finally:
                    self._in_flight -= 1
                    IN_FLIGHT.dec()
                    FETCH_SECONDS.labels(api).observe(time.perf_counter() - started)
            status = response.status_code
            REQUESTS.labels(api, str(status)).inc()
            if status == 200:
                return body
            if status == 429:
                wait = self._rate_limit_wait(response)
                if time.monotonic() + wait > deadline:
                    raise MapboxUnavailable("rate limited beyond the maximum wait")
                RETRIES.labels("429").inc()
                self._paused_until = max(self._paused_until, time.monotonic() + wait)
                if self._budget is not None:
                    await asyncio.to_thread(self._budget.pause_all, wait)  # every replica waits
                log.warning("mapbox rate limit hit; pausing", extra={"wait_s": round(wait, 2)})
                continue
            if status in (401, 403):
                raise MapboxAuthError(status)
            if status >= 500:
                raise _Transient("5xx")
            raise MapboxRejected(status, _message(response))

    def _rate_limit_wait(self, response: httpx.Response) -> float:
        cap = self.config.rate_limit_max_wait_s
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(retry_after, cap)
        reset = response.headers.get("X-Rate-Limit-Reset")
        if reset:
            try:
                return min(max(float(reset) - time.time(), 0.0), cap)
            except ValueError:
                pass
        return min(self.config.retry_backoff_s * 2, cap)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        text = str(data.get("message", data)) if isinstance(data, dict) else str(data)
    except ValueError:
        text = response.text[:200]
    return text[:200]
