"""Cloud-Optimized GeoTIFF bytes of a band (GDAL's COG driver: 256-px tiles, DEFLATE, internal overviews)."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.shutil import copy as copy_dataset


def cog_bytes(data: np.ndarray, transform: Affine, epsg: int, categorical: bool = False) -> bytes:
    """One band (2-D) or a band stack (n, h, w) as a COG with nodata 0."""
    bands = data if data.ndim == 3 else data[None]
    profile = {"driver": "GTiff", "dtype": str(bands.dtype), "width": bands.shape[2], "height": bands.shape[1],
               "count": bands.shape[0], "crs": f"EPSG:{epsg}", "transform": transform, "nodata": 0}
    with MemoryFile() as staging, MemoryFile() as out:
        with staging.open(**profile) as dataset:
            dataset.write(bands)
        with staging.open() as source:
            copy_dataset(source, out.name, driver="COG", blocksize=256, compress="DEFLATE", predictor=2,
                         overview_resampling="nearest" if categorical else "average")
        return out.read()
