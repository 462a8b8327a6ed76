"""pytest fixtures that run the vendor sandboxes in-process on free ports.

One server per vendor per test session (starting is cheap, but sharing keeps the suite
fast); every test gets it freshly reset to the seeded base data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledgerlink_local.sandboxes.core import Sandbox, SandboxServer


def _serve(sandbox: Sandbox) -> Iterator[SandboxServer]:
    server = SandboxServer(sandbox).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _qbo_server() -> Iterator[SandboxServer]:
    from ledgerlink_local.sandboxes.qbo import QboSandbox

    yield from _serve(QboSandbox())


@pytest.fixture(scope="session")
def _hubspot_server() -> Iterator[SandboxServer]:
    from ledgerlink_local.sandboxes.hubspot import HubSpotSandbox

    yield from _serve(HubSpotSandbox())


@pytest.fixture(scope="session")
def _graph_server() -> Iterator[SandboxServer]:
    from ledgerlink_local.sandboxes.graph import GraphSandbox

    yield from _serve(GraphSandbox())


def _fresh(server: SandboxServer, config: dict[str, Any] | None = None) -> SandboxServer:
    server.sandbox.reset()
    server.sandbox.update_config({"rate_limits_enabled": True, "webhook_url": None, **(config or {})})
    return server


@pytest.fixture
def qbo_sandbox(_qbo_server: SandboxServer) -> SandboxServer:
    """The QBO sandbox, reset to the demo company, rate limits on, no webhook target."""
    return _fresh(_qbo_server)


@pytest.fixture
def hubspot_sandbox(_hubspot_server: SandboxServer) -> SandboxServer:
    """The HubSpot sandbox, reset to its base portal, rate limits on, no webhook target."""
    return _fresh(_hubspot_server)


@pytest.fixture
def graph_sandbox(_graph_server: SandboxServer) -> SandboxServer:
    """The Microsoft Graph sandbox, reset to its base tenant, rate limits on."""
    return _fresh(_graph_server)
