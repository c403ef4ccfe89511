"""Prometheus metrics shared by every service and the /metrics endpoint.

Broker traffic is counted by FastStream's ``KafkaPrometheusMiddleware`` (``faststream_*``, labelled
``app_name`` = the service, ``handler`` = the topic consumed, ``destination`` = the topic published
to), which ``build_broker`` installs: records received, batches handled and how long they took,
exceptions, publishes. A subscription hands FastStream whole batches, so the middleware sees a batch
succeed even when one of its records went to the DLQ: what happens to single records inside a batch
(dead letters, handler failures by kind) and the consumer lag, which the middleware does not
measure, stay ``emberwatch_*`` metrics here.
"""

from __future__ import annotations

import socket
from typing import Any

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.prometheus.types import PublishingStatus
from prometheus_client import REGISTRY, Counter, Gauge, start_http_server

MESSAGES_CONSUMED = Counter(
    "emberwatch_messages_consumed_total",
    "Events the console's live reader took in, by topic and outcome (ok, invalid). Services' subscriptions "
    "are counted by FastStream's middleware (faststream_received_messages_total).",
    ["service", "topic", "outcome"],
)
HANDLER_ERRORS = Counter(
    "emberwatch_handler_errors_total",
    "Handler failures by kind (validation, exception class).",
    ["service", "topic", "kind"],
)
DLQ_MESSAGES = Counter(
    "emberwatch_dlq_messages_total",
    "Messages sent to a dead-letter topic, by source topic and reason.",
    ["service", "topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "emberwatch_consumer_lag",
    "Messages between the last handled offset and the partition's end.",
    ["service", "topic", "partition"],
)


class BrokerMetrics(KafkaPrometheusMiddleware):
    """FastStream's Prometheus middleware for one service's broker, which can also count the events
    that ``publish_events`` hands to the producer in record batches, beneath FastStream's publish
    chain (where the middleware would not see them)."""

    def __init__(self, service: str) -> None:
        super().__init__(registry=REGISTRY, app_name=service)
        self.service = service

    def count_published(self, topic: str, n: int, *, failed: bool = False) -> None:
        status = PublishingStatus.error if failed else PublishingStatus.success
        self._metrics_manager.add_published_message(amount=n, status=status, broker="kafka", destination=topic)


BrokerMetrics("emberwatch")  # registers the faststream_* metrics at import, as every metric here is

SERVICE_UP = Gauge("emberwatch_service_up", "1 while the service runs.", ["service"])
LEASE_ACTIVE = Gauge("emberwatch_lease_active",
                     "1 while this instance holds its service's lease and acts; 0 while it is a standby.",
                     ["service"])
LEASE_TAKEOVERS = Counter("emberwatch_lease_acquired_total",
                          "Times this instance acquired its service's lease (1 per start when active).", ["service"])


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now on ``host`` (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_metrics(host: str, port: int) -> tuple[int, Any]:
    """Serve /metrics from the default registry; port 0 picks a free one. Returns (port, server)."""
    if port == 0:
        port = free_port(host)
    server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    return port, (server, thread)
