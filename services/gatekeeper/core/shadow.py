"""A challenger in shadow and its paired outcomes: values that change only by being replaced."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from services.gatekeeper.core.decide_promotion import PairedCounts

THRESHOLD = 0.5


@dataclass(frozen=True)
class Pair:
    tile_id: str
    label: int                 # 1 = wildfire
    champion_wildfire: float   # champion's P(wildfire)
    challenger_wildfire: float
    source: str                # "test" or "live"


@dataclass(frozen=True)
class Shadow:
    """One challenger under comparison with one champion. Its list of pairs is never changed in place:
    each change builds a new shadow with a new list."""

    model_name: str
    candidate_version: str
    champion_version: str
    run_id: str
    pairs: list[Pair] = field(default_factory=list)
    last_checked_n: int = 0    # pairs when the gate was last checked
    last_look_n: int = 0       # pairs at the last real look (one that spent alpha); 0 before the first
    alpha_spent: float = 0.0   # alpha spent by the looks so far (passed back to the gate as Look)
    started_at: float | None = None  # Unix time the shadow began (the state store stamps one left unset)
    warnings: tuple[str, ...] = field(default_factory=tuple)  # the candidate's (e.g. its leakage check)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pairs", list(self.pairs))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def has(self, tile_id: str) -> bool:
        return any(p.tile_id == tile_id for p in self.pairs)

    def with_pair(self, pair: Pair) -> Shadow:
        """The shadow with ``pair`` added, once per tile (a redelivered tile changes nothing)."""
        return self if self.has(pair.tile_id) else replace(self, pairs=[*self.pairs, pair])

    def without(self, tile_id: str) -> Shadow:
        """The shadow without a tile's pair (its label can no longer be trusted)."""
        return replace(self, pairs=[p for p in self.pairs if p.tile_id != tile_id])

    def relabelled(self, tile_id: str, label: int) -> Shadow:
        """The shadow with a tile's pair counted under its corrected label."""
        return replace(self, pairs=[replace(p, label=label) if p.tile_id == tile_id else p for p in self.pairs])

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


LABEL_INDEX = {"nowildfire": 0, "wildfire": 1}  # the class order of emberwatch.ml.CLASSES (a test holds them equal)
