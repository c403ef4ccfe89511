"""The basemap proxy: Mapbox raster tiles fetched with the server's token, for the console's pages only.

- Only tiles the map can ask for: z from one below ``console_basemap_min_zoom`` (the layer's zoom offset)
  to 18, x and y inside the zoom's grid.
- Only for the console's own pages: a browser says so with ``Sec-Fetch-Site: same-origin`` (or, from a
  browser that does not send it, a Referer on the console's origin); anything else is 403, so no other
  site can show our basemap on the token's bill.
- At most ``console_basemap_requests_per_minute`` tiles per client address (token bucket; then 429).
- Each tile is fetched upstream once an hour at most (an in-memory cache of
  ``console_basemap_cache_mib``), and the answer is one of image/png, image/jpeg, image/webp, named
  from the bytes themselves, never the upstream's Content-Type; anything else is 502.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from cachetools import TTLCache
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from services.console.settings import ConsoleSettings
from services.console.web_security import request_origin

log = logging.getLogger(__name__)

MAX_ZOOM = 18
CACHE_TTL_S = 3600.0
MAX_TILE_BYTES = 4 * 1024 * 1024  # a 512 px JPEG is ~100 KB
BASEMAP_REQUESTS = Counter("emberwatch_console_basemap_requests_total",
                           "Basemap proxy requests by outcome (cached, fetched, not_found, cross_site, "
                           "rate_limited, upstream_error, not_an_image).", ["outcome"])


def image_type(data: bytes) -> str | None:
    """The allowed media type these bytes are, by their signature; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class TokenBuckets:
    """Per client: up to ``per_minute`` requests at once, refilled at ``per_minute`` a minute."""

    def __init__(self, per_minute: int, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate, self.clock = float(per_minute), per_minute / 60.0, clock
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(max_clients, 120.0, timer=clock)

    def take(self, client: str) -> float | None:
        """None if the client may go on (one token taken); else the seconds until a token is back."""
        now = self.clock()
        tokens, then = self._buckets.get(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens - 1.0, now)
        return None


class BasemapProxy:
    def __init__(self, settings: ConsoleSettings, client: Callable[[], httpx.AsyncClient]) -> None:
        self.settings, self._client = settings, client
        self.buckets = TokenBuckets(settings.console_basemap_requests_per_minute)
        size = settings.console_basemap_cache_mib * 1024 * 1024
        self.cache: TTLCache[tuple[int, int, int], tuple[bytes, str]] | None = (
            TTLCache(size, CACHE_TTL_S, getsizeof=lambda v: len(v[0]) + 200) if size else None)

    def _from_console_page(self, request: Request) -> bool:
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site == "same-origin"
        referer = urlsplit(request.headers.get("referer", ""))
        own = request_origin(request.scope, self.settings.console_public_url)
        return bool(referer.netloc) and f"{referer.scheme}://{referer.netloc}".lower() == own

    def _valid(self, z: int, x: int, y: int) -> bool:
        lowest = max(0, self.settings.console_basemap_min_zoom - 1)  # the layer's zoomOffset is -1
        return lowest <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z

    async def __call__(self, request: Request) -> Response:
        z, x, y = (request.path_params[k] for k in ("z", "x", "y"))
        if not self._valid(z, x, y):
            BASEMAP_REQUESTS.labels("not_found").inc()
            return PlainTextResponse("no such basemap tile", status_code=404)
        if not self._from_console_page(request):
            BASEMAP_REQUESTS.labels("cross_site").inc()
            return PlainTextResponse("the basemap is served to the console's own pages only", status_code=403)
        client = request.client.host if request.client else "unknown"
        wait = self.buckets.take(client)
        if wait is not None:
            BASEMAP_REQUESTS.labels("rate_limited").inc()
            return PlainTextResponse("too many basemap tiles: slow down", status_code=429,
                                     headers={"Retry-After": str(max(1, round(wait + 0.5)))})
        key = (z, x, y)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            BASEMAP_REQUESTS.labels("cached").inc()
            return self._answer(*cached)
        fetched = await self._fetch(z, x, y)
        if isinstance(fetched, Response):
            return fetched
        if self.cache is not None:
            self.cache[key] = fetched
        BASEMAP_REQUESTS.labels("fetched").inc()
        return self._answer(*fetched)

    @staticmethod
    def _answer(data: bytes, media_type: str) -> Response:
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    async def _fetch(self, z: int, x: int, y: int) -> tuple[bytes, str] | Response:
        s = self.settings
        token = s.mapbox_token.get_secret_value() if s.mapbox_token else None
        url = f"{s.mapbox_api_url.rstrip('/')}/v4/{s.console_basemap_tileset}/{z}/{x}/{y}@2x.jpg90"
        try:
            async with self._client().stream("GET", url, params={"access_token": token} if token else None) as upstream:
                status = upstream.status_code
                chunks: list[bytes] = []
                size = 0
                if status == 200:
                    async for chunk in upstream.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > MAX_TILE_BYTES:
                            break
                content = b"".join(chunks)
        except httpx.HTTPError as exc:
            BASEMAP_REQUESTS.labels("upstream_error").inc()
            log.warning("basemap fetch failed", extra={"error": type(exc).__name__})  # never the URL: it has the token
            return PlainTextResponse("the basemap provider did not answer", status_code=502)
        if status != 200:
            BASEMAP_REQUESTS.labels("upstream_error").inc()
            return PlainTextResponse(f"the basemap provider answered {status}",
                                     status_code=404 if status == 404 else 502)
        if len(content) > MAX_TILE_BYTES:
            BASEMAP_REQUESTS.labels("upstream_error").inc()
            return PlainTextResponse("the basemap provider sent a tile too large", status_code=502)
        media_type = image_type(content)
        if media_type is None:
            BASEMAP_REQUESTS.labels("not_an_image").inc()
            log.warning("basemap provider sent something other than an image")
            return PlainTextResponse("the basemap provider did not send an image", status_code=502)
        return content, media_type
