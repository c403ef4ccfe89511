"""Physics as a second opinion on a fire tile: NBR, dNBR between the pre-fire and post-fire scenes, hot pixels.

Pure functions over reflectance arrays (NaN = no data or masked). NBR = (NIR - SWIR2) / (NIR + SWIR2)
with B8A and B12; dNBR = NBR(pre) - NBR(post), positive where vegetation burned. A hot pixel is an active
flame's SWIR signature: B12 high on its own and against both B11 and B8A (a ratio test of the kind used
for Sentinel-2 active-fire detection). A "fire" tile showing neither burn nor heat is not visible:
dNBR below the USGS unburned threshold (0.1) and no hot pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNBURNED_DNBR = 0.1  # USGS burn severity: dNBR below 0.1 is unburned
HOT_B12_MIN = 0.15
HOT_RATIO_MIN = 1.4


def nbr(nir08: np.ndarray, swir22: np.ndarray) -> np.ndarray:
    """Normalised Burn Ratio per pixel (NaN where either band is missing or both are zero)."""
    nir = nir08.astype(np.float64)
    swir = swir22.astype(np.float64)
    total = nir + swir
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (nir - swir) / total, np.nan)


def mean_nbr(nir08: np.ndarray, swir22: np.ndarray, clear: np.ndarray | None = None) -> float | None:
    """Mean NBR over the clear pixels (all pixels if no mask); None when none is usable."""
    values = nbr(nir08, swir22)
    if clear is not None:
        values = np.where(clear, values, np.nan)
    if not np.isfinite(values).any():
        return None
    return float(np.nanmean(values))


def dnbr(pre_nbr: float | None, post_nbr: float | None) -> float | None:
    """NBR before minus NBR after: how much the place burned (None without both)."""
    if pre_nbr is None or post_nbr is None:
        return None
    return pre_nbr - post_nbr


def hot_pixels(swir16: np.ndarray, swir22: np.ndarray, nir08: np.ndarray) -> int:
    """Pixels with the SWIR signature of active flame."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hot = (swir22 >= HOT_B12_MIN) & (swir22 >= HOT_RATIO_MIN * swir16) & (swir22 >= HOT_RATIO_MIN * nir08)
    return int(np.count_nonzero(np.nan_to_num(hot, nan=False)))


@dataclass(frozen=True)
class FireEvidence:
    nbr: float | None  # post-fire, mean over the box's clear pixels
    dnbr: float | None
    hot_pixels: int
    visible: bool


def is_visible(dnbr_value: float | None, hot: int) -> bool:
    """False for a fire tile showing neither a burn (dNBR >= 0.1) nor heat (a hot pixel).

    Without a pre-fire scene (dNBR unknown) only heat can show the fire.
    """
    burned = dnbr_value is not None and dnbr_value >= UNBURNED_DNBR
    return burned or hot > 0


def fire_evidence(post: dict[str, np.ndarray], pre: dict[str, np.ndarray] | None,
                  post_clear: np.ndarray | None = None, pre_clear: np.ndarray | None = None) -> FireEvidence:
    """The indices of a post-fire box (bands nir08, swir16, swir22) against its pre-fire box."""
    post_nbr = mean_nbr(post["nir08"], post["swir22"], post_clear)
    pre_nbr = mean_nbr(pre["nir08"], pre["swir22"], pre_clear) if pre is not None else None
    change = dnbr(pre_nbr, post_nbr)
    hot = hot_pixels(post["swir16"], post["swir22"], post["nir08"])
    return FireEvidence(nbr=post_nbr, dnbr=change, hot_pixels=hot, visible=is_visible(change, hot))
