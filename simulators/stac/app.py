"""The STAC/COG simulator: Earth Search v1's search API and Sentinel-2 COGs with Range, over real HTTP.

Public paths (Earth Search v1's shapes):

* ``GET /`` — landing page (``conformsTo`` item-search, a POST ``search`` link); ``GET /conformance``;
  ``GET /collections/sentinel-2-c1-l2a`` (and ``sentinel-2-l2a``, the same scenes).
* ``POST /search`` — ``{collections, intersects: Point | bbox, datetime: "a/b", limit, next}``: the scenes
  of the granules over the point sensed in the window and already catalogued at the clock, newest first,
  ``limit`` a page (default 10, at most 100); a ``next`` link POSTs the same body with a ``next`` token
  (``datetime,id,collection`` of the page's last item, as Earth Search does). Items carry Earth Search
  v1's asset keys (``blue``, ``green``, ``red``, ``nir``, ``nir08``, ``swir16``, ``swir22``, ``scl``,
  ``visual``), ``datetime``, ``created`` (hours later), ``eo:cloud_cover``, ``s2:processing_baseline`` and
  ``raster:bands`` scale 0.0001 and offset -0.1.
* ``GET|HEAD /cogs/{zone}/{north}/{gx}/{gy}/{yyyymmddTHHMMSS}/{asset}.tif`` — the COG, rendered on first
  use from the scene generator (simulators/stac/scenes.py) and cached; ``Range: bytes=a-b`` answers 206.

Faults, as the real services answer: each request gets 429 (with ``Retry-After: 1``) or 503 with the
probability ``fault_rate``; ``POST /_admin/faults`` ``{"status": S, "count": N}`` queues N answers S.

Admin: ``GET/POST /_admin/fires`` (``[{lat, lon, hectares, start, end?, growth_h?}]``; ``?append=1``
adds), ``GET/POST /_admin/clock`` (``{"at": ISO}`` | ``{"advance_hours": h}`` | ``{"speed": x}``),
``GET/POST /_admin/config`` (``fault_rate``, ``latency_ms``; ``asset_base``: a hostile catalogue's
answer, every asset href on that base URL instead of this server), ``GET /_admin/stats`` (requests by status
and kind, COG bytes served), ``POST /_admin/reset``. Environment at start: ``EMBERWATCH_STAC_SIM_START``
(else ``EMBERWATCH_SIM_CWFIS_START``), ``EMBERWATCH_STAC_SIM_SPEED`` (else ``EMBERWATCH_SIM_CWFIS_SPEED``,
default 60), ``EMBERWATCH_STAC_SIM_FAULT_RATE`` (default 0.02), ``EMBERWATCH_STAC_SIM_FIRES`` (a JSON file),
else the CWFIS simulator's season when ``EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON`` is set (``default`` or
``seed,fires,year``: the season the Mapbox simulator draws too), each fire burning from its start until
it is out.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from cachetools import LRUCache
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulators.stac import scenes
from simulators.stac.cogs import cog_bytes

COLLECTIONS = ("sentinel-2-c1-l2a", "sentinel-2-l2a")
ASSETS = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "nir08": "B8A", "swir16": "B11",
          "swir22": "B12", "scl": "SCL", "visual": "TCI"}
_COG_PATH = re.compile(r"^(\d{1,2})/([01])/(-?\d{1,6})/(-?\d{1,7})/(\d{8}T\d{6})/([a-z0-9]{2,8})\.tif$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
MAX_WINDOW = timedelta(days=400)
MAX_BODY = 64 * 1024


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Clock:
    at: datetime
    speed: float
    since: float = field(default_factory=time.monotonic)

    def now(self) -> datetime:
        return self.at + timedelta(seconds=(time.monotonic() - self.since) * self.speed)

    def set(self, at: datetime | None = None, speed: float | None = None) -> None:
        self.at, self.since = at or self.now(), time.monotonic()
        if speed is not None:
            self.speed = speed


@dataclass
class SimState:
    clock: Clock
    fires: list[scenes.Fire] = field(default_factory=list)
    fault_rate: float = 0.02
    latency_ms: float = 0.0
    asset_base: str | None = None  # hrefs on another host: what a hostile catalogue would serve
    faults: deque[int] = field(default_factory=deque)
    stats: Counter[str] = field(default_factory=Counter)
    cache: LRUCache = field(default_factory=lambda: LRUCache(maxsize=96))
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)


def state_from_env() -> SimState:
    start = os.environ.get("EMBERWATCH_STAC_SIM_START") or os.environ.get("EMBERWATCH_SIM_CWFIS_START")
    speed = os.environ.get("EMBERWATCH_STAC_SIM_SPEED") or os.environ.get("EMBERWATCH_SIM_CWFIS_SPEED") or "60"
    state = SimState(clock=Clock(_parse_time(start) if start else datetime(2026, 5, 21, tzinfo=UTC), float(speed)),
                     fault_rate=float(os.environ.get("EMBERWATCH_STAC_SIM_FAULT_RATE", "0.02")))
    fires_file = os.environ.get("EMBERWATCH_STAC_SIM_FIRES")
    season = os.environ.get("EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON")
    if fires_file:
        state.fires = parse_fires(json.loads(Path(fires_file).read_text()))
    elif season:
        state.fires = fires_from_cwfis_season(season)
    return state


def fires_from_cwfis_season(spec: str) -> list[scenes.Fire]:
    """The CWFIS simulator's season (``default`` or ``seed,fires,year``) as burning fires: at their
    corrected place, growing while out of control, out once under control."""
    from simulators.cwfis.season import season_fires
    from simulators.mapbox.app import season_spec

    fires = []
    for f in season_fires(*season_spec(spec)):
        dlat, dlon = f.correction or (0.0, 0.0)
        lat, lon = f.lat + dlat, f.lon + dlon
        if -80 <= lat <= 84:
            fires.append(scenes.Fire(lat=lat, lon=lon, hectares=max(f.final_hectares, 0.01), start=f.start,
                                     end=f.start + timedelta(hours=f.oc_h + f.bh_h + f.uc_h),
                                     growth_h=float(max(f.oc_h, 1))))
    return fires


def parse_fires(body: Any) -> list[scenes.Fire]:
    if not isinstance(body, list) or len(body) > 10_000:
        raise ValueError("fires: a list of at most 10000 objects")
    fires = []
    for f in body:
        fires.append(scenes.Fire(
            lat=float(f["lat"]), lon=float(f["lon"]), hectares=min(max(float(f.get("hectares", 50)), 0.01), 1e6),
            start=_parse_time(f["start"]), end=_parse_time(f["end"]) if f.get("end") else None,
            growth_h=float(f.get("growth_h", 72))))
        if not (-80 <= fires[-1].lat <= 84 and -180 <= fires[-1].lon <= 180):
            raise ValueError("lat/lon outside Sentinel-2's UTM coverage")
    return fires


def _cog_href(base: str, granule: scenes.Granule, sensed: datetime, asset: str) -> str:
    return (f"{base}/cogs/{granule.zone}/{int(granule.north)}/{granule.gx}/{granule.gy}/"
            f"{sensed:%Y%m%dT%H%M%S}/{asset}.tif")


def _cloud_cover(granule: scenes.Granule, sensed: datetime) -> float:
    cloud, cirrus, _shadow = scenes.clouds(granule, sensed)
    return round(float((cloud | cirrus).mean()) * 100, 4)


def make_item(base: str, collection: str, granule: scenes.Granule, sensed: datetime, created: datetime) -> dict:
    code = granule.tile_code
    item_id = f"S2{'AB'[(sensed - scenes.EPOCH).days // scenes.REVISIT_DAYS % 2]}_T{code}_{sensed:%Y%m%dT%H%M%S}_L2A"
    footprint = granule.footprint_lonlat()
    lons, lats = [p[0] for p in footprint], [p[1] for p in footprint]
    assets: dict[str, Any] = {}
    for key, band in ASSETS.items():
        resolution = scenes.BANDS[key][0] if key in scenes.BANDS else (20 if key == "scl" else 10)
        shape = scenes.SIZE_PX * scenes.PIXEL_M // resolution
        asset = {"href": _cog_href(base, granule, sensed, key),
                 "type": "image/tiff; application=geotiff; profile=cloud-optimized", "title": band,
                 "proj:shape": [shape, shape], "roles": ["data"]}
        if key in scenes.BANDS:
            asset["raster:bands"] = [{"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                                      "spatial_resolution": resolution, "scale": scenes.DN_SCALE,
                                      "offset": scenes.DN_OFFSET}]
            asset["roles"] = ["data", "reflectance"]
        elif key == "scl":
            asset["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}]
        assets[key] = asset
    return {
        "type": "Feature", "stac_version": "1.0.0", "id": item_id, "collection": collection,
        "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                            "https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "geometry": {"type": "Polygon", "coordinates": [footprint]},
        "properties": {"datetime": _iso(sensed), "created": _iso(created), "updated": _iso(created),
                       "platform": f"sentinel-2{item_id[2].lower()}", "constellation": "sentinel-2",
                       "eo:cloud_cover": _cloud_cover(granule, sensed), "proj:epsg": granule.epsg,
                       "s2:processing_baseline": "05.10", "grid:code": f"MGRS-{code}"},
        "assets": assets,
        "links": [{"rel": "collection", "href": f"{base}/collections/{collection}"},
                  {"rel": "root", "href": f"{base}/"}],
    }


def _point(body: dict) -> tuple[float, float]:
    if "intersects" in body:
        geometry = body["intersects"]
        if geometry.get("type") != "Point":
            raise ValueError("intersects: only a Point is simulated")
        lon, lat = (float(v) for v in geometry["coordinates"][:2])
    elif "bbox" in body:
        w, s, e, n = (float(v) for v in body["bbox"][:4])
        lon, lat = (w + e) / 2, (s + n) / 2
    else:
        raise ValueError("intersects (Point) or bbox is required")
    if not (-180 <= lon <= 180 and -80 <= lat <= 84):
        raise ValueError("point outside Sentinel-2's UTM coverage")
    return lon, lat


def search(state: SimState, base: str, body: dict) -> dict:
    lon, lat = _point(body)
    collections = [c for c in body.get("collections") or [COLLECTIONS[0]] if c in COLLECTIONS]
    first_s, _, last_s = str(body.get("datetime") or "").partition("/")
    now = state.clock.now()
    first = _parse_time(first_s) if first_s and first_s != ".." else now - timedelta(days=30)
    last = min(_parse_time(last_s), now) if last_s and last_s != ".." else now
    if last - first > MAX_WINDOW:
        raise ValueError(f"datetime: at most {MAX_WINDOW.days} days")
    limit = max(1, min(int(body.get("limit") or 10), 100))
    items = []
    for collection in collections:
        for granule in scenes.granules_at(lon, lat):
            for sensed, created in scenes.acquisitions(granule, first, last):
                if created <= now:
                    items.append((sensed, granule, created, collection))
    items.sort(key=lambda i: (i[0], i[1].gx, i[1].gy, i[3]), reverse=True)
    features = [make_item(state.asset_base or base, c, g, s, cr) for s, g, cr, c in items]
    offset = 0
    token = body.get("next")
    if token:
        keys = [f"{f['properties']['datetime']},{f['id']},{f['collection']}" for f in features]
        if token not in keys:
            raise ValueError("next: unknown token")
        offset = keys.index(token) + 1
    page = features[offset:offset + limit]
    links: list[dict] = [{"rel": "root", "type": "application/json", "href": f"{base}/"}]
    if offset + limit < len(features):
        last_item = page[-1]
        links.insert(0, {"rel": "next", "title": "Next page of Items", "method": "POST",
                         "type": "application/geo+json", "href": f"{base}/search", "merge": False,
                         "body": {**{k: v for k, v in body.items() if k != "next"},
                                  "next": f"{last_item['properties']['datetime']},{last_item['id']},"
                                          f"{last_item['collection']}"}})
    return {"type": "FeatureCollection", "stac_version": "1.0.0", "stac_extensions": [],
            "context": {"limit": limit, "matched": len(features), "returned": len(page)},
            "numberMatched": len(features), "numberReturned": len(page), "features": page, "links": links}


def render_cog(state: SimState, path: str) -> bytes:
    match = _COG_PATH.match(path)
    if not match or match[6] not in ASSETS:
        raise KeyError(path)
    zone, north, gx, gy = int(match[1]), match[2] == "1", int(match[3]), int(match[4])
    if not 1 <= zone <= 60:
        raise KeyError(path)
    granule = scenes.Granule(zone, north, gx, gy)
    sensed = datetime.strptime(match[5], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    if not any(abs((s - sensed).total_seconds()) < 1
               for s, _ in scenes.acquisitions(granule, sensed - timedelta(hours=1), sensed + timedelta(hours=1))):
        raise KeyError(path)
    asset = match[6]
    key = (path, tuple(state.fires))
    with state.lock:
        cached = state.cache.get(key)
    if cached is not None:
        return cached
    layers = scenes.scene_layers(granule, sensed, state.fires)
    seed = scenes.stable_seed(path, "noise")
    if asset == "scl":
        data, step, categorical = scenes.scl(layers), 2, True
    elif asset == "visual":
        rgb = [scenes.band_dn(layers, b, seed + i) for i, b in enumerate(("red", "green", "blue"))]
        data = np.stack([np.clip((b.astype(np.float32) - 1000) / 3000 * 255, 1, 255).astype(np.uint8) for b in rgb])
        step, categorical = 1, False
    else:
        data, step, categorical = scenes.band_dn(layers, asset, seed), scenes.BANDS[asset][0] // 10, False
    body = cog_bytes(data, granule.transform @ Affine.scale(step), granule.epsg, categorical)
    with state.lock:
        state.cache[key] = body
    return body


def create_app(state: SimState) -> Starlette:
    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def fault(request: Request, kind: str) -> Response | None:
        if state.latency_ms:
            await asyncio.sleep(state.latency_ms / 1000)
        status = state.faults.popleft() if state.faults else None
        if status is None and state.fault_rate and state.rng.random() < state.fault_rate:
            status = state.rng.choice((429, 503))
        if status is None:
            return None
        state.stats[f"{kind}:{status}"] += 1
        headers = {"Retry-After": "1"} if status == 429 else {}
        return JSONResponse({"code": "SimulatedFault", "description": f"simulated {status}"}, status, headers=headers)

    async def landing(request: Request) -> Response:
        base = base_url(request)
        return JSONResponse({
            "stac_version": "1.0.0", "type": "Catalog", "id": "earth-search-simulator",
            "title": "Earth Search simulator", "description": "Simulated Sentinel-2 L2A",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                           "https://api.stacspec.org/v1.0.0/collections",
                           "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
                           "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"],
            "links": [{"rel": "self", "type": "application/json", "href": f"{base}/"},
                      {"rel": "root", "type": "application/json", "href": f"{base}/"},
                      {"rel": "search", "type": "application/geo+json", "href": f"{base}/search", "method": "POST"},
                      {"rel": "search", "type": "application/geo+json", "href": f"{base}/search", "method": "GET"},
                      *({"rel": "child", "type": "application/json", "href": f"{base}/collections/{c}"}
                        for c in COLLECTIONS)]})

    async def conformance(request: Request) -> Response:
        return JSONResponse({"conformsTo": ["https://api.stacspec.org/v1.0.0/item-search"]})

    async def collection(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in COLLECTIONS:
            return JSONResponse({"code": "NotFound", "description": "no such collection"}, 404)
        return JSONResponse({"type": "Collection", "stac_version": "1.0.0", "id": name, "license": "proprietary",
                             "description": "Simulated Sentinel-2 L2A", "links": [],
                             "extent": {"spatial": {"bbox": [[-180, -80, 180, 84]]},
                                        "temporal": {"interval": [["2015-06-27T00:00:00Z", None]]}},
                             "item_assets": {k: {"title": v} for k, v in ASSETS.items()}})

    async def do_search(request: Request) -> Response:
        failed = await fault(request, "search")
        if failed:
            return failed
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return JSONResponse({"code": "BadRequest", "description": "body too large"}, 413)
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body: a JSON object")
            page = await run_in_threadpool(search, state, base_url(request), body)
        except (ValueError, TypeError, KeyError) as refused:
            state.stats["search:400"] += 1
            return JSONResponse({"code": "BadRequest", "description": str(refused)[:300]}, 400)
        state.stats["search:200"] += 1
        return JSONResponse(page, media_type="application/geo+json")

    async def cog(request: Request) -> Response:
        failed = await fault(request, "cog")
        if failed:
            return failed
        try:
            data = await run_in_threadpool(render_cog, state, request.path_params["path"])
        except KeyError:
            state.stats["cog:404"] += 1
            return JSONResponse({"code": "NoSuchKey"}, 404)
        headers = {"Accept-Ranges": "bytes", "Content-Type": "image/tiff"}
        header = request.headers.get("range")
        if request.method == "HEAD":
            state.stats["cog:head"] += 1
            return Response(b"", 200, headers={**headers, "Content-Length": str(len(data))})
        if not header:
            state.stats["cog:200"] += 1
            state.stats["cog_bytes"] += len(data)
            return Response(data, 200, headers=headers)
        match = _RANGE.match(header)
        if not match or int(match[1]) >= len(data):
            state.stats["cog:416"] += 1
            return Response(b"", 416, headers={"Content-Range": f"bytes */{len(data)}"})
        start = int(match[1])
        end = min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
        state.stats["cog:206"] += 1
        state.stats["cog_bytes"] += end - start + 1
        return Response(data[start:end + 1], 206,
                        headers={**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"})

    async def admin_fires(request: Request) -> Response:
        if request.method == "POST":
            try:
                fires = parse_fires(json.loads(await request.body()))
            except (ValueError, TypeError, KeyError) as refused:
                return JSONResponse({"error": str(refused)[:300]}, 400)
            state.fires = (state.fires + fires) if request.query_params.get("append") == "1" else fires
        return JSONResponse([{"lat": f.lat, "lon": f.lon, "hectares": f.hectares, "start": _iso(f.start),
                              "end": _iso(f.end) if f.end else None, "growth_h": f.growth_h} for f in state.fires])

    async def admin_clock(request: Request) -> Response:
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            if "at" in body:
                state.clock.set(at=_parse_time(body["at"]))
            if "advance_hours" in body:
                state.clock.set(at=state.clock.now() + timedelta(hours=float(body["advance_hours"])))
            if "speed" in body:
                state.clock.set(speed=float(body["speed"]))
        return JSONResponse({"now": _iso(state.clock.now()), "speed": state.clock.speed})

    async def admin_config(request: Request) -> Response:
        if request.method == "POST":
            body = json.loads(await request.body() or b"{}")
            if "fault_rate" in body:
                state.fault_rate = min(max(float(body["fault_rate"]), 0.0), 1.0)
            if "latency_ms" in body:
                state.latency_ms = min(max(float(body["latency_ms"]), 0.0), 10_000.0)
            if "asset_base" in body:
                state.asset_base = str(body["asset_base"])[:200].rstrip("/") or None
        return JSONResponse({"fault_rate": state.fault_rate, "latency_ms": state.latency_ms,
                             "asset_base": state.asset_base})

    async def admin_faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        else:
            body = json.loads(await request.body() or b"{}")
            state.faults.extend([int(body.get("status", 503))] * min(int(body.get("count", 1)), 1000))
        return JSONResponse({"queued": len(state.faults)})

    async def admin_stats(request: Request) -> Response:
        return JSONResponse(dict(state.stats))

    async def admin_reset(request: Request) -> Response:
        state.stats.clear()
        return JSONResponse({})

    return Starlette(routes=[
        Route("/", landing), Route("/conformance", conformance),
        Route("/collections/{name}", collection),
        Route("/search", do_search, methods=["POST"]),
        Route("/cogs/{path:path}", cog, methods=["GET", "HEAD"]),
        Route("/_admin/fires", admin_fires, methods=["GET", "POST"]),
        Route("/_admin/clock", admin_clock, methods=["GET", "POST"]),
        Route("/_admin/config", admin_config, methods=["GET", "POST"]),
        Route("/_admin/faults", admin_faults, methods=["POST", "DELETE"]),
        Route("/_admin/stats", admin_stats), Route("/_admin/reset", admin_reset, methods=["POST"]),
    ])
