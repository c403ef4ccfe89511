"""The tile store contract, one module for its writer (the tiler) and its readers (the trainer and
the gatekeeper).

Tiles are content-addressed: a tile's id is the sha256 of its image bytes and it is stored once under
``<id[:2]>/<id>.<ext>``, in one of two places chosen by ``EMBERWATCH_TILE_STORE_URL``
(:func:`open_tile_store`):

* empty: a local directory, ``<root>/<id[:2]>/<id>.<ext>``, announced in ``tiles.ready.v1`` as its
  ``file://`` URI (:class:`TileStore`): one host, or a volume every reader mounts;
* ``s3://<bucket>/<prefix>``: the object ``<prefix>/<id[:2]>/<id>.<ext>``, announced as
  ``s3://<bucket>/<key>`` (``emberwatch/common/tile_store_s3.py``): any node can read it.

Either way a second put of the same bytes writes nothing, and a reader sees a whole tile or none
(rename of a synced temp file; an S3 PUT is atomic).

Readers follow the URI each tile was announced with, whatever the store is now: :func:`read_tile`
accepts ``file://``, ``s3://`` and ``http(s)://``. Why a tile cannot be read is told by the error's
type, so consumers classify without reading messages: ``TileMissing`` and ``UnsupportedTileUri``
never get better (the message goes to the DLQ at once), ``TileUnreachable`` may (it is retried).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import unquote, urlparse

import httpx

from emberwatch.common.atomic_files import atomic_write_bytes
from emberwatch.common.config import Settings, get_settings

log = logging.getLogger(__name__)


class TileUnavailable(RuntimeError):
    """The tile cannot be read (or, for the writer, stored)."""


class TileMissing(TileUnavailable):
    """The URI names a tile that does not exist (a missing file, HTTP 404/410, S3 NoSuchKey): permanent."""


class UnsupportedTileUri(TileUnavailable, ValueError):
    """The URI is not one the store hands out: permanent."""


class TileUnreachable(TileUnavailable):
    """The store could not be reached or answered with an error: transient."""


PERMANENT = (TileMissing, UnsupportedTileUri)


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


def parse_tile_name(name: str) -> tuple[str, str] | None:
    """``(tile_id, ext)`` of a file name ``put`` gives (``<sha256>.<ext>``), else None."""
    stem, dot, ext = name.partition(".")
    if not dot or len(stem) != 64 or not ext or any(c not in "0123456789abcdef" for c in stem):
        return None
    return stem, ext


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

    def list_stored(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if not (shard.is_dir() and len(shard.name) == 2):
                continue
            for path in shard.iterdir():
                parsed = parse_tile_name(path.name)
                if parsed is None or parsed[0][:2] != shard.name:
                    continue  # not a tile (a temp file of a write in progress, anything else)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed meanwhile
                    continue
                yield StoredObject(parsed[0], parsed[1], stat.st_mtime, stat.st_size)

    def delete(self, tile_id: str, ext: str) -> None:
        self.path_for(tile_id, ext).unlink(missing_ok=True)


def open_tile_store(settings: Settings, local_root: Path) -> TileWriter:
    """The store ``EMBERWATCH_TILE_STORE_URL`` names: S3 for ``s3://…``, else ``local_root``."""
    if settings.tile_store_url:
        from emberwatch.common.tile_store_s3 import S3Connection, S3TileStore, split_s3_uri

        bucket, prefix = split_s3_uri(settings.tile_store_url)
        connection = S3Connection.from_settings(settings)
        log.info("tile store: S3", extra={"bucket": bucket, "prefix": prefix,
                                          "endpoint": connection.endpoint_url or "AWS"})
        return S3TileStore(bucket, prefix, connection)
    log.info("tile store: local directory", extra={"root": str(local_root)})
    return TileStore(local_root)


def check_tile_uri(uri: str) -> str:
    """The scheme of a URI the readers accept; ``UnsupportedTileUri`` otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise UnsupportedTileUri(f"tile uri must be a local file, got host {parsed.netloc!r}: {uri}")
        return "file"
    if parsed.scheme == "s3":
        if not parsed.netloc or parsed.path in ("", "/"):
            raise UnsupportedTileUri(f"tile uri must name a bucket and a key: {uri}")
        return "s3"
    if parsed.scheme in ("http", "https"):
        return parsed.scheme
    raise UnsupportedTileUri(f"unsupported tile uri scheme {parsed.scheme or '(none)'!r}: {uri}")


def tile_path(uri: str) -> Path:
    """The local path of a ``file://`` tile URI."""
    if check_tile_uri(uri) != "file":
        raise UnsupportedTileUri(f"not a local tile: {uri}")
    return Path(unquote(urlparse(uri).path))


def read_tile(uri: str, *, timeout_s: float = 30.0, settings: Settings | None = None) -> bytes:
    """A tile's bytes by its URI. ``settings`` give the S3 endpoint and credentials (default: the
    process's own, from the environment); safe to call from many threads at once."""
    scheme = check_tile_uri(uri)
    if scheme == "file":
        return _read_file(uri)
    if scheme == "s3":
        # Imported here: boto3 costs a noticeable import time in processes that never see s3://.
        from emberwatch.common.tile_store_s3 import S3Connection, read_s3_tile

        connection = S3Connection.from_settings(settings or get_settings(), read_timeout_s=timeout_s)
        return read_s3_tile(uri, connection)
    return _read_http(uri, timeout_s)


def _read_file(uri: str) -> bytes:
    path = tile_path(uri)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise TileMissing(f"tile {uri} does not exist: No such file") from exc
    except OSError as exc:
        raise TileUnreachable(f"cannot read tile {uri}: {type(exc).__name__}: {exc}") from exc


def _read_http(uri: str, timeout_s: float) -> bytes:
    try:
        response = httpx.get(uri, timeout=timeout_s, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise TileUnreachable(f"cannot fetch tile {uri}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in (404, 410):
        raise TileMissing(f"tile {uri} does not exist (HTTP {response.status_code})")
    if response.is_error:
        raise TileUnreachable(f"cannot fetch tile {uri}: HTTP {response.status_code}")
    return response.content
