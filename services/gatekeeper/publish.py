"""Publish decisions from outside the running service (an operator's promote/rollback)."""

from __future__ import annotations

import asyncio

from emberwatch.common.config import Settings
from emberwatch.contracts.events import ModelDecision
from emberwatch.messaging.broker import build_broker, publish_event

SERVICE = "gatekeeper"


async def publish_decisions(settings: Settings, decisions: list[ModelDecision]) -> None:
    if not decisions:
        return
    broker = build_broker(settings, SERVICE)
    await broker.start()
    try:
        for decision in decisions:
            await publish_event(broker, decision, service=SERVICE)
    finally:
        await broker.stop()


def publish_decisions_sync(settings: Settings, decisions: list[ModelDecision]) -> None:
    asyncio.run(publish_decisions(settings, decisions))
