import io

import numpy as np
import pytest
from PIL import Image

from emberwatch.ml.images import UnreadableImage, decode_image


def _encode(arr: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    img = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def test_png_rgb_roundtrip_same_size():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = decode_image(_encode(arr, "PNG"), 32)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, arr)


def test_resize_is_bilinear_like_pillow():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    out = decode_image(_encode(arr, "PNG"), 32)
    expected = np.asarray(Image.fromarray(arr).resize((32, 32), Image.BILINEAR))
    np.testing.assert_array_equal(out, expected)


def test_grey_rgba_and_palette_become_rgb():
    grey = np.full((40, 40), 77, dtype=np.uint8)
    assert decode_image(_encode(grey, "PNG"), 32).shape == (32, 32, 3)
    rgba = np.zeros((40, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    out = decode_image(_encode(rgba, "PNG"), 32)
    assert out.shape == (32, 32, 3) and (out[..., 0] == 200).all()
    pal = Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8)).convert("P")
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert decode_image(buf.getvalue(), 32).shape == (32, 32, 3)


def test_jpeg_decodes():
    arr = np.full((64, 64, 3), (30, 120, 40), dtype=np.uint8)
    out = decode_image(_encode(arr, "JPEG"), 48)
    assert out.shape == (48, 48, 3)
    assert np.abs(out.astype(int) - (30, 120, 40)).max() < 8


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_garbage_is_a_clear_error(data):
    with pytest.raises(UnreadableImage, match="cannot decode image"):
        decode_image(data, 32)


def test_truncated_png_is_an_error():
    rng = np.random.default_rng(2)
    data = _encode(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "PNG")
    with pytest.raises(UnreadableImage):
        decode_image(data[: len(data) // 2], 32)
