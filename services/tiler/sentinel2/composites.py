"""True-colour (B4, B3, B2) and SWIR false-colour (B12, B8A, B4) composites of a box, as georeferenced PNGs.

Reflectance is mapped to 0-255 with a fixed gain per composite (the same for every tile, so brightness
means the same thing everywhere); no data is black. The georeference travels with the image: the PNG
carries the CRS and the affine transform in a ``georeference`` text chunk, and ``world_file`` gives the
six lines of an ESRI world file (.pgw) for GIS tools.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
from affine import Affine
from PIL import Image
from PIL.PngImagePlugin import PngInfo

TRUE_COLOUR = ("red", "green", "blue")
SWIR_FALSE_COLOUR = ("swir22", "nir08", "red")
TRUE_COLOUR_WHITE = 0.3  # reflectance shown as full brightness
SWIR_WHITE = 0.6


@dataclass(frozen=True)
class Composite:
    kind: str  # "true-colour" | "swir"
    png: bytes
    crs: str
    transform: tuple[float, float, float, float, float, float]  # a, b, c, d, e, f of the pixel grid

    @property
    def world_file(self) -> str:
        """ESRI world file lines: x size, rotations, -y size, centre of the upper-left pixel."""
        a, b, c, d, e, f = self.transform
        return "\n".join(f"{v:.6f}" for v in (a, d, b, e, c + a / 2 + b / 2, f + d / 2 + e / 2)) + "\n"


def to_rgb(bands: tuple[np.ndarray, np.ndarray, np.ndarray], white: float) -> np.ndarray:
    """Three reflectance arrays as one uint8 RGB image (NaN -> 0)."""
    stack = np.stack([np.nan_to_num(b, nan=0.0) for b in bands], axis=-1)
    return np.clip(stack / white * 255.0, 0, 255).round().astype(np.uint8)


def encode_png(rgb: np.ndarray, crs: str, transform: Affine) -> bytes:
    info = PngInfo()
    info.add_text("georeference", json.dumps({"crs": crs, "transform": list(transform)[:6]}))
    out = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(out, format="PNG", pnginfo=info, optimize=False)
    return out.getvalue()


def composite(kind: str, bands: dict[str, np.ndarray], crs: str, transform: Affine) -> Composite:
    """The ``kind`` composite ("true-colour" or "swir") of reflectance ``bands`` on one grid."""
    names, white = {"true-colour": (TRUE_COLOUR, TRUE_COLOUR_WHITE), "swir": (SWIR_FALSE_COLOUR, SWIR_WHITE)}[kind]
    rgb = to_rgb(tuple(bands[n] for n in names), white)
    return Composite(kind=kind, png=encode_png(rgb, crs, transform), crs=crs, transform=tuple(transform)[:6])


def read_georeference(png: bytes) -> tuple[str, Affine]:
    """The CRS and transform a composite's PNG carries."""
    with Image.open(io.BytesIO(png)) as image:
        meta = json.loads(image.text["georeference"])
    return meta["crs"], Affine(*meta["transform"])
