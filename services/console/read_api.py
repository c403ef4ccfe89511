"""What the console's pages read: the two pages, the fires, tiles, histories and models as JSON, the
live updates, the tiles' and plots' images, the basemap, its health and its metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from emberwatch.common.tile_store import TileMissing, TileRefused, TileUnavailable, read_tile
from emberwatch.contracts.products import PRODUCTS, model_name_for
from services.console.http_json import error
from services.console.models import ATTRIBUTION, role_view
from services.console.parts import console_of
from services.console.review import feedback_pending
from services.console.run_plots import MlflowUnavailable, PlotMissing
from services.console.settings import SERVICE
from services.console.shadow_progress import read_progress
from services.console.vector_basemap import installed_place_names

log = logging.getLogger(__name__)

WEB = Path(__file__).resolve().parent / "web"
_TILE_ID = re.compile(r"^[0-9a-f]{64}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_NO_STORE = {"Cache-Control": "no-store"}  # an error about a tile is never cached
_FOR_GOOD = {"Cache-Control": "public, max-age=86400, immutable"}  # bytes that never change


# --- pages, health, metrics ------------------------------------------------------------------------
async def map_page(request: Request) -> Response:
    return FileResponse(WEB / "index.html")


async def models_page(request: Request) -> Response:
    return FileResponse(WEB / "models.html")


async def healthz(request: Request) -> Response:
    console = console_of(request)
    if not console.started:
        return error(503, "starting: the broker is not connected yet")
    return JSONResponse({"status": "ok", "service": SERVICE, "fires": len(console.view.fires),
                         "tiles": len(console.view.tiles)})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- the JSON the pages read -----------------------------------------------------------------------
async def fires(request: Request) -> Response:
    console = console_of(request)
    view = console.view
    active = [f | console.history.changes(key) | {"feedback_pending": feedback_pending(view, key)}
              for f in view.active_fires() for key in (f["fire_key"],)]
    return JSONResponse({"fires": active, "attribution": ATTRIBUTION, "predictions": console.predictions.status})


async def history(request: Request) -> Response:
    fire_key = request.query_params.get("fire_key")
    if not fire_key:
        return error(400, "give the fire: /api/history?fire_key=<fire_key>")
    return JSONResponse({"fire_key": fire_key, "history": console_of(request).history.of(fire_key)})


async def places(request: Request) -> Response:
    return JSONResponse({"places": installed_place_names()}, headers={"Cache-Control": "public, max-age=86400"})


async def tiles(request: Request) -> Response:
    fire_key = request.query_params.get("fire_key")
    if not fire_key:
        return error(400, "give the fire: /api/tiles?fire_key=<fire_key>")
    console = console_of(request)
    return JSONResponse({"fire_key": fire_key, "tiles": console.view.fire_tiles(fire_key),
                         "sentinel2_grid": console.view.fire_grid(fire_key),
                         "attribution": ATTRIBUTION, "predictions": console.predictions.status})


async def models(request: Request) -> Response:
    console = console_of(request)
    view = console.view
    known = view.models()
    name, ui = console.settings.console_model_name, console.settings.console_mlflow_ui_url or ""
    for line in known["lines"]:
        line["model_name"] = model_name_for(name, line["product"]) if line["product"] in PRODUCTS else None
        line["roles"] = {role: role_view(role, line["model_name"] or name, line[role],
                                         view.candidate(line[role], line["product"]), ui, line["product"])
                         for role in ("champion", "challenger", "previous")}
    roles = known["lines"][0]["roles"]  # the Mapbox line's (the first): what the page showed before lines
    progress = await read_progress(console.client(), console.settings.console_gatekeeper_metrics_url, name)
    return JSONResponse(known | {"model_name": name, "roles": roles, "gate": progress, "mlflow_ui_url": ui})


async def decision(request: Request) -> Response:
    answer = console_of(request).view.decision_for(request.path_params["command_id"])
    if answer is None:
        return error(404, "no answer to that command yet")
    return JSONResponse(answer)


async def stream(request: Request) -> Response:
    """Server-sent events: ``changed`` with the kind that changed (the page refetches it)."""
    view = console_of(request).view
    queue = view.listen()

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
            view.unlisten(queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --- images ------------------------------------------------------------------------------------------
async def run_plot(request: Request) -> Response:
    console = console_of(request)
    run_id, name = request.path_params["run_id"], request.path_params["name"]
    if not _RUN_ID.match(run_id) or not any(c.run_id == run_id for c in console.view.candidates.values()):
        return PlainTextResponse(f"unknown run {run_id[:40]!r}: no models.candidates.v1 event names it",
                                 status_code=404)
    try:
        data = await asyncio.to_thread(console.plots.get, run_id, name)
    except PlotMissing as exc:
        return PlainTextResponse(str(exc), status_code=404)
    except MlflowUnavailable as exc:
        log.warning("run plot unavailable", extra={"run_id": run_id, "plot": name, "error": str(exc)})
        return PlainTextResponse(str(exc), status_code=502)
    return Response(data, media_type="image/png", headers=_FOR_GOOD)


async def basemap_tile(request: Request) -> Response:
    """A Mapbox raster tile fetched by the console: the token stays on the server (basemap.py)."""
    return await console_of(request).basemap(request)


async def tile_image(request: Request) -> Response:
    console = console_of(request)
    tile_id = request.path_params["tile_id"]
    tile = console.view.tiles.get(tile_id) if _TILE_ID.match(tile_id) else None
    if tile is None:
        return PlainTextResponse(f"unknown tile id {tile_id[:80]!r}: no tiles.ready.v1 event announced it",
                                 status_code=404, headers=_NO_STORE)
    try:
        # only from the configured store, and only bytes whose sha256 is the tile id
        data = await asyncio.to_thread(read_tile, tile.uri, tile_id, settings=console.settings)
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
    return Response(data, media_type=media, headers=_FOR_GOOD)
