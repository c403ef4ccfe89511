"""Run one service in the foreground: logs, /metrics, the FastStream app, graceful SIGTERM.

A service that must act once (the trainer, the gatekeeper) runs under a lease
(``emberwatch/common/lease.py``): it waits as a standby, holding no Kafka subscription, until the
lease is its own; only then is its app built and started. If it loses the lease while it runs, it
exits at once (status 75) and its supervisor restarts it as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from faststream import FastStream

from emberwatch.common import lease as leases
from emberwatch.common.config import Settings, get_settings
from emberwatch.common.coordination import coordination_url, describe, open_coordination
from emberwatch.common.logging import configure_logging
from emberwatch.common.model_registry import use_mlflow_credentials
from emberwatch.common.prometheus_targets import register_target
from emberwatch.common.telemetry import LEASE_ACTIVE, LEASE_TAKEOVERS, SERVICE_UP, serve_metrics

log = logging.getLogger(__name__)

LEASE_LOST_EXIT = 75  # EX_TEMPFAIL: restart me


def run_service(name: str, build_app: Callable[[Settings], FastStream], *, single_active: bool = False) -> None:
    """Configure logging and metrics, then run ``build_app(settings)`` until SIGTERM/SIGINT.

    FastStream stops the consumers on the signal, waits for in-flight handlers (graceful timeout),
    commits their offsets and exits. ``single_active``: run under the service's lease.
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    use_mlflow_credentials(settings)
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
        register_target(settings, name, f"{settings.metrics_host}:{port}")
    except OSError:
        log.warning("could not register with the local Prometheus", extra={"service": name})
    log.info("service starting", extra={"service": name, "metrics_port": port,
                                         "kafka": settings.kafka_bootstrap_servers})
    SERVICE_UP.labels(name).set(1)
    try:
        if single_active:
            asyncio.run(_run_under_lease(name, settings, build_app))
        else:
            asyncio.run(build_app(settings).run())
    finally:
        SERVICE_UP.labels(name).set(0)
        log.info("service stopped", extra={"service": name})


async def _run_under_lease(name: str, settings: Settings, build_app: Callable[[Settings], FastStream]) -> None:
    url = coordination_url(settings)
    lease = leases.Lease(await asyncio.to_thread(open_coordination, url), name, ttl_s=settings.lease_ttl_s)
    LEASE_ACTIVE.labels(name).set(0)
    await _wait_for(lease, name, describe(url))
    leases.set_current(lease)
    LEASE_ACTIVE.labels(name).set(1)
    LEASE_TAKEOVERS.labels(name).inc()
    keeper = asyncio.create_task(_keep(lease, name), name=f"{name}-lease")
    app = asyncio.create_task(build_app(settings).run(), name=f"{name}-app")
    try:
        done, _ = await asyncio.wait({keeper, app}, return_when=asyncio.FIRST_COMPLETED)
        if keeper in done:  # the lease is gone: stop acting now, without a graceful drain
            LEASE_ACTIVE.labels(name).set(0)
            log.error("lease lost: exiting so that only the new holder acts",
                      extra={"service": name, "epoch": lease.epoch})
            logging.shutdown()
            os._exit(LEASE_LOST_EXIT)
        app.result()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await keeper
        LEASE_ACTIVE.labels(name).set(0)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(lease.release)
            log.info("lease released", extra={"service": name, "epoch": lease.epoch})


async def _wait_for(lease: leases.Lease, name: str, where: str) -> None:
    """Poll until the lease is ours; say once that this instance is a standby, and for whom."""
    said = False
    while True:
        try:
            if await asyncio.to_thread(lease.try_acquire):
                log.info("lease acquired: this instance is active", extra={
                    "service": name, "epoch": lease.epoch, "holder": lease.holder, "ttl_s": lease.ttl_s})
                return
            if not said:
                holder, epoch, left = await asyncio.to_thread(lease.current_holder)
                log.info(f"standby: lease {name} held by {holder}, waiting", extra={
                    "service": name, "holder": holder, "epoch": epoch, "expires_in_s": round(left, 1),
                    "coordination": where})
                said = True
        except Exception as exc:  # noqa: BLE001 - the database may come later: keep waiting
            log.warning("lease: coordination database not reachable; waiting",
                        extra={"service": name, "error": type(exc).__name__})
        await asyncio.sleep(lease.poll_every_s)


async def _keep(lease: leases.Lease, name: str) -> None:
    """Renew every third of the lease; return (lease lost) once this instance is past its deadline."""
    while True:
        await asyncio.sleep(min(lease.renew_every_s, max(lease.seconds_left(), 0.0)))
        if not lease.active:
            return
        try:
            if not await asyncio.wait_for(asyncio.to_thread(lease.renew), timeout=max(lease.seconds_left(), 0.01)):
                log.error("lease taken by another instance", extra={"service": name})
                return
        except Exception as exc:  # noqa: BLE001 - try again until the deadline
            log.warning("lease renewal failed; retrying until the lease runs out",
                        extra={"service": name, "error": type(exc).__name__,
                               "seconds_left": round(lease.seconds_left(), 1)})
            await asyncio.sleep(min(1.0, max(lease.seconds_left(), 0.0)))
