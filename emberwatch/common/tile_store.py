"""The tile store contract, one module for its writer (the tiler) and its readers (the trainer and
the gatekeeper).

Tiles are content-addressed: a tile's id is the sha256 of its image bytes and it is stored once at
``<root>/<id[:2]>/<id>.<ext>``; its ``uri`` in ``tiles.ready.v1`` is that file's ``file://`` URI.
Readers accept ``file://`` and ``http(s)://`` URIs. Why a tile cannot be read is told by the error's
type, so consumers classify without reading messages: ``TileMissing`` and ``UnsupportedTileUri``
never get better (the message goes to the DLQ at once), ``TileUnreachable`` may (it is retried).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from emberwatch.common.atomic_files import atomic_write_bytes


class TileUnavailable(RuntimeError):
    """The tile cannot be read."""


class TileMissing(TileUnavailable):
    """The URI names a file that does not exist (or an HTTP 404/410): permanent."""


class UnsupportedTileUri(TileUnavailable, ValueError):
    """The URI is not one the store hands out: permanent."""


class TileUnreachable(TileUnavailable):
    """The store could not be reached or answered with an error: transient."""


PERMANENT = (TileMissing, UnsupportedTileUri)


@dataclass(frozen=True)
class StoredTile:
    tile_id: str
    path: Path
    uri: str
    created: bool  # False when the same bytes were already stored


class TileStore:
    """The local-directory tile store (the tiler's side of the contract)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, tile_id: str, ext: str) -> Path:
        return self.root / tile_id[:2] / f"{tile_id}.{ext}"

    def put(self, data: bytes, ext: str) -> StoredTile:
        """Store ``data`` under its sha256; a second put of the same bytes writes nothing."""
        tile_id = hashlib.sha256(data).hexdigest()
        path = self.path_for(tile_id, ext)
        if path.exists():
            return StoredTile(tile_id, path, path.as_uri(), False)
        atomic_write_bytes(path, data)  # readers see the whole file or none
        return StoredTile(tile_id, path, path.as_uri(), True)


def check_tile_uri(uri: str) -> str:
    """The scheme of a URI the readers accept; ``UnsupportedTileUri`` otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedTileUri(f"tile uri must be a local file, got host {parsed.netloc!r}: {uri}")
        return "file"
    if parsed.scheme in ("http", "https"):
        return parsed.scheme
    raise UnsupportedTileUri(f"unsupported tile uri scheme {parsed.scheme or '(none)'!r}: {uri}")


def tile_path(uri: str) -> Path:
    """The local path of a ``file://`` tile URI."""
    if check_tile_uri(uri) != "file":
        raise UnsupportedTileUri(f"not a local tile: {uri}")
    return Path(unquote(urlparse(uri).path))


def read_tile(uri: str, *, timeout_s: float = 30.0) -> bytes:
    """A tile's bytes by its URI."""
    if check_tile_uri(uri) == "file":
        path = tile_path(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise TileMissing(f"tile {uri} does not exist: No such file") from exc
        except OSError as exc:
            raise TileUnreachable(f"cannot read tile {uri}: {type(exc).__name__}: {exc}") from exc
    try:
        response = httpx.get(uri, timeout=timeout_s, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise TileUnreachable(f"cannot fetch tile {uri}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in (404, 410):
        raise TileMissing(f"tile {uri} does not exist (HTTP {response.status_code})")
    if response.is_error:
        raise TileUnreachable(f"cannot fetch tile {uri}: HTTP {response.status_code}")
    return response.content
