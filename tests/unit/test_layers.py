"""The package's layers, read from the source: one direction only, no circles.

Every ``import`` in ``netns_kit`` (at any depth, ``TYPE_CHECKING`` blocks
included) is resolved to the module it names. A module may import its own
subpackage and the layers below it, never a layer above, never a peer it is
declared independent of, and never from inside a function: lazy imports are
allowed in ``netns_kit/__init__.py`` only (the public names, for import speed).
The import graph between modules has no circle.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "netns_kit"

#: Low to high. Each entry: the layer's modules (a subpackage or top-level modules).
#: A module may import its own layer and every layer before it.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "values",
        frozenset(
            {
                "command",
                "errors",
                "iptables_save",
                "shape",
                "sysctl_keys",
                "owner",
                "validate",
                "units",
                "impairment",
                "signals",
                "statedir",
                "version",
            }
        ),
    ),
    ("batching", frozenset({"batching"})),
    ("executors", frozenset({"executors"})),
    ("linkemu", frozenset({"linkemu"})),
    ("lifecycle", frozenset({"lifecycle"})),
    ("firewall", frozenset({"firewall"})),
    ("resources", frozenset({"resources"})),
    ("ops, topology", frozenset({"ops", "topology"})),
    ("entry points", frozenset({"cli", "testing", "pytest_plugin", "demo", "__main__"})),
)

#: Peers in one layer that must not import each other.
INDEPENDENT: tuple[tuple[str, str], ...] = (("ops", "topology"),)

#: What the package root may import lazily (its public names).
LAZY_OK = frozenset({"netns_kit"})


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _top(module: str) -> str:
    """``netns_kit.executors.base`` -> ``executors``; ``netns_kit.errors`` -> ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(module: str) -> int:
    top = _top(module)
    for rank, (_, members) in enumerate(LAYERS):
        if top in members:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {__file__}")


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, bool, int]]:
    """(imported netns_kit module, inside a function?, line) for every import in a file."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, bool, int]] = []

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "netns_kit":
                        found.append((_known(alias.name), in_function, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                target = resolve(child)
                if target.split(".")[0] == "netns_kit":
                    for alias in child.names:
                        name = f"{target}.{alias.name}"
                        found.append((name if name in MODULES else _known(target), in_function, child.lineno))
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, inner)

    visit(tree, False)
    return found


def _known(name: str) -> str:
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _violations() -> set[str]:
    problems: set[str] = set()
    for module, path in MODULES.items():
        if module == "netns_kit":
            continue
        rank = _layer(module)
        for target, in_function, line in _imports(module, path):
            where = f"{module}:{line} -> {target}"
            if in_function and module not in LAZY_OK:
                problems.add(f"function-level import {where}")
            if target == "netns_kit":
                problems.add(f"imports the package root {where}")
                continue
            target_rank = _layer(target)
            if target_rank > rank:
                problems.add(f"upward import ({LAYERS[rank][0]} -> {LAYERS[target_rank][0]}) {where}")
            for a, b in INDEPENDENT:
                if {_top(module), _top(target)} == {a, b}:
                    problems.add(f"{a} and {b} are independent {where}")
    return problems


def _circles() -> list[list[str]]:
    graph = {m: sorted({t for t, _, _ in _imports(m, p) if t != m and t in MODULES}) for m, p in MODULES.items()}
    graph["netns_kit"] = []  # the root's lazy public names are not part of the graph
    circles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    return circles


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != "netns_kit":
            _layer(module)


def test_no_upward_import_no_lazy_import() -> None:
    assert sorted(_violations()) == []


def test_no_import_circle() -> None:
    assert _circles() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from netns_kit.topology.topology import Topology\n", "upward import (firewall -> ops, topology)"),
        ("def f():\n    from netns_kit.executors import base\n", "function-level import"),
        ("from netns_kit import sandbox\n", "imports the package root"),
    ],
)
def test_the_checker_finds_what_it_should(
    source: str, expected: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks can fail: an upward, a lazy and a root import in a made-up firewall module are found."""
    fake = tmp_path / "fake.py"
    fake.write_text(source)
    monkeypatch.setitem(MODULES, "netns_kit.firewall.fake", fake)
    assert any(p.startswith(expected) and "netns_kit.firewall.fake:" in p for p in _violations())


def test_the_checker_finds_a_circle(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from netns_kit.firewall import b\n")
    b.write_text("from netns_kit.firewall import a\n")
    monkeypatch.setitem(MODULES, "netns_kit.firewall.a", a)
    monkeypatch.setitem(MODULES, "netns_kit.firewall.b", b)
    assert ["netns_kit.firewall.a", "netns_kit.firewall.b", "netns_kit.firewall.a"] in _circles()
