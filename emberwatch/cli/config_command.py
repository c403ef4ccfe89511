"""``emberwatch config``: every setting, its environment variable, default and meaning."""

from __future__ import annotations

import typer

from emberwatch.cli.consoles import console, out
from emberwatch.cli.render import settings_table


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
    out.print(settings_table(config_doc.settings_rows()))
