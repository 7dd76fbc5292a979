"""The import structure holds what ``docs/architecture.md`` says: floors, and no import cycle.

Every module of the package is parsed (imports inside functions included); an import of a
package the table does not allow, or any cycle between modules, fails with the modules named.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
ROOT = "logwarden"


def _floor_table() -> dict[str, set[str] | None]:
    """package -> the packages it may import (None: any), from the table in the architecture doc."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- floors: .*?-->(.*?)<!-- end floors -->", text, re.S)
    assert block, f"{DOC}: the floors table (between the 'floors' comments) is missing"
    table: dict[str, set[str] | None] = {}
    for line in block.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith(ROOT):
            continue
        allowed = cells[1]
        table[cells[0]] = None if allowed == "*" else {name.strip() for name in allowed.split(",") if name.strip()}
    return table


def _folder_of(package: str) -> Path:
    return REPO / (ROOT if package == ROOT else package.split(".", 1)[1])


def _modules(table: dict[str, set[str] | None]) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    modules: dict[str, Path] = {}
    for package in table:
        folder = _folder_of(package)
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder).with_suffix("")
            parts = [part for part in relative.parts if part != "__init__"]
            if package == ROOT and parts and f"{ROOT}.{parts[0]}" in table:
                continue  # a layer's folder never sits inside logwarden/, but be safe
            modules[".".join([package, *parts])] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports (resolving ``from X import submodule``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] == ROOT and target != name:
                found.add(target)
    return found


def _owner(module: str, table: dict[str, set[str] | None]) -> str:
    return max((package for package in table if module == package or module.startswith(package + ".")), key=len)


def _graph() -> tuple[dict[str, set[str] | None], dict[str, set[str]]]:
    table = _floor_table()
    modules = _modules(table)
    return table, {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_table_names_every_folder_that_setup_maps() -> None:
    table = _floor_table()
    setup = (REPO / "setup.py").read_text(encoding="utf-8")
    mapped = set(re.findall(r'^\s+"(\w+)": "(\w+)",$', setup, re.M))
    assert mapped, "setup.py LAYERS mapping not found"
    assert {f"{ROOT}.{name}" for name, _ in mapped} | {ROOT} == set(table)
    assert all(name == folder for name, folder in mapped), "each folder is mapped to its own name"


def test_no_layer_imports_a_package_above_it() -> None:
    table, graph = _graph()
    wrong = []
    for module, targets in graph.items():
        owner = _owner(module, table)
        allowed = table[owner]
        if allowed is None:
            continue
        for target in targets:
            target_owner = _owner(target, table)
            if target_owner != owner and target_owner not in allowed:
                wrong.append(f"{module} imports {target} ({owner} may import: {', '.join(sorted(allowed)) or 'nothing'})")
    assert not wrong, "imports the floors of docs/architecture.md forbid:\n" + "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_between_modules() -> None:
    _, graph = _graph()
    cycles = _cycles(graph)
    assert not cycles, "modules that import each other in a loop:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(edges) == expected


def test_the_floor_check_sees_an_upward_import(tmp_path: Path) -> None:
    """A module of a lower floor that imports a higher one is reported (the check can fail)."""
    table = _floor_table()
    modules = _modules(table)
    probe = tmp_path / "probe.py"
    probe.write_text("from logwarden.alerting.service import AlertService\nfrom . import lake\n")
    targets = _imports("logwarden.storage.probe", probe, modules)
    assert targets == {"logwarden.alerting.service", "logwarden.storage.lake"}
    assert "logwarden.alerting" not in table["logwarden.storage"]
