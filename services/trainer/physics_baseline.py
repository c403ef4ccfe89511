"""The dNBR rule: the physical baseline a Sentinel-2 model must beat, scored beside the CNN.

A tile is "fire" when the indices the tiler recorded with it show a burn or heat: dNBR (the NBR of the
pre-fire scene of the same place minus the tile's own) at or above the USGS unburned threshold 0.1, or
at least one hot pixel (an active flame's SWIR signature). Nothing is fitted, so the rule is scored on
exactly the tiles the CNN is scored on.

A tile is scored from the fields it carries. The tiler records indices on the post-fire tile only (its
dNBR needs the pre-fire scene); the pre-fire control and any other fire-free tile carry none, so the rule
sees neither burn nor heat there and says "no fire". That is also what the rule would say of a control
measured against itself (no change, no flame) unless an older burn lies in its box; it means the rule's
specificity on the controls holds by construction, and its recall (the share of fire tiles showing burn
or heat, i.e. ``TileReady.visible``) is the informative number. A split in which no tile carries an index
(a Mapbox line) has no rule: it is not scored.

Pure: values in, a :class:`PhysicsRuleResult` out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The same threshold the tiler's indices use for TileReady.visible (USGS: dNBR below 0.1 is unburned).
UNBURNED_DNBR = 0.1


@dataclass(frozen=True)
class TileIndices:
    """The physics a tile carries (``TileReady.dnbr`` and ``hot_pixels``); None where it has none."""

    dnbr: float | None = None
    hot_pixels: int | None = None

    @property
    def recorded(self) -> bool:
        return self.dnbr is not None or self.hot_pixels is not None


def rule_says_fire(tile: TileIndices) -> bool:
    """dNBR >= 0.1 or a hot pixel; a tile carrying neither shows no burn and no heat."""
    burned = tile.dnbr is not None and np.isfinite(tile.dnbr) and tile.dnbr >= UNBURNED_DNBR
    hot = tile.hot_pixels is not None and tile.hot_pixels > 0
    return bool(burned or hot)


def rule_predictions(tiles: Sequence[TileIndices]) -> np.ndarray:
    """The rule's 0/1 decision per tile (1 = wildfire)."""
    return np.array([int(rule_says_fire(t)) for t in tiles], dtype=np.int64)


@dataclass(frozen=True)
class PhysicsRuleResult:
    n: int
    with_indices: int  # tiles of the split that carry dNBR or hot pixels
    accuracy: float
    recall: float | None  # None without fire tiles
    specificity: float | None  # None without fire-free tiles
    cnn_accuracy: float
    warning: str | None  # set when the CNN does not beat the rule

    def metrics(self) -> dict[str, float]:
        out = {"physics_rule_accuracy": self.accuracy, "physics_rule_tiles_with_indices": float(self.with_indices),
               "physics_rule_warning": 1.0 if self.warning else 0.0}
        if self.recall is not None:
            out["physics_rule_recall"] = self.recall
        if self.specificity is not None:
            out["physics_rule_specificity"] = self.specificity
        return out


def score_physics_rule(tiles: Sequence[TileIndices], labels: np.ndarray, cnn_predictions: np.ndarray, *,
                       split: str) -> PhysicsRuleResult | None:
    """The rule scored on ``tiles`` beside the CNN's 0/1 predictions of the same tiles; None when no tile
    of the split carries an index (nothing to score the rule on)."""
    y = np.asarray(labels, dtype=np.int64)
    cnn = np.asarray(cnn_predictions, dtype=np.int64)
    if not len(tiles) == len(y) == len(cnn):
        raise ValueError(f"{len(tiles)} tiles, {len(y)} labels and {len(cnn)} CNN predictions")
    with_indices = sum(t.recorded for t in tiles)
    if with_indices == 0:
        return None
    pred = rule_predictions(tiles)
    accuracy = float((pred == y).mean())
    cnn_accuracy = float((cnn == y).mean())
    recall = float(pred[y == 1].mean()) if (y == 1).any() else None
    specificity = float(1 - pred[y == 0].mean()) if (y == 0).any() else None
    warning = None
    if cnn_accuracy <= accuracy:
        relation = "equals" if cnn_accuracy == accuracy else "falls short of"
        warning = (f"the CNN's {cnn_accuracy:.1%} {relation} the dNBR rule's {accuracy:.1%} on the {split} split "
                   f"(n={len(y)}; rule: dNBR >= {UNBURNED_DNBR} or a hot pixel); "
                   f"the model adds nothing over the physics")
    return PhysicsRuleResult(n=len(y), with_indices=with_indices, accuracy=accuracy, recall=recall,
                             specificity=specificity, cnn_accuracy=cnn_accuracy, warning=warning)
