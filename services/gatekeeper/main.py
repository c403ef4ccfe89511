"""Wiring: the gatekeeper consumes candidates and live tiles, publishes decisions."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream import FastStream

from emberwatch.common.config import Settings
from emberwatch.common.service import run_service
from emberwatch.contracts.events import ModelCandidate, TileReady
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.consumer import subscribe
from services.gatekeeper.gatekeeper import SERVICE, Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.metrics import SERVING_CHECK_FAILURES
from services.gatekeeper.promote import as_gatekeeper_settings
from services.gatekeeper.serving_control import state_lock

log = logging.getLogger(__name__)


def build_app(settings: Settings, *, gatekeeper: Gatekeeper | None = None) -> FastStream:
    s = as_gatekeeper_settings(settings)
    broker = build_broker(s, SERVICE)
    gk = gatekeeper or Gatekeeper(s)
    handlers = Handlers(broker, gk)
    common = dict(service=SERVICE, max_attempts=s.kafka_max_attempts,
                  backoff_s=s.kafka_retry_backoff_s, session_timeout_ms=s.kafka_session_timeout_ms)
    subscribe(broker, ModelCandidate.TOPIC, ModelCandidate, handlers.on_candidate,
              group_id=s.gatekeeper_group_id, **common)
    subscribe(broker, TileReady.TOPIC, TileReady, handlers.on_tile,
              group_id=f"{s.gatekeeper_group_id}-shadow", **common)
    app = FastStream(broker)

    watchdog: dict[str, asyncio.Task] = {}

    def _ensure_loaded() -> None:
        with state_lock(s):
            gk.serving.ensure_loaded()

    @app.on_startup
    async def _load_serving() -> None:
        try:
            await asyncio.to_thread(_ensure_loaded)
        except Exception as exc:  # noqa: BLE001 - Triton may come later; the watchdog retries
            log.warning("could not load the served models at startup", extra={"error": str(exc)})

    async def _watch_serving() -> None:
        """A restarted Triton (explicit model control) comes back empty: load what is served."""
        while True:
            await asyncio.sleep(s.gatekeeper_serving_check_s)
            try:
                await asyncio.to_thread(_ensure_loaded)
            except Exception as exc:  # noqa: BLE001 - Triton down: try again next round
                SERVING_CHECK_FAILURES.inc()
                log.warning("served models could not be (re)loaded", extra={"error": str(exc)})

    @app.after_startup
    async def _start_watchdog() -> None:
        if s.gatekeeper_serving_check_s > 0:
            watchdog["task"] = asyncio.create_task(_watch_serving())

    @app.on_shutdown
    async def _stop_watchdog() -> None:
        task = watchdog.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app


def main() -> None:
    run_service(SERVICE, build_app)
