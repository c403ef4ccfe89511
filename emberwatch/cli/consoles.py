"""The two consoles every command writes to: ``console`` (stderr: progress, errors) and ``out`` (stdout)."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True)
out = Console()


def print_event(name: str, message: str) -> None:
    """One line of the stack manager's progress, on stderr."""
    console.print(f"[bold]{name:<11}[/] {message}")
