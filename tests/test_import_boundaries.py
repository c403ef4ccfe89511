"""Import boundaries (docs/architecture.md). Every .py file of the repository is parsed with ``ast``;
static imports (absolute and relative, inside functions too) and ``importlib.import_module``/``__import__``
calls with a literal or f-string name count.

* The shared package never imports a service, and no service imports another. The one allowed exception
  is ``emberwatch run <service>``, which imports ``services.<name>.main`` by name.
* No circle among the modules of ``emberwatch/`` and ``services/`` (imports under ``if TYPE_CHECKING:``
  do not run, so they make no circle).
* Deployed code never imports the dev stack (``emberwatch.stack``) or the simulators (``simulators``).
  Deployed is every module of ``services/`` and ``emberwatch/`` except the dev side: ``emberwatch/stack``
  itself, ``emberwatch/cli`` (the command line is where the dev tools, the simulators and the services are
  wired together: ``emberwatch stack``, ``emberwatch sim``, ``emberwatch demo``, ``scripts/gpu-check``) and
  ``emberwatch/operations/run_demo.py`` (the demo starts the dev stack and the simulators).
* The gatekeeper's core (``services/gatekeeper/core``) does no I/O: neither it nor any repository module
  it imports (their packages' ``__init__`` included) imports an I/O library, and it opens no file.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
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
    type_only: bool = False  # under `if TYPE_CHECKING:`: never runs


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
        self.type_only = 0

    def _add(self, node: ast.AST, name: str) -> None:
        self.found.append(Imported(node.lineno, name, self.functions[-1] if self.functions else None,
                                   self.type_only > 0))

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.attr if isinstance(test, ast.Attribute) else test.id if isinstance(test, ast.Name) else ""
        if name != "TYPE_CHECKING":
            self.generic_visit(node)
            return
        self.visit(node.test)
        self.type_only += 1
        for child in node.body:
            self.visit(child)
        self.type_only -= 1
        for child in node.orelse:
            self.visit(child)

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


# --- no circle -----------------------------------------------------------------------------------------

LAYERED = ("emberwatch", "services")


def module_graph(sources: Mapping[str, str], *, with_type_only: bool = False) -> dict[str, set[str]]:
    """Module -> the repository modules it imports (``sources``: repository-relative path -> text). An
    import names the longest module it reaches (``from a.b import c`` reaches ``a.b.c`` when that is a
    module, else ``a.b``)."""
    modules = {module_of(rel)[0]: rel for rel in sources}
    graph: dict[str, set[str]] = {}
    for module, rel in modules.items():
        reached = set()
        for imp in imports_of(sources[rel], rel):
            if imp.type_only and not with_type_only:
                continue
            target = imp.module.rstrip("*").rstrip(".")
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                reached.add(target)
        graph[module] = reached
    return graph


def circles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The circles of ``graph``: its strongly connected components of more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layered_sources() -> dict[str, str]:
    return {str(p.relative_to(REPO)): p.read_text() for p in python_files()
            if p.relative_to(REPO).parts[0] in LAYERED}


def test_no_circle_among_the_shared_package_and_the_services():
    sources = layered_sources()
    assert "emberwatch/common/tile_store.py" in sources and "services/gatekeeper/main.py" in sources
    found = circles(module_graph(sources))
    assert found == [], "\n".join(" <-> ".join(c) for c in found)


def test_the_circle_check_finds_a_circle_and_nothing_else():
    two = {"emberwatch/common/a.py": "from emberwatch.common import b",
           "emberwatch/common/b.py": "def f():\n    from emberwatch.common.a import x"}
    assert circles(module_graph(two)) == [["emberwatch.common.a", "emberwatch.common.b"]]
    three = {"services/x/a.py": "from . import b", "services/x/b.py": "import services.x.c",
             "services/x/c.py": "from .a import thing", "services/x/d.py": "from .a import thing"}
    assert circles(module_graph(three)) == [["services.x.a", "services.x.b", "services.x.c"]]
    typing_only = {"services/x/a.py": "from services.x.b import B",
                   "services/x/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from services.x.a import A"}
    assert circles(module_graph(typing_only)) == []
    assert circles(module_graph(typing_only, with_type_only=True)) == [["services.x.a", "services.x.b"]]
    chain = {"emberwatch/common/a.py": "from emberwatch.common.b import y", "emberwatch/common/b.py": "import os"}
    assert circles(module_graph(chain)) == []


# --- deployed code does not reach the dev side -----------------------------------------------------------

DEV_SIDE = ("emberwatch/stack/", "emberwatch/cli/", "emberwatch/operations/run_demo.py")
DEV_ONLY = ("emberwatch.stack", "simulators")


def is_deployed(rel: str) -> bool:
    return rel.split("/")[0] in LAYERED and not rel.startswith(DEV_SIDE)


def dev_imports_in(source: str, rel: str) -> list[str]:
    """What deployed module ``rel`` imports from the dev stack or the simulators: one line per statement."""
    if not is_deployed(rel):
        return []
    out, lines = [], set()
    for imp in imports_of(source, rel):
        name = imp.module.rstrip("*")
        if imp.line not in lines and any(name == d or name.startswith(f"{d}.") for d in DEV_ONLY):
            lines.add(imp.line)
            out.append(f"{rel}:{imp.line} imports {imp.module} (deployed code imports no dev stack or simulator)")
    return out


def test_deployed_code_imports_neither_the_dev_stack_nor_the_simulators():
    sources = layered_sources()
    assert any(rel.startswith("emberwatch/stack/") for rel in sources)
    problems = [v for rel, source in sources.items() for v in dev_imports_in(source, rel)]
    assert problems == [], "\n".join(problems)


def test_the_dev_side_check_sees_stack_and_simulator_imports_only_in_deployed_code():
    bad = ["from emberwatch.stack.prometheus_config import register_target",
           "def f():\n    from emberwatch.stack import manage",
           "import emberwatch.stack.manage",
           "from emberwatch import stack",
           "from simulators.mapbox.sample_tiles import sample_tiles",
           "import importlib\nimportlib.import_module('simulators.cwfis.main')",
           "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from emberwatch.stack.parts import Part"]
    for source in bad:
        assert len(dev_imports_in(source, "services/notifier/operations.py")) == 1, source
        assert len(dev_imports_in(source, "emberwatch/common/service.py")) == 1, source
        assert dev_imports_in(source, "emberwatch/cli/stack_commands.py") == [], source
        assert dev_imports_in(source, "emberwatch/stack/manage.py") == [], source
    fine = "from emberwatch.common.prometheus_targets import register_target\nimport simulatorsx\nimport stack"
    assert dev_imports_in(fine, "emberwatch/common/service.py") == []
    assert dev_imports_in(bad[0], "emberwatch/operations/run_demo.py") == []
    assert dev_imports_in(bad[4], "emberwatch/operations/check_gpu.py")


# --- the gatekeeper's core does no I/O -------------------------------------------------------------------

CORE = "services/gatekeeper/core/"
IO_LIBRARIES = (
    "httpx", "aiokafka", "kafka", "confluent_kafka", "faststream", "mlflow", "tritonclient", "boto3", "botocore",
    "requests", "aiohttp", "urllib.request", "http.client", "socket", "sqlalchemy", "sqlite3", "subprocess",
    # opening files
    "os", "io", "pathlib", "shutil", "tempfile", "glob", "aiofiles", "emberwatch.common.atomic_files",
)
OPENING_CALLS = frozenset({"open", "read_text", "write_text", "read_bytes", "write_bytes", "unlink", "mkdir"})


def _package_inits(module: str, modules: Mapping[str, str]) -> list[str]:
    parts = module.split(".")
    return [p for p in (".".join(parts[:i]) for i in range(1, len(parts))) if p in modules]


def io_in_core(sources: Mapping[str, str]) -> list[str]:
    """Why the gatekeeper's core is not pure: an I/O library imported by a core module or by any repository
    module it reaches (their packages' ``__init__`` too, which run on import), or a file opened in the core.
    Nothing when the core does not exist yet."""
    modules = {module_of(rel)[0]: rel for rel in sources}
    graph = module_graph(sources, with_type_only=True)
    core = sorted(m for m, rel in modules.items() if rel.startswith(CORE))
    reached, todo = set(core), list(core)
    while todo:
        module = todo.pop()
        for nxt in sorted(graph.get(module, set())) + _package_inits(module, modules):
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    out = []
    for module in sorted(reached):
        rel = modules[module]
        for imp in imports_of(sources[rel], rel):
            name = imp.module.rstrip("*")
            hit = next((lib for lib in IO_LIBRARIES if name == lib or name.startswith(f"{lib}.")), None)
            if hit:
                via = "" if rel.startswith(CORE) else " (reached from the gatekeeper's core)"
                out.append(f"{rel}:{imp.line} imports {hit}{via}")
        if rel.startswith(CORE):
            for node in ast.walk(ast.parse(sources[rel], filename=rel)):
                if isinstance(node, ast.Call):
                    f = node.func
                    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                    if name in OPENING_CALLS:
                        out.append(f"{rel}:{node.lineno} calls {name}() (the core opens no file)")
    return sorted(set(out))


def test_the_gatekeepers_core_imports_no_io_library():
    problems = io_in_core(layered_sources())
    assert problems == [], "\n".join(problems)


def test_the_core_check_sees_io_in_the_core_and_behind_it():
    clean = {"services/gatekeeper/core/machine.py": "from services.gatekeeper.core.state import S\nimport json",
             "services/gatekeeper/core/state.py": "from emberwatch.contracts.events import Detection",
             "emberwatch/contracts/events.py": "import pydantic",
             "services/gatekeeper/registry.py": "import mlflow"}
    assert io_in_core(clean) == []
    assert io_in_core({"services/gatekeeper/main.py": "import httpx"}) == []  # no core yet: nothing to say
    for line in ("import httpx", "from aiokafka import AIOKafkaProducer", "from faststream.kafka import KafkaBroker",
                 "def f():\n    import mlflow", "import tritonclient.http", "import boto3", "import requests",
                 "from sqlalchemy import create_engine", "from pathlib import Path", "import os",
                 "from emberwatch.common.atomic_files import atomic_write_bytes",
                 "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx"):
        found = io_in_core({**clean, "services/gatekeeper/core/machine.py": line})
        assert len(found) == 1 and found[0].startswith("services/gatekeeper/core/machine.py:"), line
    behind = io_in_core({**clean, "services/gatekeeper/core/state.py": "from services.gatekeeper.registry import R"})
    assert behind == ["services/gatekeeper/registry.py:1 imports mlflow (reached from the gatekeeper's core)"]
    init = io_in_core({**clean, "emberwatch/contracts/__init__.py": "from emberwatch.contracts.asyncapi import a",
                       "emberwatch/contracts/asyncapi.py": "from faststream.specification import AsyncAPI"})
    assert init == ["emberwatch/contracts/asyncapi.py:1 imports faststream (reached from the gatekeeper's core)"]
    opened = io_in_core({**clean, "services/gatekeeper/core/state.py": "def load(p):\n    return p.read_text()",
                         "services/gatekeeper/core/machine.py": "with open('x') as f:\n    pass"})
    assert len(opened) == 2 and all("opens no file" in o for o in opened)
