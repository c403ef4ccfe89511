"""Fetch one feed over HTTP: conditional requests, timeouts, bounded retries with jittered backoff,
and a cap on the body's size, checked while it streams (decompressed bytes: a gzip bomb stops at the
cap too), so an oversized answer is refused before it is held whole or parsed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from emberwatch.common.retries import Backoff, async_retrying, retry_after_seconds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validators:
    """What the last good response said about itself, for a conditional request."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    status: int  # 200 or 304
    body: bytes
    etag: str | None
    last_modified: str | None
    content_type: str
    attempts: int

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def last_modified_at(self) -> datetime | None:
        if not self.last_modified:
            return None
        try:
            dt = parsedate_to_datetime(self.last_modified)
        except (TypeError, ValueError):
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class FetchError(Exception):
    """The feed could not be fetched. ``reason``: timeout, transport, http_5xx..., http_4xx...,
    too_large (the body passed ``max_body_bytes``: not retried, the same feed would answer the same)."""

    def __init__(self, reason: str, message: str, *, retryable: bool, retry_after: float | None = None,
                 attempts: int = 1) -> None:
        super().__init__(message)
        self.reason, self.retryable, self.retry_after, self.attempts = (
            reason, retryable, retry_after, attempts)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    total_timeout_s: float = 60.0
    max_body_bytes: int = 50 * 1024 * 1024


class _TooLarge(Exception):
    pass


async def _read_capped(resp: httpx.Response, limit: int, *, cut: bool = False) -> bytes:
    """The response's (decoded) body, refused (``_TooLarge``) as soon as it passes ``limit`` bytes, or
    with ``cut`` its first ``limit`` bytes."""
    declared = resp.headers.get("content-length", "")
    if not cut and declared.isdigit() and int(declared) > limit and not resp.headers.get("content-encoding"):
        raise _TooLarge(f"Content-Length {int(declared):,} bytes")
    chunks, size = [], 0
    async for chunk in resp.aiter_bytes():
        if size + len(chunk) > limit:
            if cut:
                chunks.append(chunk[:limit - size])
                break
            raise _TooLarge(f"more than {limit:,} bytes")
        size += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)


async def _attempt(client: httpx.AsyncClient, url: str, params: dict[str, str] | None,
                   validators: Validators, total_timeout_s: float, max_body_bytes: int) -> FetchResult:
    headers = {"Accept-Encoding": "gzip, deflate"}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    try:
        async with asyncio.timeout(total_timeout_s), client.stream("GET", url, params=params,
                                                                   headers=headers) as resp:
            status = resp.status_code
            if 200 <= status < 300:
                body = await _read_capped(resp, max_body_bytes)
            else:  # an error page: only as far as the message needs
                body = await _read_capped(resp, 4096, cut=True)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FetchError("timeout", f"no complete answer from {url} in time ({type(exc).__name__})",
                         retryable=True) from None
    except httpx.TransportError as exc:
        raise FetchError("transport", f"{type(exc).__name__} from {url}: {exc}", retryable=True) from None
    except _TooLarge as exc:
        raise FetchError("too_large", f"{url} answered with a body over the cap of {max_body_bytes:,} "
                                      f"bytes ({exc}); not parsed (EMBERWATCH_INGESTOR_MAX_FEED_BYTES)",
                         retryable=False) from None
    if status == 304:
        return FetchResult(304, b"", resp.headers.get("etag") or validators.etag,
                           resp.headers.get("last-modified") or validators.last_modified, "", 1)
    if status >= 500 or status == 429:
        raise FetchError(f"http_{status}", f"{url} answered HTTP {status}", retryable=True,
                         retry_after=retry_after_seconds(resp.headers.get("retry-after")))
    if status >= 400 or status < 200 or status >= 300:
        raise FetchError(f"http_{status}", f"{url} answered HTTP {status}: "
                                           f"{body[:120].decode('utf-8', 'replace')!r}", retryable=False)
    return FetchResult(status, body, resp.headers.get("etag"),
                       resp.headers.get("last-modified"), resp.headers.get("content-type", ""), 1)


async def fetch(client: httpx.AsyncClient, url: str, *, params: dict[str, str] | None = None,
                validators: Validators = Validators(), policy: RetryPolicy = RetryPolicy(),
                feed: str = "") -> FetchResult:
    """GET ``url``; retry timeouts, transport errors, 5xx and 429 (bounded); raise FetchError."""
    # full jitter (uniform between 0 and the exponential cap); a Retry-After is a lower bound
    backoff = Backoff(attempts=max(1, policy.attempts), first_s=policy.backoff_s,
                      max_s=policy.backoff_max_s, full_jitter=True)
    attempts = 0
    try:
        async for attempt in async_retrying(
                backoff, what="feed fetch", logger=log, extra={"feed": feed},
                retry_on=lambda e: isinstance(e, FetchError) and e.retryable):
            with attempt:
                attempts = attempt.retry_state.attempt_number
                result = await _attempt(client, url, params, validators, policy.total_timeout_s,
                                        policy.max_body_bytes)
    except FetchError as exc:
        exc.attempts = attempts
        raise
    return FetchResult(result.status, result.body, result.etag, result.last_modified,
                       result.content_type, attempts)
