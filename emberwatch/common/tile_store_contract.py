"""The tile store's contract, shared by its two backends (the local directory in
``emberwatch/common/tile_store.py``, the bucket in ``emberwatch/common/tile_store_s3.py``) and their
callers: why a tile cannot be read (the error types), what a store returns and lists, and how a tile is
named. Pure: no I/O, so both backends look down at it and neither at the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from emberwatch.contracts.tile_uri import TILE_EXTENSIONS


class TileUnavailable(RuntimeError):
    """The tile cannot be read (or, for the writer, stored)."""


class TileMissing(TileUnavailable):
    """The URI names a tile that does not exist (a missing file, HTTP 404/410, S3 NoSuchKey): permanent."""


class TileRefused(TileUnavailable, ValueError):
    """Not the store's tile: a URI outside the configured store, too many bytes, or bytes whose sha256
    is not the tile id. Permanent; ``reason`` is a short label (the metric's)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnsupportedTileUri(TileRefused):
    """The URI is not where the configured store keeps the tile: nothing was read."""


class TileTooLarge(TileRefused):
    """More bytes than ``EMBERWATCH_TILE_MAX_BYTES``: the rest was not read."""


class TileHashMismatch(TileRefused):
    """The bytes' sha256 is not the tile id: they are not the tile announced."""


class TileUnreachable(TileUnavailable):
    """The store could not be reached or answered with an error: transient."""


PERMANENT = (TileMissing, TileRefused)


@dataclass(frozen=True)
class StoredTile:
    tile_id: str
    path: Path | None  # the local file; None for a tile in a bucket
    uri: str
    created: bool  # False when the same bytes were already stored


@dataclass(frozen=True)
class StoredObject:
    """A tile as the store lists it (for the tiler's collection of tiles never announced)."""

    tile_id: str
    ext: str
    modified_at: float  # seconds since the epoch
    size: int


class TileWriter(Protocol):
    """What the tiler needs of a store, local or S3."""

    def put(self, data: bytes, ext: str) -> StoredTile:
        """Store ``data`` under its sha256; a second put of the same bytes writes nothing."""
        ...

    def list_stored(self) -> Iterator[StoredObject]:
        """Every tile in the store (files or objects named as ``put`` names them; others are skipped)."""
        ...

    def delete(self, tile_id: str, ext: str) -> None:
        """Remove one tile (nothing if it is already gone)."""
        ...


def check_extension(ext: str) -> str:
    """``ext`` if readers accept it (``TILE_EXTENSIONS``): a store never writes a tile they would refuse."""
    if ext not in TILE_EXTENSIONS:
        raise ValueError(f"tile extension {ext[:20]!r} is not one of {', '.join(sorted(TILE_EXTENSIONS))}")
    return ext


def parse_tile_name(name: str) -> tuple[str, str] | None:
    """``(tile_id, ext)`` of a file name ``put`` gives (``<sha256>.<ext>``), else None."""
    stem, dot, ext = name.partition(".")
    if not dot or len(stem) != 64 or not ext or any(c not in "0123456789abcdef" for c in stem):
        return None
    return stem, ext


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; for the store's URL the key is the prefix."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


def key_for(prefix: str, tile_id: str, ext: str) -> str:
    """The object key of a tile in the store with ``prefix``: ``<prefix>/<id[:2]>/<id>.<ext>``."""
    name = f"{tile_id[:2]}/{tile_id}.{ext}"
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name
