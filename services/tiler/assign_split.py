"""Split assignment by spatial cell (docs/architecture.md#data-honesty): a pure function of a location.

A tile's split is the hash of the coarse grid cell it falls in, so neighbouring tiles share a split
(no near-duplicates across train and test) and a tile's split never changes when data arrives.

Every tile — fire or fire-free — is assigned by its *own* cell, so the rule is one pure function of
a location and two tiles of the same ground can never land in different splits. The default cell is
1.5°: about 167 km north–south and 96 km east–west at 55°N. Negatives lie 10–50 km from their fire,
so a fire and its negatives share a cell about two times in three (measured over 4,000 negatives
across Canada: 0.5° → 20 %, 1° → 51 %, 1.5° → 66 %, 2° → 75 %), and tiles a few km apart almost
always do. Smaller cells split fire/negative pairs more often; larger ones leave too few cells over
Canada's fire regions for stable split proportions (one big fire cluster could fill a split).
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

Split = Literal["train", "val", "test"]
SALT = "emberwatch-split-v1"


def cell_of(lat: float, lon: float, cell_deg: float) -> tuple[int, int]:
    """Grid cell indices (row, column) of a location."""
    return math.floor(lat / cell_deg), math.floor(lon / cell_deg)


def cell_fraction(row: int, col: int, cell_deg: float, salt: str = SALT) -> float:
    """A uniform number in [0, 1) that depends only on the cell (and the cell size and salt)."""
    digest = hashlib.sha256(f"{salt}|{cell_deg:g}|{row}|{col}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(lat: float, lon: float, *, cell_deg: float = 1.5, val: float = 0.15,
                 test: float = 0.15, salt: str = SALT) -> Split:
    """``train``/``val``/``test`` for the cell holding (lat, lon); val+test shares of the cells."""
    if val < 0 or test < 0 or val + test > 1:
        raise ValueError("val and test shares must be >= 0 and sum to at most 1")
    u = cell_fraction(*cell_of(lat, lon, cell_deg), cell_deg, salt)
    if u < test:
        return "test"
    if u < test + val:
        return "val"
    return "train"
