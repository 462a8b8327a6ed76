"""Helpers for the QBO sandbox tests: a thin raw-HTTP client in Intuit's documented shape, recorded
payloads, and a webhook receiver that answers with scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_COMPANY, DemoCompany, DemoCredentials
from tests.conftest import FIXTURES

PAYLOADS = FIXTURES / "qbo_sandbox"


def payload(name: str) -> Any:
    """A recorded request body from tests/fixtures/qbo_sandbox/."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


class QboApi:
    """Raw requests exactly as Intuit documents them (Bearer token, JSON, ``minorversion``)."""

    def __init__(
        self, server: SandboxServer, *, minor_version: str = "75", company: DemoCompany = DEMO_COMPANY
    ) -> None:
        self.server = server
        self.credentials = DemoCredentials.for_sandbox(server.url, company)
        self.realm = self.credentials.realm_id
        self.minor_version = minor_version
        self._access_token: str | None = None
        self.latest_refresh_token = self.credentials.refresh_token  # persisted, as a client must

    # ---- OAuth

    def refresh(
        self, refresh_token: str | None = None, *, auth: tuple[str, str] | None = None
    ) -> requests.Response:
        """Refresh with the given token, or with the newest one this client holds (then keep the new one)."""
        answer = requests.post(
            self.credentials.token_url,
            auth=auth or (self.credentials.client_id, self.credentials.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": refresh_token or self.latest_refresh_token},
            headers={"Accept": "application/json"},
        )
        if refresh_token is None and answer.status_code == 200:
            self.latest_refresh_token = answer.json()["refresh_token"]
        return answer

    @property
    def access_token(self) -> str:
        if self._access_token is None:
            answer = self.refresh()
            assert answer.status_code == 200, answer.text
            self._access_token = answer.json()["access_token"]
        return self._access_token

    def renew(self) -> None:
        """Forget the access token (after the clock moved past its hour); the next call refreshes."""
        self._access_token = None

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.access_token}", "Accept": "application/json"}

    # ---- Accounting API

    def url(self, path: str, realm: str | None = None) -> str:
        return f"{self.server.url}/v3/company/{realm or self.realm}/{path.lstrip('/')}"

    def get(self, path: str, token: str | None = None, **params: Any) -> requests.Response:
        params.setdefault("minorversion", self.minor_version)
        return requests.get(self.url(path), params=params, headers=self.headers(token))

    def post(self, path: str, body: Any, token: str | None = None, **params: Any) -> requests.Response:
        params.setdefault("minorversion", self.minor_version)
        headers = {**self.headers(token), "Content-Type": "application/json"}
        return requests.post(self.url(path), params=params, data=json.dumps(body), headers=headers)

    def create(self, entity: str, body: Any, **params: Any) -> requests.Response:
        return self.post(entity.lower(), body, **params)

    def read(self, entity: str, entity_id: str) -> dict[str, Any]:
        answer = self.get(f"{entity.lower()}/{entity_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()[entity]  # type: ignore[no-any-return]

    def created(self, entity: str, body: Any, **params: Any) -> dict[str, Any]:
        answer = self.create(entity, body, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()[entity]  # type: ignore[no-any-return]

    def query(self, statement: str) -> requests.Response:
        return self.get("query", query=statement)

    def query_rows(self, statement: str, entity: str) -> list[dict[str, Any]]:
        answer = self.query(statement)
        assert answer.status_code == 200, answer.text
        return answer.json()["QueryResponse"].get(entity, [])  # type: ignore[no-any-return]

    # ---- admin

    def admin(self, method: str, action: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.server.url}/_admin/{action}", json=body)

    def configure(self, **changes: Any) -> None:
        assert self.admin("PATCH", "config", changes).status_code == 200

    def advance_clock(self, seconds: float) -> None:
        assert self.admin("POST", "clock", {"advance_seconds": seconds}).status_code == 200


def fault(answer: requests.Response) -> dict[str, Any]:
    """The first Error of a QBO Fault body."""
    body = answer.json()
    return body["Fault"]["Error"][0]  # type: ignore[no-any-return]


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    """An HTTP endpoint that records each POST and answers with the next scripted status (then 200)."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""
    _condition: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Block until ``count`` deliveries arrived (the dispatcher delivers on its own thread)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.deliveries) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"only {len(self.deliveries)} of {count} webhook deliveries arrived"
                self._condition.wait(remaining)
            return list(self.deliveries)


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver._condition:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.deliveries.append(Delivery(body, {k.lower(): v for k, v in self.headers.items()}))
                receiver._condition.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/qbo"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
