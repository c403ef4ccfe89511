"""Run one service in the foreground: logs, /metrics, the FastStream app, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from faststream import FastStream

from emberwatch.common.config import Settings, get_settings
from emberwatch.common.logging import configure_logging
from emberwatch.common.telemetry import SERVICE_UP, serve_metrics

log = logging.getLogger(__name__)


def run_service(name: str, build_app: Callable[[Settings], FastStream]) -> None:
    """Configure logging and metrics, then run ``build_app(settings)`` until SIGTERM/SIGINT.

    FastStream stops the consumers on the signal, waits for in-flight handlers (graceful timeout),
    commits their offsets and exits.
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    wanted = settings.service_metrics_port(name)
    try:
        port, _ = serve_metrics(settings.metrics_host, wanted)
    except OSError as exc:
        setting = "EMBERWATCH_METRICS_PORT" if settings.metrics_port is not None else \
            "EMBERWATCH_METRICS_PORT (or EMBERWATCH_SERVICES_METRICS_BASE_PORT)"
        raise SystemExit(f"emberwatch run {name}: cannot serve /metrics on {settings.metrics_host}:{wanted} "
                         f"({exc.strerror or exc}); another process uses it — set {setting} to a free "
                         "port, or 0 for any free port") from None
    try:
        from emberwatch.stack.prometheus_config import register_target

        register_target(settings, name, f"{settings.metrics_host}:{port}")
    except OSError:
        log.warning("could not register with the local Prometheus", extra={"service": name})
    log.info("service starting", extra={"service": name, "metrics_port": port,
                                         "kafka": settings.kafka_bootstrap_servers})
    SERVICE_UP.labels(name).set(1)
    app = build_app(settings)
    try:
        asyncio.run(app.run())
    finally:
        SERVICE_UP.labels(name).set(0)
        log.info("service stopped", extra={"service": name})
