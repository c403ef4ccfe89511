"""Wiring: the FastStream app whose lifecycle runs the ingestor's poll loop.

The ingestor consumes no topic: after the broker has started, a background task polls the feeds;
on SIGTERM FastStream runs ``on_shutdown`` first, which lets the poll in progress finish (events
published, state saved) before the broker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.messaging.broker import build_broker, publisher
from services.ingestor.handlers import Handlers
from services.ingestor.settings import SERVICE, IngestorSettings

log = logging.getLogger(__name__)
STOP_GRACE_S = 30.0


def build_app(settings: Settings) -> FastStream:
    s = narrow(settings, IngestorSettings)
    broker = build_broker(s, SERVICE)
    app = FastStream(broker)
    stop = asyncio.Event()
    running: dict[str, object] = {}

    @app.after_startup
    async def start_polling() -> None:
        ingestor = Handlers(s, publisher(broker, SERVICE))
        running["ingestor"] = ingestor
        running["task"] = asyncio.create_task(ingestor.run(stop), name="ingestor-poll-loop")

    @app.on_shutdown
    async def stop_polling() -> None:
        stop.set()
        task = running.get("task")
        if isinstance(task, asyncio.Task):
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_S)
            except TimeoutError:
                log.warning("poll still running at shutdown; cancelling it (it will be redone)")
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        ingestor = running.get("ingestor")
        if isinstance(ingestor, Handlers):
            await ingestor.aclose()

    return app


def main() -> None:
    run_service(SERVICE, build_app)


if __name__ == "__main__":
    main()
