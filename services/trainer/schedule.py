"""When to train: after N new tiles, on request, or on a schedule — debounced, one at a time.

A training becomes *due* when enough new tiles arrived since the last attempt, when a request comes
in, or when the schedule fires with new tiles waiting. A due training starts once no tile arrived for
``debounce_s`` (a burst gives one training) or ``max_wait_s`` after it became due, whichever is first.
Only one training runs at a time; what arrives meanwhile makes the next one due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class TrainingScheduler:
    def __init__(
        self,
        run_training: Callable[[str], Awaitable[bool]],
        *,
        threshold: int,
        debounce_s: float,
        max_wait_s: float,
        schedule_s: float = 0.0,
        failure_retry_s: float = 60.0,
        initial_new: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run_training = run_training
        self.threshold = threshold
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s
        self.schedule_s = schedule_s
        self.failure_retry_s = failure_retry_s
        self._clock = clock
        self.new_tiles = initial_new
        self._last_tile = clock()
        self._last_run = clock()
        self._due_since: float | None = None
        self._not_before = 0.0
        self._reasons: list[str] = []
        self._tiles_due = False
        self._wake = asyncio.Event()
        self.running = False
        self.attempts = 0
        if initial_new >= threshold:
            self._make_due(f"{initial_new} new tiles waiting at startup")

    # --- inputs ------------------------------------------------------------------------------
    def tiles_arrived(self, n: int = 1) -> None:
        self.new_tiles += n
        self._last_tile = self._clock()
        if self.new_tiles >= self.threshold:
            self._make_due(None)

    def request(self, reason: str) -> None:
        self._make_due(f"requested: {reason}")

    def _make_due(self, reason: str | None) -> None:
        """Mark a training due; ``None`` means "because of the new tiles" (counted when it starts)."""
        if self._due_since is None:
            self._due_since = self._clock()
        if reason is None:
            self._tiles_due = True
        elif reason not in self._reasons:
            self._reasons.append(reason)
        self._wake.set()

    # --- decisions ---------------------------------------------------------------------------
    @property
    def due(self) -> bool:
        return self._due_since is not None

    def ready(self) -> bool:
        """A due training may start now (debounced, not running, not backing off)."""
        now = self._clock()
        if self.schedule_s and self.new_tiles > 0 and now - self._last_run >= self.schedule_s:
            self._make_due(f"schedule ({self.schedule_s:g}s)")
        if self._due_since is None or self.running or now < self._not_before:
            return False
        quiet = now - self._last_tile >= self.debounce_s
        waited = now - self._due_since >= self.max_wait_s
        return quiet or waited

    async def run_once(self) -> bool | None:
        """Start the due training if it may start; return its success (None when nothing ran)."""
        if not self.ready():
            return None
        taken = self.new_tiles
        reasons = ([f"{taken} new tiles"] if self._tiles_due else []) + self._reasons
        reason = "; ".join(reasons) or "due"
        self._due_since, self._reasons, self._tiles_due, self.new_tiles = None, [], False, 0
        self.running = True
        self.attempts += 1
        ok = False
        try:
            ok = await self._run_training(reason)
        except Exception:  # noqa: BLE001 - a failed training must not stop the scheduler
            log.exception("training failed", extra={"reason": reason})
        finally:
            self.running = False
            self._last_run = self._clock()
        if not ok:
            # Nothing is lost: try again later with what was taken (plus what arrived meanwhile).
            self.new_tiles += taken
            self._not_before = self._clock() + self.failure_retry_s
            self._make_due(reason)
        elif self.new_tiles >= self.threshold:
            self._make_due(None)
        return ok

    async def loop(self, tick_s: float = 0.25) -> None:
        """Run forever: wake on inputs or every tick, start trainings when ready."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=tick_s)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.run_once()
