"""Data the tiler passes between its parts (events themselves live in ``emberwatch.contracts``)."""

from services.tiler.fetch_tile import FetchConfig, TileImage
from services.tiler.handlers import TileJob
from services.tiler.mapbox_client import ClientConfig
from services.tiler.tile_store import StoredTile

__all__ = ["ClientConfig", "FetchConfig", "StoredTile", "TileImage", "TileJob"]
