"""Wiring: the gatekeeper consumes candidates, live tiles and operator commands, publishes decisions."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.contracts.events import LabelFeedback, ModelCandidate, ModelCommand, TileReady, TileRelabelled
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.bulk_consumer import subscribe_bulk
from emberwatch.messaging.consumer import consumer_options, subscribe
from services.gatekeeper.gatekeeper import SERVICE, Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.metrics import SERVING_CHECK_FAILURES
from services.gatekeeper.serving.control import state_lock
from services.gatekeeper.settings import GatekeeperSettings

log = logging.getLogger(__name__)


def build_app(settings: Settings, *, gatekeeper: Gatekeeper | None = None) -> FastStream:
    s = narrow(settings, GatekeeperSettings)
    broker = build_broker(s, SERVICE)
    gk = gatekeeper or Gatekeeper(s)
    handlers = Handlers(broker, gk)
    common = dict(service=SERVICE, **consumer_options(s))
    subscribe(broker, ModelCandidate.TOPIC, ModelCandidate, handlers.on_candidate,
              group_id=s.gatekeeper_group_id, **common)
    subscribe_bulk(broker, TileReady.TOPIC, TileReady, handlers.on_tiles, handlers.on_tile,
                   group_id=f"{s.gatekeeper_group_id}-shadow", **common)
    subscribe_bulk(broker, TileRelabelled.TOPIC, TileRelabelled, handlers.on_relabels, handlers.on_relabel,
                   group_id=f"{s.gatekeeper_group_id}-relabels", **common)
    subscribe(broker, ModelCommand.TOPIC, ModelCommand, handlers.on_command,
              group_id=f"{s.gatekeeper_group_id}-commands", **common)
    subscribe(broker, LabelFeedback.TOPIC, LabelFeedback, handlers.on_feedback,
              group_id=f"{s.gatekeeper_group_id}-feedback", **common)
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

    def _check_serving() -> str:
        """One watchdog round: 'down' (Triton unreachable), 'reloaded' or 'ok'."""
        if not gk.serving.triton.live():
            return "down"
        with state_lock(s):
            return "reloaded" if gk.serving.ensure_loaded() else "ok"

    async def _watch_serving() -> None:
        """A restarted Triton (explicit model control) comes back empty: load what is served.
        Triton being away is expected during a restart (info, once); a Triton that answers but
        refuses to load what is served is a real problem (warning, counted)."""
        down_since: float | None = None
        while True:
            await asyncio.sleep(s.gatekeeper_serving_check_s)
            try:
                state = await asyncio.to_thread(_check_serving)
            except Exception as exc:  # noqa: BLE001 - Triton answers but cannot load: retry next round
                SERVING_CHECK_FAILURES.inc()
                log.warning("served models could not be (re)loaded", extra={"error": str(exc)})
                continue
            if state == "down":
                if down_since is None:
                    down_since = asyncio.get_running_loop().time()
                    log.info("Triton is not reachable; served models are re-loaded when it is back",
                             extra={"url": s.triton_url})
                continue
            if state == "reloaded" or down_since is not None:
                log.info("Triton is back; served models re-loaded", extra={"roles": gk.serving.roles()})
            down_since = None

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
    run_service(SERVICE, build_app, single_active=True)
