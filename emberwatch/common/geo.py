"""Small geodesy helpers: great-circle distance, destination point, Web Mercator pixels.

Web Mercator pixel coordinates use 512-px tiles, the scale of the Mapbox Static Images API and of
``@2x`` raster tiles: at zoom ``z`` the world is ``512 * 2**z`` pixels wide.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # mean radius, for distances
MERCATOR_RADIUS_M = 6_378_137.0  # WGS84 semi-major axis, for Web Mercator
MAX_MERCATOR_LAT = 85.05112878
TILE_PX = 512


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a))) / 1000.0


def destination(lat: float, lon: float, bearing_deg: float, distance_km: float) -> tuple[float, float]:
    """The point ``distance_km`` from (lat, lon) along the initial ``bearing_deg`` (great circle)."""
    d = distance_km * 1000.0 / EARTH_RADIUS_M
    b = math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def world_px(lat: float, lon: float, zoom: float, tile_px: int = TILE_PX) -> tuple[float, float]:
    """Fractional Web Mercator pixel (x, y) of (lat, lon) at ``zoom`` (origin top-left)."""
    lat = max(-MAX_MERCATOR_LAT, min(MAX_MERCATOR_LAT, lat))
    scale = tile_px * (2.0 ** zoom)
    x = (lon + 180.0) / 360.0 * scale
    s = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale
    return x, y


def px_to_lonlat(x: float, y: float, zoom: float, tile_px: int = TILE_PX) -> tuple[float, float]:
    """Inverse of :func:`world_px`: (lon, lat) of a fractional world pixel."""
    scale = tile_px * (2.0 ** zoom)
    lon = x / scale * 360.0 - 180.0
    n = math.pi - 2 * math.pi * y / scale
    lat = math.degrees(math.atan(math.sinh(n)))
    return lon, lat


def lonlat_to_mercator_m(lat: float, lon: float) -> tuple[float, float]:
    """Web Mercator metres (x east, y north)."""
    lat = max(-MAX_MERCATOR_LAT, min(MAX_MERCATOR_LAT, lat))
    x = math.radians(lon) * MERCATOR_RADIUS_M
    y = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * MERCATOR_RADIUS_M
    return x, y
