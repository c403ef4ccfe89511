"""Wiring: the gatekeeper's subscriptions, its handlers, its clock, and the serving watchdog of each model line."""

from __future__ import annotations

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.subscription import Delivery, subscribe_routes
from services.gatekeeper.clock import keep_time
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.handlers import Handlers, routes
from services.gatekeeper.lines import GatekeeperLines
from services.gatekeeper.serving.watchdog import keep_serving
from services.gatekeeper.settings import SERVICE, GatekeeperSettings


def build_app(settings: Settings, *, gatekeeper: Gatekeeper | GatekeeperLines | None = None) -> FastStream:
    """The gatekeeper of every model line (``EMBERWATCH_MODEL_LINES``), or the one given."""
    s = narrow(settings, GatekeeperSettings)
    broker = build_broker(s, SERVICE)
    gk = gatekeeper or GatekeeperLines(s)
    handlers = Handlers(broker, gk)
    subscribe_routes(broker, routes(handlers),
                     Delivery.from_settings(s, service=SERVICE, group_id=s.gatekeeper_group_id))
    app = FastStream(broker)
    keep_time(app, handlers.on_tick, s.gatekeeper_tick_s)
    for line in (gk.lines.values() if isinstance(gk, GatekeeperLines) else (gk,)):
        keep_serving(app, line.serving, line.settings)
    return app


def main() -> None:
    run_service(SERVICE, build_app, single_active=True)
