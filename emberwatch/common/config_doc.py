"""The settings table of README.md, derived from ``Settings`` so the two never disagree."""

from __future__ import annotations

from pathlib import Path

from emberwatch.common.config import REPO_ROOT, Settings


def _default_text(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        try:
            return f"<repo>/{value.relative_to(REPO_ROOT)}"
        except ValueError:
            return str(value)
    return str(value)


def settings_rows() -> list[tuple[str, str, str]]:
    prefix = Settings.model_config.get("env_prefix", "")
    rows = []
    for name, field in Settings.model_fields.items():
        rows.append((f"{prefix}{name.upper()}", _default_text(field.default), field.description or ""))
    return rows
