"""What a tile's imagery says, for the fire panel: its product, when its scene was sensed against the
fire's start, the scene's clouds and burn indices; and a fire's Sentinel-2 tiles arranged as a 2x2 grid
(rows: before and after the start; columns: true colour and SWIR).

A Mapbox tile is an undated mosaic: it has no acquisition date, and says so. A Sentinel-2 fire's tiles
are its pair: the fire tile (labelled wildfire) from an acquisition after the start, and the same
place's last clear acquisition before the start (labelled nowildfire), each as both composites.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from emberwatch.contracts import TileReady
from emberwatch.contracts.products import MAPBOX, SENTINEL2_SWIR, SENTINEL2_TRUE_COLOUR, product_title

GRID_COLUMNS = (SENTINEL2_TRUE_COLOUR, SENTINEL2_SWIR)
GRID_ROWS = ("pre", "post")
CREDITS = {MAPBOX: "© Mapbox © OpenStreetMap © Maxar"}
COPERNICUS = "Contains modified Copernicus Sentinel data"
DNBR_UNBURNED = 0.1  # the USGS threshold below which a place reads as unburned


def credits_of(product: str) -> str:
    """The imagery's credits: Mapbox's for its mosaic, Copernicus's for Sentinel-2."""
    return CREDITS.get(product, COPERNICUS)


def phase_of(tile: TileReady) -> str | None:
    """``post`` for a dated fire tile, ``pre`` for a dated control of the same place; None for a Mapbox tile."""
    if tile.product == MAPBOX or tile.acquired_at is None:
        return None
    return "post" if tile.label == "wildfire" else "pre"


def days_since_start(acquired_at: datetime | None, fire_start: datetime | None) -> int | None:
    """Whole days from the fire's start date to the acquisition date (negative: before the start)."""
    if acquired_at is None or fire_start is None:
        return None
    return (acquired_at.date() - fire_start.date()).days


def when_text(acquired_at: datetime | None, days: int | None) -> str:
    """The acquisition in words: "acquired 2026-07-03, 5 days after the fire's start"."""
    if acquired_at is None:
        return "undated mosaic (no acquisition date)"
    said = f"acquired {acquired_at.date().isoformat()}"
    if days is None:
        return f"{said} (the fire's start is not known)"
    if days == 0:
        return f"{said}, the day the fire started"
    unit = "day" if abs(days) == 1 else "days"
    return f"{said}, {abs(days)} {unit} {'after' if days > 0 else 'before'} the fire's start"


def facts_text(tile: TileReady) -> str:
    """The scene's clouds and the tile's indices, those it has: "cloud 3.0 % · NBR -0.210 · ..."."""
    parts = [f"scene {tile.scene_id}"] if tile.scene_id else []
    if tile.cloud_fraction is not None:
        parts.append(f"cloud {100 * tile.cloud_fraction:.1f} %")
    if tile.nbr is not None:
        parts.append(f"NBR {tile.nbr:+.3f}")
    if tile.dnbr is not None:
        parts.append(f"dNBR {tile.dnbr:+.3f}")
    if tile.hot_pixels is not None:
        parts.append(f"{tile.hot_pixels} hot pixel{'' if tile.hot_pixels == 1 else 's'}")
    return " · ".join(parts)


def imagery_view(tile: TileReady, fire_start: datetime | None) -> dict:
    """The tile's imagery as the panel shows it (every string is shown as text)."""
    days = days_since_start(tile.acquired_at, fire_start)
    return {
        "product": tile.product, "product_title": product_title(tile.product),
        "phase": phase_of(tile), "credits": credits_of(tile.product),
        "acquired_at": tile.acquired_at.isoformat() if tile.acquired_at else None,
        "catalogued_at": tile.catalogued_at.isoformat() if tile.catalogued_at else None,
        "days_since_start": days, "when": when_text(tile.acquired_at, days),
        "scene_id": tile.scene_id, "cloud_fraction": tile.cloud_fraction, "nbr": tile.nbr, "dnbr": tile.dnbr,
        "hot_pixels": tile.hot_pixels, "visible": tile.visible, "facts": facts_text(tile),
        "not_visible": None if tile.visible is not False else
        f"not visible: neither a burn (dNBR {DNBR_UNBURNED} or more) nor heat (hot pixels) shows in this scene",
    }


def sentinel2_grid(tiles: Iterable[TileReady]) -> list[list[str | None]] | None:
    """The fire's Sentinel-2 tile ids as rows (pre, post) by columns (true colour, SWIR), None where a
    tile is missing; the newest acquisition wins a cell. None when the fire has no Sentinel-2 tile."""
    cells: dict[tuple[str, str], TileReady] = {}
    for t in tiles:
        phase = phase_of(t)
        if phase is None or t.product not in GRID_COLUMNS:
            continue
        held = cells.get((phase, t.product))
        if held is None or (t.acquired_at, t.tile_id) > (held.acquired_at, held.tile_id):
            cells[(phase, t.product)] = t
    if not cells:
        return None
    return [[cells[(row, col)].tile_id if (row, col) in cells else None for col in GRID_COLUMNS]
            for row in GRID_ROWS]
