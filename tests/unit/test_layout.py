"""Each flow has a room of its own and none reaches into another's (docs/architecture.md#layout).

The import graph of ``functions/`` (and of ``local/`` and ``infra/``, which use the package too) is read
with :mod:`ast`, every import counted, lazy ones and ``TYPE_CHECKING`` ones included. A flow's room is
imported from outside only by its Lambda handler (tests aside); the shared rooms (the consumer
machinery, the crosswalk, the configuration/mapping layer, the vendor clients, ...) never import a flow;
and no ``ledgerlink`` module imports itself back through others. A new room under ``functions/ledgerlink``
must be named here as a flow or as shared, so the rules hold for it from its first commit.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LEDGERLINK = REPO_ROOT / "functions" / "ledgerlink"

# A flow's room -> the modules outside it that may import it: its Lambda handler.
FLOWS: Mapping[str, frozenset[str]] = {
    # The CDC catch-up also runs from the command line (`ledgerlink catchup`).
    "ledgerlink.catchup": frozenset({"qbo_catchup.handler", "ledgerlink.cli.catchup"}),
    "ledgerlink.calendar_sync": frozenset({"outlook_calendar_sync.handler"}),
    # The deal flow also runs from the command line and as a job: the historical backfill (`ledgerlink
    # backfill`, the self-re-enqueuing qbo_backfill Lambda), and reconcile and plan, which read its diff
    # and repair through it (`ledgerlink reconcile`, `plan`).
    "ledgerlink.deal_sync": frozenset(
        {
            "hubspot_deal_sync.handler",
            "qbo_backfill.handler",
            "ledgerlink.cli.backfill",
            "ledgerlink.cli.reconcile",
            # The scheduled reconciliation (report only) runs as a Lambda of its own.
            "qbo_reconcile.handler",
        }
    ),
    "ledgerlink.document_sync": frozenset({"qbo_document_sync.handler"}),
    # The follow-up sweep also runs from the command line (`ledgerlink followups sweep`).
    "ledgerlink.followups": frozenset({"teams_invite.handler", "ledgerlink.cli.followups"}),
    # Webhooks in: the QBO ingest and the HubSpot ingest share its archive, ports and fakes.
    "ledgerlink.ingest": frozenset({"qbo_ingest.handler", "hubspot_ingest.handler", "ledgerlink.cli.replay"}),
}
# What the flows share. They import these; these import no flow.
SHARED: frozenset[str] = frozenset(
    {
        "ledgerlink.apigw",
        "ledgerlink.audit",
        "ledgerlink.clock",
        "ledgerlink.config",
        "ledgerlink.configfile",
        "ledgerlink.consumer",
        "ledgerlink.crosswalk",
        "ledgerlink.dates",
        "ledgerlink.events",
        "ledgerlink.graph",
        "ledgerlink.history",
        "ledgerlink.http",
        "ledgerlink.hubspot",
        "ledgerlink.idempotency",
        "ledgerlink.mapping",
        "ledgerlink.money",
        "ledgerlink.observability",
        "ledgerlink.outlook_items",
        "ledgerlink.publisher",
        "ledgerlink.qbo",
        "ledgerlink.schemas",
        "ledgerlink.secrets",
        "ledgerlink.tables",
    }
)
# The ledgerlink command: it imports shared rooms, and a flow only from a command module named in that
# flow's FLOWS entry (`ledgerlink followups sweep` runs the follow-up sweep).
COMMANDS: frozenset[str] = frozenset({"ledgerlink.cli"})

# Where importing code lives, and the folder its module names are relative to.
SOURCE_ROOTS: tuple[tuple[Path, Path], ...] = (
    (REPO_ROOT / "functions", REPO_ROOT / "functions"),
    (REPO_ROOT / "local", REPO_ROOT / "local"),
    (REPO_ROOT / "infra", REPO_ROOT),
)


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[tuple[str, Path]]:
    for folder, base in SOURCE_ROOTS:
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts:
                yield _module_name(path, base), path


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module name -> the modules it imports (for ``from a import b``: ``a.b`` when that is a module)."""
    sources = dict(_sources())
    graph: dict[str, frozenset[str]] = {}
    for name, path in sources.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join([*anchor, node.module] if node.module else anchor)
                else:
                    target = node.module or ""
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    imported.add(submodule if submodule in sources else target)
        graph[name] = frozenset(imported)
    return graph


def _in(module: str, room: str) -> bool:
    return module == room or module.startswith(f"{room}.")


def test_the_graph_sees_the_imports_a_handler_makes() -> None:
    # given the import graph; then it holds what is plainly there (the rules below are not vacuous)
    graph = import_graph()
    assert "ledgerlink.deal_sync.factory" in graph["hubspot_deal_sync.handler"]
    assert "ledgerlink.mapping.properties" in graph["ledgerlink.hubspot.setup"]
    assert "ledgerlink.consumer.outcome" in graph["ledgerlink.deal_sync.service"]


def test_every_room_of_the_package_is_named_a_flow_shared_or_a_command() -> None:
    # given the modules and packages directly under functions/ledgerlink
    top_level = {
        f"ledgerlink.{path.stem}" if path.is_file() else f"ledgerlink.{path.name}"
        for path in LEDGERLINK.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    # then each is named here exactly once, so the rules below apply to it
    named = [*FLOWS, *SHARED, *COMMANDS]
    assert len(named) == len(set(named))
    assert top_level == set(named)


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_a_flow_is_imported_from_outside_its_room_only_by_its_lambda_handler(flow: str) -> None:
    importers = {
        module
        for module, imported in import_graph().items()
        if not _in(module, flow) and any(_in(target, flow) for target in imported)
    }
    assert importers <= FLOWS[flow], f"{sorted(importers - FLOWS[flow])} import {flow}"


@pytest.mark.parametrize("room", sorted(SHARED | COMMANDS))
def test_the_shared_rooms_and_the_command_import_no_flow(room: str) -> None:
    # (a command module a flow's FLOWS entry names may import that flow: the test above bounds who)
    reaching = {
        f"{module} -> {target}"
        for module, imported in import_graph().items()
        if _in(module, room)
        for target in imported
        for flow, importers in FLOWS.items()
        if _in(target, flow) and not (room in COMMANDS and module in importers)
    }
    assert not reaching, sorted(reaching)


def test_no_ledgerlink_module_imports_itself_back_through_others() -> None:
    # given the graph between ledgerlink modules
    graph = {
        module: {target for target in imported if _in(target, "ledgerlink") and target in import_graph()}
        for module, imported in import_graph().items()
        if _in(module, "ledgerlink")
    }
    # then it has no cycle (depth-first search; a module met again while on the path closes one)
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, [" -> ".join(cycle) for cycle in cycles]
