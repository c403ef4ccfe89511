"""Composites keep their georeference and map reflectance with a fixed gain."""

from __future__ import annotations

import io

import numpy as np
from affine import Affine
from PIL import Image

from services.tiler.sentinel2.composites import composite, read_georeference


def test_swir_composite_is_b12_b8a_b4_with_its_georeference() -> None:
    n = 224
    bands = {"swir22": np.full((n, n), 0.6, np.float32), "nir08": np.full((n, n), 0.3, np.float32),
             "red": np.full((n, n), np.nan, np.float32), "green": np.zeros((n, n), np.float32),
             "blue": np.zeros((n, n), np.float32)}
    transform = Affine(10, 0, 500000, 0, -10, 5600000)
    swir = composite("swir", bands, "EPSG:32610", transform)
    image = Image.open(io.BytesIO(swir.png))
    assert image.size == (n, n) and image.mode == "RGB"
    assert image.getpixel((5, 5)) == (255, 128, 0)
    assert read_georeference(swir.png) == ("EPSG:32610", transform)
    assert swir.world_file.splitlines() == ["10.000000", "0.000000", "0.000000", "-10.000000", "500005.000000",
                                            "5599995.000000"]
    true_colour = composite("true-colour", bands, "EPSG:32610", transform)
    assert Image.open(io.BytesIO(true_colour.png)).getpixel((0, 0)) == (0, 0, 0)
