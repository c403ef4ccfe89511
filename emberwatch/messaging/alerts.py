"""Operational alerts (``pipeline.alerts.v1``), made and published the same way by every service.

``make_alert`` builds the event with its text redacted, the message and every string in the details
(no token or webhook ever reaches Discord), and the message bounded (publishing redacts every event
again: ``emberwatch.messaging.broker.redacted``); ``publish_alert`` publishes it and never raises: an alert that cannot be sent is
logged and counted, and the work that raised it goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from prometheus_client import Counter

from emberwatch.common.logging import redact, redact_value
from emberwatch.contracts.events import PipelineAlert

log = logging.getLogger(__name__)
MAX_MESSAGE = 1000

ALERTS = Counter("emberwatch_alerts_total", "Alerts a service raised, by outcome of their publishing.",
                 ["service", "alert", "outcome"])

Severity = Literal["info", "warning", "critical"]
Publish = Callable[[PipelineAlert], Awaitable[Any]]


def make_alert(service: str, alert: str, severity: Severity, message: str, details: dict[str, Any] | None = None,
               *, component: str | None = None) -> PipelineAlert:
    return PipelineAlert.create(producer=service, alert=alert, severity=severity, component=component or service,
                                message=redact(message)[:MAX_MESSAGE], details=redact_value(details or {}))


async def publish_alert(publish: Publish, event: PipelineAlert) -> bool:
    """Publish ``event`` with ``publish``; False (logged, counted) when it could not be sent."""
    try:
        await publish(event)
    except Exception as exc:  # noqa: BLE001 - an alert must never break the work that raised it
        ALERTS.labels(event.producer, event.alert, "failed").inc()
        log.warning("could not publish alert", extra={"alert": event.alert, "error": f"{type(exc).__name__}"})
        return False
    ALERTS.labels(event.producer, event.alert, "published").inc()
    return True
