"""Decode the training tiles from the tile store (``emberwatch.common.tile_store``)."""

from __future__ import annotations

import logging

import numpy as np

from emberwatch.common.config import Settings
from emberwatch.common.tile_store import TileUnavailable, read_tile
from emberwatch.ml.images import UnreadableImage, decode_image
from services.trainer.models import TileRecord

log = logging.getLogger(__name__)


def read_images(records: list[TileRecord], image_size: int, settings: Settings | None = None,
                ) -> tuple[list[TileRecord], np.ndarray, list[tuple[str, str]]]:
    """Decode the records' images, each from its URI, read only from the configured tile store and
    checked against its tile id (``settings``: the store; default the process's own). Returns (readable records, uint8 images, [(tile id, why unreadable)])."""
    ok: list[TileRecord] = []
    images: list[np.ndarray] = []
    bad: list[tuple[str, str]] = []
    for r in records:
        try:
            images.append(decode_image(read_tile(r.uri, r.tile_id, settings=settings), image_size))
            ok.append(r)
        except (TileUnavailable, UnreadableImage) as exc:
            bad.append((r.tile_id, f"{type(exc).__name__}: {exc}"))
            log.warning("unreadable tile skipped", extra={"tile_id": r.tile_id, "uri": r.uri,
                                                          "error": str(exc)})
    arr = np.stack(images) if images else np.empty((0, image_size, image_size, 3), dtype=np.uint8)
    return ok, arr, bad
