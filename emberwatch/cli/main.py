"""``emberwatch``: the operator's command line (typer + rich)."""

from __future__ import annotations

import importlib
import time
from enum import StrEnum

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
    markdown: bool = typer.Option(False, help="Print a Markdown table (as in README.md)."),
) -> None:
    """List every setting: its environment variable, default and meaning (secrets hidden)."""
    from emberwatch.common.config_doc import settings_rows

    rows = settings_rows()
    if markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for var, default, doc in rows:
            print(f"| `{var}` | `{default}` | {doc} |")
        return
    table = Table(title="Emberwatch settings (EMBERWATCH_*)")
    for col in ("variable", "default", "meaning"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    out.print(table)


if __name__ == "__main__":
    app()
