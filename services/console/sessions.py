"""Signed-in operators' sessions and the per-client throttle on failed sign-ins (both in memory)."""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache


@dataclass(frozen=True)
class Session:
    operator: str
    expires: float  # time.monotonic()


class Sessions:
    """Random session ids (256 bits) to operators, each until it expires; ``still_valid`` says whether
    the operator may still act (a removed operator's sessions end on their next request)."""

    def __init__(self, max_age_s: float, still_valid: Callable[[str], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s, self.still_valid, self.clock = max_age_s, still_valid, clock
        self._by_id: dict[str, Session] = {}

    def start(self, operator: str) -> str:
        now = self.clock()
        for sid in [s for s, v in self._by_id.items() if v.expires <= now]:  # sweep the expired ones
            del self._by_id[sid]
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(operator, now + self.max_age_s)
        return sid

    def operator(self, sid: str | None) -> str | None:
        session = self._by_id.get(sid or "")
        if session is None:
            return None
        if self.clock() >= session.expires or not self.still_valid(session.operator):
            self._by_id.pop(sid or "", None)
            return None
        return session.operator

    def end(self, sid: str | None) -> None:
        self._by_id.pop(sid or "", None)


class SignInThrottle:
    """At most ``failures`` failed sign-ins per client address in any ``window_s``; then the client
    waits until the oldest of them leaves the window (``retry_after``). Remembers at most
    ``max_clients`` addresses (the least recent are forgotten first)."""

    def __init__(self, failures: int, window_s: float = 60.0, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.window_s, self.clock = failures, window_s, clock
        self._seen: TTLCache[str, deque[float]] = TTLCache(max_clients, window_s, timer=clock)

    def _recent(self, client: str) -> deque[float]:
        times = self._seen.get(client) or deque()
        cutoff = self.clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait before trying again, or None if it may try now."""
        times = self._recent(client)
        if len(times) < self.failures:
            return None
        return max(1, math.ceil(times[0] + self.window_s - self.clock()))

    def failed(self, client: str) -> None:
        times = self._recent(client)
        times.append(self.clock())
        self._seen[client] = times  # (re)sets its time to live: the window from the latest failure
