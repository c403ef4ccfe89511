"""Wiring: the broker and its five subscriptions, the web application (starlette), uvicorn.

``emberwatch console`` runs it. The console reads the streams from the beginning with no consumer
group (nothing committed; each start rebuilds its in-memory view), Triton for the models'
predictions on each tile, MLflow for the candidates' plots and the gatekeeper's /metrics for the
shadow's progress. It writes only two kinds of events: ``ModelCommand``
(approve/reject/promote/rollback) and ``LabelFeedback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from emberwatch.common.config import get_settings, narrow
from emberwatch.common.logging import configure_logging
from emberwatch.common.model_registry import use_mlflow_credentials
from emberwatch.common.telemetry import MESSAGES_CONSUMED, SERVICE_UP
from emberwatch.common.tile_store import TileMissing, TileRefused, TileUnavailable, read_tile
from emberwatch.contracts import FireObserved, ModelCandidate, ModelDecision, TileReady
from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.events import CommandKind, Label, LabelFeedback
from emberwatch.messaging.broker import build_broker, publish_event
from emberwatch.messaging.consumer import keep_raw_bodies
from emberwatch.operations.send_command import model_command
from emberwatch.security.command_keys import CONSOLE, SigningKeyMissing, load_signer
from services.console.fire_history import FireHistory
from services.console.handlers import ConsoleView
from services.console.basemap import BasemapProxy
from services.console.models import Topics, role_view
from emberwatch.security.console_operators import OperatorFileError, OperatorRegistry
from services.console.predictions import TilePredictions
from services.console.review import feedback_pending
from services.console.run_plots import MlflowUnavailable, PlotMissing, RunPlots
from services.console.sessions import Sessions, SignInThrottle
from services.console.settings import LEGACY_OPERATOR, SERVICE, ConsoleSettings
from services.console.shadow_progress import read_progress
from services.console.vector_basemap import installed_place_names, vendor_dirs
from services.console.web_security import SecurityHeaders, WriteGuard

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
# npm installs the front-end packages into the environment, not the source tree (scripts/setup, Dockerfile)
LEAFLET = Path(sys.prefix) / "share" / "emberwatch" / "console-web" / "node_modules" / "leaflet" / "dist"
COOKIE = "emberwatch_console"
ATTRIBUTION = "© Mapbox © OpenStreetMap © Maxar"
_TILE_ID = re.compile(r"^[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_NO_STORE = {"Cache-Control": "no-store"}  # an error about a tile is never cached

CONSOLE_REQUESTS = Counter("emberwatch_console_writes_total",
                           "Console write requests, by kind (command, feedback, signin) and outcome "
                           "(ok, invalid, refused, throttled, unauthorized, unknown_tile).",
                           ["kind", "outcome"])


class SignIn(BaseModel):
    secret: str = Field(min_length=1, max_length=512)


class CommandRequest(BaseModel):
    command: CommandKind
    version: str | None = Field(None, pattern=r"^[0-9]+$")
    reason: str = Field("", max_length=2000)


class FeedbackRequest(BaseModel):
    tile_id: str
    label: Label
    note: str = Field("", max_length=2000)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Console:
    """The view, the broker, the sessions and the HTTP routes; ``app`` is the ASGI application."""

    def __init__(self, settings: ConsoleSettings, topics: Topics = Topics()) -> None:
        self.settings, self.topics = settings, topics
        self.view = ConsoleView()
        self.history = FireHistory()  # each fire's stage and hectares over time
        self.predictions = TilePredictions(settings, lambda: self.view.tiles.values(), self.view.notify)
        self.view.prediction_of = self.predictions.get
        self.view.observers.append(self._observe)
        self.plots = RunPlots(settings.mlflow_tracking_uri)
        self._scoring: asyncio.Task | None = None
        self.broker = build_broker(settings, SERVICE, graceful_timeout=5.0)
        self.started = False
        self.operators = OperatorRegistry(settings.operators_path)
        self.sessions = Sessions(settings.console_session_max_age_s, self._may_act)
        self.throttle = SignInThrottle(settings.console_signin_failures_per_minute)
        self._hashing = asyncio.Semaphore(2)  # scrypt takes 16 MiB and a core for ~50 ms
        self._http: httpx.AsyncClient | None = None

        def http() -> httpx.AsyncClient:
            assert self._http is not None
            return self._http

        self.basemap = BasemapProxy(settings, http)
        for topic, model, handler in (
            (topics.fires, FireObserved, self._on_fire),
            (topics.tiles, TileReady, self.view.on_tile),
            (topics.decisions, ModelDecision, self.view.on_decision),
            (topics.candidates, ModelCandidate, self.view.on_candidate),
            (topics.feedback, LabelFeedback, self.view.on_feedback),
        ):
            # No group: every partition from the beginning, nothing committed. Bodies stay bytes and are
            # validated once against the event model (invalid ones are counted and skipped).
            self.broker.subscriber(topic, group_id=None, auto_offset_reset="earliest", decoder=keep_raw_bodies)(
                self._handler(topic, model, handler))
        self.app = Starlette(routes=[
            Route("/", self.page_map), Route("/models", self.page_models),
            Route("/healthz", self.healthz), Route("/metrics", self.metrics),
            Route("/api/fires", self.api_fires), Route("/api/tiles", self.api_tiles),
            Route("/api/history", self.api_history), Route("/api/basemap/places", self.api_places),
            Route("/api/models", self.api_models), Route("/api/me", self.api_me),
            Route("/api/decisions/{command_id}", self.api_decision),
            Route("/api/stream", self.api_stream),
            Route("/api/signin", self.api_signin, methods=["POST"]),
            Route("/api/signout", self.api_signout, methods=["POST"]),
            Route("/api/commands", self.api_commands, methods=["POST"]),
            Route("/api/feedback", self.api_feedback, methods=["POST"]),
            Route("/api/runs/{run_id}/plots/{name}", self.run_plot),
            Route("/tiles/{tile_id}", self.tile),
            Route("/basemap/{z:int}/{x:int}/{y:int}", self.basemap_tile),
            Mount("/static", StaticFiles(directory=WEB / "static"), name="static"),
            # the npm packages (Leaflet, its clusters, the vector basemap's data), each under /vendor/<name>/
            *(Mount(f"/vendor/{name}", StaticFiles(directory=folder, check_dir=False), name=f"vendor-{name}")
              for name, folder in vendor_dirs().items()),
        ], lifespan=self._lifespan, middleware=[
            # outermost first: every answer (a refusal too) carries the headers
            Middleware(SecurityHeaders),
            Middleware(WriteGuard, max_body_bytes=settings.console_max_body_bytes,
                       public_url=settings.console_public_url),
        ])

    def _handler(self, topic: str, model: type[Envelope],
                 handle: Callable[..., Awaitable[None]]) -> Callable[[bytes], Awaitable[None]]:
        async def on_message(body: bytes) -> None:
            try:
                event = model.from_bytes(body)
            except (ValidationError, ValueError) as exc:  # not ours to dead-letter: the owners do
                MESSAGES_CONSUMED.labels(SERVICE, topic, "invalid").inc()
                log.warning("skipped an invalid event", extra={"topic": topic, "error": str(exc)[:300]})
                return
            await handle(event)
            MESSAGES_CONSUMED.labels(SERVICE, topic, "ok").inc()
        on_message.__name__ = f"console_{topic.replace('.', '_')}"
        return on_message

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._http = httpx.AsyncClient(timeout=15.0)
        await self.broker.start()
        self.started = True
        SERVICE_UP.labels(SERVICE).set(1)
        self._scoring = asyncio.create_task(self.predictions.run(), name="console-predictions")
        try:
            yield
        finally:
            self.started = False
            SERVICE_UP.labels(SERVICE).set(0)
            self._scoring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scoring
            await self.broker.stop()
            await self._http.aclose()
            log.info("console stopped", extra={"service": SERVICE})

    async def _on_fire(self, fire: FireObserved) -> None:
        self.history.record(fire)
        await self.view.on_fire(fire)

    def _observe(self, kind: str) -> None:
        if kind == "tiles":
            self.predictions.tiles_added()
        elif kind == "models":
            self.predictions.models_changed()

    # --- sessions --------------------------------------------------------------------------------
    def _may_act(self, operator: str) -> bool:
        """A session's operator may still act: still in the operators file (or the legacy token still set)."""
        if operator == LEGACY_OPERATOR:
            return self.legacy_token() is not None
        try:
            return self.operators.exists(operator)
        except (OSError, OperatorFileError) as exc:
            log.error("the operators file cannot be read: nobody may act", extra={"error": str(exc)})
            return False

    def legacy_token(self) -> bytes | None:
        token = self.settings.console_operator_token
        return token.get_secret_value().encode() if token is not None and token.get_secret_value() else None

    def signin_enabled(self) -> bool:
        try:
            return self.legacy_token() is not None or bool(self.operators.names())
        except (OSError, OperatorFileError):
            return False

    def user(self, request: Request) -> str | None:
        return self.sessions.operator(request.cookies.get(COOKIE))

    def _authenticate(self, secret: str) -> str | None:
        """The operator this secret belongs to: a named operator's, else (legacy) the shared token's."""
        operator = self.operators.authenticate(secret)
        if operator is None and (legacy := self.legacy_token()) is not None \
                and hmac.compare_digest(secret.encode(), legacy):
            operator = LEGACY_OPERATOR
        return operator

    def _secure_cookie(self, request: Request) -> bool:
        public = self.settings.console_public_url
        return (public or str(request.url)).startswith("https://")

    async def _json(self, request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
        try:  # WriteGuard has checked the origin and the type and read at most the limit
            raw = await request.body()
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            return _error(422, f"invalid request: {problems}")

    async def api_signin(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self.throttle.retry_after(client)
        if wait is not None:
            CONSOLE_REQUESTS.labels("signin", "throttled").inc()
            return JSONResponse({"error": f"too many failed sign-ins from {client}: try again in {wait} s"},
                                status_code=429, headers={"Retry-After": str(wait)})
        body = await self._json(request, SignIn)
        if isinstance(body, Response):
            CONSOLE_REQUESTS.labels("signin", "invalid").inc()
            return body
        if not self.signin_enabled():
            CONSOLE_REQUESTS.labels("signin", "refused").inc()
            return _error(403, "sign-in is disabled: the console has no operators "
                               "(emberwatch console-operator add NAME)")
        try:
            async with self._hashing:
                operator = await asyncio.to_thread(self._authenticate, body.secret)
        except (OSError, OperatorFileError) as exc:
            log.error("the operators file cannot be read", extra={"error": str(exc)})
            return _error(503, "the console cannot read its operators file now")
        if operator is None:
            self.throttle.failed(client)
            CONSOLE_REQUESTS.labels("signin", "refused").inc()
            log.warning("console sign-in refused", extra={"client": client})  # never the secret
            return _error(401, "wrong operator secret")
        sid = self.sessions.start(operator)
        CONSOLE_REQUESTS.labels("signin", "ok").inc()
        log.info("console sign-in", extra={"user": operator, "client": client})
        response = JSONResponse({"user": operator})
        response.set_cookie(COOKIE, sid, max_age=self.settings.console_session_max_age_s, httponly=True,
                            samesite="strict", secure=self._secure_cookie(request), path="/")
        return response

    async def api_signout(self, request: Request) -> Response:
        self.sessions.end(request.cookies.get(COOKIE))
        response = JSONResponse({"user": None})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=self._secure_cookie(request))
        return response

    async def api_me(self, request: Request) -> Response:
        return JSONResponse({"user": self.user(request),
                             "signin_enabled": self.signin_enabled(),
                             "basemap_min_zoom": self.settings.console_basemap_min_zoom})

    # --- writes ----------------------------------------------------------------------------------
    async def api_commands(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            CONSOLE_REQUESTS.labels("command", "unauthorized").inc()
            return _error(401, "sign in as an operator to send commands")
        body = await self._json(request, CommandRequest)
        if isinstance(body, Response):
            CONSOLE_REQUESTS.labels("command", "invalid").inc()
            return body
        if body.command == "promote" and body.version is None:
            return _error(422, "invalid request: version: a promote needs the version to promote")
        try:  # signed with the console's key: it vouches for the operator it signed in
            signer = load_signer(self.settings, CONSOLE)
        except SigningKeyMissing as exc:
            log.error("the console cannot sign commands", extra={"error": str(exc)})
            return _error(503, "the console has no key to sign commands with; see its log")
        command = model_command(body.command, self.settings.console_model_name, requested_by=f"console:{user}",
                                signer=signer, version=body.version, reason=body.reason,
                                wait_s=self.settings.console_command_wait_s, producer=SERVICE)
        await publish_event(self.broker, command, service=SERVICE)
        CONSOLE_REQUESTS.labels("command", "ok").inc()
        log.info("console command sent", extra={"command": command.command, "version": command.version,
                                                "command_id": command.event_id, "user": user})
        return JSONResponse({"command_id": command.event_id, "command": command.command,
                             "version": command.version, "requested_by": command.requested_by}, status_code=202)

    async def api_feedback(self, request: Request) -> Response:
        user = self.user(request)
        if user is None:
            CONSOLE_REQUESTS.labels("feedback", "unauthorized").inc()
            return _error(401, "sign in as an operator to label tiles")
        body = await self._json(request, FeedbackRequest)
        if isinstance(body, Response):
            CONSOLE_REQUESTS.labels("feedback", "invalid").inc()
            return body
        tile = self.view.tiles.get(body.tile_id)
        if tile is None:
            CONSOLE_REQUESTS.labels("feedback", "unknown_tile").inc()
            return _error(404, f"unknown tile id {body.tile_id[:80]!r}: no tiles.ready.v1 event announced it")
        feedback = LabelFeedback.create(producer=SERVICE, tile_id=tile.tile_id, label=body.label,
                                        labelled_by=f"console:{user}", note=body.note,
                                        previous_label=tile.label, trace_id=tile.trace_id)
        await publish_event(self.broker, feedback, service=SERVICE)
        CONSOLE_REQUESTS.labels("feedback", "ok").inc()
        log.info("console feedback sent", extra={"tile_id": tile.tile_id, "label": body.label, "user": user})
        return JSONResponse({"event_id": feedback.event_id, "tile_id": tile.tile_id, "label": body.label},
                            status_code=202)

    # --- reads -----------------------------------------------------------------------------------
    async def page_map(self, request: Request) -> Response:
        return FileResponse(WEB / "index.html")

    async def page_models(self, request: Request) -> Response:
        return FileResponse(WEB / "models.html")

    async def healthz(self, request: Request) -> Response:
        if not self.started:
            return _error(503, "starting: the broker is not connected yet")
        return JSONResponse({"status": "ok", "service": SERVICE, "fires": len(self.view.fires),
                             "tiles": len(self.view.tiles)})

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def api_fires(self, request: Request) -> Response:
        fires = [f | self.history.changes(key) | {"feedback_pending": feedback_pending(self.view, key)}
                 for f in self.view.active_fires() for key in (f["fire_key"],)]
        return JSONResponse({"fires": fires, "attribution": ATTRIBUTION, "predictions": self.predictions.status})

    async def api_history(self, request: Request) -> Response:
        fire_key = request.query_params.get("fire_key")
        if not fire_key:
            return _error(400, "give the fire: /api/history?fire_key=<fire_key>")
        return JSONResponse({"fire_key": fire_key, "history": self.history.of(fire_key)})

    async def api_places(self, request: Request) -> Response:
        return JSONResponse({"places": installed_place_names()},
                            headers={"Cache-Control": "public, max-age=86400"})

    async def api_tiles(self, request: Request) -> Response:
        fire_key = request.query_params.get("fire_key")
        if not fire_key:
            return _error(400, "give the fire: /api/tiles?fire_key=<fire_key>")
        return JSONResponse({"fire_key": fire_key, "tiles": self.view.fire_tiles(fire_key),
                             "attribution": ATTRIBUTION, "predictions": self.predictions.status})

    async def api_models(self, request: Request) -> Response:
        models = self.view.models()
        name, ui = self.settings.console_model_name, self.settings.console_mlflow_ui_url or ""
        roles = {role: role_view(role, name, models[role], self.view.candidate(models[role]), ui)
                 for role in ("champion", "challenger", "previous")}
        assert self._http is not None
        progress = await read_progress(self._http, self.settings.console_gatekeeper_metrics_url)
        return JSONResponse(models | {"model_name": name, "roles": roles, "gate": progress,
                                      "mlflow_ui_url": ui})

    async def run_plot(self, request: Request) -> Response:
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        if not _RUN_ID.match(run_id) or not any(c.run_id == run_id for c in self.view.candidates.values()):
            return PlainTextResponse(f"unknown run {run_id[:40]!r}: no models.candidates.v1 event names it",
                                     status_code=404)
        try:
            data = await asyncio.to_thread(self.plots.get, run_id, name)
        except PlotMissing as exc:
            return PlainTextResponse(str(exc), status_code=404)
        except MlflowUnavailable as exc:
            log.warning("run plot unavailable", extra={"run_id": run_id, "plot": name, "error": str(exc)})
            return PlainTextResponse(str(exc), status_code=502)
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=86400, immutable"})

    async def api_decision(self, request: Request) -> Response:
        decision = self.view.decision_for(request.path_params["command_id"])
        if decision is None:
            return _error(404, "no answer to that command yet")
        return JSONResponse(decision)

    async def api_stream(self, request: Request) -> Response:
        queue = self.view.listen()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"event: hello\ndata: {}\n\n"
                while True:
                    try:
                        kind = await asyncio.wait_for(queue.get(), timeout=15.0)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield f"event: changed\ndata: {json.dumps({'kind': kind})}\n\n".encode()
            finally:
                self.view.unlisten(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def basemap_tile(self, request: Request) -> Response:
        """A Mapbox raster tile fetched by the console: the token stays on the server (basemap.py)."""
        return await self.basemap(request)

    async def tile(self, request: Request) -> Response:
        tile_id = request.path_params["tile_id"]
        tile = self.view.tiles.get(tile_id) if _TILE_ID.match(tile_id) else None
        if tile is None:
            return PlainTextResponse(f"unknown tile id {tile_id[:80]!r}: no tiles.ready.v1 event announced it",
                                     status_code=404, headers=_NO_STORE)
        try:
            # only from the configured store, and only bytes whose sha256 is the tile id
            data = await asyncio.to_thread(read_tile, tile.uri, tile_id, settings=self.settings)
        except TileMissing:
            return PlainTextResponse(f"tile {tile_id} was announced but is not in the tile store", status_code=404,
                                     headers=_NO_STORE)
        except TileRefused as exc:
            log.warning("tile refused", extra={"tile_id": tile_id, "reason": exc.reason})
            return PlainTextResponse(f"tile {tile_id} is not in the tile store", status_code=404, headers=_NO_STORE)
        except TileUnavailable as exc:
            log.warning("tile unreadable", extra={"tile_id": tile_id, "error": type(exc).__name__})
            return PlainTextResponse(f"tile {tile_id} cannot be read from the tile store now", status_code=502,
                                     headers=_NO_STORE)
        media = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else \
            "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "application/octet-stream"
        # cacheable for good: these are the tile's own bytes (their sha256 is its id), never to change
        return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=86400, immutable"})


def serve(settings: ConsoleSettings, topics: Topics = Topics()) -> None:
    """Serve the console until SIGTERM/SIGINT (uvicorn stops the broker through the lifespan)."""
    console = Console(settings, topics)
    try:
        operators = console.operators.names()
    except (OSError, OperatorFileError) as exc:
        raise SystemExit(f"emberwatch console: cannot read the operators file: {exc}") from exc
    if console.legacy_token() is not None:
        log.warning("the legacy shared operator token is set: whoever signs in with it is named "
                    f"{LEGACY_OPERATOR!r}; give each operator their own secret (emberwatch console-operator add)")
    if not LEAFLET.is_dir():
        log.warning("Leaflet is not installed: the map cannot draw; run scripts/setup (npm ci)",
                    extra={"expected_at": str(LEAFLET)})
    proxies = settings.console_trusted_proxies.strip()
    # X-Forwarded-For/-Proto only from the proxies named (uvicorn would otherwise trust 127.0.0.1's)
    config = uvicorn.Config(console.app, host=settings.console_host, port=settings.console_port,
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
                                        "signin_enabled": console.signin_enabled(),
                                        "operators_file": str(settings.operators_path),
                                        "operators": len(operators),
                                        "legacy_token": console.legacy_token() is not None})
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
