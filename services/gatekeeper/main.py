"""Wiring: the gatekeeper's subscriptions, its handlers, and the serving watchdog."""

from __future__ import annotations

from faststream import FastStream

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.contracts.events import LabelFeedback, ModelCandidate, ModelCommand, TileReady, TileRelabelled
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.bulk_consumer import subscribe_bulk
from emberwatch.messaging.consumer import consumer_options, subscribe
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.handlers import Handlers
from services.gatekeeper.serving.watchdog import keep_serving
from services.gatekeeper.settings import SERVICE, GatekeeperSettings


def build_app(settings: Settings, *, gatekeeper: Gatekeeper | None = None) -> FastStream:
    s = narrow(settings, GatekeeperSettings)
    broker = build_broker(s, SERVICE)
    gk = gatekeeper or Gatekeeper(s)
    handlers = Handlers(broker, gk)
    common = dict(service=SERVICE, **consumer_options(s))
    group = s.gatekeeper_group_id
    subscribe(broker, ModelCandidate.TOPIC, ModelCandidate, handlers.on_candidate, group_id=group, **common)
    subscribe_bulk(broker, TileReady.TOPIC, TileReady, handlers.on_tiles, handlers.on_tile,
                   group_id=f"{group}-shadow", **common)
    subscribe_bulk(broker, TileRelabelled.TOPIC, TileRelabelled, handlers.on_relabels, handlers.on_relabel,
                   group_id=f"{group}-relabels", **common)
    subscribe(broker, ModelCommand.TOPIC, ModelCommand, handlers.on_command, group_id=f"{group}-commands", **common)
    subscribe(broker, LabelFeedback.TOPIC, LabelFeedback, handlers.on_feedback, group_id=f"{group}-feedback",
              **common)
    app = FastStream(broker)
    keep_serving(app, gk.serving, s)
    return app


def main() -> None:
    run_service(SERVICE, build_app, single_active=True)
