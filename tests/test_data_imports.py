"""bench/data is layered: no module imports, directly or through others, a module that imports it back.

Every import counts, at module level, inside functions and under ``TYPE_CHECKING``: a cycle that only
a type annotation closes still ties the two modules together for a reader and for a refactoring.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "bench.data"
FOLDER = Path(__file__).resolve().parents[1] / "bench" / "data"


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that the source file ``path`` imports, by any form of import."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bench.data import synthetic` imports the module bench.data.synthetic
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph(folder: Path) -> dict[str, set[str]]:
    modules = {f"{PACKAGE}.{p.stem}": p for p in sorted(folder.glob("*.py")) if p.stem != "__init__"}
    return {name: imported_modules(path, set(modules)) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path [a, b, ..., a], or None (depth-first, three colours)."""
    state: dict[str, int] = {}  # absent: unseen, 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle_and_accepts_layers() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_the_graph_sees_every_form_of_import(tmp_path: Path) -> None:
    (tmp_path / "one.py").write_text("from bench.data import two\n")
    (tmp_path / "two.py").write_text("def f():\n    import bench.data.three\n")
    (tmp_path / "three.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                       "    from bench.data.one import X\n")
    graph = import_graph(tmp_path)
    assert graph == {"bench.data.one": {"bench.data.two"}, "bench.data.two": {"bench.data.three"},
                     "bench.data.three": {"bench.data.one"}}
    assert find_cycle(graph) is not None


def test_bench_data_has_no_import_cycle() -> None:
    graph = import_graph(FOLDER)
    assert len(graph) > 10 and any(graph.values())  # it read the real package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in bench/data: " + " -> ".join(cycle)
