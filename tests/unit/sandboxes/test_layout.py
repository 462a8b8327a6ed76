"""The sandboxes' module layout: one package per vendor over a shared ``core``, no import cycle.

The import graph is read from the source with ``ast`` rather than from ``sys.modules``, so every
import counts wherever it is written: at module level, inside a function, or under
``if TYPE_CHECKING:`` (a cycle hidden in any of those is still a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "ledgerlink_local.sandboxes"
SANDBOXES_DIR = Path(__file__).resolve().parents[3] / "local" / "ledgerlink_local" / "sandboxes"
SHARED = f"{PACKAGE}.core"
VENDORS = ("qbo", "hubspot", "graph")

ImportGraph = Mapping[str, frozenset[str]]


def module_names(package_dir: Path, package: str) -> dict[str, Path]:
    """Every module under ``package_dir``, by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def imported_modules(name: str, path: Path, known: Mapping[str, Path]) -> frozenset[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its source."""
    package_parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from pkg import sub`` imports the submodule; ``from pkg import name`` the package.
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    return frozenset(target for target in targets if target in known and target != name)


def import_graph(package_dir: Path, package: str) -> dict[str, frozenset[str]]:
    known = module_names(package_dir, package)
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def find_cycle(graph: ImportGraph) -> list[str] | None:
    """One import cycle as the path ``[a, b, ..., a]``, or None when the graph has none."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def vendor_of(module: str) -> str | None:
    parts = module.removeprefix(PACKAGE + ".").split(".")
    return parts[0] if parts[0] in VENDORS else None


def test_the_graph_sees_imports_hidden_in_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    # given a package whose only cycle runs through a function-level and a TYPE_CHECKING import
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.low import VALUE\n")
    (package / "sub" / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.top import Top\nVALUE = 1\n"
    )
    (package / "top.py").write_text("def build():\n    from .sub import low\n    return low\n")
    # when its graph is built
    graph = import_graph(package, "pkg")
    # then both hidden imports are edges and the cycle is found
    assert graph["pkg.top"] == {"pkg.sub.low"}
    assert graph["pkg.sub.low"] == {"pkg.top"}
    assert graph["pkg.sub"] == {"pkg.sub.low"}
    assert find_cycle(graph) == ["pkg.sub.low", "pkg.top", "pkg.sub.low"]


def test_the_sandboxes_have_no_import_cycle() -> None:
    graph = import_graph(SANDBOXES_DIR, PACKAGE)
    assert find_cycle(graph) is None


def test_each_module_is_core_or_belongs_to_one_vendor_package() -> None:
    graph = import_graph(SANDBOXES_DIR, PACKAGE)
    strays = sorted(m for m in graph if m not in (PACKAGE, SHARED) and vendor_of(m) is None)
    assert strays == []
    assert all((SANDBOXES_DIR / vendor / "__main__.py").is_file() for vendor in VENDORS)


def test_vendor_packages_share_only_core() -> None:
    graph = import_graph(SANDBOXES_DIR, PACKAGE)
    crossing = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if target != SHARED and vendor_of(target) != vendor_of(module)
    )
    # and core, shared by all three, imports none of them
    assert crossing == []
    assert graph[SHARED] == frozenset()
