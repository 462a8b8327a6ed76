"""Helpers for the Graph sandbox tests: the demo app's client-credentials token request (as
Entra ID documents it) and recorded payloads."""

from __future__ import annotations

import json
from typing import Any

import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoCredentials
from tests.conftest import FIXTURES

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def fixture(name: str) -> dict[str, Any]:
    """A recorded request body from tests/fixtures/graph/."""
    return json.loads((FIXTURES / "graph" / name).read_text())


def token_form(**overrides: str | None) -> dict[str, str]:
    """The demo app's client-credentials form; an override of None leaves that field out."""
    form = {
        "grant_type": "client_credentials",
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)  # type: ignore[arg-type]
    return {name: value for name, value in form.items() if value is not None}


def get_token(server: SandboxServer, **overrides: str | None) -> requests.Response:
    credentials = DemoCredentials.for_sandbox(server.url)
    return requests.post(credentials.token_url, data=token_form(**overrides), timeout=5)


def bearer(server: SandboxServer, **overrides: str | None) -> dict[str, str]:
    """An Authorization header carrying a fresh token (the demo app's unless overridden)."""
    return {"Authorization": f"Bearer {get_token(server, **overrides).json()['access_token']}"}
