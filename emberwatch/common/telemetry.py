"""Prometheus metrics shared by every service (``emberwatch_*``) and the /metrics endpoint."""

from __future__ import annotations

import socket
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

MESSAGES_CONSUMED = Counter(
    "emberwatch_messages_consumed_total",
    "Messages a service handled, by topic and outcome (ok, dlq).",
    ["service", "topic", "outcome"],
)
MESSAGES_PUBLISHED = Counter(
    "emberwatch_messages_published_total",
    "Events a service published, by topic.",
    ["service", "topic"],
)
HANDLER_SECONDS = Histogram(
    "emberwatch_handler_seconds",
    "Time a handler took for one message, retries included.",
    ["service", "topic"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
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
