"""Image decoding shared by training and serving: one function, so preprocessing never disagrees.

The bytes come from outside (a tile store, a Triton request), so decoding is bounded before any pixel
is allocated: at most ``MAX_IMAGE_BYTES`` of input, and at most ``MAX_IMAGE_PIXELS`` pixels as the
image's header declares them (a 2 KB PNG can declare 100,000 x 100,000 pixels: a decompression
bomb). Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, ~89 MP by default, and only a warning below
twice that) is set to the same value (``limit_pillow``) and its warning is an error here. Tiles are
224 to 1,024 pixels a side; 4096 x 4096 leaves room for any real one.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # as EMBERWATCH_TILE_MAX_BYTES' default


class UnreadableImage(ValueError):
    """The bytes are not an image Pillow can decode."""


class ImageTooLarge(UnreadableImage):
    """The bytes, or the pixels their header declares, are over the limit: nothing was decoded."""


def limit_pillow(max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Set Pillow's decompression-bomb limit for this process (it warns above it, refuses above twice
    it): for code that opens images without ``decode_image``."""
    Image.MAX_IMAGE_PIXELS = max_pixels


limit_pillow()


def decode_image(data: bytes, image_size: int, *, max_bytes: int = MAX_IMAGE_BYTES,
                 max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode ``data`` to an RGB uint8 array of shape (image_size, image_size, 3) (bilinear resize).

    Raises ``ImageTooLarge`` for more than ``max_bytes`` bytes or a header declaring more than
    ``max_pixels`` pixels (checked before decoding), ``UnreadableImage`` for anything else undecodable."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image of {len(data):,} bytes refused (at most {max_bytes:,})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:  # reads the header only
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageTooLarge(f"image of {width}x{height} pixels refused (at most {max_pixels:,} "
                                        "pixels): not decoded")
                rgb = img.convert("RGB")
                if rgb.size != (image_size, image_size):
                    rgb = rgb.resize((image_size, image_size), Image.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8).copy()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"image refused as a decompression bomb: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageTooLarge):
            raise
        raise UnreadableImage(f"cannot decode image ({len(data)} bytes): {exc}") from exc
