"""The tile store contract, one module for its writer (the tiler) and its readers (the trainer, the
gatekeeper and the console).

Tiles are content-addressed: a tile's id is the sha256 of its image bytes and it is stored once under
``<id[:2]>/<id>.<ext>``, in one of two places chosen by ``EMBERWATCH_TILE_STORE_URL``
(:func:`open_tile_store`):

* empty: a local directory (``EMBERWATCH_TILER_TILE_ROOT``, default ``<state>/tiles``),
  ``<root>/<id[:2]>/<id>.<ext>``, announced in ``tiles.ready.v1`` as its ``file://`` URI
  (:class:`TileStore`): one host, or a volume every reader mounts at the same path;
* ``s3://<bucket>/<prefix>``: the object ``<prefix>/<id[:2]>/<id>.<ext>``, announced as
  ``s3://<bucket>/<key>`` (``emberwatch/common/tile_store_s3.py``): any node can read it.

Either way a second put of the same bytes writes nothing, and a reader sees a whole tile or none
(rename of a synced temp file; an S3 PUT is atomic).

A URI comes from an event, so a reader trusts none of it. :func:`read_tile` (every reader's one way
in) accepts a URI only if it is exactly where the configured store keeps that tile: the contract's
shape (``emberwatch/contracts/tile_uri.py``), then ``file://<root>/<id[:2]>/<id>.<ext>`` under the
local root (no symlink leaving it) or ``s3://<bucket>/<prefix>/<id[:2]>/<id>.<ext>`` of the configured
bucket and prefix; no other scheme, host, bucket or path is ever opened or requested. It reads at most
``EMBERWATCH_TILE_MAX_BYTES`` and returns the bytes only if their sha256 is the tile id. Why a tile
cannot be read is told by the error's type, so consumers classify without reading messages:
``TileMissing`` and ``TileRefused`` (with its ``reason``, counted in ``emberwatch_tiles_refused_total``)
never get better (the message goes to the DLQ at once), ``TileUnreachable`` may (it is retried).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter

from emberwatch.common.atomic_files import atomic_write_bytes
from emberwatch.common.config import Settings, get_settings
from emberwatch.common.tile_store_contract import (  # noqa: F401 - the readers' one import
    PERMANENT,
    StoredObject,
    StoredTile,
    TileHashMismatch,
    TileMissing,
    TileRefused,
    TileTooLarge,
    TileUnavailable,
    TileUnreachable,
    TileWriter,
    UnsupportedTileUri,
    check_extension,
    key_for,
    parse_tile_name,
    split_s3_uri,
)
from emberwatch.contracts.tile_uri import TileUriRefused, parse_tile_uri

log = logging.getLogger(__name__)


TILES_REFUSED = Counter(
    "emberwatch_tiles_refused_total",
    "Tile reads refused, by reason: the URI's shape (scheme, host, query, encoding, traversal, name, length), "
    "outside_store, symlink, not_a_file, too_large, hash_mismatch.",
    ["reason"],
)


class TileStore:
    """The local-directory tile store (the tiler's side of the contract)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def path_for(self, tile_id: str, ext: str) -> Path:
        return self.root / tile_id[:2] / f"{tile_id}.{ext}"

    def put(self, data: bytes, ext: str) -> StoredTile:
        """Store ``data`` under its sha256; a second put of the same bytes writes nothing."""
        check_extension(ext)
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
        from emberwatch.common.tile_store_s3 import S3Connection, S3TileStore

        bucket, prefix = split_s3_uri(settings.tile_store_url)
        connection = S3Connection.from_settings(settings)
        log.info("tile store: S3", extra={"bucket": bucket, "prefix": prefix,
                                          "endpoint": connection.endpoint_url or "AWS"})
        return S3TileStore(bucket, prefix, connection)
    log.info("tile store: local directory", extra={"root": str(local_root)})
    return TileStore(local_root)


@dataclass(frozen=True)
class TileLocation:
    """Where the configured store keeps a tile: a local file, or an object of the S3 store."""

    tile_id: str
    path: Path | None = None  # the local store
    bucket: str | None = None  # the S3 store
    key: str | None = None


def _refuse(error: type[TileRefused], reason: str, message: str) -> TileRefused:
    TILES_REFUSED.labels(reason).inc()
    return error(reason, message)


def locate_tile(uri: str, tile_id: str, settings: Settings | None = None) -> TileLocation:
    """Where ``tile_id`` is, if ``uri`` is exactly its place in the configured store; else
    ``UnsupportedTileUri`` (counted). Nothing is opened or requested: the check is on the text."""
    settings = settings or get_settings()
    try:
        parsed = parse_tile_uri(uri, tile_id)
    except TileUriRefused as exc:
        raise _refuse(UnsupportedTileUri, exc.reason, str(exc)) from None
    shown = repr(uri[:200])
    if parsed.scheme == "file":
        path = TileStore(settings.tile_root).path_for(tile_id, parsed.ext)
        if uri != path.as_uri():
            raise _refuse(UnsupportedTileUri, "outside_store",
                          f"tile uri {shown} is not under the tile store's root {path.parents[1]}")
        return TileLocation(tile_id, path=path)
    if settings.tile_store_url is None:
        raise _refuse(UnsupportedTileUri, "outside_store", f"tile uri {shown}: no S3 tile store is configured")
    bucket, prefix = split_s3_uri(settings.tile_store_url)
    key = key_for(prefix, tile_id, parsed.ext)
    if uri != f"s3://{bucket}/{key}":
        raise _refuse(UnsupportedTileUri, "outside_store",
                      f"tile uri {shown} is not in the tile store's bucket and prefix s3://{bucket}/{prefix}")
    return TileLocation(tile_id, bucket=bucket, key=key)


def check_tile_uri(uri: str, tile_id: str, settings: Settings | None = None) -> str:
    """The scheme (``file`` or ``s3``) of a URI the readers would accept for ``tile_id``;
    ``UnsupportedTileUri`` otherwise (for consumers that refuse an event before storing it)."""
    return "file" if locate_tile(uri, tile_id, settings).path is not None else "s3"


def read_tile(uri: str, tile_id: str, *, timeout_s: float = 30.0, settings: Settings | None = None) -> bytes:
    """The bytes of tile ``tile_id`` announced at ``uri``: only from the configured store, at most
    ``EMBERWATCH_TILE_MAX_BYTES``, and only if their sha256 is ``tile_id`` (``TileRefused`` otherwise,
    counted). ``settings`` give the store (default: the process's own, from the environment); safe to
    call from many threads at once."""
    settings = settings or get_settings()
    where = locate_tile(uri, tile_id, settings)
    limit = settings.tile_max_bytes
    if where.path is not None:
        data = _read_file(where.path, Path(settings.tile_root), uri, limit)
    else:
        # Imported here: boto3 costs a noticeable import time in processes that never see s3://.
        from emberwatch.common.tile_store_s3 import S3Connection, read_s3_tile

        connection = S3Connection.from_settings(settings, read_timeout_s=timeout_s)
        data = read_s3_tile(where.bucket or "", where.key or "", connection, max_bytes=limit)
    if data is None:
        raise _refuse(TileTooLarge, "too_large", f"tile {uri[:200]!r} is larger than {limit} bytes: not read")
    if hashlib.sha256(data).hexdigest() != tile_id:
        raise _refuse(TileHashMismatch, "hash_mismatch",
                      f"tile {uri[:200]!r}: the bytes' sha256 is not the tile id {tile_id}")
    return data


def _read_file(path: Path, root: Path, uri: str, limit: int) -> bytes | None:
    """The file's bytes (None: more than ``limit``). Refused when a symlink on the way leads out of the
    root, or the file is a symlink or no regular file; opened without following a last symlink."""
    root = root.resolve()
    if Path(os.path.realpath(path)) != root / path.parent.name / path.name:
        raise _refuse(UnsupportedTileUri, "symlink", f"tile {uri[:200]!r} leads out of the tile store (symlink)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise TileMissing(f"tile {uri} does not exist: No such file") from exc
    except OSError as exc:
        if os.path.islink(path):  # ELOOP: a symlink appeared after the check
            raise _refuse(UnsupportedTileUri, "symlink", f"tile {uri[:200]!r} is a symlink") from None
        raise TileUnreachable(f"cannot read tile {uri}: {type(exc).__name__}: {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(UnsupportedTileUri, "not_a_file", f"tile {uri[:200]!r} is not a regular file")
        if info.st_size > limit:
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise TileUnreachable(f"cannot read tile {uri}: {type(exc).__name__}: {exc}") from exc
    finally:
        os.close(fd)
    return data if len(data) <= limit else None
