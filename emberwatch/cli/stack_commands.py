"""``emberwatch stack up/down/status/logs``: the local stack (calls into ``emberwatch.stack.manage``)."""

from __future__ import annotations

import time

import typer

from emberwatch.cli.consoles import console, out, print_event
from emberwatch.cli.render import stack_status_table
from emberwatch.common.config import get_settings

stack_app = typer.Typer(help="Manage the local stack (Kafka, MLflow, Triton, Prometheus).",
                        no_args_is_help=True)


@stack_app.command("up")
def stack_up() -> None:
    """Start the stack's parts on 127.0.0.1 (idempotent: parts already up are left alone)."""
    from emberwatch.stack import manage

    settings = get_settings()
    try:
        with console.status("starting the local stack…"):
            manage.up(settings, on_event=print_event)
    except manage.StackError as exc:
        console.print(f"[red]stack up failed:[/] {exc}")
        raise typer.Exit(1) from None
    _print_status()


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started (and nothing else)."""
    from emberwatch.stack import manage

    stopped = manage.down(get_settings(), on_event=print_event)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status() -> None:
    """Show each part with its address, PID and health. Exit code 1 if a part is down."""
    if not _print_status():
        raise typer.Exit(1)


def _print_status() -> bool:
    from emberwatch.stack import manage

    table, all_up = stack_status_table(manage.status(get_settings()))
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
        _follow(path)


def _follow(path) -> None:
    """Print lines appended to ``path`` until Ctrl-C."""
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
