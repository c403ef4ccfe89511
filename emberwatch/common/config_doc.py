"""The configuration page, docs/configuration.md, derived from the settings classes so the two never disagree.

Common settings live in ``emberwatch.common.config.Settings``; the ML core and each service add theirs in
``<package>/settings.py`` as subclasses. All share the ``EMBERWATCH_`` prefix. Each setting is listed once,
under the class that declares it. ``emberwatch config --write-docs`` rewrites the page;
``tests/test_docs.py`` fails while it is stale.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from collections import Counter
from pathlib import Path

from pydantic_settings import BaseSettings

from emberwatch.common.config import REPO_ROOT, Settings

SETTINGS_MODULES_ROOTS = ("services", "emberwatch")
CONFIG_PAGE = REPO_ROOT / "docs" / "configuration.md"
REGENERATE_COMMAND = ".venv/bin/emberwatch config --write-docs"
PAGE_WIDTH = 120
# A wrapped line that starts like this would turn into a list item, a heading or a quote in Markdown.
_BLOCK_START = re.compile(r"([-+*>]|#+|\d+[.)])(\s|$)")


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


def _declaring_class(cls: type, name: str) -> type:
    """The class of ``cls``'s hierarchy whose body declares the field ``name`` (a mixin, a parent, or itself)."""
    for klass in reversed(cls.__mro__):
        if name in vars(klass).get("__annotations__", {}):
            return klass
    return cls


def _module_path(klass: type) -> str:
    module = importlib.import_module(klass.__module__)
    file = Path(module.__file__ or "")
    try:
        return str(file.relative_to(REPO_ROOT))
    except ValueError:
        return klass.__module__


def settings_groups() -> list[tuple[str, type, list[tuple[str, str, str]]]]:
    """(section, declaring class, [(variable, default, meaning)]) in the order of ``settings_classes``, each
    setting listed once under the class that declares it; the ML core right after the common settings."""
    prefix = Settings.model_config.get("env_prefix", "")
    classes = settings_classes()
    classes.sort(key=lambda item: {"common": 0, "ml": 1}.get(item[0], 2))
    section_of = {cls: section for section, cls in classes}
    groups: dict[type, tuple[str, list[tuple[str, str, str]]]] = {}
    seen: set[str] = set()
    for section, cls in classes:
        for name, field in cls.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            declaring = _declaring_class(cls, name)
            owner = section_of.get(declaring, section)
            row = (f"{prefix}{name.upper()}", _default_text(field.default), field.description or "")
            groups.setdefault(declaring, (owner, []))[1].append(row)
    return [(section, klass, rows) for klass, (section, rows) in groups.items()]


def _escape(text: str) -> str:
    """Markdown-safe prose: outside code spans, ``<`` ``>`` and ``*`` stay literal characters."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = parts[i].replace("*", r"\*").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _code(text: str) -> str:
    if text == "":
        return "(empty)"
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def _wrap(text: str, first: str, rest: str) -> list[str]:
    lines = textwrap.wrap(text, width=PAGE_WIDTH, initial_indent=first, subsequent_indent=rest,
                          break_long_words=False, break_on_hyphens=False)
    fixed = [lines[0]]
    for line in lines[1:]:
        body = line[len(rest):]
        marker = _BLOCK_START.match(body)
        if marker and marker.group(1)[0].isdigit():  # "1." -> "1\.": only punctuation can be escaped
            body = body[:marker.end(1) - 1] + "\\" + body[marker.end(1) - 1:]
        elif marker:
            body = "\\" + body
        fixed.append(rest + body)
    return fixed


GROUP_TITLES = {"Settings": "General", "ExternalApiSettings": "External services", "MlflowSettings": "MLflow",
                "OperatorSettings": "Operators"}


def _group_title(klass: type) -> str:
    """``TileStoreSettings`` -> ``Tile store``, unless GROUP_TITLES names it better."""
    if klass.__name__ in GROUP_TITLES:
        return GROUP_TITLES[klass.__name__]
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", klass.__name__.removesuffix("Settings"))
    return " ".join([words[0], *(w.lower() if not w.isupper() else w for w in words[1:])]) if words else "General"


SECTION_TITLES = {"common": "Common settings (every service and the CLI)", "ml": "The ML core (trainer, gatekeeper)"}


def markdown_page() -> str:
    """The whole of docs/configuration.md."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from the settings classes by `{REGENERATE_COMMAND}`: do not edit by hand. -->",
        "",
        *_wrap("Every setting is an environment variable with the prefix `EMBERWATCH_`. An optional `.env` "
               "file is read too, and secrets may come from files in a secrets directory "
               "(`EMBERWATCH_SECRETS_DIR`, one file per setting named after its variable). Defaults point at "
               "the real public services (CWFIS, Mapbox, Discord) and at the local stack's addresses. "
               "`emberwatch config` lists the values in effect, secrets hidden.", "", ""),
        "",
        *_wrap(f"This page is generated from the settings classes named under each heading. After changing a "
               f"setting, regenerate it with `{REGENERATE_COMMAND}`; `tests/test_docs.py` fails while it is "
               f"stale.", "", ""),
        "",
    ]
    groups = settings_groups()
    groups_per_section = Counter(section for section, _, _ in groups)
    last_section = None
    for section, klass, rows in groups:
        if section != last_section:
            title = SECTION_TITLES.get(section, f"The {section}")
            lines += [f"## {title}", ""]
            last_section = section
        if groups_per_section[section] > 1:
            lines += [f"### {_group_title(klass)}", ""]
        lines += [f"From `{klass.__name__}` in `{_module_path(klass)}`:", ""]
        for variable, default, doc in rows:
            value = "unset by default" if default == "(unset)" else f"default {_code(default)}"
            entry = f"`{variable}`, {value}: {_escape(doc)}".rstrip(": ")
            lines += _wrap(entry, "- ", "  ")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def page_is_current(path: Path = CONFIG_PAGE) -> bool:
    return path.is_file() and path.read_text() == markdown_page()


def write_page(path: Path = CONFIG_PAGE) -> bool:
    """Rewrite docs/configuration.md from the code. True if it changed."""
    new = markdown_page()
    if path.is_file() and path.read_text() == new:
        return False
    path.write_text(new)
    return True
