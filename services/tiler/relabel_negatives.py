"""What a fire reported later does to a fire-free tile near it: a pure decision.

A ``nowildfire`` tile means "a place away from every known fire". When a new fire lies within the
exclusion distance of an announced negative, that no longer holds. The tile is **relabelled**
``wildfire`` only when the image can show the fire: the fire lies inside the tile's footprint
(the square of ``size_px`` pixels at ``zoom`` around the tile's centre, in Web Mercator) and its
start date is known and not after the time the image was fetched. Otherwise (outside the footprint,
no start date, started after the fetch, fetch time unknown) the tile is **retired**: the picture
cannot say. The imagery is undated, so "fetched after the fire started" is necessary for the image
to show it, not sufficient (Mapbox imagery can be older than its fetch); consumers may weigh that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from emberwatch.common.geo import world_px


def inside_footprint(tile_lat: float, tile_lon: float, zoom: int, size_px: int, lat: float, lon: float) -> bool:
    """Whether (lat, lon) lies in the ``size_px`` square at ``zoom`` centred on the tile (512-px tiles,
    the Static Images scale; longitude wraps at the antimeridian)."""
    cx, cy = world_px(tile_lat, tile_lon, zoom)
    x, y = world_px(lat, lon, zoom)
    world = 512 * 2 ** zoom
    dx = (x - cx + world / 2) % world - world / 2
    half = size_px / 2
    return abs(dx) <= half and abs(y - cy) <= half


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@dataclass(frozen=True)
class Decision:
    action: str  # retire or relabel
    reason: str


def decide(*, inside: bool, start_date: datetime | None, fetched_at: datetime | None) -> Decision:
    if not inside:
        return Decision("retire", "a later fire lies near the tile, outside its footprint")
    if fetched_at is None:
        return Decision("retire", "a later fire lies inside the tile; when its image was fetched is unknown")
    if start_date is None:
        return Decision("retire", "a later fire lies inside the tile; its start date is unknown")
    if _utc(start_date) > _utc(fetched_at):
        return Decision("retire", "a later fire lies inside the tile; it started after the image was fetched")
    return Decision("relabel", "a later fire lies inside the tile and had started when its image was fetched")
