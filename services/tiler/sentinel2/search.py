"""Search a STAC API for Sentinel-2 L2A scenes over a point in a time window (pystac-client).

Earth Search v1 by default; Planetary Computer with its URL signing (``planetary_computer.sign_inplace``
or any modifier given). Pages are followed through the ``next`` link (a POST carrying a token);
429 and 5xx answers are retried with backoff (``Retry-After`` honoured).

A catalogue's answer is not trusted to say where to read from: an item whose band hrefs point to a host
other than the catalogue's own or its known asset hosts (Earth Search's ``sentinel-cogs`` bucket, Planetary
Computer's blob storage) is refused with the host named, before any byte is read from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pystac_client import Client
from pystac_client.stac_api_io import StacApiIO
from urllib3.util.retry import Retry

from services.tiler.sentinel2.scenes import Scene, SceneRefused, scene_from_item

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
EARTH_SEARCH_COLLECTIONS = ("sentinel-2-c1-l2a",)
PLANETARY_COMPUTER_COLLECTIONS = ("sentinel-2-l2a",)
# Where the known catalogues keep their COGs; an entry starting with a dot matches every subdomain.
KNOWN_ASSET_HOSTS = ("sentinel-cogs.s3.us-west-2.amazonaws.com", ".blob.core.windows.net")

Modifier = Callable[[Any], Any]


def planetary_computer_signer() -> Modifier:
    """Planetary Computer's SAS signing of asset hrefs (asks its token API when first used)."""
    import planetary_computer

    return planetary_computer.sign_inplace


@dataclass(frozen=True)
class StacCatalogue:
    """Which STAC API to search, which collections, and how hrefs become readable."""

    url: str = EARTH_SEARCH_URL
    collections: tuple[str, ...] = EARTH_SEARCH_COLLECTIONS
    modifier: Modifier | None = None  # e.g. planetary_computer_signer(); None: hrefs are public
    timeout_s: float = 20.0
    retries: int = 4
    page_size: int = 50
    max_items: int = 200
    asset_hosts: tuple[str, ...] = KNOWN_ASSET_HOSTS  # besides the catalogue's own host

    @classmethod
    def planetary_computer(cls, signer: Modifier | None = None) -> StacCatalogue:
        return cls(url=PLANETARY_COMPUTER_URL, collections=PLANETARY_COMPUTER_COLLECTIONS,
                   modifier=signer or planetary_computer_signer())


@dataclass
class SearchResult:
    scenes: list[Scene] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each item not used was refused


def host_allowed(href: str, catalogue_url: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``href`` is an http(s) URL on the catalogue's own host or on one of ``allowed``
    (``.example.net`` allows every subdomain of example.net)."""
    parts = urlsplit(href)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return False
    if host == (urlsplit(catalogue_url).hostname or "").lower():
        return True
    return any(host == a.lower() or (a.startswith(".") and host.endswith(a.lower())) for a in allowed)


def refuse_foreign_hrefs(scene: Scene, catalogue: StacCatalogue) -> None:
    """SceneRefused when one of the scene's band hrefs leaves the catalogue's hosts."""
    for band, asset in scene.bands.items():
        if not host_allowed(asset.href, catalogue.url, catalogue.asset_hosts):
            host = urlsplit(asset.href).hostname or asset.href.split(":", 1)[0]
            raise SceneRefused(f"item {scene.scene_id[:120]!r}: the {band} asset is on {host[:100]!r}, outside "
                               "the catalogue's host and its known asset hosts "
                               "(EMBERWATCH_TILER_SENTINEL2_ASSET_HOSTS)")


def _stac_io(catalogue: StacCatalogue) -> StacApiIO:
    retry = Retry(total=catalogue.retries, backoff_factor=0.2, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=None, respect_retry_after_header=True, raise_on_status=False)
    return StacApiIO(timeout=catalogue.timeout_s, max_retries=retry)


def search_scenes(catalogue: StacCatalogue, lon: float, lat: float, start: datetime, end: datetime) -> SearchResult:
    """Every Sentinel-2 L2A scene over (lon, lat) acquired in [start, end], oldest first."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError("lon/lat out of range")
    client = Client.open(catalogue.url, modifier=catalogue.modifier, stac_io=_stac_io(catalogue))
    search = client.search(
        collections=list(catalogue.collections),
        intersects={"type": "Point", "coordinates": [lon, lat]},
        datetime=f"{start.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}",
        limit=catalogue.page_size,
        max_items=catalogue.max_items,
        method="POST",
    )
    result = SearchResult()
    for page in search.pages_as_dicts():
        for item in page.get("features", []):
            try:
                scene = scene_from_item(item)
                refuse_foreign_hrefs(scene, catalogue)
                result.scenes.append(scene)
            except SceneRefused as refused:
                result.refused.append(str(refused))
    result.scenes.sort(key=lambda s: s.acquired_at)
    return result
