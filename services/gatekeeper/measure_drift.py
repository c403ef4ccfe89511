"""Drift of the predicted P(wildfire) against a reference: the population stability index (PSI).

Both distributions are counted in ten bins 0.1 wide over [0, 1]. ``PSI = sum((a - e) * ln(a / e))``
over the bins, where ``e`` and ``a`` are the reference and live fractions; an empty bin gets a small
``epsilon`` fraction so the logarithm stays finite. Rule of thumb: < 0.1 stable, 0.1-0.2 moderate,
> 0.2 a significant shift (the drift alert's threshold).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

N_BINS = 10
EDGES = tuple(round(i / N_BINS, 1) for i in range(N_BINS + 1))  # 0.0, 0.1, ..., 1.0
EPSILON = 1e-4


def bin_counts(scores: Iterable[float]) -> list[int]:
    """How many scores fall in each 0.1-wide bin of [0, 1] (1.0 belongs to the last bin)."""
    values = np.clip(np.asarray(list(scores), dtype=np.float64), 0.0, 1.0)
    idx = np.minimum((values * N_BINS).astype(np.int64), N_BINS - 1)
    return np.bincount(idx, minlength=N_BINS).astype(int).tolist()


def psi(reference: Sequence[float], live: Sequence[float], *, epsilon: float = EPSILON) -> float:
    """Population stability index between two histograms given as counts per bin (same bins)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(live, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError(f"histograms must have the same bins, got {ref.shape} and {cur.shape}")
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("bin counts cannot be negative")
    if ref.sum() == 0 or cur.sum() == 0:
        raise ValueError("an empty distribution has no PSI")
    e = np.maximum(ref / ref.sum(), epsilon)
    a = np.maximum(cur / cur.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))
