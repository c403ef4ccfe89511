"""A background task that lives as long as a service's FastStream app: started after startup,
cancelled (and awaited) at shutdown. The gatekeeper's clock and its serving watchdog run this way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from faststream import FastStream


def run_while_app_runs(app: FastStream, name: str, work: Callable[[], Awaitable[None]]) -> None:
    """Start ``work()`` as a task named ``name`` once ``app`` has started; cancel it at shutdown."""
    running: list[asyncio.Task] = []

    @app.after_startup
    async def _start() -> None:
        running.append(asyncio.create_task(work(), name=name))

    @app.on_shutdown
    async def _stop() -> None:
        while running:
            task = running.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
