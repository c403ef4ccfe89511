"""The promotion gate against adversarial challengers: false promotions, power and the n to a decision.

Runs the sequential gate (``services/gatekeeper/core/decide_promotion.py``, with the gatekeeper's own
look schedule and alpha spending) on simulated shadows (``services/gatekeeper/simulate_gate.py``):
every challenger x class mix (wildfire share 0.5 / 0.9 / 0.1) x shadow size (``max_pairs``) x
correlated (rho = 0.8) and independent (rho = 0) errors, against a champion with recall 0.80 and
specificity 0.90. The gate runs at its defaults, except ``max_pairs`` = the shadow size and, below
200 pairs, minimums scaled down (``min_pairs`` = n, per class max(5, n/10)) so small shadows are
tested rather than always inconclusive.

Prints one table per challenger and a summary: the worst false-promotion rate over the harmful
scenarios, the power for +5 points recall at n = 1,000 balanced, and the mean n to a decision.

Usage: ``.venv/bin/python benchmarks/bench_gate.py [RUNS] [SEED]`` (default 400 runs per cell, seed 0;
about 15 minutes on one core). Results: benchmarks/gate.md.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from services.gatekeeper.core.decide_promotion import GateThresholds  # noqa: E402
from services.gatekeeper.simulate_gate import CHALLENGERS, simulate  # noqa: E402

MIXES = (0.5, 0.9, 0.1)
SIZES = (50, 200, 1000, 5000)
CORRELATIONS = (0.8, 0.0)


def thresholds_for(n: int) -> GateThresholds:
    base = GateThresholds()
    if n >= base.min_pairs:
        return base
    per_class = max(5, n // 10)
    return replace(base, min_pairs=n, min_wildfire_pairs=per_class, min_fire_free_pairs=per_class)


def main(runs: int = 400, seed: int = 0) -> None:
    console = Console(width=170)
    started = time.perf_counter()
    worst = (0.0, "")
    null_worst = (0.0, "")
    power = {}
    for i, challenger in enumerate(CHALLENGERS):
        table = Table(title=f"{challenger.name} (recall {challenger.recall:.2f}, specificity "
                            f"{challenger.specificity:.2f}; {'harmful' if challenger.harmful else 'better'})")
        table.add_column("rho")
        table.add_column("wildfire share")
        for n in SIZES:
            table.add_column(f"n={n}: promoted", justify="right")
            table.add_column("mean n", justify="right")
        for rho in CORRELATIONS:
            for mix in MIXES:
                row = [f"{rho:.1f}", f"{mix:.1f}"]
                for n in SIZES:
                    o = simulate(challenger, n=n, mix=mix, correlation=rho, runs=runs,
                                 thresholds=thresholds_for(n), seed=seed + 1000 * i + n)
                    row += [f"{o.promoted:.1%}", f"{o.mean_n:.0f}"]
                    if challenger.name == "same as champion":
                        null_worst = max(null_worst, (o.promoted, f"rho {rho}, share {mix}, n {n}"))
                    elif challenger.harmful and o.promoted > worst[0]:
                        worst = (o.promoted, f"{challenger.name}, rho {rho}, share {mix}, n {n}")
                    if not challenger.harmful:
                        power[(rho, mix, n)] = o
                table.add_row(*row)
        console.print(table)
    summary = Table(title=f"summary ({runs} runs per cell, seed {seed}, {time.perf_counter() - started:.0f} s)")
    summary.add_column("property")
    summary.add_column("value", justify="right")
    summary.add_column("goal", justify="right")
    summary.add_row("worst false promotion, harmful challengers", f"{worst[0]:.1%} ({worst[1]})", "<= 5%")
    summary.add_row("worst promotion of a challenger equal to the champion", f"{null_worst[0]:.1%} ({null_worst[1]})",
                    "<= alpha (5%)")
    for rho in CORRELATIONS:
        o = power[(rho, 0.5, 1000)]
        summary.add_row(f"power, +5 recall, n=1000 balanced, rho {rho}", f"{o.promoted:.1%} (mean n {o.mean_n:.0f})",
                        ">= 80%" if rho > 0 else "")
    console.print(summary)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
