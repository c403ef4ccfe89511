"""``emberwatch console-operator add/remove/list``: the operator console's named operators.

Each operator has their own secret, shown once by ``add``; the console keeps only its scrypt hash in
the operators file (EMBERWATCH_CONSOLE_OPERATORS_FILE, see ``emberwatch config``) and re-reads the file
when it changes: an added operator can sign in at once, a removed one's sessions end.
"""

from __future__ import annotations

from pathlib import Path

import typer

from emberwatch.cli.consoles import console, out

operator_app = typer.Typer(help="Add, remove and list the operator console's named operators.",
                           no_args_is_help=True)

_FILE = typer.Option(None, "--file", help="The operators file (default: the console's, from its settings).")


def _registry(file: Path | None):  # noqa: ANN202
    from emberwatch.common.config import get_settings
    from emberwatch.security.console_operators import OperatorRegistry, operators_path

    return OperatorRegistry(file or operators_path(get_settings()))


@operator_app.command("add")
def add(name: str = typer.Argument(..., help="The operator's name (letters, digits and . _ @ -): "
                                             "their commands are requested by console:<name>."),
        replace: bool = typer.Option(False, "--replace", help="Give an existing operator a new secret "
                                                              "(the old one stops working)."),
        file: Path | None = _FILE) -> None:
    """Add an operator and print their secret, once: hand it to them (it is stored nowhere else)."""
    from emberwatch.security.console_operators import LEGACY_OPERATOR, OperatorFileError

    registry = _registry(file)
    try:
        secret = registry.add(name, replace=replace, reserved=(LEGACY_OPERATOR,))
    except (ValueError, OSError, OperatorFileError) as exc:
        console.print(f"[red]console-operator add:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"operator {name!r} {'has a new secret' if replace else 'added'} in {registry.path}; "
                  "their secret (shown once; they sign in with it):")
    out.print(secret, markup=False, highlight=False)


@operator_app.command("remove")
def remove(name: str = typer.Argument(..., help="The operator to remove."), file: Path | None = _FILE) -> None:
    """Remove an operator: their secret stops working and their sessions end on their next request."""
    from emberwatch.security.console_operators import OperatorFileError

    registry = _registry(file)
    try:
        registry.remove(name)
    except (ValueError, OSError, OperatorFileError) as exc:
        console.print(f"[red]console-operator remove:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"operator {name!r} removed from {registry.path}")


@operator_app.command("list")
def list_operators(file: Path | None = _FILE) -> None:
    """The operators who can sign in (names only: the file holds no secret, only hashes)."""
    from emberwatch.security.console_operators import OperatorFileError

    registry = _registry(file)
    try:
        names = registry.names()
    except (OSError, OperatorFileError) as exc:
        console.print(f"[red]console-operator list:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{len(names)} operator(s) in {registry.path}")
    for name in names:
        out.print(name, markup=False, highlight=False)
