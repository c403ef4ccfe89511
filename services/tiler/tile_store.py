"""Content-addressed tile store: ``<root>/<ab>/<sha256>.<ext>``, atomic and idempotent writes."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredTile:
    tile_id: str
    path: Path
    uri: str
    created: bool  # False when the same bytes were already stored


class TileStore:
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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{tile_id}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)  # atomic: readers see the whole file or none
        finally:
            if tmp.exists():
                tmp.unlink()
        return StoredTile(tile_id, path, path.as_uri(), True)
