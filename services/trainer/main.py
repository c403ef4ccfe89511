"""Wiring: the broker, the subscriptions of ``handlers.routes``, the scheduler's lifecycle."""

from __future__ import annotations

from faststream import FastStream
from faststream.kafka import KafkaBroker

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.subscription import Delivery, subscribe_routes
from services.trainer.handlers import Handlers, routes
from services.trainer.pipeline import Trainer
from services.trainer.settings import SERVICE, TrainerSettings


def build_service(settings: Settings) -> tuple[KafkaBroker, Handlers]:
    s = narrow(settings, TrainerSettings)
    broker = build_broker(s, SERVICE, graceful_timeout=60.0)
    handlers = Handlers(Trainer(s), broker)
    subscribe_routes(broker, routes(handlers), Delivery.from_settings(s, service=SERVICE, group_id=s.trainer_group_id))
    return broker, handlers


def build_app(settings: Settings) -> FastStream:
    broker, handlers = build_service(settings)
    app = FastStream(broker)
    app.after_startup(handlers.start)
    app.on_shutdown(handlers.stop)
    return app


def main() -> None:
    run_service(SERVICE, build_app, single_active=True)


if __name__ == "__main__":
    main()
