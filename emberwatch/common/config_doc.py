"""The settings table of README.md, derived from the settings classes so the two never disagree.

Common settings live in ``emberwatch.common.config.Settings``; each service (and the ML core) adds
its own in ``<package>/settings.py`` as a subclass. All share the ``EMBERWATCH_`` prefix.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pydantic_settings import BaseSettings

from emberwatch.common.config import REPO_ROOT, Settings

SETTINGS_MODULES_ROOTS = ("services", "emberwatch")


def _default_text(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, Path):
        try:
            return f"<repo>/{value.relative_to(REPO_ROOT)}"
        except ValueError:
            return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """(section, class) for the common settings and every ``*/settings.py`` subclass."""
    found: list[tuple[str, type[BaseSettings]]] = [("common", Settings)]
    for root in SETTINGS_MODULES_ROOTS:
        try:
            package = importlib.import_module(root)
        except ImportError:
            continue
        for mod in pkgutil.walk_packages(package.__path__, f"{root}."):
            if not mod.name.endswith(".settings"):
                continue
            module = importlib.import_module(mod.name)
            for obj in vars(module).values():
                if (isinstance(obj, type) and issubclass(obj, Settings) and obj is not Settings
                        and obj.__module__ == module.__name__):
                    found.append((mod.name.rsplit(".", 2)[-2], obj))
    return found


def settings_rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, each listed once, common ones first."""
    prefix = Settings.model_config.get("env_prefix", "")
    seen: set[str] = set()
    rows = []
    for section, cls in settings_classes():
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            doc = field.description or ""
            if section != "common":
                doc = f"({section}) {doc}"
            rows.append((f"{prefix}{name.upper()}", _default_text(field.default), doc))
    return rows


START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"


def markdown_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{var}` | `{default}` | {doc} |" for var, default, doc in settings_rows()]
    return "\n".join(lines) + "\n"


def update_readme(path: Path = REPO_ROOT / "README.md") -> bool:
    """Rewrite the settings table between the markers of README.md. True if it changed."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + markdown_table() + END + tail
    if new != text:
        path.write_text(new)
    return new != text
