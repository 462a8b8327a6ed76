"""Graph sandbox: per-app-per-mailbox throttling (429 + Retry-After + Graph's body), its
configuration, and injected faults answered in Graph's error shape.

The default 429 body is the sample of Graph's throttling guidance (concepts/throttling.md).
"""

from __future__ import annotations

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_CALENDAR_USER,
    DemoCredentials,
)
from tests.unit.sandboxes.graph_support import bearer

AVERY = "avery.chen@ledgerlinkdemo.onmicrosoft.com"


def configure(server: SandboxServer, **options: object) -> requests.Response:
    return requests.patch(f"{server.url}/_admin/config", json=options, timeout=5)


def list_events(server: SandboxServer, headers: dict, user: str = DEMO_CALENDAR_USER) -> requests.Response:
    return requests.get(f"{server.url}/v1.0/users/{user}/events", headers=headers, timeout=5)


def test_burst_limit_answers_429_with_retry_after_and_graphs_body(graph_sandbox: SandboxServer) -> None:
    # given a burst limit of 3 requests per second per app and mailbox
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, burst_per_second=3)
    # when a fourth request reaches the same mailbox within the second
    statuses = [list_events(graph_sandbox, headers).status_code for _ in range(3)]
    throttled = list_events(graph_sandbox, headers)
    # then it is 429 with a whole-second Retry-After and the documented body
    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    error = throttled.json()["error"]
    assert (error["code"], error["message"]) == ("TooManyRequests", "Please retry again later.")
    assert error["innerError"]["code"] == "429" and error["innerError"]["status"] == "429"
    assert error["innerError"]["request-id"] == throttled.headers["request-id"]
    # and another mailbox is not affected (the limit is per app and mailbox)
    assert list_events(graph_sandbox, headers, AVERY).status_code == 200
    # and the same mailbox is served again once the second has passed
    requests.post(f"{graph_sandbox.url}/_admin/clock", json={"advance_seconds": 1.5}, timeout=5)
    assert list_events(graph_sandbox, headers).status_code == 200


def test_ten_minute_limit_names_the_wait_until_the_window_frees(graph_sandbox: SandboxServer) -> None:
    # given Outlook's per-mailbox window shrunk to 5 requests per 10 minutes, no burst limit
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, requests_per_10_minutes=5, burst_per_second=0)
    for _ in range(5):
        assert list_events(graph_sandbox, headers).status_code == 200
    # when the sixth request comes
    throttled = list_events(graph_sandbox, headers)
    # then Retry-After is the time until the oldest request leaves the 600-second window
    assert throttled.status_code == 429
    assert 590 <= int(throttled.headers["Retry-After"]) <= 600
    requests.post(f"{graph_sandbox.url}/_admin/clock", json={"advance_seconds": 601}, timeout=5)
    assert list_events(graph_sandbox, headers).status_code == 200


def test_the_limit_is_per_app(graph_sandbox: SandboxServer) -> None:
    requests.post(
        f"{graph_sandbox.url}/_admin/seed",
        json={"apps": [{"clientId": "second-app", "clientSecret": "s2", "roles": ["Calendars.ReadWrite"]}]},
        timeout=5,
    )
    configure(graph_sandbox, burst_per_second=1)
    first_app = bearer(graph_sandbox)
    second_app = bearer(graph_sandbox, client_id="second-app", client_secret="s2")
    assert list_events(graph_sandbox, first_app).status_code == 200
    assert list_events(graph_sandbox, first_app).status_code == 429
    assert list_events(graph_sandbox, second_app).status_code == 200


def test_upn_and_object_id_count_against_the_same_mailbox(graph_sandbox: SandboxServer) -> None:
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, burst_per_second=1)
    user_id = requests.get(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}", headers=headers, timeout=5
    ).json()["id"]
    assert list_events(graph_sandbox, headers).status_code == 200
    assert list_events(graph_sandbox, headers, user_id).status_code == 429


def test_turning_rate_limits_off_admits_everything(graph_sandbox: SandboxServer) -> None:
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, burst_per_second=1, rate_limits_enabled=False)
    assert {list_events(graph_sandbox, headers).status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    ("code", "message", "inner_code"),
    [
        ("ApplicationThrottled", "Application is over its MailboxConcurrency limit.", None),
        ("activityLimitReached", "The app or user has been throttled.", "throttledRequest"),
    ],
)
def test_other_throttle_shapes_are_selectable(
    graph_sandbox: SandboxServer, code: str, message: str, inner_code: str | None
) -> None:
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, burst_per_second=1, throttle_error_code=code)
    list_events(graph_sandbox, headers)
    throttled = list_events(graph_sandbox, headers)
    error = throttled.json()["error"]
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers
    assert (error["code"], error["message"], error["innerError"].get("code")) == (code, message, inner_code)


@pytest.mark.parametrize(
    "options",
    [
        {"requests_per_10_minutes": 0},
        {"burst_per_second": -1},
        {"token_lifetime_seconds": "soon"},
        {"throttle_error_code": "Slow down"},
    ],
)
def test_bad_config_values_are_refused(graph_sandbox: SandboxServer, options: dict) -> None:
    before = requests.get(f"{graph_sandbox.url}/_admin/config", timeout=5).json()
    reply = configure(graph_sandbox, **options)
    assert reply.status_code == 400 and reply.json()["error"]
    assert requests.get(f"{graph_sandbox.url}/_admin/config", timeout=5).json() == before


@pytest.mark.parametrize(
    ("kind", "code"),
    [("503", "serviceNotAvailable"), ("500", "generalException")],
)
def test_injected_faults_answer_in_graphs_shape(graph_sandbox: SandboxServer, kind: str, code: str) -> None:
    headers = bearer(graph_sandbox)
    requests.post(
        f"{graph_sandbox.url}/_admin/faults",
        json={"kind": kind, "path_prefix": "/v1.0/users", "count": 1},
        timeout=5,
    )
    failed = list_events(graph_sandbox, headers)
    assert failed.status_code == int(kind)
    assert failed.json()["error"]["code"] == code
    assert failed.json()["error"]["innerError"]["request-id"] == failed.headers["request-id"]
    assert list_events(graph_sandbox, headers).status_code == 200


def test_injected_fault_on_the_token_path_answers_in_entras_shape(graph_sandbox: SandboxServer) -> None:
    requests.post(
        f"{graph_sandbox.url}/_admin/faults", json={"kind": "503", "path_prefix": "/", "count": 1}, timeout=5
    )
    reply = requests.post(
        DemoCredentials.for_sandbox(graph_sandbox.url).token_url,
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert reply.status_code == 503
    assert reply.json()["error"] == "temporarily_unavailable" and reply.json()["error_codes"] == [90033]
