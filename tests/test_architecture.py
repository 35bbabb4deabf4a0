"""The house stays readable: no import cycles in engine/ and plugins/ (imports under TYPE_CHECKING and inside
functions included), and plugins use only what ``imgx`` and its documented public subpackages export."""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from _support import REPO

# The public subpackages a plugin may import from (each with an __all__), besides the top-level imgx package.
PUBLIC = (
    "imgx",
    "imgx.arrays",
    "imgx.color",
    "imgx.models",
    "imgx.runtime",
    "imgx.registry",
    "imgx.executors",
    "imgx.io",
    "imgx.cli.toolkit",
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    roots = [(REPO / "engine", REPO / "engine" / "imgx")]
    roots += [(REPO / "plugins", path) for path in sorted((REPO / "plugins").glob("imgx_*"))]
    for base, package in roots:
        for path in package.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


#: run in a fresh interpreter: every file's import statements as ``[level, module, names or None]``
_STATEMENTS = """
import ast, json, sys
found = {}
for path in sys.argv[1:]:
    rows = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            rows += [[0, alias.name, None] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            rows.append([node.level, node.module, [alias.name for alias in node.names]])
    found[path] = rows
print(json.dumps(found))
"""


@functools.cache
def _statements() -> dict[str, list]:
    """Every module's import statements, parsed in a fresh interpreter: CPython 3.11 before 3.11.9 can fail
    ``ast.parse`` with "AST constructor recursion depth mismatch" once something earlier in the same process left the
    AST converter's depth counter off (gh-106905), which a run of the suite on pytest-xdist workers met."""
    done = subprocess.run(
        [sys.executable, "-c", _STATEMENTS, *map(str, MODULES.values())], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def _imports(name: str, path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """``(module, names)`` for every import statement of the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for level, module, names in _statements()[str(path)]:
        if names is None:  # import x.y
            found.append((module, ()))
        elif level:
            base = package.split(".")
            base = base[: len(base) - level + 1]
            found.append((".".join([*base, module] if module else base), tuple(names)))
        else:
            found.append((module or "", tuple(names)))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            for candidate in [f"{target}.{n}" for n in names] + [target]:
                if candidate in MODULES and candidate != name:
                    graph[name].add(candidate)
                    break
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycles() -> None:
    graph = _graph()
    # a package's __init__ re-exports its modules: an edge into a package is an edge to what it re-exports, and a
    # module importing a sibling through its package (``from . import x``) resolves to the sibling above
    assert _cycles(graph) == []
    assert graph["imgx.registry"] <= {"imgx.hookspecs", "imgx.errors"}, "the plugin host sits at the bottom"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("imgx_")))
def test_plugins_import_only_public_names(name: str) -> None:
    for target, names in _imports(name, MODULES[name]):
        if not target.startswith("imgx") or target.startswith("imgx_") or target == "imgx_" + name.split(".")[0]:
            continue
        assert target in PUBLIC, f"{name} imports {target}; plugins import only from {', '.join(PUBLIC)}"
        exported = set(importlib.import_module(target).__all__)
        missing = [n for n in names if n not in exported and f"{target}.{n}" not in MODULES]
        assert not missing, f"{name} imports {missing} from {target}, which does not export them"
