"""The promotion gate: a pure function from paired outcomes to a verdict with its evidence.

Champion and challenger scored the same tiles. Each tile is one *pair*: its label and whether each
model was right. The gate promotes the challenger only when

1. there is enough evidence: at least ``min_samples`` pairs and ``min_wildfire_samples`` wildfire
   tiles among them (otherwise the verdict is ``wait``: keep shadowing);
2. wildfire recall is not worse beyond the non-inferiority margin: the lower bound of the paired
   bootstrap confidence interval on (challenger recall - champion recall) is above
   ``-recall_margin``;
3. accuracy is not worse beyond its margin (same construction), so a model that calls everything a
   wildfire cannot win on recall alone;
4. the challenger is shown to be better: the exact McNemar test on the discordant pairs is
   significant (``p <= alpha``) with more challenger-only-correct than champion-only-correct pairs,
   or the recall improvement is significant on its own (its CI lies above 0).

The paired bootstrap resamples tiles (pairs), so the correlation between the two models is kept.
Because both metrics depend only on the counts of the eight (label, champion right, challenger
right) cells, resampling tiles is exactly a multinomial draw over those cells: that is how it is
computed (fast enough to simulate the gate thousands of times).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import binomtest

Verdict = Literal["promote", "reject", "wait"]


@dataclass(frozen=True)
class GateThresholds:
    """Every knob of the gate (GatekeeperSettings fills it from EMBERWATCH_GATE_*)."""

    min_samples: int = 200
    min_wildfire_samples: int = 50
    alpha: float = 0.05
    recall_margin: float = 0.01
    accuracy_margin: float = 0.02
    confidence: float = 0.95
    n_bootstrap: int = 2000
    seed: int = 0

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PairedCounts:
    """Counts of the eight cells: label x champion correct x challenger correct."""

    # cells[label][champion_correct][challenger_correct]; label 1 = wildfire
    cells: tuple[tuple[tuple[int, int], tuple[int, int]], tuple[tuple[int, int], tuple[int, int]]]

    @classmethod
    def from_arrays(cls, labels, champion_pred, challenger_pred) -> PairedCounts:
        y = np.asarray(labels, dtype=np.int64)
        a = (np.asarray(champion_pred, dtype=np.int64) == y).astype(np.int64)
        b = (np.asarray(challenger_pred, dtype=np.int64) == y).astype(np.int64)
        if not (y.shape == a.shape == b.shape):
            raise ValueError("labels and both prediction arrays must have the same length")
        flat = np.bincount(y * 4 + a * 2 + b, minlength=8)
        return cls.from_flat(flat)

    @classmethod
    def from_flat(cls, flat) -> PairedCounts:
        f = [int(x) for x in flat]
        return cls(cells=(((f[0], f[1]), (f[2], f[3])), ((f[4], f[5]), (f[6], f[7]))))

    def flat(self) -> np.ndarray:
        return np.array([self.cells[y][a][b] for y in (0, 1) for a in (0, 1) for b in (0, 1)])

    @property
    def n(self) -> int:
        return int(self.flat().sum())

    @property
    def n_wildfire(self) -> int:
        return int(self.flat()[4:].sum())


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    reason: str
    n: int
    n_wildfire: int
    both_correct: int
    champion_only_correct: int
    challenger_only_correct: int
    both_wrong: int
    p_value: float | None
    champion_recall: float | None
    challenger_recall: float | None
    champion_accuracy: float | None
    challenger_accuracy: float | None
    recall_delta: Interval
    accuracy_delta: Interval
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"


def _metrics(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Recall and accuracy of both models from cell counts (last axis = 8 cells)."""
    flat = flat.astype(np.float64)
    n = flat.sum(axis=-1)
    pos = flat[..., 4:].sum(axis=-1)
    champ_right = flat[..., [2, 3, 6, 7]].sum(axis=-1)
    chall_right = flat[..., [1, 3, 5, 7]].sum(axis=-1)
    champ_tp = flat[..., [6, 7]].sum(axis=-1)
    chall_tp = flat[..., [5, 7]].sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (champ_tp / pos, chall_tp / pos, champ_right / n, chall_right / n)


def paired_bootstrap(counts: PairedCounts, n_bootstrap: int, confidence: float,
                     rng: np.random.Generator) -> tuple[Interval, Interval]:
    """Percentile CIs of (challenger - champion) for wildfire recall and accuracy."""
    flat = counts.flat()
    n = int(flat.sum())
    r_a, r_b, acc_a, acc_b = _metrics(flat)
    if n == 0:
        return Interval(None, None, None), Interval(None, None, None)
    draws = rng.multinomial(n, flat / n, size=n_bootstrap)
    br_a, br_b, bacc_a, bacc_b = _metrics(draws)
    q = [(1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100]
    recall_d = br_b - br_a
    recall_d = recall_d[~np.isnan(recall_d)]
    if recall_d.size and not np.isnan(r_a):
        lo, hi = np.percentile(recall_d, q)
        recall = Interval(float(r_b - r_a), float(lo), float(hi))
    else:
        recall = Interval(None, None, None)
    lo, hi = np.percentile(bacc_b - bacc_a, q)
    return recall, Interval(float(acc_b - acc_a), float(lo), float(hi))


def mcnemar_exact(champion_only: int, challenger_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs."""
    discordant = champion_only + challenger_only
    if discordant == 0:
        return 1.0
    return float(binomtest(challenger_only, discordant, 0.5).pvalue)


def decide_promotion(counts: PairedCounts, thresholds: GateThresholds,
                     rng: np.random.Generator | None = None) -> GateResult:
    """The gate: promote, reject, or wait for more shadow pairs. Pure given the seed."""
    rng = rng if rng is not None else np.random.default_rng(thresholds.seed)
    flat = counts.flat()
    b_only = int(flat[[1, 5]].sum())       # champion wrong, challenger right
    a_only = int(flat[[2, 6]].sum())       # champion right, challenger wrong
    both = int(flat[[3, 7]].sum())
    neither = int(flat[[0, 4]].sum())
    r_a, r_b, acc_a, acc_b = (None if np.isnan(x) else float(x) for x in _metrics(flat))
    p_value = mcnemar_exact(a_only, b_only)
    recall, accuracy = paired_bootstrap(counts, thresholds.n_bootstrap, thresholds.confidence, rng)

    def result(verdict: Verdict, reason: str) -> GateResult:
        return GateResult(
            verdict=verdict, reason=reason, n=counts.n, n_wildfire=counts.n_wildfire,
            both_correct=both, champion_only_correct=a_only, challenger_only_correct=b_only,
            both_wrong=neither, p_value=p_value, champion_recall=r_a, challenger_recall=r_b,
            champion_accuracy=acc_a, challenger_accuracy=acc_b, recall_delta=recall,
            accuracy_delta=accuracy, thresholds=thresholds.as_dict(),
        )

    t = thresholds
    if counts.n < t.min_samples or counts.n_wildfire < t.min_wildfire_samples:
        return result("wait", f"not enough evidence yet: {counts.n}/{t.min_samples} pairs, "
                              f"{counts.n_wildfire}/{t.min_wildfire_samples} wildfire tiles")
    if recall.low is None or recall.low < -t.recall_margin:
        return result("reject", f"wildfire recall may be worse than the champion's beyond the "
                                f"{t.recall_margin:.3f} margin (delta {recall.estimate:+.3f}, "
                                f"CI low {recall.low:+.3f})")
    if accuracy.low is None or accuracy.low < -t.accuracy_margin:
        return result("reject", f"accuracy may be worse than the champion's beyond the "
                                f"{t.accuracy_margin:.3f} margin (delta {accuracy.estimate:+.3f}, "
                                f"CI low {accuracy.low:+.3f})")
    mcnemar_better = p_value <= t.alpha and b_only > a_only
    recall_better = recall.low > 0
    if not (mcnemar_better or recall_better):
        return result("reject", f"no significant improvement: McNemar p={p_value:.3g} "
                                f"({b_only} challenger-only vs {a_only} champion-only correct), "
                                f"recall delta {recall.estimate:+.3f} CI [{recall.low:+.3f}, "
                                f"{recall.high:+.3f}]")
    why = []
    if mcnemar_better:
        why.append(f"McNemar p={p_value:.3g} ({b_only} vs {a_only} discordant pairs)")
    if recall_better:
        why.append(f"recall +{recall.estimate:.3f} CI [{recall.low:+.3f}, {recall.high:+.3f}]")
    return result("promote", "challenger is better: " + "; ".join(why)
                  + f"; accuracy delta {accuracy.estimate:+.3f}")


def passes_floor(recall: float | None, accuracy: float | None, *, floor_recall: float,
                 floor_accuracy: float) -> tuple[bool, str]:
    """The absolute floor a first model (no champion yet) must clear on the test split."""
    if recall is None or accuracy is None:
        return False, "no wildfire tiles or no tiles at all to measure the floor on"
    if recall < floor_recall:
        return False, f"test recall {recall:.3f} below the floor {floor_recall:.3f}"
    if accuracy < floor_accuracy:
        return False, f"test accuracy {accuracy:.3f} below the floor {floor_accuracy:.3f}"
    return True, f"test recall {recall:.3f} and accuracy {accuracy:.3f} clear the floor"
