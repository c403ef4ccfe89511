"""The two consoles every command writes to: ``console`` (stderr: progress, errors) and ``out`` (stdout)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from emberwatch.common.plain_text import plain_text

console = Console(stderr=True)
out = Console()


def print_event(name: str, message: str) -> None:
    """One line of the stack manager's progress, on stderr (the message as text: no markup read, no
    control characters: it may quote a process's output)."""
    console.print(Text.assemble((f"{plain_text(name):<11}", "bold"), " ", plain_text(message, keep_lines=True)))
