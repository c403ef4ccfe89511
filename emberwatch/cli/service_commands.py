"""``emberwatch run`` and ``emberwatch sim``: one service or one simulator in the foreground."""

from __future__ import annotations

import importlib
from enum import StrEnum

import typer

from emberwatch.common.service_names import SERVICES

ServiceName = StrEnum("ServiceName", {name: name for name in SERVICES})  # every service, named once


class SimulatorName(StrEnum):
    cwfis = "cwfis"
    mapbox = "mapbox"
    discord = "discord"


def run_service(service: ServiceName = typer.Argument(..., help="The service to run.")) -> None:
    """Run one service in the foreground (what each compose.yaml service runs)."""
    module = importlib.import_module(f"services.{service.value}.main")
    module.main()


def run_simulator(
    name: SimulatorName = typer.Argument(..., help="The simulator to run."),
    port: int = typer.Option(0, help="Port to listen on (0 = the simulator's default)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
) -> None:
    """Run one simulator of an external service (CWFIS, Mapbox, Discord) over real HTTP."""
    module = importlib.import_module(f"simulators.{name.value}.main")
    module.main(host=host, port=port)



def run_console(
    port: int | None = typer.Option(None, help="Port to listen on (default: EMBERWATCH_CONSOLE_PORT, 8090)."),
    host: str | None = typer.Option(None, help="Address to bind (default: EMBERWATCH_CONSOLE_HOST, 127.0.0.1)."),
) -> None:
    """Serve the operator console: the live fire map with its tiles and feedback, the models page,
    and signed-in operators' commands (approve, reject, promote, rollback). It reads the event streams
    from the beginning and writes only models.commands.v1 and labels.feedback.v1 events."""
    import os

    if port is not None:
        os.environ["EMBERWATCH_CONSOLE_PORT"] = str(port)
    if host is not None:
        os.environ["EMBERWATCH_CONSOLE_HOST"] = host
    run_service(ServiceName.console)  # the one dispatcher that imports a service by name
