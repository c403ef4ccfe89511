"""Ask the trainer to train now: publish a ``training.requests.v1`` command."""

from __future__ import annotations

import getpass

from emberwatch.common.config import Settings
from emberwatch.contracts import TrainingRequest
from emberwatch.messaging.broker import build_broker, publish_event


async def request_training(settings: Settings, reason: str, requested_by: str | None = None) -> TrainingRequest:
    event = TrainingRequest.create(producer="cli", reason=reason,
                                   requested_by=requested_by or getpass.getuser())
    broker = build_broker(settings, "cli")
    await broker.start()
    try:
        await publish_event(broker, event, service="cli")
    finally:
        await broker.stop()
    return event
