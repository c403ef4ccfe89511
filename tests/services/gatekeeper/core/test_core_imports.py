"""The gatekeeper's core imports no I/O library: only the standard library, numpy, scipy, pydantic,
the event contracts and the core itself."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[4] / "services" / "gatekeeper" / "core"
ALLOWED = ("services.gatekeeper.core", "emberwatch.contracts", "numpy", "scipy", "statsmodels", "pydantic")
STDLIB_IO = {"os", "io", "socket", "subprocess", "shutil", "pathlib", "sqlite3", "urllib", "http", "logging",
             "time", "random", "uuid", "tempfile", "fcntl", "threading", "asyncio"}


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_core_imports_no_io():
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        for name in imported(path):
            top = name.split(".")[0]
            if name.startswith(ALLOWED):
                continue
            assert top not in STDLIB_IO, f"{path.name} imports {name}"
            assert top in {"__future__", "collections", "dataclasses", "datetime", "json", "math", "types",
                           "typing"}, f"{path.name} imports {name}"
