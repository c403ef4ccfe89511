"""The gatekeeper's own records: a challenger in shadow and its paired outcomes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from services.gatekeeper.decide_promotion import PairedCounts

THRESHOLD = 0.5


@dataclass
class Pair:
    tile_id: str
    label: int                 # 1 = wildfire
    champion_wildfire: float   # champion's P(wildfire)
    challenger_wildfire: float
    source: str                # "test" or "live"


@dataclass
class Shadow:
    """One challenger under comparison with one champion."""

    model_name: str
    candidate_version: str
    champion_version: str
    run_id: str
    pairs: list[Pair] = field(default_factory=list)
    last_checked_n: int = 0    # pairs when the gate was last checked
    last_look_n: int = 0       # pairs at the last real look (one that spent alpha); 0 before the first
    alpha_spent: float = 0.0   # alpha spent by the looks so far (passed back to the gate as Look)
    started_at: float = field(default_factory=time.time)  # Unix time the shadow began
    warnings: list[str] = field(default_factory=list)  # the candidate's (e.g. its leakage check)

    def drop(self, tile_id: str) -> bool:
        """Take a tile's pair out (its label can no longer be trusted). True if there was one."""
        before = len(self.pairs)
        self.pairs = [p for p in self.pairs if p.tile_id != tile_id]
        return len(self.pairs) != before

    def relabel(self, tile_id: str, label: int) -> bool:
        """Give a tile's pair its corrected label. True if a pair changed."""
        changed = False
        for p in self.pairs:
            if p.tile_id == tile_id and p.label != label:
                p.label, changed = label, True
        return changed

    def add(self, pair: Pair) -> bool:
        """Add a pair once per tile (a redelivered tile changes nothing). True if new."""
        if any(p.tile_id == pair.tile_id for p in self.pairs):
            return False
        self.pairs.append(pair)
        return True

    def counts(self) -> PairedCounts:
        y = np.array([p.label for p in self.pairs], dtype=np.int64)
        a = np.array([p.champion_wildfire >= THRESHOLD for p in self.pairs], dtype=np.int64)
        b = np.array([p.challenger_wildfire >= THRESHOLD for p in self.pairs], dtype=np.int64)
        return PairedCounts.from_arrays(y, a, b)

    def n_by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pairs:
            out[p.source] = out.get(p.source, 0) + 1
        return out
