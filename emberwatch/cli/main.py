"""``emberwatch``: the operator's command line (typer + rich). This module holds only the app and
registers the commands; each group lives in its own module and the rendering in ``render``."""

from __future__ import annotations

import sys

import typer

from emberwatch.cli import config_command, demo_command, event_commands, model_commands, service_commands
from emberwatch.cli.console_operator_commands import operator_app
from emberwatch.cli.key_commands import keys_app
from emberwatch.cli.stack_commands import stack_app

app = typer.Typer(
    help="Emberwatch: a continuously learning wildfire detector over Kafka.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(stack_app, name="stack")


@app.callback()
def refuse_unknown_settings() -> None:
    """Before any command: an EMBERWATCH_* variable (environment or .env) that no settings class of any
    service reads is an error naming the closest known one (a mistyped variable is otherwise ignored)."""
    if "--help" in sys.argv[1:]:
        return
    from emberwatch.common.config_doc import settings_classes
    from emberwatch.common.unknown_settings import UnknownSetting, check_variables, variables_of

    try:
        check_variables(variables_of(cls for _, cls in settings_classes()))
    except UnknownSetting as exc:
        raise SystemExit(f"emberwatch: {exc}") from None

# The order here is the order `emberwatch --help` lists the commands in.
app.command("run")(service_commands.run_service)
app.command("sim")(service_commands.run_simulator)
app.command("console")(service_commands.run_console)
app.add_typer(operator_app, name="console-operator")
app.command("replay")(event_commands.replay)
app.command("demo")(demo_command.demo)
app.command("models")(model_commands.models)
app.command("promote")(model_commands.promote)
app.command("rollback")(model_commands.rollback)
app.command("approve")(model_commands.approve)
app.command("reject")(model_commands.reject)
app.add_typer(keys_app, name="keys")
app.command("train")(model_commands.train)
app.command("predict")(model_commands.predict)
app.command("asyncapi")(event_commands.asyncapi)
app.command("create-topics")(event_commands.create_topics)
app.command("config")(config_command.show_config)


if __name__ == "__main__":
    app()
