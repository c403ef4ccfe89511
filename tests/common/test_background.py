"""A background task lives as long as the app: not before startup, cancelled and awaited at shutdown."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from emberwatch.common.background import run_while_app_runs


def test_the_task_starts_after_startup_and_is_cancelled_and_awaited_at_shutdown():
    seen: list[str] = []

    async def work() -> None:
        seen.append("started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def run() -> None:
        app = FastStream()
        run_while_app_runs(app, "test-work", work)
        await asyncio.sleep(0.05)
        assert seen == []  # nothing before startup
        for hook in app._after_startup_calling:  # noqa: SLF001 - FastStream's own hooks, run as it runs them
            await hook()
        await asyncio.sleep(0.05)
        assert [t.get_name() for t in asyncio.all_tasks()].count("test-work") == 1
        for hook in app._on_shutdown_calling:  # noqa: SLF001
            await hook()
        assert seen == ["started", "cancelled"]  # awaited: the cancellation ran before shutdown returned
        assert "test-work" not in [t.get_name() for t in asyncio.all_tasks()]

    asyncio.run(run())
