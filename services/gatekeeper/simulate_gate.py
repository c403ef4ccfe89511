"""The gate's operating characteristics, by simulation: how often it promotes whom, and after how many pairs.

A simulated shadow streams tiles: a label (wildfire with probability ``mix``), whether the champion
was right (recall / specificity of the champion) and whether the challenger was right. The two
models' errors are tied by a shared latent draw: with ``correlation`` rho each tile's challenger
draw reuses the champion's with probability rho (rho = 0: independent errors; high rho: the
challenger mostly errs where the champion does, as two models trained on the same data do).
A "label flip" challenger is right exactly where the champion is wrong.

The gate looks exactly as the gatekeeper makes it look (``gate_look_due``), with its alpha spent
carried from look to look, until it promotes, rejects, or reaches ``max_pairs`` (the last look).
``benchmarks/bench_gate.py`` prints the whole grid; ``tests/services/gatekeeper/test_simulate_gate.py``
guards the same properties on a seeded subset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from services.gatekeeper.core.decide_promotion import (
    GateThresholds,
    Look,
    PairedCounts,
    decide_promotion,
    gate_look_due,
)

CHAMPION_RECALL, CHAMPION_SPECIFICITY = 0.80, 0.90


@dataclass(frozen=True)
class Challenger:
    name: str
    recall: float
    specificity: float
    harmful: bool  # promoting it would be a false promotion
    flip: bool = False  # right exactly where the champion is wrong


CHALLENGERS = (
    Challenger("always wildfire", 1.0, 0.0, True),
    Challenger("always no wildfire", 0.0, 1.0, True),
    Challenger("coin flip", 0.5, 0.5, True),
    Challenger("label flip", 1 - CHAMPION_RECALL, 1 - CHAMPION_SPECIFICITY, True, flip=True),
    Challenger("same as champion", CHAMPION_RECALL, CHAMPION_SPECIFICITY, True),
    Challenger("recall -2", CHAMPION_RECALL - 0.02, CHAMPION_SPECIFICITY, True),
    Challenger("recall +4, specificity -7", CHAMPION_RECALL + 0.04, CHAMPION_SPECIFICITY - 0.07, True),
    Challenger("recall +5", CHAMPION_RECALL + 0.05, CHAMPION_SPECIFICITY, False),
)


@dataclass(frozen=True)
class Outcome:
    promoted: float      # share of runs that promoted
    rejected: float
    inconclusive: float  # rejected at the last look without a verdict
    mean_n: float        # pairs at the decision (the expected n to a decision)


def stream_cells(challenger: Challenger, n: int, mix: float, correlation: float,
                 rng: np.random.Generator) -> np.ndarray:
    """The cell index (label*4 + champion right*2 + challenger right) of ``n`` simulated tiles."""
    y = (rng.random(n) < mix).astype(np.int64)
    u = rng.random(n)
    champion_rate = np.where(y == 1, CHAMPION_RECALL, CHAMPION_SPECIFICITY)
    a = (u < champion_rate).astype(np.int64)
    if challenger.flip:
        b = 1 - a
    else:
        v = np.where(rng.random(n) < correlation, u, rng.random(n))
        b = (v < np.where(y == 1, challenger.recall, challenger.specificity)).astype(np.int64)
    return y * 4 + a * 2 + b


def run_shadow(cells: np.ndarray, thresholds: GateThresholds, check_every: int) -> tuple[str, str, int]:
    """(verdict, rule, n at the decision) of one shadow fed ``cells`` in order.

    The gatekeeper checks after every ``check_every`` new pairs (and at the last one), so only those
    points are visited; the counts there come from a running sum."""
    n_max = min(len(cells), thresholds.max_pairs)
    onehot = np.zeros((n_max, 8), dtype=np.int64)
    onehot[np.arange(n_max), cells[:n_max]] = 1
    running = np.cumsum(onehot, axis=0)
    look, last_checked, last_look_n = Look(), 0, 0
    checks = list(range(check_every, n_max, check_every)) + [n_max]
    for n in checks:
        final = n == n_max
        if not (final or gate_look_due(n, last_checked, last_look_n, thresholds, check_every)):
            last_checked = n if n - last_checked >= check_every else last_checked
            continue
        last_checked = n
        result = decide_promotion(PairedCounts.from_flat(running[n - 1]), thresholds, replace(look, final=final))
        if result.verdict != "wait":
            return result.verdict, result.rule, n
        if result.looked:
            look, last_look_n = Look(alpha_spent=result.alpha_spent), n
    return "reject", "inconclusive", n_max


def simulate(challenger: Challenger, *, n: int, mix: float, correlation: float, runs: int,
             thresholds: GateThresholds, check_every: int = 50, seed: int = 0) -> Outcome:
    rng = np.random.default_rng(seed)
    th = replace(thresholds, max_pairs=n)
    promoted = rejected = inconclusive = 0
    total_n = 0
    for _ in range(runs):
        verdict, rule, at = run_shadow(stream_cells(challenger, n, mix, correlation, rng), th, check_every)
        promoted += verdict == "promote"
        rejected += verdict == "reject"
        inconclusive += rule == "inconclusive"
        total_n += at
    return Outcome(promoted / runs, rejected / runs, inconclusive / runs, total_n / runs)
