"""Raster-tile mosaics: which XYZ tiles cover a footprint, and how to paste and crop them.

``@2x`` raster tiles are 512 px, the scale of the Static Images API, so a static image of
(lat, lon, zoom, size) shows the same ground as a ``size``-px crop, centred on the same world pixel,
of the mosaic of ``@2x`` tiles at the same zoom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

from emberwatch.common.geo import world_px


@dataclass(frozen=True)
class MosaicPlan:
    zoom: int
    tile_px: int
    size_px: int
    left: int  # world pixel of the crop's left edge (before x wraps)
    top: int
    tx0: int
    ty0: int
    cols: int
    rows: int

    def tiles(self) -> list[tuple[int, int]]:
        """(x, y) of every tile, x wrapped around the antimeridian, row by row."""
        n = 2 ** self.zoom
        return [((self.tx0 + c) % n, self.ty0 + r) for r in range(self.rows) for c in range(self.cols)]

    def crop_box(self) -> tuple[int, int, int, int]:
        x = self.left - self.tx0 * self.tile_px
        y = self.top - self.ty0 * self.tile_px
        return x, y, x + self.size_px, y + self.size_px


def plan_mosaic(lat: float, lon: float, zoom: int, size_px: int, tile_px: int = 512) -> MosaicPlan:
    """The block of tiles covering a ``size_px`` square centred on (lat, lon)."""
    cx, cy = world_px(lat, lon, zoom, tile_px)
    world = tile_px * 2 ** zoom
    left = round(cx - size_px / 2)
    top = min(max(round(cy - size_px / 2), 0), max(world - size_px, 0))
    tx0, ty0 = math.floor(left / tile_px), top // tile_px
    tx1, ty1 = math.floor((left + size_px - 1) / tile_px), (top + size_px - 1) // tile_px
    return MosaicPlan(zoom, tile_px, size_px, left, top, tx0, ty0, tx1 - tx0 + 1, ty1 - ty0 + 1)


def mosaic(tiles: Mapping[tuple[int, int], Image.Image]) -> Image.Image:
    """Paste a full rectangular block of equal-sized tiles, keyed by (column, row) offsets or XYZ x/y."""
    if not tiles:
        raise ValueError("no tiles")
    xs = sorted({x for x, _ in tiles})
    ys = sorted({y for _, y in tiles})
    first = next(iter(tiles.values()))
    tw, th = first.size
    if len(tiles) != len(xs) * len(ys):
        raise ValueError("tiles do not form a full rectangle")
    canvas = Image.new("RGB", (tw * len(xs), th * len(ys)))
    for (x, y), tile in tiles.items():
        if tile.size != (tw, th):
            raise ValueError(f"tile {x},{y} is {tile.size}, expected {(tw, th)}")
        canvas.paste(tile.convert("RGB"), (xs.index(x) * tw, ys.index(y) * th))
    return canvas


def assemble(plan: MosaicPlan, tiles: Mapping[tuple[int, int], Image.Image]) -> Image.Image:
    """The crop of ``plan`` from its tiles (keyed by XYZ x, y as :meth:`MosaicPlan.tiles` gives)."""
    ordered = {(c, r): tiles[xy] for (c, r), xy in zip(
        [(c, r) for r in range(plan.rows) for c in range(plan.cols)], plan.tiles(), strict=True)}
    return mosaic(ordered).crop(plan.crop_box())
