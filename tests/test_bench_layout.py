"""The layout of ``deepnet.bench``: small modules, each with an ``__all__`` of its own
names, importing one another without a loop."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import deepnet.bench

PACKAGE = Path(deepnet.bench.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "__main__")


def _bench_imports(name: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deepnet.bench."):
            found.add(node.module.split(".")[2])
    return found


@pytest.mark.parametrize("name", MODULES)
def test_modules_are_small_and_export_only_their_own_names(name):
    source = (PACKAGE / f"{name}.py").read_text()
    assert len(source.splitlines()) < 420, f"{name}.py has grown past ~400 lines"
    module = importlib.import_module(f"deepnet.bench.{name}")
    assert isinstance(module.__all__, list)
    for public in module.__all__:
        obj = getattr(module, public)
        origin = getattr(obj, "__module__", module.__name__)
        if isinstance(obj, (type, type(test_modules_are_small_and_export_only_their_own_names))):
            assert origin == module.__name__, f"{name}.{public} is imported from {origin}"


def test_imports_form_a_chain_without_loops():
    graph = {name: _bench_imports(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for dep in graph[name]:
            visit(dep, (*path, name))
        done.add(name)

    for name in MODULES:
        visit(name, ())
    assert "cli" in graph and not any("cli" in deps for deps in graph.values())
