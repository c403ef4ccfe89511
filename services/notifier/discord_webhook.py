"""Execute a Discord webhook reliably: rate limits, retries, and no secret in any log or error.

* 2xx with ``?wait=true``: Discord confirmed the message; its id is returned.
* 429: wait ``retry_after`` (JSON body), else ``X-RateLimit-Reset-After``, else ``Retry-After``,
  then try again (bounded by ``max_rate_limit_retries`` and ``max_rate_limit_wait_s``).
* Both retry loops are the shared policy of ``emberwatch/common/retries.py``.
* ``X-RateLimit-Remaining: 0`` on any answer: the next request waits until the bucket resets.
* 5xx and network errors: exponential backoff, up to ``max_attempts``; then
  :class:`DiscordUnavailable` (transient: the consumer retries the message, then DLQs it).
* 400/401/403/404: :class:`DiscordRejected`, a ``PermanentError`` — the message goes to the DLQ at
  once, no retry storm.

The webhook URL contains the token, so it is held as a ``SecretStr``; errors carry only the status,
Discord's error code and message; httpx exceptions (whose ``request`` holds the URL) are never
chained, and the ``httpx`` logger's request lines are redacted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from emberwatch.common.logging import redact
from emberwatch.common.retries import Backoff, async_retrying, retry_after_seconds
from emberwatch.messaging.consumer import PermanentError
from services.notifier.metrics import RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS, RETRIES

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class DiscordRejected(PermanentError):
    """Discord refused the request (400/401/403/404): retrying cannot help."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        self.status, self.code, self.discord_message = status, code, message
        super().__init__(f"Discord rejected the webhook post: HTTP {status}, code {code}: {message}")


class DiscordUnavailable(Exception):
    """Discord did not accept the post after all attempts (5xx, network, long rate limit)."""


@dataclass(frozen=True)
class PostResult:
    message_id: str | None
    attempts: int
    rate_limit_waits: int


@dataclass
class _Tally:
    """What one post has done so far, across its retries."""

    attempts: int = 0  # requests sent
    waits: int = 0  # pauses for the rate limit (429 and an empty bucket)
    rate_limited: int = 0  # 429s waited out


class _ServerTrouble(Exception):
    """A 5xx or a network error: worth another try after a backoff. Its text holds no URL."""

    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason, self.problem = reason, problem


class _RateLimited(Exception):
    """A 429: try again after ``retry_after`` seconds (Discord's word)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited for {seconds:.3f} s")
        self.retry_after = seconds


class _RedactFilter(logging.Filter):
    """Rewrites a record's message with secrets removed (httpx logs the request URL at INFO).

    Besides the shared patterns it removes the exact webhook URLs and tokens it was told about,
    so URLs the shared pattern does not know (``/api/v10/webhooks/...``) are covered too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is left as it is
            return True
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = _RedactFilter()


def install_log_redaction(*secrets: str) -> None:
    """Make sure the HTTP client libraries never log a webhook URL or token (idempotent)."""
    _FILTER.secrets.update(s for s in secrets if len(s) >= 8)
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def rate_limit_wait_s(response: httpx.Response) -> float:
    """How long a 429 asks us to wait: JSON ``retry_after``, then ``X-RateLimit-Reset-After``, then
    ``Retry-After`` (read by the one ``retry_after_seconds``), else one second."""
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    asked = body.get("retry_after") if isinstance(body, Mapping) else None
    seconds = retry_after_seconds(asked if isinstance(asked, str | int | float) else None,
                                  response.headers.get("X-RateLimit-Reset-After"),
                                  response.headers.get("Retry-After"))
    return 1.0 if seconds is None else seconds


def _discord_error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, _FILTER.scrub(response.text[:300])
    if not isinstance(body, Mapping):
        return None, ""
    message = str(body.get("message", ""))
    if body.get("errors"):
        message += " " + json.dumps(body["errors"])[:600]
    code = body.get("code")
    return (code if isinstance(code, int) else None), _FILTER.scrub(message)


class DiscordWebhook:
    """One webhook. Posts are serialised (one bucket), so waits apply to every caller."""

    def __init__(
        self,
        url: SecretStr,
        *,
        http: httpx.AsyncClient,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_rate_limit_retries: int = 20,
        max_rate_limit_wait_s: float = 120.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not isinstance(url, SecretStr):
            raise TypeError("the webhook URL must be a SecretStr")
        self._url = url
        self._http = http
        # 5xx and network errors: exponential from backoff_s, capped, with up to backoff_s of jitter
        self._server_backoff = Backoff(attempts=max(1, max_attempts), first_s=backoff_s, max_s=max_backoff_s,
                                       jitter_s=backoff_s)
        self._max_rl_retries = max_rate_limit_retries
        self._max_rl_wait_s = max_rate_limit_wait_s
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._blocked_until = 0.0  # monotonic time before which the bucket is empty
        url_text = url.get_secret_value()
        install_log_redaction(url_text, url_text.rstrip("/").rsplit("/", 1)[-1])

    def __repr__(self) -> str:
        return "DiscordWebhook(url=**********)"

    async def _wait(self, seconds: float, cause: str) -> None:
        if seconds > self._max_rl_wait_s:
            raise DiscordUnavailable(
                f"Discord asks to wait {seconds:.1f} s, more than the {self._max_rl_wait_s:.0f} s allowed"
            )
        RATE_LIMIT_WAITS.labels(cause).inc()
        RATE_LIMIT_WAIT_SECONDS.observe(seconds)
        log.info("waiting for Discord's rate limit", extra={"wait_s": round(seconds, 3), "cause": cause})
        await self._sleep(seconds)

    def _note_bucket(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset_after = _float(response.headers.get("X-RateLimit-Reset-After"))
        if remaining is not None and remaining.strip() == "0" and reset_after is not None:
            self._blocked_until = time.monotonic() + reset_after
        elif remaining is not None and remaining.strip() != "0":
            self._blocked_until = 0.0

    async def post(self, payload: Mapping[str, Any]) -> PostResult:
        """Post ``payload`` and wait for Discord's confirmation; see the module doc for failures."""
        # Components (buttons) are sent only with with_components=true; Discord keeps interactive ones
        # only on a webhook its application owns (the bot's), and drops them on any other webhook.
        params = {"wait": "true", **({"with_components": "true"} if payload.get("components") else {})}
        async with self._lock:
            tally = _Tally()
            try:
                async for attempt in async_retrying(
                        self._server_backoff, what="Discord webhook post", logger=log,
                        retry_on=lambda exc: isinstance(exc, _ServerTrouble),
                        on_retry=lambda exc: RETRIES.labels(getattr(exc, "reason", "server_error")).inc(),
                        sleep=self._sleep):
                    with attempt:
                        result = await self._post_through_rate_limits(params, payload, tally)
            except _ServerTrouble as exc:
                problem = exc.problem
            else:
                return result
            raise DiscordUnavailable(f"Discord unavailable after {tally.attempts} requests: {problem}")

    async def _post_through_rate_limits(self, params: dict[str, str], payload: Mapping[str, Any],
                                        tally: _Tally) -> PostResult:
        """One request, and again after each 429 for as long as Discord asks (``max_rate_limit_retries``
        waits in one post, each at most ``max_rate_limit_wait_s``)."""

        def waited(exc: BaseException | None) -> None:
            seconds = float(getattr(exc, "retry_after", 0.0))
            tally.rate_limited += 1
            tally.waits += 1
            RETRIES.labels("rate_limited").inc()
            RATE_LIMIT_WAITS.labels("429").inc()
            RATE_LIMIT_WAIT_SECONDS.observe(seconds)
            log.info("waiting for Discord's rate limit", extra={"wait_s": round(seconds, 3), "cause": "429"})

        left = max(0, self._max_rl_retries - tally.rate_limited)
        waits = Backoff(attempts=left + 1, first_s=0.0, max_s=self._max_rl_wait_s)  # the wait is Discord's
        try:
            async for attempt in async_retrying(waits, what="Discord webhook post", logger=None,
                                                retry_on=lambda exc: isinstance(exc, _RateLimited),
                                                on_retry=waited, sleep=self._sleep):
                with attempt:
                    result = await self._request(params, payload, tally)
        except _RateLimited:
            raise DiscordUnavailable(f"Discord unavailable after {tally.attempts} requests: still rate "
                                     f"limited after {tally.rate_limited} waits") from None
        return result

    async def _request(self, params: dict[str, str], payload: Mapping[str, Any], tally: _Tally) -> PostResult:
        """One request, after the pause an empty bucket asks for: the result, or why to try again."""
        pause = self._blocked_until - time.monotonic()
        if pause > 0:
            await self._wait(pause, "remaining_zero")
            tally.waits += 1
        tally.attempts += 1
        response: httpx.Response | None = None
        problem = ""
        try:
            response = await self._http.post(self._url.get_secret_value(), params=params, json=dict(payload))
        except httpx.HTTPError as exc:  # network, timeout, protocol: the URL stays inside
            problem = f"network error {type(exc).__name__}"
        if response is None:
            raise _ServerTrouble("network", problem)  # raised outside the except: nothing chained
        self._note_bucket(response)
        status = response.status_code
        if 200 <= status < 300:
            message_id = None
            if status != 204:
                try:
                    message_id = str(response.json().get("id"))
                except (ValueError, AttributeError):
                    message_id = None
            return PostResult(message_id=message_id, attempts=tally.attempts, rate_limit_waits=tally.waits)
        if status == 429:
            seconds = rate_limit_wait_s(response)
            if seconds > self._max_rl_wait_s:
                raise DiscordUnavailable(
                    f"Discord asks to wait {seconds:.1f} s, more than the {self._max_rl_wait_s:.0f} s allowed")
            raise _RateLimited(seconds)
        if status >= 500:
            raise _ServerTrouble("server_error", f"HTTP {status}")
        code, message = _discord_error(response)
        log.error("Discord rejected the webhook post",
                  extra={"status": status, "discord_code": code, "discord_message": message})
        raise DiscordRejected(status, code, message)
