"""Support for the HubSpot sandbox tests: an authenticated client, spec checks, recorded
payloads and a webhook receiver. (No tests here; the other test_hubspot_* modules import it.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from tests.conftest import FIXTURES
from tests.openapi import validate_http_response

HUBSPOT_FIXTURES = FIXTURES / "hubspot"
SPEC_BY_TYPE = {
    "deals": "deals.json",
    "0-3": "deals.json",
    "contacts": "contacts.json",
    "companies": "companies.json",
    "line_items": "lineItems.json",
    "products": "products.json",
}


def payload(name: str) -> Any:
    """A recorded request payload from tests/fixtures/hubspot/."""
    return json.loads((HUBSPOT_FIXTURES / name).read_text(encoding="utf-8"))


class HubSpotApi:
    """requests against the sandbox with the demo private-app token."""

    def __init__(self, server: SandboxServer, token: str | None = DEMO_ACCESS_TOKEN) -> None:
        self.server = server
        self.url = server.url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PATCH", path, json=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.call("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("DELETE", path, **kwargs)

    def admin(self, method: str, action: str, body: Any = None) -> Any:
        answer = requests.request(method, f"{self.url}/_admin/{action}", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def configure(self, **options: Any) -> None:
        self.admin("PATCH", "config", options)


def checked(spec_file: str, response: requests.Response, status: int | None = None) -> requests.Response:
    """Assert the status (if given) and that the response matches HubSpot's spec."""
    if status is not None:
        assert response.status_code == status, f"{response.status_code}: {response.text[:800]}"
    validate_http_response(spec_file, response)
    return response


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """An HTTP endpoint that records deliveries and answers with a scripted status sequence."""

    statuses: list[int] = field(default_factory=list)  # consumed in order; 200 afterwards
    received: list[ReceivedRequest] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append(
                    ReceivedRequest("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/hubspot?source=sandbox"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.received for event in json.loads(request.body)]


@pytest.fixture
def hubspot(hubspot_sandbox: SandboxServer) -> HubSpotApi:
    return HubSpotApi(hubspot_sandbox)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver().start()
    yield running
    running.stop()
