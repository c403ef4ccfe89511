"""``emberwatch config``: every setting, its environment variable, default and meaning."""

from __future__ import annotations

import typer

from emberwatch.cli.consoles import console, out
from emberwatch.cli.render import settings_table


def show_config(
    markdown: bool = typer.Option(False, help="Print the Markdown of docs/configuration.md."),
    write_docs: bool = typer.Option(False, help="Rewrite docs/configuration.md from the code."),
) -> None:
    """List every setting: its environment variable, default and meaning (secrets hidden)."""
    from emberwatch.common import config_doc

    if write_docs:
        changed = config_doc.write_page()
        page = config_doc.CONFIG_PAGE.relative_to(config_doc.REPO_ROOT)
        console.print(f"{page} " + ("updated" if changed else "already up to date"))
        return
    if markdown:
        print(config_doc.markdown_page(), end="")
        return
    out.print(settings_table(config_doc.settings_rows()))
