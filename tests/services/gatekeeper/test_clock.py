"""The gatekeeper's clock: it ticks at its interval, survives a failed tick, stops with the app, and is
off at 0. (The core's answer to a tick: tests/services/gatekeeper/core/test_machine.py.)"""

from __future__ import annotations

import asyncio

from faststream import FastStream

from services.gatekeeper.clock import keep_time, tick_every


def test_the_clock_ticks_on_after_a_failed_tick():
    ticks: list[int] = []

    async def on_tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 2:
            raise RuntimeError("MLflow away")

    async def run() -> None:
        task = asyncio.create_task(tick_every(0.01, on_tick))
        for _ in range(500):  # bounded: at most 5 s
            if len(ticks) >= 4:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert ticks[:4] == [0, 1, 2, 3]


def test_the_clock_runs_while_the_app_runs_and_not_at_zero():
    async def run(interval_s: float) -> int:
        ticks: list[None] = []

        async def on_tick() -> None:
            ticks.append(None)

        app = FastStream()
        keep_time(app, on_tick, interval_s)
        for hook in app._after_startup_calling:  # noqa: SLF001 - FastStream's own hooks, run as it runs them
            await hook()
        await asyncio.sleep(0.2)
        for hook in app._on_shutdown_calling:  # noqa: SLF001
            await hook()
        stopped = len(ticks)
        await asyncio.sleep(0.1)
        assert len(ticks) == stopped  # no tick after shutdown
        return stopped

    assert asyncio.run(run(0.02)) >= 2
    assert asyncio.run(run(0)) == 0
