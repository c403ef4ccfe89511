"""Image decoding shared by training and serving: one function, so preprocessing never disagrees."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


class UnreadableImage(ValueError):
    """The bytes are not an image Pillow can decode."""


def decode_image(data: bytes, image_size: int) -> np.ndarray:
    """Decode ``data`` to an RGB uint8 array of shape (image_size, image_size, 3) (bilinear resize)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = img.convert("RGB")
            if rgb.size != (image_size, image_size):
                rgb = rgb.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"cannot decode image ({len(data)} bytes): {exc}") from exc
