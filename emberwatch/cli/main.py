"""``emberwatch``: the operator's command line (typer + rich)."""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from emberwatch.common.config import get_settings

app = typer.Typer(
    help="Emberwatch: a continuously learning wildfire detector over Kafka.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
stack_app = typer.Typer(help="Manage the local stack (Kafka, MLflow, Triton, Prometheus).",
                        no_args_is_help=True)
app.add_typer(stack_app, name="stack")
console = Console(stderr=True)
out = Console()


class ServiceName(StrEnum):
    ingestor = "ingestor"
    tiler = "tiler"
    trainer = "trainer"
    gatekeeper = "gatekeeper"
    notifier = "notifier"


class SimulatorName(StrEnum):
    cwfis = "cwfis"
    mapbox = "mapbox"
    discord = "discord"


def _event(name: str, message: str) -> None:
    console.print(f"[bold]{name:<11}[/] {message}")


@stack_app.command("up")
def stack_up() -> None:
    """Start the stack's parts on 127.0.0.1 (idempotent: parts already up are left alone)."""
    from emberwatch.stack import manage

    settings = get_settings()
    try:
        with console.status("starting the local stack…"):
            manage.up(settings, on_event=_event)
    except manage.StackError as exc:
        console.print(f"[red]stack up failed:[/] {exc}")
        raise typer.Exit(1) from None
    _print_status()


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started (and nothing else)."""
    from emberwatch.stack import manage

    stopped = manage.down(get_settings(), on_event=_event)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status() -> None:
    """Show each part with its address, PID and health. Exit code 1 if a part is down."""
    if not _print_status():
        raise typer.Exit(1)


def _print_status() -> bool:
    from emberwatch.stack import manage

    table = Table(title="Emberwatch local stack")
    for col in ("part", "state", "address", "pid"):
        table.add_column(col)
    all_up = True
    for st in manage.status(get_settings()):
        colour = {"up": "green", "down": "red"}.get(st.state, "yellow")
        all_up &= st.state == "up"
        table.add_row(st.name, f"[{colour}]{st.state}[/]", st.address, str(st.pid or "-"))
    out.print(table)
    return all_up


@stack_app.command("logs")
def stack_logs(
    part: str = typer.Argument(..., help="kafka, mlflow, triton or prometheus"),
    lines: int = typer.Option(40, "--lines", "-n", help="How many lines from the end."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Print the end of one part's log."""
    from emberwatch.stack import manage

    path = manage.log_path(get_settings(), part)
    if not path.exists():
        console.print(f"no log for {part} at {path}")
        raise typer.Exit(1)
    out.print(manage.tail(path, lines), markup=False, highlight=False)
    if follow:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            try:
                while True:
                    line = fh.readline()
                    if line:
                        out.print(line.decode(errors="replace").rstrip(), markup=False, highlight=False)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                pass


@app.command("run")
def run_service(service: ServiceName = typer.Argument(..., help="The service to run.")) -> None:
    """Run one service in the foreground (what each compose.yaml service runs)."""
    module = importlib.import_module(f"services.{service.value}.main")
    module.main()


@app.command("sim")
def run_simulator(
    name: SimulatorName = typer.Argument(..., help="The simulator to run."),
    port: int = typer.Option(0, help="Port to listen on (0 = the simulator's default)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
) -> None:
    """Run one simulator of an external service (CWFIS, Mapbox, Discord) over real HTTP."""
    module = importlib.import_module(f"simulators.{name.value}.main")
    module.main(host=host, port=port)


@app.command("replay")
def replay(
    topic: str = typer.Argument(..., help="Topic to replay, e.g. fires.observed.v1"),
    group: str = typer.Option(None, "--group", "-g",
                              help="Consumer group to rewind (offsets mode). Omit with --republish."),
    from_time: datetime = typer.Option(None, "--from-time", help="Start at this time (UTC, ISO 8601)."),
    from_offset: int = typer.Option(None, "--from-offset", help="Start at this offset on every partition."),
    republish: bool = typer.Option(False, "--republish",
                                   help="Publish the records again instead of rewinding a group."),
    target: str = typer.Option(None, "--to", help="With --republish: publish to this topic instead."),
) -> None:
    """Replay a topic: rewind a consumer group's offsets (refused while the group is active), or
    re-publish its records (facts keep their ids, so consumers do not duplicate work)."""
    import asyncio

    from rich.progress import Progress

    from emberwatch.operations.replay_topic import ReplayError, Start, republish as do_republish
    from emberwatch.operations.replay_topic import rewind_group

    settings = get_settings()
    if from_time is not None and from_time.tzinfo is None:
        from_time = from_time.replace(tzinfo=UTC)
    try:
        start = Start(time=from_time, offset=from_offset)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        if republish:
            with Progress(console=console) as progress:
                task = progress.add_task(f"re-publishing {topic}", total=None)
                count = asyncio.run(do_republish(
                    settings, topic, start, target=target,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total)))
            console.print(f"re-published {count} record(s) of {topic} to {target or topic}")
            return
        if not group:
            raise typer.BadParameter("--group is required unless --republish is given")
        plan = asyncio.run(rewind_group(settings, topic, group, start))
    except ReplayError as exc:
        console.print(f"[red]replay refused:[/] {exc}")
        raise typer.Exit(2) from None
    table = Table(title=f"{group} rewound on {topic}")
    for col in ("partition", "new offset", "end offset", "to replay"):
        table.add_column(col, justify="right")
    for p in plan:
        table.add_row(str(p.partition), str(p.start), str(p.end), str(p.count))
    out.print(table)


@app.command("demo")
def demo(
    rounds: int = typer.Option(3, help="Most rounds of simulated season to run."),
    hours_per_round: float = typer.Option(240.0, help="Simulated hours the CWFIS season advances per round."),
    round_timeout_s: float = typer.Option(420.0, help="Longest wait for a round's decision (seconds)."),
) -> None:
    """Run the whole loop on the embedded defaults: stack + simulators + services, fires → tiles →
    training → candidate → shadow comparison → promotion → Discord → a prediction through Triton."""
    import asyncio

    from rich.live import Live
    from rich.panel import Panel

    from emberwatch.operations.run_demo import run_demo, where_to_look

    def progress_table(tally) -> Table:
        t = Table(title="Emberwatch demo", show_header=False)
        t.add_row("fires observed", f"{len(tally.fires)} ({dict(tally.fire_events)})")
        t.add_row("tiles", f"{len(tally.tile_ids)} ({dict(tally.tiles)})")
        t.add_row("candidates", ", ".join(c.version for c in tally.candidates) or "-")
        t.add_row("decisions", ", ".join(f"v{d.candidate_version}:{d.decision}" for d in tally.decisions) or "-")
        t.add_row("alerts", str(len(tally.alerts)))
        return t

    settings = get_settings()
    with Live(console=console, refresh_per_second=2, transient=True) as live:
        result = asyncio.run(run_demo(
            settings, rounds=rounds, hours_per_round=hours_per_round, round_timeout_s=round_timeout_s,
            report=lambda msg: live.console.print(msg),
            on_progress=lambda tally: live.update(progress_table(tally))))
    tally = result.tally
    out.print(progress_table(tally))
    champion, judged = result.champion, result.judged
    if champion is not None:
        out.print(Panel(_evidence_text(champion), title="Champion and its evidence"))
    if judged is not None and judged is not champion:
        out.print(Panel(_evidence_text(judged), title="Latest shadow comparison"))
    if result.prediction is not None:
        p = result.prediction
        out.print(f"prediction through Triton: {p.label} {p.probabilities} (model version {p.model_version})")
    backbones = sorted({c.backbone_weights for c in tally.candidates if c.backbone_weights})
    out.print(f"Discord posts: {result.discord_posts}; duplicate events seen: {tally.duplicate_events}; "
              f"backbone: {', '.join(backbones) or '-'}; took {result.seconds:.0f}s"
              + (f" ({result.seconds_to_goal:.0f}s to the shadow decision)" if result.seconds_to_goal else ""))
    look = Table(title="Where to look", show_header=False)
    for k, v in where_to_look(result.settings).items():
        look.add_row(k, v)
    out.print(look)
    out.print("The stack keeps running; stop it with: emberwatch stack down")
    if result.missing:
        for step in result.missing:
            console.print(f"[red]demo incomplete: {step}[/]")
        raise typer.Exit(1)
    out.print("demo complete: a champion serves, a later candidate was judged against it in shadow, "
              "and Triton answered")


def _evidence_text(decision) -> str:
    ev = decision.evidence
    lines = [f"version {decision.candidate_version}: {decision.decision} "
             f"(champion then: {decision.champion_version or 'none'})",
             f"reason: {decision.reason}",
             f"paired samples n={ev.n} (wildfire {ev.n_wildfire}); discordant: champion-only "
             f"{ev.champion_only_correct}, challenger-only {ev.challenger_only_correct}; p-value={ev.p_value}"]
    for d in ev.deltas:
        delta = "-" if d.delta is None else f"{d.delta:+.3f}"
        ci = "" if d.ci_low is None else f", {d.confidence:.0%} CI [{d.ci_low:+.3f}, {d.ci_high:+.3f}]"
        lines.append(f"  {d.metric}: {d.challenger:.3f} (Δ {delta}{ci})")
    return "\n".join(lines)


@app.command("models")
def models(limit: int = typer.Option(10, help="How many recent versions to list."),
           decisions: int = typer.Option(5, help="How many of the latest decisions to show.")) -> None:
    """Show the champion and the challengers: MLflow versions, aliases, metrics, what Triton has
    loaded, and the latest decisions (from MLflow, Triton and Kafka; nothing local is read)."""
    import asyncio

    from emberwatch.ml.settings import MLSettings
    from emberwatch.operations.send_command import describe
    from emberwatch.operations.show_models import latest_decisions, registry_versions, triton_view

    settings = MLSettings()
    try:
        rows = registry_versions(settings.mlflow_tracking_uri, settings.model_name, limit)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many types when unreachable
        console.print(f"[red]MLflow at {settings.mlflow_tracking_uri} did not answer:[/] {exc}")
        raise typer.Exit(1) from None
    triton = triton_view(settings.triton_url, [r.version for r in rows])
    table = Table(title=f"{settings.model_name} in MLflow")
    for col in ("version", "aliases", "created", "val_accuracy", "val_recall", "test_recall", "shadow n",
                "in Triton", "run"):
        table.add_column(col)
    for r in rows:
        style = "bold green" if "champion" in r.aliases else ""
        loaded = "?" if triton.error else ("loaded" if r.version in triton.heads_ready else "-")
        gate_n = r.metrics.get("gate_n")
        table.add_row(f"[{style}]{r.version}[/]" if style else r.version, ",".join(r.aliases),
                      r.created.strftime("%Y-%m-%d %H:%M"), _fmt(r.metrics.get("val_accuracy")),
                      _fmt(r.metrics.get("val_recall")), _fmt(r.metrics.get("test_recall")),
                      "-" if gate_n is None else str(int(gate_n)), loaded, (r.run_id or "")[:8])
    out.print(table)
    if triton.error:
        console.print(f"[yellow]Triton at {triton.url} did not answer:[/] {triton.error}")
    else:
        out.print(f"Triton at {triton.url}: {triton.public_model} "
                  f"{'ready' if triton.public_ready else 'NOT ready'}, backbone "
                  f"{'ready' if triton.backbone_ready else 'not loaded'}, head versions loaded: "
                  f"{', '.join(triton.heads_ready) or 'none'}")
    if decisions <= 0:
        return
    try:
        latest = asyncio.run(latest_decisions(settings, settings.model_name, limit=decisions))
    except Exception as exc:  # noqa: BLE001 - the registry view stands without the decisions
        console.print(f"[yellow]decisions unavailable (Kafka at {settings.kafka_bootstrap_servers}):[/] "
                      f"{exc}")
        return
    out.print("Latest decisions:" if latest else "No decisions yet.")
    for d in latest:
        out.print(f"  {d.occurred_at.strftime('%Y-%m-%d %H:%M:%S')} {describe(d)}", markup=False,
                  highlight=False)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _command(kind: str, *, version: str | None, reason: str, wait_s: float, model: str | None) -> None:
    """Send one command to the gatekeeper, wait for its answer, print it. Exit 1 when it was refused,
    2 when it could not be sent or no answer came."""
    import asyncio

    from pydantic import ValidationError
    from rich.markup import escape

    from emberwatch.ml.settings import MLSettings
    from emberwatch.operations.send_command import (
        CommandError, cli_user, describe, model_command, send_command,
    )

    settings = MLSettings()
    try:
        command = model_command(kind, model or settings.model_name, requested_by=cli_user(), version=version,
                                reason=reason, wait_s=wait_s)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(e["msg"] for e in exc.errors())) from None
    try:
        with console.status(f"{kind}: waiting up to {wait_s:g}s for the gatekeeper's answer "
                            f"(command {command.event_id})…"):
            decision = asyncio.run(send_command(settings, command, wait_s=wait_s))
    except CommandError as exc:
        console.print(f"[red]{kind}:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"decision {decision.event_id} answers command {command.event_id}", highlight=False)
    if decision.refused:
        console.print(f"[red]{kind} refused by the gatekeeper:[/] {escape(decision.reason)}", highlight=False)
        raise typer.Exit(1)
    out.print(describe(decision), markup=False, highlight=False)


_REASON = typer.Option("", "--reason", help="Why (kept with the decision and in MLflow).")
_WAIT = typer.Option(60.0, "--wait-s", help="How long to wait for the gatekeeper's answer.")
_MODEL = typer.Option(None, "--model", help="Registered model (default: EMBERWATCH_MODEL_NAME).")


@app.command("promote")
def promote(version: str = typer.Argument(..., help="MLflow model version to serve as champion."),
            reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL) -> None:
    """Promote a version by hand: the gatekeeper validates it in Triton, then switches the champion
    without downtime (the old champion stays loaded); answered on models.decisions.v1."""
    _command("promote", version=version, reason=reason, wait_s=wait_s, model=model)


@app.command("rollback")
def rollback(reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL,
             from_version: str = typer.Option(None, "--from",
                                              help="Roll back only if this version is still the champion.")
             ) -> None:
    """Restore the previous champion at once (no downtime: both versions stay loaded)."""
    _command("rollback", version=from_version, reason=reason, wait_s=wait_s, model=model)


@app.command("approve")
def approve(version: str = typer.Argument(None, help="The challenger in shadow (default: the one there is)."),
            reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL) -> None:
    """Promote the challenger in shadow now, on the evidence so far (a person's approval)."""
    _command("approve", version=version, reason=reason, wait_s=wait_s, model=model)


@app.command("reject")
def reject(version: str = typer.Argument(None, help="The challenger in shadow (default: the one there is)."),
           reason: str = _REASON, wait_s: float = _WAIT, model: str = _MODEL) -> None:
    """End the challenger's shadow comparison: it is rejected (a person's verdict)."""
    _command("reject", version=version, reason=reason, wait_s=wait_s, model=model)


@app.command("train")
def train(
    reason: str = typer.Option("manual", help="Why (kept in the event and the MLflow run)."),
    requested_by: str = typer.Option(None, help="Who asks (default: the current user)."),
) -> None:
    """Ask the trainer to train now (publishes a training.requests.v1 command)."""
    import asyncio

    from emberwatch.operations.request_training import request_training

    event = asyncio.run(request_training(get_settings(), reason, requested_by))
    console.print(f"training requested: event {event.event_id} (reason: {reason})")


class Protocol(StrEnum):
    http = "http"
    grpc = "grpc"


@app.command("predict")
def predict(
    image: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JPEG or PNG image."),
    protocol: Protocol = typer.Option(Protocol.http, help="Talk to Triton over http or grpc."),
) -> None:
    """Ask the served champion (Triton) whether IMAGE shows a wildfire location."""
    from emberwatch.operations.predict_image import predict_file

    settings = get_settings()
    url = settings.triton_url if protocol is Protocol.http else settings.triton_grpc_url
    try:
        result = predict_file(image, url=url, protocol=protocol.value)
    except Exception as exc:  # noqa: BLE001 - tritonclient raises many types; report them plainly
        console.print(f"[red]prediction failed:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    table = Table(title=f"{image.name} — model version {result.model_version} ({result.protocol})")
    table.add_column("class")
    table.add_column("probability", justify="right")
    for label, p in result.probabilities.items():
        style = "bold" if label == result.label else ""
        table.add_row(f"[{style}]{label}[/]" if style else label, f"{p:.4f}")
    out.print(table)


@app.command("asyncapi")
def asyncapi(
    output: str = typer.Option("-", "--output", "-o", help="File to write, - for stdout."),
) -> None:
    """Print the AsyncAPI document of Emberwatch's event contracts, generated from the code."""
    from emberwatch.contracts.asyncapi import asyncapi_json

    text = asyncapi_json()
    if output == "-":
        print(text)
    else:
        with open(output, "w") as fh:
            fh.write(text + "\n")
        console.print(f"wrote {output}")


@app.command("config")
def show_config(
    markdown: bool = typer.Option(False, help="Print the Markdown table of README.md."),
    write_readme: bool = typer.Option(False, help="Rewrite the table in README.md from the code."),
) -> None:
    """List every setting: its environment variable, default and meaning (secrets hidden)."""
    from emberwatch.common import config_doc

    if write_readme:
        changed = config_doc.update_readme()
        console.print("README.md settings table " + ("updated" if changed else "already up to date"))
        return
    if markdown:
        print(config_doc.markdown_table(), end="")
        return
    table = Table(title="Emberwatch settings (EMBERWATCH_*)")
    for col in ("variable", "default", "meaning"):
        table.add_column(col)
    for row in config_doc.settings_rows():
        table.add_row(*row)
    out.print(table)


if __name__ == "__main__":
    app()
