"""The promotion gate: a pure function from the eight paired cells to a verdict with its evidence.

Champion and challenger scored the same tiles. Each tile is one *pair*: its label and whether each
model was right, so everything the gate knows is eight counts (label x champion right x challenger
right). Per class that is a paired 2x2 table, and the two per-class rates are the ones people care
about: **wildfire recall** (missed fires) and **specificity** (false alarms, i.e. Discord posts).
Accuracy is not used: it moves with the class mix, so a skewed stream can make an always-"wildfire"
model look better.

The rules, in order (``GateThresholds`` holds every knob):

1. **Enough of both classes**: at least ``min_pairs`` pairs, ``min_wildfire_pairs`` wildfire and
   ``min_fire_free_pairs`` fire-free ones; otherwise ``wait`` (keep shadowing) - or, at the last
   look, reject as inconclusive.
2. **Sequential looks with alpha spending**: the gate may look many times as pairs arrive. Each
   look gets a share ``alpha_k`` of the total one-sided ``alpha``, from a Lan-DeMets spending function
   of the information fraction ``t = n / max_pairs`` (O'Brien-Fleming-type by default: early looks
   spend almost nothing, the last one nearly the nominal level). Look k may use
   ``alpha_k = spend(t_k) - spend(t_{k-1})``; by the union bound the probability of a false promotion
   over all looks is at most ``sum alpha_k = spend(t_last) <= alpha``, whatever the correlation between
   looks and however irregular they are (look times depend only on n, never on the outcomes). The
   gatekeeper keeps ``alpha_spent`` with the shadow and passes it back as ``Look``; it looks when the
   pairs have grown by ``look_growth`` (1.5x) since the last look (``gate_look_due``), so a 5,000-pair
   shadow has about ten looks, and the last one still uses most of alpha.
3. **Promote** only when, at level ``alpha_k``, all of these hold (an intersection-union test, so no
   further multiplicity correction is needed):
   - wildfire recall is non-inferior: the lower bound of (challenger - champion) > ``-recall_margin``;
   - specificity is non-inferior: its lower bound > ``-specificity_margin``;
   - the pre-declared **primary metric** (``wildfire_recall`` by default, or ``specificity``) is
     superior: its lower bound > 0 **and** the exact one-sided McNemar test on that class's
     discordant pairs has ``p <= alpha_k``.
4. **Reject early** only on evidence that the challenger is worse: the upper bound on the primary
   metric's difference < 0, or on a guarded class's difference < ``-margin``.
5. Otherwise ``wait``; at the last look (``max_pairs`` or the shadow's time limit) reject as
   **inconclusive**.

**Intervals.** Each per-class difference of paired proportions gets Newcombe's hybrid score interval
(Newcombe 1998, method 10): Wilson score intervals of the two rates combined with the phi correlation
of the paired table. It is closed form, stays inside [-1, 1], and keeps its coverage when a cell is
zero or the rates are at 0 or 1, where the percentile bootstrap collapses to a point (4 vs 0
discordant pairs gave a bootstrap interval of [0, x] and a promotion; here it does not promote, and
the exact McNemar p of 0.0625 is above alpha anyway). The bounds are one-sided at ``alpha_k`` each.

**The first model** has no champion to compare with: it must clear an absolute floor on the lower
Wilson bound (at ``1 - alpha``) of both its recall and its specificity, measured on at least
``floor_min_per_class`` test tiles of each class (``passes_floor``).

``benchmarks/bench_gate.py`` simulates the gate against adversarial challengers; the results and the
reasoning are in ``benchmarks/gate.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy.stats import binom, norm

Verdict = Literal["promote", "reject", "wait"]
Metric = Literal["wildfire_recall", "specificity"]
Spending = Literal["obrien_fleming", "pocock"]
METHOD = "Newcombe hybrid score interval (method 10) per class; exact one-sided McNemar on the primary class"


@dataclass(frozen=True)
class GateThresholds:
    """Every knob of the gate (GatekeeperSettings fills it from EMBERWATCH_GATEKEEPER_*)."""

    min_pairs: int = 200
    min_wildfire_pairs: int = 50
    min_fire_free_pairs: int = 50
    max_pairs: int = 5000
    alpha: float = 0.05  # one-sided, over all looks
    primary_metric: Metric = "wildfire_recall"
    recall_margin: float = 0.02
    specificity_margin: float = 0.03
    spending: Spending = "obrien_fleming"
    look_growth: float = 1.5  # a new look once the pairs have grown by this factor since the last one

    def as_dict(self) -> dict[str, float | str]:
        return {k: (v if isinstance(v, str) else float(v)) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Look:
    """Where a shadow stands in its sequential plan."""

    alpha_spent: float = 0.0  # spend(t) at the shadow's previous look (0 before the first)
    final: bool = False       # the last look (max pairs or the time limit reached): decide now


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
        return cls.from_flat(np.bincount(y * 4 + a * 2 + b, minlength=8))

    @classmethod
    def from_flat(cls, flat) -> PairedCounts:
        f = [int(x) for x in flat]
        if len(f) != 8 or min(f) < 0:
            raise ValueError("eight non-negative cell counts expected")
        return cls(cells=(((f[0], f[1]), (f[2], f[3])), ((f[4], f[5]), (f[6], f[7]))))

    def flat(self) -> np.ndarray:
        return np.array([self.cells[y][a][b] for y in (0, 1) for a in (0, 1) for b in (0, 1)])

    def of_class(self, label: int) -> ClassTable:
        (neither, challenger_only), (champion_only, both) = self.cells[label]
        return ClassTable(both=both, challenger_only=challenger_only, champion_only=champion_only,
                          neither=neither)

    @property
    def n(self) -> int:
        return int(self.flat().sum())

    @property
    def n_wildfire(self) -> int:
        return int(self.flat()[4:].sum())

    @property
    def n_fire_free(self) -> int:
        return int(self.flat()[:4].sum())


@dataclass(frozen=True)
class ClassTable:
    """One class's paired 2x2 table: who was right on its tiles."""

    both: int
    challenger_only: int
    champion_only: int
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.challenger_only + self.champion_only + self.neither

    def rates(self) -> tuple[float | None, float | None]:
        """(champion's, challenger's) rate of being right on this class."""
        if self.n == 0:
            return None, None
        return (self.both + self.champion_only) / self.n, (self.both + self.challenger_only) / self.n


@dataclass(frozen=True)
class Interval:
    estimate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ClassComparison:
    """Challenger minus champion on one class's rate, with its bounds at the look's level."""

    metric: Metric
    n: int
    champion: float | None
    challenger: float | None
    delta: Interval
    p_superior: float | None  # exact one-sided McNemar p (challenger better), on this class's discordant pairs


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    rule: str  # which rule decided: minimum, superior, worse, inconclusive, sequential
    reason: str
    n: int
    n_wildfire: int
    n_fire_free: int
    both_correct: int
    champion_only_correct: int
    challenger_only_correct: int
    both_wrong: int
    recall: ClassComparison
    specificity: ClassComparison
    alpha_look: float    # the share of alpha this look used (0 when it was not a look)
    alpha_spent: float   # spend(t) after this look: pass it back as Look.alpha_spent next time
    information: float   # t = n / max_pairs (1 at the last look)
    method: str = METHOD
    thresholds: dict[str, float | str] = field(default_factory=dict)

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"

    @property
    def primary(self) -> ClassComparison:
        return self.recall if self.thresholds.get("primary_metric") != "specificity" else self.specificity

    @property
    def p_value(self) -> float | None:
        return self.primary.p_superior

    @property
    def looked(self) -> bool:
        return self.alpha_look > 0


# --- statistics ----------------------------------------------------------------------------------
def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (z standard errors each side)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired(t: ClassTable, z: float) -> Interval:
    """Newcombe's hybrid score interval (method 10) for challenger rate - champion rate, paired.

    ``z`` is the standard normal quantile of each one-sided bound (1.96 for a 95% two-sided
    interval). Zero cells are fine: phi is taken as 0 when a margin of the table is empty. For
    Newcombe's worked example (36, 12, 2, 0) the 95% interval is [0.057, 0.340].
    """
    n = t.n
    if n == 0:
        return Interval(None, None, None)
    a, b, c, d = t.both, t.challenger_only, t.champion_only, t.neither
    p1, p2 = (a + b) / n, (a + c) / n  # challenger, champion
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    # Newcombe's phi with his adjustment: a positive association is shrunk by n/2 (never below 0),
    # which only widens the interval; a negative one is kept as is.
    cross = a * d - b * c
    cross = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = cross / math.sqrt(denominator) if denominator > 0 else 0.0
    theta = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return Interval(theta, max(-1.0, theta - delta), min(1.0, theta + epsilon))


def mcnemar_superior(challenger_only: int, champion_only: int) -> float:
    """Exact one-sided McNemar p-value that the challenger is better: P(X >= b), X ~ Bin(b + c, 1/2)."""
    discordant = challenger_only + champion_only
    if discordant == 0:
        return 1.0
    return float(binom.sf(challenger_only - 1, discordant, 0.5))


def spent(alpha: float, information: float, spending: Spending = "obrien_fleming") -> float:
    """Lan-DeMets spending function: the alpha that may be spent by information fraction t."""
    t = min(max(information, 0.0), 1.0)
    if t <= 0:
        return 0.0
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    return float(2 * (1 - norm.cdf(norm.ppf(1 - alpha / 2) / math.sqrt(t))))


# --- the gate ------------------------------------------------------------------------------------
def gate_look_due(n: int, last_checked_n: int, last_look_n: int, thresholds: GateThresholds,
                  check_every: int) -> bool:
    """Whether the gate should look at ``n`` pairs. Until a first real look (enough pairs of both
    classes) it is checked every ``check_every`` new pairs (a check below the minimums spends no
    alpha); after that, once the pairs have grown by ``look_growth`` or reached ``max_pairs``. Looks
    depend only on n, never on the outcomes, so the spending argument holds."""
    if n - last_checked_n < check_every and n < thresholds.max_pairs:
        return False
    if last_look_n == 0:
        return True
    return n >= last_look_n * thresholds.look_growth or n >= thresholds.max_pairs


def _compare(metric: Metric, table: ClassTable, z: float) -> ClassComparison:
    champion, challenger = table.rates()
    return ClassComparison(metric=metric, n=table.n, champion=champion, challenger=challenger,
                           delta=newcombe_paired(table, z),
                           p_superior=mcnemar_superior(table.challenger_only, table.champion_only))


def _fmt(c: ClassComparison) -> str:
    name = "recall" if c.metric == "wildfire_recall" else "specificity"
    d = c.delta
    if d.estimate is None:
        return f"{name}: no tiles"
    return f"{name} {d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}] (n={c.n})"


def decide_promotion(counts: PairedCounts, thresholds: GateThresholds, look: Look = Look()) -> GateResult:
    """The gate: promote, reject, or wait for more shadow pairs. Pure: same cells, same verdict."""
    th = thresholds
    flat = counts.flat()
    n = counts.n
    information = 1.0 if look.final else min(1.0, n / th.max_pairs)
    enough = (n >= th.min_pairs and counts.n_wildfire >= th.min_wildfire_pairs
              and counts.n_fire_free >= th.min_fire_free_pairs)
    spend_now = spent(th.alpha, information, th.spending) if enough else look.alpha_spent
    alpha_look = max(0.0, spend_now - look.alpha_spent) if enough else 0.0
    z = float(norm.ppf(1 - alpha_look)) if alpha_look > 0 else float(norm.ppf(1 - th.alpha))
    recall = _compare("wildfire_recall", counts.of_class(1), z)
    specificity = _compare("specificity", counts.of_class(0), z)

    def result(verdict: Verdict, rule: str, reason: str) -> GateResult:
        return GateResult(
            verdict=verdict, rule=rule, reason=reason, n=n, n_wildfire=counts.n_wildfire,
            n_fire_free=counts.n_fire_free, both_correct=int(flat[[3, 7]].sum()),
            champion_only_correct=int(flat[[2, 6]].sum()), challenger_only_correct=int(flat[[1, 5]].sum()),
            both_wrong=int(flat[[0, 4]].sum()), recall=recall, specificity=specificity,
            alpha_look=alpha_look, alpha_spent=spend_now if alpha_look > 0 else look.alpha_spent,
            information=information, thresholds=th.as_dict())

    evidence = f"{_fmt(recall)}; {_fmt(specificity)}"
    if not enough:
        need = (f"{n}/{th.min_pairs} pairs, {counts.n_wildfire}/{th.min_wildfire_pairs} wildfire, "
                f"{counts.n_fire_free}/{th.min_fire_free_pairs} fire-free")
        if look.final:
            return result("reject", "inconclusive", f"inconclusive: the shadow ended without enough pairs ({need})")
        return result("wait", "minimum", f"not enough evidence yet: {need}")
    if alpha_look <= 0:  # alpha for this fraction already spent at an earlier look (no new pairs)
        return result("wait", "sequential", f"no new information since the last look ({evidence})")

    primary = recall if th.primary_metric == "wildfire_recall" else specificity
    guarded = ((recall, th.recall_margin), (specificity, th.specificity_margin))
    level = f"one-sided alpha {alpha_look:.3g} at this look"
    shown_worse = [f"{_fmt(c)} is below -{m:.3f} even at its upper bound"
                   for c, m in guarded if c.delta.high is not None and c.delta.high < -m]
    if primary.delta.high is not None and primary.delta.high < 0 and not shown_worse:
        shown_worse.append(f"the primary metric is worse: {_fmt(primary)}")
    if shown_worse:
        return result("reject", "worse", "challenger is worse: " + "; ".join(shown_worse) + f" ({level})")

    non_inferior = all(c.delta.low is not None and c.delta.low > -m for c, m in guarded)
    superior = (primary.delta.low is not None and primary.delta.low > 0
                and primary.p_superior is not None and primary.p_superior <= alpha_look)
    if non_inferior and superior:
        return result("promote", "superior", f"challenger is better on {th.primary_metric} "
                      f"(McNemar p={primary.p_superior:.3g}) and not worse on either class: {evidence} ({level})")
    if look.final:
        return result("reject", "inconclusive", f"inconclusive after {n} pairs: {evidence} ({level}; "
                      f"needs {th.primary_metric} better and both classes within their margins: recall "
                      f"-{th.recall_margin:.3f}, specificity -{th.specificity_margin:.3f})")
    return result("wait", "sequential", f"inconclusive so far, shadow continues: {evidence} ({level})")


@dataclass(frozen=True)
class FloorResult:
    ok: bool
    reason: str
    recall: Interval
    specificity: Interval
    n_wildfire: int
    n_fire_free: int


def passes_floor(labels, predictions, *, floor_recall: float, floor_specificity: float,
                 min_per_class: int, alpha: float = 0.05) -> FloorResult:
    """The absolute floor a first model (no champion yet) must clear on its test split: the lower
    Wilson bound (one-sided, ``1 - alpha``) of recall and of specificity, with ``min_per_class``
    test tiles of each class."""
    y = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(predictions, dtype=np.int64)
    z = float(norm.ppf(1 - alpha))
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    tp, tn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 0)).sum())

    def bound(k: int, m: int) -> Interval:
        if m == 0:
            return Interval(None, None, None)
        lo, hi = wilson(k, m, z)
        return Interval(k / m, lo, hi)

    recall, specificity = bound(tp, pos), bound(tn, neg)

    def out(ok: bool, reason: str) -> FloorResult:
        return FloorResult(ok, reason, recall, specificity, pos, neg)

    if pos < min_per_class or neg < min_per_class:
        return out(False, f"too few test tiles to trust a floor: {pos} wildfire and {neg} fire-free, "
                          f"{min_per_class} of each needed")
    for name, got, floor in (("recall", recall, floor_recall), ("specificity", specificity, floor_specificity)):
        if got.low < floor:
            return out(False, f"test {name} {got.estimate:.3f} has a lower bound {got.low:.3f} "
                              f"below the floor {floor:.3f}")
    return out(True, f"test recall {recall.estimate:.3f} (lower bound {recall.low:.3f}, n={pos}) and "
                     f"specificity {specificity.estimate:.3f} (lower bound {specificity.low:.3f}, n={neg}) "
                     "clear the floor")
