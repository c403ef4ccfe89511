"""Wiring: the broker, the four subscriptions, the scheduler's lifecycle; ``emberwatch run trainer``."""

from __future__ import annotations

from faststream import FastStream
from faststream.kafka import KafkaBroker

from emberwatch.common.config import Settings, narrow
from emberwatch.common.service import run_service
from emberwatch.contracts import LabelFeedback, TileReady, TileRelabelled, Topic, TrainingRequest
from emberwatch.messaging.broker import build_broker
from emberwatch.messaging.bulk_consumer import subscribe_bulk
from emberwatch.messaging.consumer import consumer_options, subscribe
from services.trainer.handlers import SERVICE, TrainerHandlers
from services.trainer.pipeline import Trainer
from services.trainer.settings import TrainerSettings


def build_service(settings: Settings) -> tuple[KafkaBroker, TrainerHandlers]:
    s = narrow(settings, TrainerSettings)
    broker = build_broker(s, SERVICE, graceful_timeout=60.0)
    handlers = TrainerHandlers(Trainer(s), broker)
    common = dict(service=SERVICE, **consumer_options(s))
    # One consumer group per subscription: in a shared group each consumer that joins at start-up
    # makes the others stop for a rebalance, which cost a backlog drain about 4 s of every 5.
    group = s.trainer_group_id
    subscribe_bulk(broker, Topic.TILES_READY, TileReady, handlers.on_tiles_ready, handlers.on_tile_ready,
                   group_id=group, **common)
    subscribe(broker, Topic.TILES_RELABELLED, TileRelabelled, handlers.on_tile_relabelled,
              group_id=f"{group}-relabels", **common)
    subscribe(broker, Topic.TRAINING_REQUESTS, TrainingRequest, handlers.on_training_request,
              group_id=f"{group}-requests", **common)
    subscribe(broker, Topic.LABELS_FEEDBACK, LabelFeedback, handlers.on_label_feedback,
              group_id=f"{group}-feedback", **common)
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
