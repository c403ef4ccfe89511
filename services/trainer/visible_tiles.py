"""What training does with a fire tile the imagery does not show (``TileReady.visible`` is False).

The tiler flags a Sentinel-2 fire tile as not visible when it shows neither a burn (dNBR under the USGS
0.1 unburned threshold) nor heat (no hot pixel): a fire too small for the box, out before the scene, or
hidden under cloud. Its label ("wildfire") is true of the place but not of the image, so it teaches the
head a fire that is not there. The policies, measured in benchmarks/imagery.md:

* ``drop`` — not-visible fire tiles are left out of training and model selection;
* ``down-weight`` — they count with ``DOWN_WEIGHT`` of a visible tile's weight;
* ``keep`` — they count like any other tile.

Only the training and validation splits are touched: the test split is scored whole, visible or not, so
a model is judged on every fire it will meet. Tiles with no flag (Mapbox, controls, older events) are kept
at full weight.

Pure: flags in, weights out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, TypeVar

import numpy as np

NotVisiblePolicy = Literal["drop", "down-weight", "keep"]
POLICIES: tuple[str, ...] = ("drop", "down-weight", "keep")
DOWN_WEIGHT = 0.25
LEARNING_SPLITS = ("train", "val")


class FlaggedTile(Protocol):
    split: str
    visible: bool | None


T = TypeVar("T", bound=FlaggedTile)


def tile_weights(visible: Sequence[bool | None], policy: str, down_weight: float = DOWN_WEIGHT) -> np.ndarray:
    """A training weight per tile: 1 for a tile shown or without a flag, the policy's weight for a tile
    flagged not visible (0: dropped)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy for not-visible tiles {policy!r}; known: {', '.join(POLICIES)}")
    if not 0 < down_weight <= 1:
        raise ValueError(f"down_weight must lie in (0, 1], not {down_weight}")
    hidden = {"drop": 0.0, "down-weight": down_weight, "keep": 1.0}[policy]
    return np.array([hidden if v is False else 1.0 for v in visible], dtype=np.float64)


def apply_policy(visible: Sequence[bool | None], policy: str,
                 down_weight: float = DOWN_WEIGHT) -> tuple[np.ndarray, np.ndarray | None]:
    """(indices of the tiles to train on, their sample weights or None when every weight is 1)."""
    w = tile_weights(visible, policy, down_weight)
    keep = np.flatnonzero(w > 0)
    kept = w[keep]
    return keep, (None if bool(np.all(kept == 1.0)) else kept)


def leave_out_hidden(tiles: list[T], policy: str) -> list[T]:
    """With ``drop``, the training and validation tiles flagged not visible are left out; the test split
    and every other policy keep all tiles (``down-weight`` weighs them in the head search instead)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy for not-visible tiles {policy!r}; known: {', '.join(POLICIES)}")
    if policy != "drop":
        return tiles
    return [t for t in tiles if not (t.visible is False and t.split in LEARNING_SPLITS)]
