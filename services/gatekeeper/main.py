"""Wiring: the gatekeeper's subscriptions, its handlers, and the serving watchdog."""

from __future__ import annotations

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.subscription import Delivery, subscribe_routes
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.handlers import Handlers, routes
from services.gatekeeper.serving.watchdog import keep_serving
from services.gatekeeper.settings import SERVICE, GatekeeperSettings


def build_app(settings: Settings, *, gatekeeper: Gatekeeper | None = None) -> FastStream:
    s = narrow(settings, GatekeeperSettings)
    broker = build_broker(s, SERVICE)
    gk = gatekeeper or Gatekeeper(s)
    handlers = Handlers(broker, gk)
    subscribe_routes(broker, routes(handlers),
                     Delivery.from_settings(s, service=SERVICE, group_id=s.gatekeeper_group_id))
    app = FastStream(broker)
    keep_serving(app, gk.serving, s)
    return app


def main() -> None:
    run_service(SERVICE, build_app, single_active=True)
