"""Fetch one validated tile image for a location, in static or raster-mosaic mode."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from services.tiler.mapbox_client import MapboxClient
from services.tiler.metrics import RETRIES, TILES_REJECTED
from services.tiler.mosaic import assemble, plan_mosaic
from services.tiler.validate_image import ImageRejected, validate_image

if TYPE_CHECKING:
    from services.tiler.settings_view import TilerView

log = logging.getLogger(__name__)

_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


@dataclass(frozen=True)
class TileImage:
    data: bytes
    ext: str


@dataclass(frozen=True)
class FetchConfig:
    mode: str = "static"
    zoom: int = 15
    size_px: int = 350
    style: str = "mapbox/satellite-v9"
    tileset: str = "mapbox.satellite"
    raster_format: str = "jpg90"
    image_attempts: int = 3
    blank_std: float = 1.0
    context_zoom: int = 12
    context_size_px: int = 128


class TileFetcher:
    def __init__(self, client: MapboxClient, config: FetchConfig | TilerView) -> None:
        """``config``: a ``FetchConfig``, or the service's settings seen through ``TilerView``."""
        self.client = client
        self.config = config

    async def fetch(self, lat: float, lon: float) -> TileImage:
        """A valid image of (lat, lon); an invalid one is fetched again, up to ``image_attempts``.

        Raises :class:`ImageRejected` (last reason) when every try was invalid; a blank ("no
        coverage") image is not retried — fetching it again gives the same picture."""
        cfg = self.config
        for attempt in range(1, cfg.image_attempts + 1):
            try:
                if cfg.mode == "raster":
                    return await self._raster(lat, lon)
                return await self._static(lat, lon)
            except ImageRejected as exc:
                TILES_REJECTED.labels(exc.reason).inc()
                log.warning("image rejected", extra={"reason": exc.reason, "detail": exc.detail,
                                                     "attempt": attempt, "lat": lat, "lon": lon})
                if exc.reason == "blank" or attempt == cfg.image_attempts:
                    raise
                RETRIES.labels("image").inc()
        raise AssertionError("unreachable")

    async def fetch_context(self, lat: float, lon: float, size_px: int | None = None) -> Image.Image:
        """The context image of (lat, lon) (``context_zoom``, ``size_px`` or ``context_size_px``) as
        RGB: one Static Images request, or the 1–4 raster tiles under it. Invalid images are not
        retried (:class:`ImageRejected`: the caller moves on to another place)."""
        cfg = self.config
        size = size_px or cfg.context_size_px
        if cfg.mode == "raster":
            crop = await self._mosaic(lat, lon, cfg.context_zoom, size)
            return crop.convert("RGB")
        data = await self._static_bytes(lat, lon, cfg.context_zoom, size)
        return validate_image(data, expected_size=(size, size), allowed_modes=("RGB", "P", "RGBA"),
                              blank_std=cfg.blank_std).image

    async def _static_bytes(self, lat: float, lon: float, zoom: int, size_px: int) -> bytes:
        path = f"/styles/v1/{self.config.style}/static/{lon:.6f},{lat:.6f},{zoom},0/{size_px}x{size_px}"
        return await self.client.fetch(path, {"attribution": "false", "logo": "false"}, api="static")

    async def _static(self, lat: float, lon: float) -> TileImage:
        cfg = self.config
        data = await self._static_bytes(lat, lon, cfg.zoom, cfg.size_px)
        image = validate_image(data, expected_size=(cfg.size_px, cfg.size_px),
                               allowed_modes=("RGB", "P", "RGBA"), blank_std=cfg.blank_std)
        return TileImage(data, _EXT.get(image.format, "img"))

    async def _raster(self, lat: float, lon: float) -> TileImage:
        cfg = self.config
        crop = await self._mosaic(lat, lon, cfg.zoom, cfg.size_px)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        data = buf.getvalue()
        validate_image(data, expected_size=(cfg.size_px, cfg.size_px), allowed_modes=("RGB",),
                       blank_std=cfg.blank_std)
        return TileImage(data, "jpg")

    async def _mosaic(self, lat: float, lon: float, zoom: int, size_px: int) -> Image.Image:
        cfg = self.config
        plan = plan_mosaic(lat, lon, zoom, size_px, tile_px=512)

        async def one(x: int, y: int):
            path = f"/v4/{cfg.tileset}/{zoom}/{x}/{y}@2x.{cfg.raster_format}"
            data = await self.client.fetch(path, api="raster")
            return validate_image(data, expected_size=(512, 512), allowed_modes=("RGB", "P", "RGBA", "L"),
                                  blank_std=cfg.blank_std).image

        xys = plan.tiles()
        images = await asyncio.gather(*(one(x, y) for x, y in xys))
        return assemble(plan, dict(zip(xys, images, strict=True)))
