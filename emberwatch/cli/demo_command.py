"""``emberwatch demo``: the whole loop on the embedded defaults (calls ``operations.run_demo``)."""

from __future__ import annotations

import typer

from emberwatch.cli.consoles import console, out
from emberwatch.cli.render import (
    demo_prediction_line,
    demo_progress_table,
    demo_summary_line,
    evidence_text,
    leakage_text,
    plain,
    where_to_look_table,
)
from emberwatch.common.config import get_settings


def demo(
    rounds: int = typer.Option(5, help="Most rounds of simulated season to run (each --hours-per-round)."),
    hours_per_round: float = typer.Option(240.0, help="Simulated hours the CWFIS season advances per round."),
    round_timeout_s: float = typer.Option(420.0, help="Longest wait for a round's decision (seconds)."),
    sentinel2: bool = typer.Option(False, "--sentinel2", help="Also make each fire's Sentinel-2 pair (post-fire "
                                   "scene and pre-fire control) from the STAC simulator, beside Mapbox."),
) -> None:
    """Run the whole loop on the embedded defaults: stack + simulators + services, fires → tiles →
    training → candidate → shadow comparison → promotion → Discord → a prediction through Triton."""
    import asyncio

    from rich.live import Live
    from rich.panel import Panel

    from emberwatch.operations.run_demo import run_demo, where_to_look

    settings = get_settings()
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        result = asyncio.run(run_demo(
            settings, rounds=rounds, hours_per_round=hours_per_round, round_timeout_s=round_timeout_s,
            sentinel2=sentinel2,
            report=lambda msg: live.console.print(plain(msg, keep_lines=True)),
            on_progress=lambda tally: live.update(demo_progress_table(tally))))
    out.print(demo_progress_table(result.tally))
    champion, judged = result.champion, result.judged
    if champion is not None:
        out.print(Panel(evidence_text(champion), title="Champion and its evidence"))
    if judged is not None and judged is not champion:
        out.print(Panel(evidence_text(judged), title="Latest shadow comparison"))
    leakage = leakage_text(result.tally.candidates)
    if leakage:
        out.print(Panel(leakage, title="Leakage check (shortcut baselines beside the CNN)"))
    if result.prediction is not None:
        out.print(demo_prediction_line(result.prediction))
    out.print(demo_summary_line(result))
    out.print(where_to_look_table(where_to_look(result.settings)))
    out.print("The stack keeps running; stop it with: emberwatch stack down")
    if result.missing:
        for step in result.missing:
            console.print(f"[red]demo incomplete: {step}[/]")
        raise typer.Exit(1)
    out.print("demo complete: a champion serves, a later candidate was judged against it in shadow, "
              "and Triton answered")
