"""The import graph of our packages, read with ast (nothing is imported), for the layering tests.

Every import counts, also one inside a function (a lazy import still runs, only later), but
none under ``if TYPE_CHECKING:``. Importing
``a.b.c`` from outside ``a.b`` also runs ``a.b``'s ``__init__``, so the graph has that edge too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

Graph = dict[str, set[str]]


def module_name(root: Path, path: Path) -> str:
    """``aggregator/fetch/http.py`` → ``aggregator.fetch.http``; a package is its ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(root: Path, packages: Iterable[str]) -> Graph:
    """Module → the modules (ours) and top-level names (others') that it imports."""
    paths = {module_name(root, p): p
             for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    graph: Graph = {}
    for name, path in paths.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for target in _imports(path, name, is_package, paths):
            targets.add(target)
            targets.update(_parents_entered(name, target, paths))
        targets.discard(name)
        graph[name] = targets
    return graph


def _imports(path: Path, name: str, is_package: bool, ours: Mapping[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name, ours) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in ours else _resolve(base, ours))
    found.discard("__future__")
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``, which never run."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The module a ``from … import`` names, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = name.split(".") if is_package else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _resolve(module: str, ours: Mapping[str, Path]) -> str:
    """Our module by its full name; anyone else's by its top-level name (``httpx``)."""
    return module if module in ours else module.split(".")[0]


def _parents_entered(importer: str, target: str, ours: Mapping[str, Path]) -> set[str]:
    """The packages whose ``__init__`` runs first: those of ``target`` not holding ``importer``."""
    parts = target.split(".")
    parents = {".".join(parts[:i]) for i in range(1, len(parts))}
    return {p for p in parents if p in ours and not importer.startswith(p + ".")}


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    """Everything ``start`` loads, directly or through what it imports."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), set()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, …, a]``, or None: a depth-first search over our modules."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, set())):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target in graph and target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None
