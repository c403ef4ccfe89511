"""A mistyped ``EMBERWATCH_*`` variable is an error at start, not a setting silently left at its default.

Every ``EMBERWATCH_*`` name in the environment or in ``.env`` must be one that some process of the system
reads: a field of a settings class (the common ones or any service's: the stack hands every part one
environment, so a variable another service reads is not unknown) or one of ``READ_ELSEWHERE``. The
error names the closest known variable. ``known_variables`` is given by the caller (the command line,
which knows every settings class); the check itself holds no list of services.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel

PREFIX = "EMBERWATCH_"

# Read outside the settings classes, so a process may be handed them: by the simulators (their own
# knobs), by Triton's Python models, and by the dev and test tooling.
READ_ELSEWHERE = frozenset({
    "EMBERWATCH_SIM_LOG_LEVEL",
    "EMBERWATCH_SIM_CWFIS_COLUMNS", "EMBERWATCH_SIM_CWFIS_FIRES", "EMBERWATCH_SIM_CWFIS_SEED",
    "EMBERWATCH_SIM_CWFIS_SPEED", "EMBERWATCH_SIM_CWFIS_START",
    "EMBERWATCH_SIM_DISCORD_TOKEN", "EMBERWATCH_SIM_DISCORD_WEBHOOK_ID",
    "EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON", "EMBERWATCH_MAPBOX_SIM_FIRES", "EMBERWATCH_MAPBOX_SIM_LATENCY_MS",
    "EMBERWATCH_MAPBOX_SIM_SPEED", "EMBERWATCH_MAPBOX_SIM_START", "EMBERWATCH_MAPBOX_SIM_TOKENS",
    "EMBERWATCH_STAC_SIM_FAULT_RATE", "EMBERWATCH_STAC_SIM_FIRES", "EMBERWATCH_STAC_SIM_SPEED",
    "EMBERWATCH_STAC_SIM_START",
    "EMBERWATCH_CODE_ROOT", "EMBERWATCH_OPENVINO_THREADS",
    "EMBERWATCH_COMPOSE_UP", "EMBERWATCH_COMPOSE_TIMINGS", "EMBERWATCH_DOCKERD_DIR", "EMBERWATCH_DOCS_SCREENSHOTS",
    "EMBERWATCH_FIXTURES_DIR",
})


class UnknownSetting(ValueError):
    """One or more ``EMBERWATCH_*`` variables that nothing reads."""


def variables_of(classes: Iterable[type[BaseModel]], prefix: str = PREFIX) -> frozenset[str]:
    """The variable of every field of ``classes`` (``EMBERWATCH_<FIELD>``)."""
    return frozenset(f"{prefix}{name.upper()}" for cls in classes for name in cls.model_fields)


def given_variables(environ: Mapping[str, str], dotenv: Path | None) -> dict[str, str]:
    """The ``EMBERWATCH_*`` names set, each with where it was found (case does not matter, as for the
    settings)."""
    found = {name.upper(): "environment" for name in environ if name.upper().startswith(PREFIX)}
    if dotenv is not None and dotenv.is_file():
        from dotenv import dotenv_values

        for name in dotenv_values(dotenv):
            if name.upper().startswith(PREFIX):
                found.setdefault(name.upper(), str(dotenv))
    return found


def closest(name: str, known: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_variables(given: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """One line per variable nothing reads, naming where it was set and the closest known one."""
    known = frozenset(known) | READ_ELSEWHERE
    lines = []
    for name in sorted(set(given) - known):
        shown = name[:80]  # the name comes from outside: bound what is echoed
        guess = closest(name, known)
        hint = f"; did you mean {guess}?" if guess else "; no setting has a similar name"
        lines.append(f"{shown} (set in the {given[name]}) is not a setting{hint}")
    return lines


def check_variables(known: Iterable[str], *, environ: Mapping[str, str] | None = None,
                    dotenv: Path | None = Path(".env")) -> None:
    """Raise ``UnknownSetting`` naming every ``EMBERWATCH_*`` variable nothing reads. Only names are read:
    no value is ever shown."""
    lines = unknown_variables(given_variables(os.environ if environ is None else environ, dotenv), known)
    if lines:
        raise UnknownSetting("unknown EMBERWATCH_* variable" + ("s" if len(lines) > 1 else "") + ":\n  "
                             + "\n  ".join(lines))
