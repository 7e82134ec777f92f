"""The import graph of bench/: no cycles (so every module can be read, tested and replaced from the bottom
up), and the analysis side never pulls in torch.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``, since a cycle that
only annotations close is still two modules that cannot be understood apart (``render`` importing
``report``'s types while ``report`` imports ``render`` was one).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ANALYSIS = ("bench.report", "bench.render", "bench.tables", "bench.significance", "bench.resampling",
            "bench.tidy", "bench.predictions", "bench.replicates", "bench.bootstrap", "bench.stats",
            "bench.metrics", "bench.metric_core", "bench.plots", "bench.postprocess")


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module names of every .py file under ``package`` (a package is its ``__init__``)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (absolute imports, anywhere in the file)."""
    modules = module_names(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module in modules:
                    targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        targets.discard(name)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path [a, b, ..., a], or None (depth-first, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
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


def test_the_graph_sees_imports_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n")
    assert import_graph(package) == {"pkg": set(), "pkg.a": {"pkg", "pkg.b"}, "pkg.b": {"pkg.a"}}
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_bench_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "bench")
    assert set(ANALYSIS) <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_render_takes_plain_data() -> None:
    """render decides how tables read; it imports nothing that computes them."""
    assert import_graph(ROOT / "bench")["bench.render"].isdisjoint(
        {"bench.report", "bench.tables", "bench.significance", "bench.resampling", "bench.tidy", "bench.plots"})


def test_the_analysis_side_never_imports_torch() -> None:
    code = f"import sys; import {', '.join(ANALYSIS)}; sys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr or "an analysis module imports torch"
