"""Wiring: the broker and its subscriptions (handlers.py), the web application (routes.py), uvicorn.

``emberwatch console`` runs it. The console reads the streams from the beginning with no consumer
group (nothing committed; each start rebuilds its in-memory view), Triton for the models'
predictions on each tile, MLflow for the candidates' plots and the gatekeeper's /metrics for the
shadow's progress. It writes only two kinds of events: ``ModelCommand``
(approve/reject/promote/rollback) and ``LabelFeedback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from emberwatch.common.config import get_settings, narrow
from emberwatch.common.logging import configure_logging
from emberwatch.common.model_registry import use_mlflow_credentials
from emberwatch.common.telemetry import SERVICE_UP
from emberwatch.messaging.broker import build_broker
from emberwatch.security.console_operators import OperatorFileError
from services.console.fire_history import FireHistory
from services.console.handlers import event_router
from services.console.models import Topics
from services.console.parts import Console
from services.console.predictions import TilePredictions
from services.console.routes import routes
from services.console.run_plots import RunPlots
from services.console.settings import LEGACY_OPERATOR, SERVICE, ConsoleSettings
from services.console.signin import SignIns
from services.console.view import ConsoleView
from services.console.web_security import SecurityHeaders, WriteGuard

log = logging.getLogger(__name__)

# npm installs the front-end packages into the environment, not the source tree (scripts/setup, Dockerfile)
LEAFLET = Path(sys.prefix) / "share" / "emberwatch" / "console-web" / "node_modules" / "leaflet" / "dist"


def build_app(settings: ConsoleSettings) -> Starlette:
    """The console as an ASGI application; its parts are ``app.state.console``."""
    view, history = ConsoleView(), FireHistory()
    predictions = TilePredictions(settings, lambda: view.tiles.values(), view.notify)
    view.prediction_of = predictions.get
    view.observers.append(predictions.view_changed)
    broker = build_broker(settings, SERVICE, graceful_timeout=5.0)
    broker.include_router(event_router(view, history, Topics()))
    console = Console(settings, broker, view, history, predictions, RunPlots(settings.mlflow_tracking_uri),
                      SignIns(settings))
    app = Starlette(routes=routes(), lifespan=lifespan, middleware=[
        # outermost first: every answer (a refusal too) carries the headers
        Middleware(SecurityHeaders),
        Middleware(WriteGuard, max_body_bytes=settings.console_max_body_bytes,
                   public_url=settings.console_public_url),
    ])
    app.state.console = console
    return app


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """The HTTP client and the broker while the application runs, and the predictions scoring tiles."""
    console: Console = app.state.console
    console.http = httpx.AsyncClient(timeout=15.0)
    await console.broker.start()
    console.started = True
    SERVICE_UP.labels(SERVICE).set(1)
    scoring = asyncio.create_task(console.predictions.run(), name="console-predictions")
    try:
        yield
    finally:
        console.started = False
        SERVICE_UP.labels(SERVICE).set(0)
        scoring.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scoring
        await console.broker.stop()
        await console.http.aclose()
        log.info("console stopped", extra={"service": SERVICE})


def serve(settings: ConsoleSettings) -> None:
    """Serve the console until SIGTERM/SIGINT (uvicorn stops the broker through the lifespan)."""
    app = build_app(settings)
    signins: SignIns = app.state.console.signins
    try:
        operators = signins.operators.names()
    except (OSError, OperatorFileError) as exc:
        raise SystemExit(f"emberwatch console: cannot read the operators file: {exc}") from exc
    if signins.legacy_token() is not None:
        log.warning("the legacy shared operator token is set: whoever signs in with it is named "
                    f"{LEGACY_OPERATOR!r}; give each operator their own secret (emberwatch console-operator add)")
    if not LEAFLET.is_dir():
        log.warning("Leaflet is not installed: the map cannot draw; run scripts/setup (npm ci)",
                    extra={"expected_at": str(LEAFLET)})
    proxies = settings.console_trusted_proxies.strip()
    # X-Forwarded-For/-Proto only from the proxies named (uvicorn would otherwise trust 127.0.0.1's)
    config = uvicorn.Config(app, host=settings.console_host, port=settings.console_port,
                            log_level="warning", access_log=False, lifespan="on",
                            proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)
    server = uvicorn.Server(config)
    if settings.console_port:
        try:  # the local Prometheus scrapes the console's own /metrics
            from emberwatch.common.prometheus_targets import register_target

            register_target(settings, SERVICE, f"{settings.console_host}:{settings.console_port}")
        except OSError:
            log.warning("could not register with the local Prometheus", extra={"service": SERVICE})
    log.info("console starting", extra={"service": SERVICE, "host": settings.console_host,
                                        "port": settings.console_port,
                                        "kafka": settings.kafka_bootstrap_servers,
                                        "signin_enabled": signins.enabled(),
                                        "operators_file": str(settings.operators_path),
                                        "operators": len(operators),
                                        "legacy_token": signins.legacy_token() is not None})
    try:
        server.run()
    except SystemExit as exc:
        raise SystemExit(f"emberwatch console: cannot serve on {settings.console_host}:{settings.console_port}; "
                         "another process uses it? set EMBERWATCH_CONSOLE_PORT to a free port") from exc


def main() -> None:
    """``emberwatch console`` (also ``emberwatch run console``): settings from the environment."""
    settings = narrow(get_settings(), ConsoleSettings)
    configure_logging(settings.log_level, settings.log_format)
    use_mlflow_credentials(settings)
    # a plot request must not hang a page for minutes on MLflow's default retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
    serve(settings)
