"""The package's import graph: no cycles, nothing below the CLI imports it, and each part
keeps out of the parts docs-dev/CONTRACTS.md's map says it must not import.

Imports are read with ``ast`` from the source (function-local imports included), so a
lazy import inside a function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "phase5site"

# part -> the only parts it may import (docs-dev/CONTRACTS.md, "Map"). A part is a top-level
# module or sub-package of phase5site; "phase5site" is the package's __init__ (__version__).
BASE = {"errors", "columns", "quantiles", "phase5site"}
ALLOWED: dict[str, set[str]] = {
    "quantiles": set(),
    "columns": set(),
    "errors": set(),
    "envfile": {"errors"},
    "runspec": {"errors"},
    "simulator": BASE | {"runspec"},
    "metrics": BASE | {"runspec"},
    "store": BASE,
    "slo": BASE | {"runspec"},
    "reporting": BASE | {"runspec", "metrics", "slo", "store"},
    "site": BASE | {"runspec", "slo", "store", "reporting"},
    "ops": BASE | {"envfile", "runspec", "metrics", "store", "reporting", "simulator"},
    "engine": BASE | {"runspec", "metrics", "store", "ops", "simulator"},
    "workflow": BASE | {"runspec", "engine", "ops", "reporting", "site", "slo", "store"},
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the phase5site modules it imports (``from pkg import submodule`` included)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import; use absolute phase5site imports")
            for name in names:
                if name.split(".")[0] == "phase5site" and (target := _resolve(name, modules)):
                    if target != module:
                        graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    nodes = set(graph) | {w for ws in graph.values() for w in ws}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
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
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "phase5site"


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_modules() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walker really saw the package
    assert cycles(graph) == []


def test_nothing_below_the_cli_imports_it() -> None:
    importers = sorted(m for m, targets in import_graph().items()
                       if "phase5site.cli" in targets and m != "phase5site.__main__")
    assert importers == []


def test_every_part_has_a_rule() -> None:
    parts = {_part(m) for m in _modules()} - {"phase5site", "cli", "__main__"}
    assert parts == set(ALLOWED)


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_part_keeps_to_its_layer(part: str) -> None:
    crossings = sorted(f"{m} -> {t}" for m, targets in import_graph().items() if _part(m) == part
                       for t in targets if _part(t) not in ALLOWED[part] | {part})
    assert crossings == []
