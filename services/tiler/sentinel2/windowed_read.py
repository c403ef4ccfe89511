"""Read only a fire's box from Sentinel-2 COGs, by HTTP range requests (GDAL's /vsicurl/), never a whole band.

Reflectance bands come back as float32 with the item's scale and offset applied (nodata -> NaN); the
scene classification layer (SCL) as its uint8 classes, resampled by nearest neighbour. Every band is
resampled onto the same ``size_px`` grid over the box, whose transform and CRS are kept. The bytes a
read costs are counted from the COG's own block index (the blocks the window touches) plus the header
GDAL fetches at open.

A COG is not trusted to be small where it matters: before any pixel is read, a window wider than
``MAX_WINDOW_PX`` source pixels a side (a georeference with absurdly small pixels would make GDAL
fetch a whole band) or whose blocks add up to more than ``MAX_READ_BYTES`` (huge or uncompressed
blocks) is refused with :class:`ReadRefused`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window, from_bounds, intersect

from services.tiler.sentinel2.scenes import BandAsset

MAX_WINDOW_PX = 2048  # source pixels a side: the box is 224 px of 10 m, 112 of 20 m
MAX_READ_BYTES = 8 * 1024 * 1024  # blocks of one band's window
HEADER_BYTES = 16384  # GDAL_INGESTED_BYTES_AT_OPEN: what GDAL reads first from a remote GeoTIFF

GDAL_HTTP_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing next to the COG
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF",
    "GDAL_HTTP_MAX_RETRY": "4",  # 429 and 5xx answers are retried
    "GDAL_HTTP_RETRY_DELAY": "0.2",
    "GDAL_HTTP_TIMEOUT": "20",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_INGESTED_BYTES_AT_OPEN": str(HEADER_BYTES),
    "VSI_CACHE": "FALSE",
}


class ReadRefused(ValueError):
    """A COG whose window would cost far more than a box should: not read."""


@dataclass(frozen=True)
class FireBox:
    """A square of ``side_m`` metres centred on a point, sampled on ``size_px`` x ``size_px`` pixels."""

    lon: float
    lat: float
    side_m: float = 2240.0
    size_px: int = 224


@dataclass
class BandRead:
    data: np.ndarray  # (size_px, size_px): float32 reflectance (NaN = nodata) or uint8 SCL classes
    transform: Affine  # of ``data``, in ``crs``
    crs: str
    bytes_read: int


def vsicurl(href: str) -> str:
    """GDAL's path for an http(s) href; local paths are returned unchanged."""
    if href.startswith(("http://", "https://")):
        return f"/vsicurl/{href}"
    if href.startswith("s3://") or "://" in href:
        raise ValueError(f"unreadable href scheme: {href.split('://')[0][:10]!r}")
    return href


def _window_bytes(dataset: rasterio.DatasetReader, window: Window) -> int:
    """Bytes of the internal blocks of band 1 that ``window`` touches, from the TIFF block index."""
    block_h, block_w = dataset.block_shapes[0]
    total = 0
    col0, row0 = int(window.col_off) // block_w, int(window.row_off) // block_h
    col1 = int(math.ceil((window.col_off + window.width) / block_w))
    row1 = int(math.ceil((window.row_off + window.height) / block_h))
    for row in range(max(row0, 0), min(row1, math.ceil(dataset.height / block_h))):
        for col in range(max(col0, 0), min(col1, math.ceil(dataset.width / block_w))):
            size = dataset.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
            total += int(size or block_w * block_h * np.dtype(dataset.dtypes[0]).itemsize)
    return total


def read_box(asset: BandAsset, box: FireBox, categorical: bool = False) -> BandRead:
    """The box of one band asset, on the box's ``size_px`` grid."""
    with rasterio.Env(**GDAL_HTTP_OPTIONS), rasterio.open(vsicurl(asset.href)) as dataset:
        xs, ys = warp_transform("EPSG:4326", dataset.crs, [box.lon], [box.lat])
        half = box.side_m / 2
        left, bottom, right, top = xs[0] - half, ys[0] - half, xs[0] + half, ys[0] + half
        window = from_bounds(left, bottom, right, top, dataset.transform)
        full = Window(0, 0, dataset.width, dataset.height)
        if not intersect(window, full):
            raise ValueError("the fire's box lies outside this scene")
        if max(window.width, window.height) > MAX_WINDOW_PX:
            raise ReadRefused(f"the fire's box spans {max(window.width, window.height):.0f} source pixels a side "
                              f"(at most {MAX_WINDOW_PX}): the COG's pixels are implausibly small")
        cost = _window_bytes(dataset, window.intersection(full))
        if cost > MAX_READ_BYTES:
            raise ReadRefused(f"the fire's box would read {cost} bytes of blocks (at most {MAX_READ_BYTES})")
        raw = dataset.read(
            1, window=window, out_shape=(box.size_px, box.size_px), boundless=True,
            fill_value=dataset.nodata or 0,
            resampling=Resampling.nearest if categorical else Resampling.bilinear,
        )
        bytes_read = HEADER_BYTES + cost
        out_transform = Affine(box.side_m / box.size_px, 0, left, 0, -box.side_m / box.size_px, top)
        crs = dataset.crs.to_string()
    if categorical:
        data = raw.astype(np.uint8)
    else:
        data = raw.astype(np.float32) * np.float32(asset.scale) + np.float32(asset.offset)
        nodata = asset.nodata if asset.nodata is not None else 0
        data[raw == nodata] = np.nan
    return BandRead(data=data, transform=out_transform, crs=crs, bytes_read=bytes_read)
