"""Building LedgerLink's Graph client against the Graph sandbox, on the sandbox's own clock.

The client and its token provider run on :class:`SandboxTime`: ``now()`` is the sandbox's clock and
``sleep()`` moves that clock forward instead of sleeping, so a Retry-After, a token's expiry and a
rolling window pass for both sides at once, and no test waits in real time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import requests

from ledgerlink.config import Settings
from ledgerlink.configfile import Connection
from ledgerlink.configfile import load as load_config
from ledgerlink.graph.factory import GraphParts, graph_client
from ledgerlink.secrets import InMemorySecretStore, SecretStore
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_CALENDAR_USER,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
)
from tests.conftest import REPO_ROOT

STAGE = "test"
AR_MAILBOX = DEMO_CALENDAR_USER
MARIA = "maria.alvarez@northwind-demo.example"
CONTRACTOR = "contractor@ledgerlinkdemo.onmicrosoft.com"
ENVIRONMENT = {
    "LEDGERLINK_STAGE": STAGE,
    "LEDGERLINK_EVENT_BUS_NAME": "bus",
    "LEDGERLINK_RAW_BUCKET_NAME": "raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "idem",
    "LEDGERLINK_LINKS_TABLE_NAME": "links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "qbo/webhook",
}


class SandboxTime:
    """A :class:`ledgerlink.clock.Clock` on the sandbox's clock: sleeping advances it (and is recorded)."""

    def __init__(self, server: SandboxServer) -> None:
        self._clock = server.sandbox.clock
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._clock.time()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._clock.advance(seconds)


def settings_for(server: SandboxServer, **overrides: str) -> Settings:
    return Settings.from_env(
        {
            **ENVIRONMENT,
            "LEDGERLINK_GRAPH_BASE_URL": f"{server.url}/v1.0",
            "LEDGERLINK_GRAPH_TOKEN_URL": f"{server.url}/{{tenant}}/oauth2/v2.0/token",
            **overrides,
        }
    )


def demo_connection(**changes: Any) -> Connection:
    """The local stack's demo connection (its tenant is the sandbox's), with ``changes``."""
    connection = load_config(REPO_ROOT / "local" / "config" / "local.toml").by_name("demo")
    assert connection is not None
    return dataclasses.replace(connection, **changes)


def graph_secret(**overrides: str | None) -> dict[str, str]:
    secret = {
        "tenant_id": DEMO_TENANT_ID,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        "calendar_user": AR_MAILBOX,
    }
    secret.update(overrides)  # type: ignore[arg-type]
    return {name: value for name, value in secret.items() if value is not None}


def secret_name(connection: Connection | None = None) -> str:
    return (connection or demo_connection()).secret_name(STAGE, "graph")


def demo_secrets(**overrides: str | None) -> InMemorySecretStore:
    return InMemorySecretStore({secret_name(): graph_secret(**overrides)})


def build(
    server: SandboxServer,
    *,
    secrets: SecretStore | None = None,
    connection: Connection | None = None,
    clock: Any = None,
    settings: Settings | None = None,
) -> GraphParts:
    """LedgerLink's Graph client for the demo connection, state in this process, on ``clock``
    (default: the sandbox's)."""
    return graph_client(
        connection or demo_connection(),
        settings or settings_for(server),
        secrets=secrets if secrets is not None else demo_secrets(),
        shared_state=False,
        clock=clock if clock is not None else SandboxTime(server),
    )


def admin(server: SandboxServer, method: str, action: str, body: Mapping[str, Any] | None = None) -> Any:
    reply = requests.request(method, f"{server.url}/_admin/{action}", json=body, timeout=5)
    reply.raise_for_status()
    return reply.json()


def state(server: SandboxServer) -> dict[str, Any]:
    return dict(admin(server, "GET", "state"))


def requests_to(server: SandboxServer, path_prefix: str) -> list[dict[str, Any]]:
    """The sandbox's request log for paths starting with ``path_prefix``: method, path, status."""
    log = requests.get(f"{server.url}/_admin/requests", params={"path_prefix": path_prefix}, timeout=5)
    return list(log.json()["requests"])


def token_requests(server: SandboxServer) -> list[int]:
    """The statuses of the token requests the sandbox received."""
    return [entry["status"] for entry in requests_to(server, f"/{DEMO_TENANT_ID}/oauth2/")]


def all_day(date: str, next_day: str, subject: str = "Invoice 1001 due") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{date}T00:00:00", "timeZone": "America/Los_Angeles"},
        "end": {"dateTime": f"{next_day}T00:00:00", "timeZone": "America/Los_Angeles"},
        "isAllDay": True,
        "showAs": "free",
        "body": {"contentType": "html", "content": "<p>Balance due: USD 1,250.00 (customer data)</p>"},
    }
