"""Read tile images from the tile store (``file://`` URIs written by the tiler)."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np

from emberwatch.ml.images import UnreadableImage, decode_image
from services.trainer.models import TileRecord

log = logging.getLogger(__name__)


class UnsupportedUri(ValueError):
    """The tile's URI is not a ``file://`` path into the tile store."""


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        raise UnsupportedUri(f"tile uri must be file://..., got scheme {parsed.scheme or '(none)'!r}")
    if parsed.netloc not in ("", "localhost"):
        raise UnsupportedUri(f"tile uri must be a local file, got host {parsed.netloc!r}")
    return Path(unquote(parsed.path))


def read_images(records: list[TileRecord], image_size: int) -> tuple[list[TileRecord], np.ndarray, list[tuple[str, str]]]:
    """Decode the records' images. Returns (readable records, uint8 images, [(tile id, why unreadable)])."""
    ok: list[TileRecord] = []
    images: list[np.ndarray] = []
    bad: list[tuple[str, str]] = []
    for r in records:
        try:
            data = uri_to_path(r.uri).read_bytes()
            images.append(decode_image(data, image_size))
            ok.append(r)
        except (OSError, UnreadableImage, UnsupportedUri) as exc:
            bad.append((r.tile_id, f"{type(exc).__name__}: {exc}"))
            log.warning("unreadable tile skipped", extra={"tile_id": r.tile_id, "uri": r.uri,
                                                          "error": str(exc)})
    arr = np.stack(images) if images else np.empty((0, image_size, image_size, 3), dtype=np.uint8)
    return ok, arr, bad
