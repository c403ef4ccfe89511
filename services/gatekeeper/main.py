"""Wiring: the gatekeeper consumes candidates and live tiles, publishes decisions."""

from __future__ import annotations

import logging

from faststream import FastStream

from emberwatch.common.config import Settings
from emberwatch.common.service import run_service
from emberwatch.contracts.events import ModelCandidate, TileReady
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.consumer import subscribe
from services.gatekeeper.gatekeeper import SERVICE, Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.promote import as_gatekeeper_settings

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

    @app.on_startup
    async def _load_serving() -> None:
        import asyncio

        try:
            await asyncio.to_thread(gk.serving.ensure_loaded)
        except Exception as exc:  # noqa: BLE001 - Triton may come later; candidates retry
            log.warning("could not load the served models at startup", extra={"error": str(exc)})

    return app


def main() -> None:
    run_service(SERVICE, build_app)
