"""The stages import in one direction, leaves stay leaves, private modules stay home, no circles.

Stages, in order: ``data`` → ``virtual_lab`` → ``design`` → ``surrogates`` → ``optimize`` →
``tracking`` → ``api`` / ``cli``. A module imports only from its own stage, earlier stages and
the foundation modules (``poreml/__init__.py``, ``exceptions.py``, ``settings.py``,
``tracker.py``), which themselves import no stage. Every import counts: module level, inside
functions and under ``if TYPE_CHECKING:``. The circle check looks at the imports that run when a
module is imported (module level, not under ``if TYPE_CHECKING:``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import poreml

PACKAGE = Path(poreml.__file__).resolve().parent

STAGES: dict[str, int] = {
    "data": 0,
    "virtual_lab": 1,
    "design": 2,
    "surrogates": 3,
    "optimize": 4,
    "tracking": 5,
    "api": 6,
    "cli": 6,
}
"""Stage of each subpackage; a module may import its own stage or an earlier one."""

FOUNDATION: frozenset[str] = frozenset(
    {"poreml", "poreml.exceptions", "poreml.settings", "poreml.tracker"}
)
"""Modules any stage may import; they import no stage."""

FOUNDATION_STAGE = -1
LEAVES: frozenset[str] = frozenset({"api", "cli"})


@dataclass(frozen=True)
class Edge:
    """One import: ``importer`` imports ``imported`` at ``line``."""

    importer: str
    imported: str
    line: int
    at_import_time: bool

    def __str__(self) -> str:
        where = "" if self.at_import_time else " (inside a function or TYPE_CHECKING)"
        return f"{self.importer} -> {self.imported}  [{_path(self.importer)}:{self.line}]{where}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _path(module: str) -> str:
    return str(_modules()[module].relative_to(PACKAGE.parent))


def _stage(module: str) -> int:
    if module in FOUNDATION:
        return FOUNDATION_STAGE
    return STAGES[module.split(".")[1]]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, at_import_time: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Every import node under ``tree`` with whether it runs when the module is imported."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, at_import_time
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _imports(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for stmt in child.body:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), False)
            for stmt in child.orelse:
                yield from _imports(ast.Module(body=[stmt], type_ignores=[]), at_import_time)
        else:
            yield from _imports(child, at_import_time)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """Absolute module name of a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    is_package = _modules()[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


@cache
def _edges() -> tuple[Edge, ...]:
    modules = _modules()
    edges: list[Edge] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, at_import_time in _imports(tree, True):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve(name, node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            for target in targets:
                # `import poreml.a.b` names the deepest poreml module that exists
                while target and target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    edges.append(Edge(name, target, node.lineno, at_import_time))
    return tuple(dict.fromkeys(edges))  # one edge per import statement, in file order


def _report(title: str, offenders: list[Edge]) -> str:
    lines = "\n  ".join(str(e) for e in offenders)
    return f"{len(offenders)} {title}:\n  {lines}"


def test_every_module_has_a_stage() -> None:
    unknown = [m for m in _modules() if m not in FOUNDATION and m.split(".")[1] not in STAGES]
    assert not unknown, f"modules outside every stage and the foundation: {unknown}"


def test_no_module_imports_a_later_stage() -> None:
    offenders = [e for e in _edges() if _stage(e.imported) > _stage(e.importer)]
    assert not offenders, _report(
        "imports of a later stage (order: foundation, "
        + " -> ".join(STAGES)
        + "); move the idea to the earlier stage or import in the other direction",
        offenders,
    )


def test_api_and_cli_are_leaves() -> None:
    offenders = [
        e
        for e in _edges()
        if e.imported.split(".")[1:2] and e.imported.split(".")[1] in LEAVES
        if e.importer in FOUNDATION
        or e.importer.split(".")[1] not in LEAVES
        or (e.importer.split(".")[1] == "api" and e.imported.split(".")[1] == "cli")
    ]
    assert not offenders, _report(
        "imports of api or cli from elsewhere (only cli may import api)", offenders
    )


def test_private_modules_are_imported_only_within_their_stage() -> None:
    def private(module: str) -> bool:
        return any(part.startswith("_") for part in module.split(".")[1:])

    def stage_package(module: str) -> str:
        return module if module in FOUNDATION else module.split(".")[1]

    offenders = [
        e
        for e in _edges()
        if private(e.imported) and stage_package(e.importer) != stage_package(e.imported)
    ]
    assert not offenders, _report(
        "imports of a private module (_name.py) from another stage; make it public or move "
        "the caller's need into the owning stage",
        offenders,
    )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge found by an iterative depth-first search."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    found: list[list[str]] = []
    for root in sorted(graph):
        if colour[root] != white:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(sorted(graph[root]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                stack.pop()
            elif colour[nxt] == grey:
                found.append([*path[path.index(nxt) :], nxt])
            elif colour[nxt] == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_module_level_imports_have_no_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    for e in _edges():
        if e.at_import_time:
            graph[e.importer].add(e.imported)
    cycles = _cycles(graph)
    assert not cycles, f"{len(cycles)} import cycles:\n  " + "\n  ".join(
        " -> ".join(c) for c in cycles
    )
