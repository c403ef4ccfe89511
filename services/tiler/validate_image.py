"""Validate image bytes before they count as a tile: a pure function over bytes.

Rejected, with a reason (a metric label): ``empty``; ``error_body`` (JSON/HTML/XML served with
status 200); ``not_image`` (no known image signature, or Pillow cannot identify it); ``too_large``
(more pixels than allowed — checked from the header before any pixel is decoded, so a
decompression bomb never allocates); ``wrong_size``; ``wrong_mode``; ``truncated`` (decoding fails or
a JPEG lacks its end-of-image marker); ``blank`` (a flat "no coverage" image: the grey-level
standard deviation over all pixels below ``blank_std``; real imagery, even open water, carries
sensor grain and JPEG noise well above it).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from emberwatch.ml.images import MAX_IMAGE_PIXELS

DEFAULT_MAX_PIXELS = MAX_IMAGE_PIXELS  # the limit every decoder of outside images keeps
_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
}


class ImageRejected(ValueError):
    """The bytes are not a usable tile; ``reason`` is short and safe to use as a metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ValidImage:
    image: Image.Image  # decoded, converted to RGB
    format: str
    mode: str  # the mode as served (RGB, P, RGBA, L)
    width: int
    height: int
    std: float


def sniff(data: bytes) -> str | None:
    """The image format from the leading bytes, or None."""
    for magic, fmt in _SIGNATURES.items():
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def validate_image(data: bytes, *, expected_size: tuple[int, int] | None = None,
                   allowed_modes: tuple[str, ...] = ("RGB", "P", "RGBA", "L"),
                   max_pixels: int = DEFAULT_MAX_PIXELS, blank_std: float = 1.0) -> ValidImage:
    """Decode ``data`` or raise :class:`ImageRejected`."""
    if not data:
        raise ImageRejected("empty")
    fmt = sniff(data)
    if fmt is None:
        head = data[:64].lstrip()
        if head[:1] in (b"{", b"[", b"<"):
            raise ImageRejected("error_body", head[:40].decode("utf-8", "replace"))
        raise ImageRejected("not_image")
    if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageRejected("truncated", "JPEG without end-of-image marker")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))  # reads the header only
            width, height = im.size
            if width * height > max_pixels:
                raise ImageRejected("too_large", f"{width}x{height}")
            if expected_size is not None and (width, height) != tuple(expected_size):
                raise ImageRejected("wrong_size", f"{width}x{height}, expected "
                                                  f"{expected_size[0]}x{expected_size[1]}")
            if im.mode not in allowed_modes:
                raise ImageRejected("wrong_mode", im.mode)
            mode = im.mode
            im.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_large", str(exc)[:80]) from None
    except UnidentifiedImageError:
        raise ImageRejected("not_image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected("truncated", str(exc)[:80]) from None
    rgb = im.convert("RGB") if im.mode != "RGB" else im
    std = float(np.asarray(rgb.convert("L"), dtype=np.float32).std())
    if std < blank_std:
        raise ImageRejected("blank", f"grey std {std:.2f}")
    return ValidImage(image=rgb, format=fmt, mode=mode, width=width, height=height, std=std)
