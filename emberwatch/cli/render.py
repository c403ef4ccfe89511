"""Rendering for the ``emberwatch`` commands: pure functions from data to rich renderables.
Nothing here does I/O; the commands print what these return.

Text that came from an event, MLflow, Triton or a person is never read as rich markup (a model name
``[link=https://evil.example]...`` or ``[bold red]`` stays as those characters) nor reaches the
terminal with its control characters (ESC sequences: colours, OSC 8 hyperlinks, clearing the
screen): it goes into ``rich.text.Text`` objects through ``plain``, and styles are set on the Text,
not written as markup around data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from emberwatch.common.plain_text import plain_text
from emberwatch.contracts.products import MAPBOX, product_title


def plain(value: object, style: str = "", *, keep_lines: bool = False) -> Text:
    """``value`` as rich Text, shown as its characters: no markup read, control characters removed."""
    return Text(plain_text(value, keep_lines=keep_lines), style=style)


def markup_safe(value: object) -> str:
    """``value`` to put inside a markup string (``f"[red]failed:[/] {markup_safe(exc)}"``): its square
    brackets escaped, its control characters removed."""
    return escape(plain_text(value, keep_lines=True))


def fmt_metric(value: float | None) -> str:
    """A metric with three decimals, ``-`` when there is none."""
    return "-" if value is None else f"{value:.3f}"


def stack_status_table(statuses: Iterable) -> tuple[Table, bool]:
    """The ``stack status`` table of the parts (name, state, address, pid), and whether every part is up."""
    table = Table(title="Emberwatch local stack")
    for col in ("part", "state", "address", "pid"):
        table.add_column(col)
    all_up = True
    for st in statuses:
        colour = {"up": "green", "down": "red"}.get(st.state, "yellow")
        all_up &= st.state == "up"
        table.add_row(plain(st.name), plain(st.state, colour), plain(st.address), str(st.pid or "-"))
    return table, all_up


def replay_plan_table(group: str, topic: str, plan: Iterable) -> Table:
    """The partitions a rewound group will replay."""
    table = Table(title=plain(f"{group} rewound on {topic}"))
    for col in ("partition", "new offset", "end offset", "to replay"):
        table.add_column(col, justify="right")
    for p in plan:
        table.add_row(str(p.partition), str(p.start), str(p.end), str(p.count))
    return table


def demo_progress_table(tally) -> Table:
    """The demo's live tally: fires, tiles, candidates, decisions, alerts."""
    t = Table(title="Emberwatch demo", show_header=False)
    t.add_row("fires observed", plain(f"{len(tally.fires)} ({dict(tally.fire_events)})"))
    t.add_row("tiles", plain(f"{len(tally.tile_ids)} ({dict(tally.tiles)})"))
    t.add_row("candidates", plain(", ".join(c.version for c in tally.candidates) or "-"))
    t.add_row("decisions", plain(", ".join(f"v{d.candidate_version}:{d.decision}" for d in tally.decisions) or "-"))
    t.add_row("alerts", str(len(tally.alerts)))
    return t


def evidence_text(decision) -> Text:
    """A decision and its shadow evidence: paired n, discordant counts, p-value, each metric's Δ and CI."""
    ev = decision.evidence
    lines = [(f"version {decision.candidate_version}: {decision.decision} "
              f"(champion then: {decision.champion_version or 'none'})"),
             f"reason: {decision.reason}",
             (f"test tiles n={ev.n} (wildfire {ev.n_wildfire}, fire-free {ev.n - ev.n_wildfire})"
              if ev.rule == "floor" else
              f"paired samples n={ev.n} (wildfire {ev.n_wildfire}, fire-free {ev.n - ev.n_wildfire}); discordant: "
              f"champion-only {ev.champion_only_correct}, challenger-only {ev.challenger_only_correct}; "
              f"p-value={ev.p_value}")]
    if ev.rule:
        lines.append(f"rule: {ev.rule}" + (f" (alpha at this look {ev.alpha:.3g})" if ev.alpha else "")
                     + (f"; method: {ev.method}" if ev.method else ""))
    for d in ev.deltas:
        if d.delta is None:  # one model's rate (the floor): its interval, no difference
            ci = "" if d.ci_low is None else f" ({d.confidence * 100:.3g}% CI [{d.ci_low:.3f}, {d.ci_high:.3f}])"
            lines.append(f"  {d.metric}: {d.challenger:.3f}{ci}")
            continue
        ci = "" if d.ci_low is None else f", {d.confidence * 100:.3g}% CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
        lines.append(f"  {d.metric}: {d.challenger:.3f} (Δ {d.delta:+.3f}{ci})")
    lines += [f"warning: {w}" for w in getattr(decision, "warnings", None) or []]
    return Text("\n").join(plain(line) for line in lines)


def leakage_text(candidates: Iterable) -> Text:
    """Each candidate's leakage check: the CNN's accuracy beside the shortcut baselines', and any warning."""
    lines = []
    for c in candidates:
        lk = getattr(c, "leakage", None)
        if lk is None:
            continue
        lines.append(f"v{c.version}: CNN {fmt_metric(lk.cnn_accuracy)}, location only "
                     f"{fmt_metric(lk.location_accuracy)}, hand statistics {fmt_metric(lk.statistics_accuracy)} "
                     f"({lk.split}, n={lk.n}) — " + (f"WARNING: {lk.warning}" if lk.warning else
                                                     f"no shortcut within {lk.margin:.0%}"))
    return Text("\n").join(plain(line) for line in lines)


def demo_prediction_line(p) -> Text:
    return plain(f"prediction through Triton: {p.label} {p.probabilities} (model version {p.model_version})")


def demo_summary_line(result) -> Text:
    """Discord posts, duplicate events, backbone weights and timings of a demo run."""
    tally = result.tally
    backbones = sorted({c.backbone_weights for c in tally.candidates if c.backbone_weights})
    return plain(f"Discord posts: {result.discord_posts}; duplicate events seen: {tally.duplicate_events}; "
                 f"backbone: {', '.join(backbones) or '-'}; took {result.seconds:.0f}s"
                 + (f" ({result.seconds_to_goal:.0f}s to the shadow decision)" if result.seconds_to_goal else ""))


def where_to_look_table(places: Mapping[str, str]) -> Table:
    look = Table(title="Where to look", show_header=False)
    for k, v in places.items():
        look.add_row(plain(k), plain(v))
    return look


MODELS_COLUMNS = ("version", "product", "aliases", "created", "val_accuracy", "val_recall", "test_recall",
                  "shadow n", "in Triton", "backbone", "leakage", "run")


def leakage_cell(metrics: Mapping[str, float]) -> Text:
    """The leakage check at a glance: WARN (a shortcut baseline came close), ok, or - (not run)."""
    if "leakage_warning" not in metrics:
        return Text("-")
    return Text("WARN", style="bold red") if metrics["leakage_warning"] else Text("ok")


def in_triton(version: str, triton) -> str:
    """Whether Triton has a version loaded: loaded, -, ? (Triton did not answer) or n/a (not asked)."""
    if triton is None:
        return "n/a"
    return "?" if triton.error else ("loaded" if version in triton.heads_ready else "-")


def models_table(model_name: str, rows: Iterable, triton, product: str = MAPBOX) -> Table:
    """One model line's registered versions with the product it sees, aliases, metrics, shadow n and
    whether Triton has them loaded (``triton`` None: the line's heads were not asked for)."""
    table = Table(title=plain(f"{model_name} in MLflow: sees {product_title(product)}"))
    for col in MODELS_COLUMNS:
        table.add_column(col)
    for r in rows:
        style = "bold green" if "champion" in r.aliases else ""
        gate_n = r.metrics.get("gate_n")
        table.add_row(plain(r.version, style), plain(product), plain(",".join(r.aliases)),
                      r.created.strftime("%Y-%m-%d %H:%M"), fmt_metric(r.metrics.get("val_accuracy")),
                      fmt_metric(r.metrics.get("val_recall")), fmt_metric(r.metrics.get("test_recall")),
                      "-" if gate_n is None else str(int(gate_n)), in_triton(r.version, triton),
                      plain(r.backbone or "-"),
                      leakage_cell(r.metrics), plain((r.run_id or "")[:8]))
    return table


def triton_summary(triton) -> Text:
    """One line on what Triton serves (for a Triton that answered)."""
    return plain(f"Triton at {triton.url}: {triton.public_model} "
                 f"{'ready' if triton.public_ready else 'NOT ready'}, backbone "
                 f"{'ready' if triton.backbone_ready else 'not loaded'}, head versions loaded: "
                 f"{', '.join(triton.heads_ready) or 'none'}")


def prediction_table(image_name: str, result) -> Table:
    """Each class's probability; the predicted one in bold."""
    table = Table(title=plain(f"{image_name} — model version {result.model_version} ({result.protocol})"))
    table.add_column("class")
    table.add_column("probability", justify="right")
    for label, p in result.probabilities.items():
        style = "bold" if label == result.label else ""
        table.add_row(plain(label, style), f"{p:.4f}")
    return table


def settings_table(rows: Iterable[Iterable[str]]) -> Table:
    """Every setting: variable, default, meaning."""
    table = Table(title="Emberwatch settings (EMBERWATCH_*)")
    for col in ("variable", "default", "meaning"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(plain(cell) for cell in row))
    return table
