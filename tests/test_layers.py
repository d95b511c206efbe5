"""The import rule of docs/architecture.md, checked by walking the package's import graph (ast, no import).

Layers, top to bottom: app -> flows -> tasks -> runtime -> (connectors, expectations) -> core; dev and testing
sit beside them (used by app, tests and bench). A module may import its own layer and the layers below it;
nothing imports upward, and no modules import each other in a circle — imports inside functions and under
``TYPE_CHECKING`` included.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "erpsync"

BELOW: dict[str, set[str]] = {
    "app": {"flows", "tasks", "runtime", "connectors", "expectations", "core", "dev", "testing"},
    "flows": {"tasks", "runtime", "connectors", "expectations", "core"},
    "tasks": {"runtime", "connectors", "expectations", "core"},
    "runtime": {"connectors", "expectations", "core"},
    "dev": {"testing", "connectors", "core"},
    "testing": {"connectors", "core"},
    "connectors": {"core"},
    "expectations": {"core"},
    "core": set(),
}
# Third-party imports a layer must not make (lazily neither): the kernel stays free of Prefect and GX.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "core": ("prefect", "great_expectations", "httpx", "typer", "uvicorn", "starlette"),
    "connectors": ("prefect", "great_expectations", "typer"),
    "expectations": ("prefect", "typer"),
    "testing": ("prefect", "great_expectations", "typer"),
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name, the links to the root folders followed."""
    found: dict[str, Path] = {}
    for folder, _dirs, files in os.walk(PACKAGE, followlinks=True):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = Path(folder, name)
            parts = ("erpsync", *path.relative_to(PACKAGE).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """The dotted names ``module`` imports; ``from pkg import name`` counts as ``pkg.name`` when that is a module."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                yield candidate if candidate in MODULES else target


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        graph[module] = {name for name in _imports(module, path) if name.split(".")[0] == "erpsync"}
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_walk_sees_every_layer() -> None:
    layers = {_layer(m) for m in MODULES}
    assert set(BELOW) <= layers, sorted(set(BELOW) - layers)
    assert len(MODULES) > 60, len(MODULES)  # the links were followed


def test_every_module_is_in_a_layer() -> None:
    assert sorted(m for m in MODULES if m != "erpsync" and _layer(m) not in BELOW) == []


def test_no_import_runs_upward() -> None:
    upward = []
    for module, targets in _graph().items():
        layer = _layer(module)
        for target in targets:
            other = _layer(target)
            if other != layer and other not in BELOW.get(layer, set()):
                upward.append(f"{module} ({layer}) imports {target} ({other or 'erpsync'})")
    assert sorted(upward) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_none_of_its_forbidden_libraries(layer: str) -> None:
    bad = []
    for module, path in MODULES.items():
        if _layer(module) != layer:
            continue
        for name in _imports(module, path):
            if name.split(".")[0] in FORBIDDEN[layer]:
                bad.append(f"{module} imports {name}")
    assert sorted(bad) == []
