"""No import cycle in restpredict, counting function-level and ``TYPE_CHECKING`` imports.

import-linter's layers contract (pyproject.toml) keeps imports pointing down between layers;
this test also covers imports inside a layer, by reading every module with ``ast`` (so
every import statement counts, wherever it is, whether or not it runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import restpredict

PACKAGE = Path(restpredict.__file__).parent
ROOT = "restpredict"


def module_files() -> dict[str, Path]:
    """Module name -> source file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [ROOT, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement of the module names (absolute or relative)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base  # the module itself, when the names are attributes of it
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the restpredict modules its import statements name (a package's
    ``__init__`` counts as a module: ``from restpredict.openapi import admin`` names both)."""
    files = module_files()
    return {
        module: {name for name in imported_names(module, path) if name in files} - {module}
        for module, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph.get(module, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle is not None:
                return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "restpredict.model.loading" in graph["restpredict.model.prepare"]  # module level
    assert "restpredict.model.demo" in graph["restpredict.model.prepare"]  # function level
    assert (
        "restpredict.model.loading" in graph["restpredict.observability.metrics"]
    )  # TYPE_CHECKING
    assert (
        "restpredict.openapi.admin" in graph["restpredict.openapi.document"]
    )  # from pkg import mod


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, None, id="chain"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"], id="three"),
        pytest.param({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"], id="tail"),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
