"""The serving watchdog: a restarted Triton (explicit model control) comes back empty, so what is
served is loaded again. Triton being away is expected during a restart (info, once); a Triton that
answers but refuses to load what is served is a real problem (warning, counted)."""

from __future__ import annotations

import asyncio
import logging

from faststream import FastStream

from emberwatch.common.background import run_while_app_runs
from services.gatekeeper.metrics import SERVING_CHECK_FAILURES
from services.gatekeeper.serving.control import ServingControl, state_lock
from services.gatekeeper.settings import GatekeeperSettings

log = logging.getLogger(__name__)


def check_serving(serving: ServingControl, settings: GatekeeperSettings) -> str:
    """One round: 'down' (Triton unreachable), 'reloaded' or 'ok'."""
    if not serving.triton.live():
        return "down"
    with state_lock(settings):
        return "reloaded" if serving.ensure_loaded() else "ok"


async def watch_serving(serving: ServingControl, settings: GatekeeperSettings) -> None:
    down_since: float | None = None
    while True:
        await asyncio.sleep(settings.gatekeeper_serving_check_s)
        try:
            state = await asyncio.to_thread(check_serving, serving, settings)
        except Exception as exc:  # noqa: BLE001 - Triton answers but cannot load: retry next round
            SERVING_CHECK_FAILURES.inc()
            log.warning("served models could not be (re)loaded", extra={"error": str(exc)})
            continue
        if state == "down":
            if down_since is None:
                down_since = asyncio.get_running_loop().time()
                log.info("Triton is not reachable; served models are re-loaded when it is back",
                         extra={"url": settings.triton_url})
            continue
        if state == "reloaded" or down_since is not None:
            log.info("Triton is back; served models re-loaded", extra={"roles": serving.roles()})
        down_since = None


def keep_serving(app: FastStream, serving: ServingControl, settings: GatekeeperSettings) -> None:
    """Load what is served at startup (Triton may come later), then watch it while the app runs."""
    def ensure_loaded() -> None:
        with state_lock(settings):
            serving.ensure_loaded()

    @app.on_startup
    async def _load_serving() -> None:
        try:
            await asyncio.to_thread(ensure_loaded)
        except Exception as exc:  # noqa: BLE001 - Triton may come later; the watchdog retries
            log.warning("could not load the served models at startup", extra={"error": str(exc)})

    if settings.gatekeeper_serving_check_s > 0:
        run_while_app_runs(app, "gatekeeper-serving-watchdog", lambda: watch_serving(serving, settings))
