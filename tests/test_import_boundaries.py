"""Import boundaries (docs/architecture.md): the shared package never imports a service, and no service imports
another. Every .py file of the repository is parsed with ``ast``; static imports (absolute and
relative) and ``importlib.import_module``/``__import__`` calls with a literal or f-string name count.
The one allowed exception is ``emberwatch run <service>``, which imports ``services.<name>.main`` by
name."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIPPED = {".venv", ".git", ".state", "__pycache__", "node_modules", "build", "dist"}
# (file, enclosing function): the `emberwatch run <service>` dispatcher
ALLOWED = {("emberwatch/cli/service_commands.py", "run_service")}


@dataclass(frozen=True)
class Imported:
    line: int
    module: str            # dotted; a name built at run time ends in "*"
    function: str | None   # the enclosing function, if any


def module_of(rel: str) -> tuple[str, bool]:
    """Dotted module name of a repository-relative path, and whether it is a package."""
    parts = list(Path(rel).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _dynamic_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        prefix = ""
        for value in node.values:
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                break
            prefix += value.value
        return prefix + "*"
    return None


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.found: list[Imported] = []
        self.functions: list[str] = []

    def _add(self, node: ast.AST, name: str) -> None:
        self.found.append(Imported(node.lineno, name, self.functions[-1] if self.functions else None))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".") if self.package else []
            base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        self._add(node, target)
        for alias in node.names:  # `from services import gatekeeper` imports services.gatekeeper
            self._add(node, f"{target}.{alias.name}")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("import_module", "__import__") and node.args:
            target = _dynamic_name(node.args[0])
            if target is not None:
                self._add(node, target)
        self.generic_visit(node)


def imports_of(source: str, rel: str) -> list[Imported]:
    module, is_package = module_of(rel)
    visitor = _Imports(module, is_package)
    visitor.visit(ast.parse(source, filename=rel))
    return visitor.found


def violations_in(source: str, rel: str) -> list[str]:
    """What ``rel`` (a repository-relative path) imports across a boundary: one line per statement."""
    module = module_of(rel)[0].split(".")
    out, lines = [], set()
    for imp in imports_of(source, rel):
        target = imp.module.split(".")
        if target[0] != "services" or (rel, imp.function) in ALLOWED or imp.line in lines:
            continue
        lines.add(imp.line)
        if module[0] == "emberwatch":
            out.append(f"{rel}:{imp.line} imports {imp.module} (the shared package imports no service)")
        elif module[0] == "services" and len(module) > 1 and len(target) > 1 and target[1] != module[1]:
            out.append(f"{rel}:{imp.line} imports {imp.module} (service {module[1]} imports another one)")
        else:
            lines.discard(imp.line)
    return out


def python_files() -> list[Path]:
    return sorted(p for p in REPO.rglob("*.py") if not SKIPPED & set(p.relative_to(REPO).parts))


def test_no_shared_module_imports_a_service_and_no_service_imports_another():
    files = python_files()
    checked = {p.relative_to(REPO).parts[0] for p in files}
    assert {"emberwatch", "services", "tests"} <= checked and len(files) > 100
    problems = [v for p in files for v in violations_in(p.read_text(), str(p.relative_to(REPO)))]
    assert problems == [], "\n".join(problems)


def test_the_check_sees_every_kind_of_forbidden_import():
    bad_shared = {
        "from services.gatekeeper.registry import Registry": 1,
        "import services.notifier.main": 1,
        "from services import gatekeeper": 1,
        "def f():\n    from services.gatekeeper import promote": 1,
        "import importlib\nimportlib.import_module('services.tiler.main')": 1,
        "import importlib\ndef g(n):\n    return importlib.import_module(f'services.{n}.main')": 1,
        "from emberwatch.contracts import ModelCommand\nfrom servicesx import y": 0,
    }
    for source, n in bad_shared.items():
        assert len(violations_in(source, "emberwatch/operations/example.py")) == n, source
    service = "services/notifier/example.py"
    assert violations_in("from services.gatekeeper.gatekeeper import Gatekeeper", service)
    assert violations_in("from ..gatekeeper import registry", service)
    assert violations_in("from .. import trainer", service)
    assert violations_in("from services.notifier.settings import NotifierSettings", service) == []
    assert violations_in("from . import render\nfrom .render import Renderer", service) == []
    assert violations_in("from emberwatch.operations.send_command import send_command", service) == []
    dispatcher = "import importlib\ndef run_service(s):\n    importlib.import_module(f'services.{s}.main')"
    assert violations_in(dispatcher, "emberwatch/cli/service_commands.py") == []
    assert violations_in(dispatcher.replace("run_service", "other"), "emberwatch/cli/service_commands.py")
