"""The CWFIS simulator: both official feeds over real HTTP, from a season in accelerated time.

Feeds
- ``GET /downloads/activefires/activefires.csv`` — the legacy CSV (``?columns=7|8|9`` overrides the
  configured header generation for one request).
- ``GET /geoserver/wfs?service=WFS&request=GetFeature&typeNames=public:cwfif_national_activefires
  &outputFormat=csv|application/json`` — the CWFIF GeoServer WFS.
Both answer ``ETag``/``Last-Modified`` and ``304`` to ``If-None-Match``/``If-Modified-Since``.

Admin (for tests and demos; JSON bodies)
- ``POST /_admin/mode`` ``{"mode": "ok|html|truncated|short|garbage|500|503|slow|xml",
  "feed": "csv|wfs|all", "count": N}`` — serve a failure (for the next N requests, or until reset);
  ``?_mode=...`` on a feed URL does it for one request.
- ``POST /_admin/clock`` ``{"at": ISO}`` | ``{"advance_hours": h}`` | ``{"speed": x}`` (sim seconds per
  wall second; 0 freezes the clock).
- ``POST /_admin/config`` ``{"columns": 7|8|9, "quirks": [...], "slow_s": s}``.
- ``GET /_admin/state`` — clock, modes and request counters.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from simulators.cwfis import feeds
from simulators.cwfis.season import DEFAULT_FIRES, DEFAULT_SEED, season_start, snapshot

MODES = ("ok", "html", "truncated", "short", "garbage", "500", "503", "slow", "xml")
WFS_LAYER = "public:cwfif_national_activefires"


@dataclass
class SimConfig:
    seed: int = DEFAULT_SEED
    n_fires: int = DEFAULT_FIRES
    year: int = 2026
    start_at: datetime | None = None  # sim time at launch; default: 20 days into the season
    speed: float = 60.0  # sim seconds per wall second (one sim hour per wall minute)
    columns: int = 9
    quirks: frozenset[str] = feeds.DEFAULT_QUIRKS
    slow_s: float = 5.0


@dataclass
class SimState:
    config: SimConfig
    sim_epoch: datetime = field(init=False)
    wall_epoch: float = field(default_factory=time.monotonic)
    modes: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # feed -> (mode, left)
    requests: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        c = self.config
        start = c.start_at or season_start(c.year) + timedelta(days=20)
        self.sim_epoch = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        elapsed = time.monotonic() - self.wall_epoch
        return self.sim_epoch + timedelta(seconds=elapsed * self.config.speed)

    def set_clock(self, at: datetime) -> None:
        self.sim_epoch, self.wall_epoch = at, time.monotonic()

    def take_mode(self, feed: str) -> str:
        with self.lock:
            for name in (feed, "all"):
                if name in self.modes:
                    mode, left = self.modes[name]
                    if left is not None:
                        if left <= 1:
                            del self.modes[name]
                        else:
                            self.modes[name] = (mode, left - 1)
                    return mode
        return "ok"

    def count(self, what: str) -> None:
        with self.lock:
            self.requests[what] = self.requests.get(what, 0) + 1


@lru_cache(maxsize=64)
def _body(kind: str, seed: int, n_fires: int, year: int, hour: datetime, columns: int,
          quirks: frozenset[str]) -> bytes:
    states = snapshot(seed, hour, n_fires, year)
    if kind == "csv":
        return feeds.legacy_csv(states, columns, quirks)
    if kind == "wfs-csv":
        return feeds.wfs_csv(states)
    return feeds.wfs_geojson(states, hour)


HTML_ERROR = (b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head><body>"
              b"<h1>Service Unavailable</h1><p>The server is temporarily unable to service your "
              b"request due to maintenance downtime.</p></body></html>\n")


class _CutTransfer(Response):
    """Announces the whole body's length, sends part of it, then drops the connection."""

    def __init__(self, body: bytes, media_type: str) -> None:
        super().__init__(body, media_type=media_type)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[override]
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) * 2 // 5],
                    "more_body": True})
        # returning without finishing: the server closes the connection mid-body


def _modified_since(request: Request, last_modified: datetime) -> bool:
    ims = request.headers.get("if-modified-since")
    if not ims:
        return True
    try:
        return last_modified > parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return True


def create_app(config: SimConfig | None = None) -> Starlette:
    state = SimState(config or SimConfig())

    async def serve(request: Request, feed: str, kind: str, media_type: str) -> Response:
        state.count(feed)
        mode = request.query_params.get("_mode") or state.take_mode(feed)
        state.count(f"{feed}:{mode}")
        c = state.config
        if mode == "500":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if mode == "503":
            return PlainTextResponse("Service Unavailable", status_code=503,
                                     headers={"Retry-After": "1"})
        if mode == "html":
            return Response(HTML_ERROR, media_type="text/html; charset=utf-8")
        if mode == "xml":
            return Response(feeds.wfs_exception("NoApplicableCode", "java.io.IOException: Too many "
                                                "open files"), media_type="application/xml")
        if mode == "garbage":
            rnd = random.Random(f"garbage:{c.seed}:{state.requests[feed]}")
            return Response(bytes(rnd.randrange(256) for _ in range(2048)), media_type=media_type)
        if mode == "slow":
            await asyncio.sleep(c.slow_s)
        hour = state.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        columns = int(request.query_params.get("columns") or c.columns)
        if columns not in feeds.LEGACY_HEADERS:
            return PlainTextResponse("columns must be 7, 8 or 9", status_code=400)
        body = _body(kind, c.seed, c.n_fires, c.year, hour, columns, c.quirks)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Last-Modified": format_datetime(hour, usegmt=True),
                   "Cache-Control": "max-age=300"}
        inm = request.headers.get("if-none-match")
        if (inm and etag in [t.strip() for t in inm.split(",")]) or (
                not inm and not _modified_since(request, hour)):
            state.count(f"{feed}:304")
            return Response(status_code=304, headers=headers)
        if mode == "truncated":
            resp = _CutTransfer(body, media_type)
            resp.headers.update(headers)
            return resp
        if mode == "short":  # the file itself was cut (e.g. mid-upload): consistent length
            body = body[: len(body) * 2 // 5]
        return Response(body, media_type=media_type, headers=headers)

    async def legacy(request: Request) -> Response:
        return await serve(request, "csv", "csv", "text/csv")

    async def wfs(request: Request) -> Response:
        response = await wfs_request(request)
        if response.status_code == 400:
            state.count("wfs:400")
        return response

    async def wfs_request(request: Request) -> Response:
        q = {k.lower(): v for k, v in request.query_params.items()}
        if q.get("service", "WFS").upper() != "WFS" or q.get("request", "").lower() != "getfeature":
            return Response(feeds.wfs_exception("OperationNotSupported", "only GetFeature"),
                            status_code=400, media_type="application/xml")
        layer = q.get("typenames") or q.get("typename") or ""
        if layer != WFS_LAYER:
            return Response(feeds.wfs_exception("InvalidParameterValue", f"Unknown type {layer}"),
                            status_code=400, media_type="application/xml")
        fmt = q.get("outputformat", "application/json").lower()
        if fmt == "csv":
            return await serve(request, "wfs", "wfs-csv", "text/csv; charset=UTF-8")
        if fmt in ("application/json", "json", "geojson"):
            return await serve(request, "wfs", "wfs-json", "application/json;charset=UTF-8")
        return Response(feeds.wfs_exception("InvalidParameterValue", f"format {fmt}"),
                        status_code=400, media_type="application/xml")

    async def admin_state(request: Request) -> Response:
        c = state.config
        return JSONResponse({"now": state.now().isoformat(), "speed": c.speed, "seed": c.seed,
                             "n_fires": c.n_fires, "columns": c.columns,
                             "quirks": sorted(c.quirks), "slow_s": c.slow_s,
                             "modes": {k: list(v) for k, v in state.modes.items()},
                             "requests": dict(state.requests)})

    async def admin_mode(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        mode, feed = str(body.get("mode", "ok")), str(body.get("feed", "all"))
        if mode not in MODES or feed not in ("csv", "wfs", "all"):
            return JSONResponse({"error": f"mode in {MODES}, feed in csv|wfs|all"}, 400)
        count = body.get("count")
        with state.lock:
            if feed == "all":
                state.modes.clear()
            else:
                state.modes.pop(feed, None)
            if mode != "ok":
                state.modes[feed] = (mode, int(count) if count else None)
        return await admin_state(request)

    async def admin_clock(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        now = state.now()
        if "speed" in body:
            state.set_clock(now)
            state.config.speed = float(body["speed"])
        if "at" in body:
            at = datetime.fromisoformat(str(body["at"]))
            state.set_clock(at if at.tzinfo else at.replace(tzinfo=UTC))
        if "advance_hours" in body:
            state.set_clock(now + timedelta(hours=float(body["advance_hours"])))
        return await admin_state(request)

    async def admin_config(request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        c = state.config
        if "columns" in body:
            if int(body["columns"]) not in feeds.LEGACY_HEADERS:
                return JSONResponse({"error": "columns must be 7, 8 or 9"}, 400)
            c.columns = int(body["columns"])
        if "quirks" in body:
            unknown = set(body["quirks"]) - feeds.ALL_QUIRKS
            if unknown:
                return JSONResponse({"error": f"unknown quirks {sorted(unknown)}"}, 400)
            c.quirks = frozenset(body["quirks"])
        if "slow_s" in body:
            c.slow_s = float(body["slow_s"])
        return await admin_state(request)

    async def index(request: Request) -> Response:
        return PlainTextResponse(__doc__ or "")

    app = Starlette(routes=[
        Route("/", index),
        Route("/downloads/activefires/activefires.csv", legacy),
        Route("/geoserver/wfs", wfs),
        Route("/geoserver/ows", wfs),
        Route("/_admin/state", admin_state),
        Route("/_admin/mode", admin_mode, methods=["POST"]),
        Route("/_admin/clock", admin_clock, methods=["POST"]),
        Route("/_admin/config", admin_config, methods=["POST"]),
    ])
    app.state.sim = state
    return app
