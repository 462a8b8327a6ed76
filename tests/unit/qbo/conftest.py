"""Fixtures for the QBO client tests: a QboClient on the in-process QBO sandbox, and the requests it sent."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest
import requests

from ledgerlink.clock import Clock
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.policy import VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.qbo.client import QboClient
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
)
from tests.integration.test_deal_sync_support import Capture


def demo_access_token(base_url: str) -> str:
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    response = requests.post(
        f"{base_url}/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": DEMO_REFRESH_TOKEN},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Capture:
    sent = Capture()
    sent.install(monkeypatch)
    return sent


def make_client(server: SandboxServer, *, clock: Clock | None = None) -> QboClient:
    """A QboClient on ``server`` with the demo app's token; ``clock`` (a ManualClock) makes retries instant."""
    token = demo_access_token(server.url)

    def auth(*, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {token}"}

    policy = VendorPolicy(
        vendor="qbo", base_url=server.url, rate_limits={DEFAULT_GROUP: (RateLimit(10, 1.0),)}
    )
    return QboClient(in_process_client(policy, auth, clock=clock), minor_version="75")


@pytest.fixture
def client(qbo_sandbox: SandboxServer, capture: Capture) -> QboClient:
    made = make_client(qbo_sandbox)
    capture.clear()
    return made


def company(server: SandboxServer) -> Any:
    """The demo company's in-memory state (tests read it directly to check the effect)."""
    return server.sandbox.companies[DEMO_REALM_ID]  # type: ignore[attr-defined]
