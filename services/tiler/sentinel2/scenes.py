"""What the provider needs from a STAC item: acquisition and catalogue times, cloud cover, band assets.

Earth Search v1 (collections ``sentinel-2-l2a`` and ``sentinel-2-c1-l2a``) names assets by common
name (``red``, ``nir08``, ``swir22``, ``scl``...) and carries ``raster:bands`` scale and offset;
Planetary Computer names them by band (``B04``, ``B8A``, ``B12``, ``SCL``) and carries no
``raster:bands``: there the offset follows the processing baseline (-0.1 from 04.00 on). The legacy
Earth Search v0 API (STAC 1.0.0-beta, collection ``sentinel-s2-l2a-cogs``) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Band name (what the provider reads) -> asset key per catalogue family.
BANDS = ("blue", "green", "red", "nir08", "swir16", "swir22", "scl")
EARTH_SEARCH_KEYS = {b: b for b in BANDS}
PLANETARY_COMPUTER_KEYS = {"blue": "B02", "green": "B03", "red": "B04", "nir08": "B8A", "swir16": "B11",
                           "swir22": "B12", "scl": "SCL"}
SENTINEL2_COLLECTIONS = ("sentinel-2-l2a", "sentinel-2-c1-l2a")
LEGACY_COLLECTIONS = ("sentinel-s2-l2a-cogs",)
L2A_SCALE = 0.0001
BOA_OFFSET = -0.1  # L2A reflectance offset from processing baseline 04.00 on

# Scene ids: Earth Search v1 pre-Collection-1 (S2A_13TDE_20231008_0_L2A), Collection-1
# (S2A_T13TDE_20231008T175239_L2A), Planetary Computer (S2B_MSIL2A_20190629T212529_R043_T06VVN_...).
_ID_FORMS = (
    re.compile(r"^(?P<sat>S2[ABC])_(?P<tile>\d{2}[C-X][A-Z]{2})_(?P<date>\d{8})_\d+_L2A$"),
    re.compile(r"^(?P<sat>S2[ABC])_T(?P<tile>\d{2}[C-X][A-Z]{2})_(?P<date>\d{8})T\d{6}_L2A$"),
    re.compile(r"^(?P<sat>S2[ABC])_MSIL2A_(?P<date>\d{8})T\d{6}_R\d{3}_T(?P<tile>\d{2}[C-X][A-Z]{2})_\d{8}T\d{6}$"),
)


class SceneRefused(ValueError):
    """A STAC item the provider will not read, with why."""


@dataclass(frozen=True)
class SceneId:
    satellite: str
    mgrs_tile: str
    date: str  # YYYYMMDD


def parse_scene_id(item_id: str) -> SceneId:
    """The satellite, MGRS tile and acquisition date in a Sentinel-2 L2A item id of any known form."""
    for form in _ID_FORMS:
        match = form.match(item_id)
        if match:
            return SceneId(match["sat"], match["tile"], match["date"])
    raise SceneRefused(f"not a Sentinel-2 L2A scene id: {item_id[:120]!r}")


@dataclass(frozen=True)
class BandAsset:
    href: str
    scale: float
    offset: float
    nodata: float | None


@dataclass(frozen=True)
class Scene:
    """One Sentinel-2 L2A acquisition as a STAC item describes it."""

    scene_id: str
    collection: str
    acquired_at: datetime
    catalogued_at: datetime | None  # ``created``: Planetary Computer items have none
    cloud_cover: float | None  # the item's eo:cloud_cover (whole granule, percent)
    bands: dict[str, BandAsset]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _baseline_offset(properties: dict[str, Any]) -> float:
    baseline = str(properties.get("s2:processing_baseline") or "")
    try:
        return BOA_OFFSET if float(baseline) >= 4.0 else 0.0
    except ValueError:
        return 0.0


def scene_from_item(item: dict[str, Any]) -> Scene:
    """A Scene from a STAC item's JSON; SceneRefused for a legacy, foreign or incomplete item."""
    stac_version = str(item.get("stac_version", ""))
    collection = str(item.get("collection", ""))
    item_id = str(item.get("id", ""))
    if collection in LEGACY_COLLECTIONS or stac_version.startswith("0.") or "beta" in stac_version:
        raise SceneRefused(
            f"legacy STAC item {item_id[:120]!r} (STAC {stac_version[:20]}, collection {collection[:60]!r}): "
            "the Earth Search v0 API is retired; search Earth Search v1 (sentinel-2-l2a or sentinel-2-c1-l2a)")
    if collection not in SENTINEL2_COLLECTIONS:
        raise SceneRefused(f"item {item_id[:120]!r} is from collection {collection[:60]!r}, not Sentinel-2 L2A")
    parse_scene_id(item_id)
    properties = item.get("properties") or {}
    assets = item.get("assets") or {}
    keys = PLANETARY_COMPUTER_KEYS if "B04" in assets and "red" not in assets else EARTH_SEARCH_KEYS
    default_offset = _baseline_offset(properties)
    bands: dict[str, BandAsset] = {}
    for band, key in keys.items():
        asset = assets.get(key)
        if not asset or not asset.get("href"):
            raise SceneRefused(f"item {item_id[:120]!r} has no {key!r} asset")
        raster = (asset.get("raster:bands") or [{}])[0]
        is_scl = band == "scl"
        bands[band] = BandAsset(
            href=str(asset["href"]),
            scale=1.0 if is_scl else float(raster.get("scale", L2A_SCALE)),
            offset=0.0 if is_scl else float(raster.get("offset", default_offset)),
            nodata=raster.get("nodata", 0),
        )
    acquired_at = _time(properties.get("datetime"))
    if acquired_at is None:
        raise SceneRefused(f"item {item_id[:120]!r} has no datetime")
    cloud = properties.get("eo:cloud_cover")
    return Scene(
        scene_id=item_id,
        collection=collection,
        acquired_at=acquired_at,
        catalogued_at=_time(properties.get("created")),
        cloud_cover=float(cloud) if cloud is not None else None,
        bands=bands,
    )
