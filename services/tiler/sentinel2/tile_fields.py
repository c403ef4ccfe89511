"""The optional TileReady fields of a Sentinel-2 tile: product, dates, scene, clouds and indices."""

from __future__ import annotations

from typing import Any

from services.tiler.sentinel2.composites import Composite
from services.tiler.sentinel2.indices import FireEvidence
from services.tiler.sentinel2.provider import Sentinel2Tile

PRODUCTS = {"swir": "sentinel2-swir", "true-colour": "sentinel2-true-colour"}


def tile_ready_fields(tile: Sentinel2Tile, image: Composite, evidence: FireEvidence | None,
                      is_fire_tile: bool) -> dict[str, Any]:
    """Keyword arguments for TileReady beside its usual ones; indices only on the fire tile itself."""
    fields: dict[str, Any] = {
        "product": PRODUCTS[image.kind],
        "provider": "sentinel2-stac",
        "acquired_at": tile.scene.acquired_at,
        "catalogued_at": tile.scene.catalogued_at,
        "scene_id": tile.scene.scene_id,
        "cloud_fraction": round(tile.cloud_fraction, 4),
    }
    if is_fire_tile and evidence is not None:
        fields.update(nbr=evidence.nbr, dnbr=evidence.dnbr, hot_pixels=evidence.hot_pixels,
                      visible=evidence.visible)
    return fields
