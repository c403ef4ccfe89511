"""How clear a scene is over the fire's box, from its scene classification layer (SCL), and which scene to use.

A granule's ``eo:cloud_cover`` says little about a 2 km box: the SCL is read for the box and the
fraction of its valid pixels that are cloud shadow (3), cloud of medium or high probability (8, 9) or
thin cirrus (10) is the box's cloud fraction. No-data (0) and saturated/defective (1) pixels are not
valid; a box with too few valid pixels is not clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

SCL_NODATA = 0
SCL_DEFECTIVE = 1
SCL_CLOUD_SHADOW = 3
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_THIN_CIRRUS = 10
OBSCURED = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_THIN_CIRRUS)


def clear_mask(scl: np.ndarray) -> np.ndarray:
    """True where a pixel is valid and neither cloud, cloud shadow nor cirrus."""
    return ~np.isin(scl, (SCL_NODATA, SCL_DEFECTIVE, *OBSCURED))


def cloud_fraction(scl: np.ndarray, min_valid_fraction: float = 0.5) -> float:
    """Obscured share of the box's valid pixels; 1.0 when under ``min_valid_fraction`` of it is valid."""
    valid = ~np.isin(scl, (SCL_NODATA, SCL_DEFECTIVE))
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0 or n_valid < min_valid_fraction * scl.size:
        return 1.0
    return float(np.count_nonzero(np.isin(scl, OBSCURED) & valid)) / n_valid


@dataclass(frozen=True)
class Assessed:
    """A scene with its cloud fraction over the fire's box."""

    scene_id: str
    acquired_at: datetime
    catalogued_at: datetime | None
    cloud_fraction: float


def clearest(scenes: list[Assessed], max_cloud_fraction: float) -> Assessed | None:
    """The scene with the least cloud over the box (the earliest among equals), if clear enough."""
    clear = [s for s in scenes if s.cloud_fraction <= max_cloud_fraction]
    return min(clear, key=lambda s: (s.cloud_fraction, s.acquired_at), default=None)


def latest_clear(scenes: list[Assessed], max_cloud_fraction: float) -> Assessed | None:
    """The most recent scene clear enough over the box."""
    clear = [s for s in scenes if s.cloud_fraction <= max_cloud_fraction]
    return max(clear, key=lambda s: s.acquired_at, default=None)
