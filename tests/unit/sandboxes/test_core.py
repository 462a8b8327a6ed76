"""The machinery every sandbox shares: routing, auth hook, rate limits, faults, admin API, request log."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ledgerlink_local.sandboxes.core import HttpError, RateLimit, Request, Response, Sandbox, SandboxServer
from tests.unit.sandboxes.polling import wait_for


class EchoSandbox(Sandbox):
    vendor = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, str] = {}
        self.add_route("GET", "/v1/items/{item_id}", self.get_item)
        self.add_route("PUT", "/v1/items/{item_id}", self.put_item)
        self.add_route("GET", "/open", lambda request: Response(200, {"open": True}), authenticated=False)

    def authenticate(self, request: Request) -> str:
        if request.headers.get("Authorization") != "Bearer good":
            raise HttpError(Response(401, {"message": "bad token"}))
        return "tenant-1"

    def rate_limits(self, request: Request) -> list[RateLimit]:
        return [RateLimit(scope=str(request.principal), limit=3, window_seconds=10)]

    def get_item(self, request: Request) -> Response:
        item_id = request.path_params["item_id"]
        if item_id not in self.items:
            return Response(404, {"message": "no such item"})
        return Response(200, {"id": item_id, "value": self.items[item_id]})

    def put_item(self, request: Request) -> Response:
        self.items[request.path_params["item_id"]] = request.json()["value"]
        return Response(200, {"stored": True})

    def reset_state(self) -> None:
        self.items.clear()

    def admin_action(self, method: str, action: str, body: object, request: Request) -> Response | None:
        if action == "items/forget" and method == "POST":
            self.items.clear()
            return Response(200, {"forgotten": True})
        return None


@pytest.fixture
def echo() -> Iterator[SandboxServer]:
    with SandboxServer(EchoSandbox()) as server:
        yield server


AUTH = {"Authorization": "Bearer good"}


def test_routes_with_path_parameters_and_auth(echo: SandboxServer) -> None:
    # given a stored item
    assert requests.put(f"{echo.url}/v1/items/a%20b", json={"value": "x"}, headers=AUTH).status_code == 200
    # when it is read with and without a token
    found = requests.get(f"{echo.url}/v1/items/a%20b", headers=AUTH)
    refused = requests.get(f"{echo.url}/v1/items/a%20b")
    # then the token decides, and the decoded path parameter addressed the item
    assert found.json() == {"id": "a b", "value": "x"}
    assert refused.status_code == 401 and refused.json() == {"message": "bad token"}
    assert requests.get(f"{echo.url}/open").json() == {"open": True}
    assert requests.delete(f"{echo.url}/v1/items/x", headers=AUTH).status_code == 405


def test_rate_limit_per_scope_then_retry_after(echo: SandboxServer) -> None:
    statuses = [requests.get(f"{echo.url}/v1/items/none", headers=AUTH).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    # when the admin turns limits off, the same request is admitted again
    requests.patch(f"{echo.url}/_admin/config", json={"rate_limits_enabled": False})
    assert requests.get(f"{echo.url}/v1/items/none", headers=AUTH).status_code == 404
    # and moving the clock past the window frees the budget with limits back on
    requests.patch(f"{echo.url}/_admin/config", json={"rate_limits_enabled": True})
    requests.post(f"{echo.url}/_admin/clock", json={"advance_seconds": 11})
    assert requests.get(f"{echo.url}/v1/items/none", headers=AUTH).status_code == 404


def test_faults_scoped_counted_and_logged(echo: SandboxServer) -> None:
    requests.post(f"{echo.url}/_admin/faults", json={"kind": "503", "path_prefix": "/v1/items", "count": 1})
    first = requests.get(f"{echo.url}/v1/items/a", headers=AUTH)
    second = requests.get(f"{echo.url}/v1/items/a", headers=AUTH)
    assert (first.status_code, second.status_code) == (503, 404)
    requests.post(f"{echo.url}/_admin/faults", json={"kind": "drop", "count": 1})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{echo.url}/v1/items/a", headers=AUTH)
    log = requests.get(f"{echo.url}/_admin/requests").json()["requests"]
    assert [(e["status"], e["fault"]) for e in log] == [(503, "503"), (404, None), (0, "drop")]
    assert requests.post(f"{echo.url}/_admin/faults", json={"kind": "teapot"}).status_code == 400


def test_a_hold_fault_keeps_requests_in_flight_until_the_faults_are_cleared(echo: SandboxServer) -> None:
    # given a hold on /open
    requests.post(
        f"{echo.url}/_admin/faults",
        json={"kind": "hold", "path_prefix": "/open", "delay_seconds": 30},
        timeout=5,
    ).raise_for_status()
    with ThreadPoolExecutor(max_workers=3) as pool:
        # when three requests come, then all three wait (none is answered or logged yet)
        held = [pool.submit(requests.get, f"{echo.url}/open", timeout=30) for _ in range(3)]
        wait_for(
            lambda: requests.get(f"{echo.url}/_admin/faults", timeout=5).json()["faults"][0]["injected"] == 3
        )
        assert not any(call.done() for call in held)
        assert requests.get(f"{echo.url}/_admin/requests", timeout=5).json()["count"] == 0
        # when the faults are cleared, then each is answered normally
        requests.delete(f"{echo.url}/_admin/faults", timeout=5)
        assert [call.result(timeout=10).status_code for call in held] == [200] * 3
    log = requests.get(f"{echo.url}/_admin/requests", timeout=5).json()["requests"]
    assert [(entry["status"], entry["fault"]) for entry in log] == [(200, "hold")] * 3


def test_a_hold_ends_by_itself_after_its_delay(echo: SandboxServer) -> None:
    requests.post(
        f"{echo.url}/_admin/faults",
        json={"kind": "hold", "path_prefix": "/open", "delay_seconds": 0.05},
        timeout=5,
    )
    assert requests.get(f"{echo.url}/open", timeout=10).status_code == 200


def test_reset_restores_base_state(echo: SandboxServer) -> None:
    requests.put(f"{echo.url}/v1/items/a", json={"value": "x"}, headers=AUTH)
    requests.post(f"{echo.url}/_admin/reset")
    assert requests.get(f"{echo.url}/v1/items/a", headers=AUTH).status_code == 404
    assert len(requests.get(f"{echo.url}/_admin/requests").json()["requests"]) == 1


def test_vendor_admin_actions_extend_the_admin_api(echo: SandboxServer) -> None:
    # given a stored item
    requests.put(f"{echo.url}/v1/items/a", json={"value": "x"}, headers=AUTH)
    # when the vendor's own admin action runs
    answer = requests.post(f"{echo.url}/_admin/items/forget")
    # then it acted, and admin paths it does not know still answer 404
    assert answer.json() == {"forgotten": True}
    assert requests.get(f"{echo.url}/v1/items/a", headers=AUTH).status_code == 404
    assert requests.post(f"{echo.url}/_admin/nothing-here").status_code == 404


def test_webhook_retries_can_be_rebuilt_for_every_attempt() -> None:
    # given a receiver that fails the first delivery and accepts the second
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    received: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(500 if len(received) == 1 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Thread(target=receiver.serve_forever, daemon=True).start()
    from ledgerlink_local.sandboxes.core import WebhookDispatcher

    dispatcher = WebhookDispatcher(
        build=lambda events: (b"never used", {}),
        retry_schedule_seconds=[1.0],
        # a long window keeps the background batcher away while the test flushes by hand
        batch_window_seconds=100.0,
        build_attempt=lambda events, attempt: (f"{events[0]} attempt {attempt}".encode(), {}),
    )
    dispatcher.url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    dispatcher.time_factor = 0.01
    try:
        # when an event is delivered and the first attempt fails
        dispatcher.enqueue("event-1")
        dispatcher.flush_now()
        # then each attempt carried a body built for that attempt
        assert received == [b"event-1 attempt 1", b"event-1 attempt 2"]
        assert [a.status for a in dispatcher.attempts] == [500, 200]
    finally:
        dispatcher.stop()
        receiver.shutdown()
        receiver.server_close()


def test_path_parameters_are_decoded_exactly_once(echo: SandboxServer) -> None:
    # given items whose ids contain an encoded slash and an encoded percent sign (limits off: 4 calls)
    requests.patch(f"{echo.url}/_admin/config", json={"rate_limits_enabled": False})
    requests.put(f"{echo.url}/v1/items/a%2Fb", json={"value": "slash"}, headers=AUTH)
    requests.put(f"{echo.url}/v1/items/100%2525", json={"value": "percent"}, headers=AUTH)
    # then each id is decoded once: "a/b" stays one segment, "100%2525" means "100%25"
    assert requests.get(f"{echo.url}/v1/items/a%2Fb", headers=AUTH).json() == {"id": "a/b", "value": "slash"}
    assert requests.get(f"{echo.url}/v1/items/100%2525", headers=AUTH).json()["id"] == "100%25"
