"""Dependencies run one way (docs/architecture.md): the rule as code, read from the imports.

Every import in src/taskstream counts, those inside functions too (a deferred import is
still a dependency); only ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
FEATURES = ("jobs", "notifications", "rooms", "pipelines", "periodic", "ops", "collab")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in (SRC / "taskstream").rglob("*.py")
           if "migrations" not in p.parts}


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level
                                            + (1 if is_package else 0)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    return set(_imported(ast.parse(path.read_text()), module, path.name == "__init__.py"))


GRAPH = {module: imports_of(module) for module in MODULES}


def area(module: str) -> str:
    """``hub``, a feature app's name, or ``core`` (the rest of the taskstream package)."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in (*FEATURES, "hub"):
        return parts[1]
    return "core"


def offending(source_areas: set[str], forbidden: set[str]) -> list[str]:
    return sorted(f"{module} imports {target}"
                  for module, targets in GRAPH.items() if area(module) in source_areas
                  for target in targets
                  if target.split(".")[0] == "taskstream" and area(target) in forbidden)


def test_the_graph_was_read() -> None:
    assert "taskstream.jobs.models" in GRAPH["taskstream.jobs.services"]


def test_hub_and_core_import_no_feature_app() -> None:
    assert offending({"hub", "core"}, set(FEATURES)) == []


def test_jobs_import_neither_notifications_nor_pipelines() -> None:
    assert offending({"jobs"}, {"notifications", "pipelines", "periodic", "rooms", "ops"}) == []


def test_periodic_reaches_other_apps_through_hooks_only() -> None:
    assert offending({"periodic"}, set(FEATURES) - {"periodic"}) == []


def test_pipelines_notify_through_signals() -> None:
    assert offending({"pipelines"}, {"notifications"}) == []


def test_the_library_imports_neither_the_demo_nor_the_bench() -> None:
    assert sorted(f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets
                  if t.split(".")[0] in ("example", "bench")) == []


def cycles(app: str) -> list[list[str]]:
    """Strongly connected groups of more than one module inside ``app`` (Tarjan)."""
    nodes = [m for m in GRAPH if area(m) == app]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in GRAPH or area(target) != app:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("app", ["hub", *FEATURES])
def test_no_import_cycle_inside_an_app(app: str) -> None:
    assert cycles(app) == []


def test_hub_and_core_name_no_feature_module() -> None:
    """No table of feature modules imported by name (import_module("taskstream.jobs.api"))."""
    named = []
    for module, path in MODULES.items():
        if area(module) not in ("hub", "core"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.split(".")[:2] in (["taskstream", f] for f in FEATURES)):
                named.append(f"{module}: {node.value!r}")
    assert named == []
