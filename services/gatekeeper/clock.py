"""The gatekeeper's clock: every ``EMBERWATCH_GATEKEEPER_TICK_S`` the core hears the time
(``TimeTick``), so a shadow past its time limit is decided even when no tile comes to trigger a look."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from faststream import FastStream

from emberwatch.common.background import run_while_app_runs

log = logging.getLogger(__name__)


async def tick_every(interval_s: float, on_tick: Callable[[], Awaitable[None]]) -> None:
    """Call ``on_tick`` every ``interval_s``; a failed tick is logged and the next one comes as usual."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await on_tick()
        except Exception as exc:  # noqa: BLE001 - MLflow or Triton away: the next tick tries again
            log.warning("the gatekeeper's clock tick failed; trying again at the next", extra={"error": str(exc)})


def keep_time(app: FastStream, on_tick: Callable[[], Awaitable[None]], interval_s: float) -> None:
    """Run the clock while ``app`` runs (not at all with ``interval_s`` 0)."""
    if interval_s > 0:
        run_while_app_runs(app, "gatekeeper-clock", lambda: tick_every(interval_s, on_tick))
