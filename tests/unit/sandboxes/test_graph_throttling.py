"""Graph sandbox: per-app-per-mailbox throttling (429 + Retry-After + Graph's body), its
configuration, and injected faults answered in Graph's error shape.

The default 429 body is the sample of Graph's throttling guidance (concepts/throttling.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_CALENDAR_USER,
    DEMO_CLIENT_ID,
    DemoCredentials,
)
from tests.unit.sandboxes.graph_support import bearer
from tests.unit.sandboxes.polling import wait_for

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


# ----------------------------------------------------------------------------- fractional Retry-After


def test_fractional_retry_after_is_sent_when_configured(graph_sandbox: SandboxServer) -> None:
    # given one request per second per mailbox, and Retry-After with fractional digits
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, burst_per_second=1, retry_after_fractional=True)
    assert list_events(graph_sandbox, headers).status_code == 200
    # when the second request of that second comes
    throttled = list_events(graph_sandbox, headers)
    # then Retry-After is the exact wait with millisecond digits, below the whole second
    assert throttled.status_code == 429
    value = throttled.headers["Retry-After"]
    assert "." in value and 0 < float(value) <= 1.0
    assert len(value.split(".")[1]) <= 3


@pytest.mark.parametrize(("fractional", "expected"), [(True, "2.128"), (False, "3")])
def test_an_injected_429_asks_for_the_configured_wait_in_either_shape(
    graph_sandbox: SandboxServer, fractional: bool, expected: str
) -> None:
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, retry_after_fractional=fractional, fault_retry_after_seconds=2.128)
    requests.post(
        f"{graph_sandbox.url}/_admin/faults",
        json={"kind": "429", "path_prefix": "/v1.0/users", "count": 1},
        timeout=5,
    )
    throttled = list_events(graph_sandbox, headers)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == expected


# ----------------------------------------------------------------------------- 4 requests in flight


def hold_calendar_requests(server: SandboxServer) -> None:
    """Every calendar request waits (in flight) until the faults are cleared."""
    requests.post(
        f"{server.url}/_admin/faults",
        json={"kind": "hold", "path_prefix": "/v1.0/users/", "delay_seconds": 30},
        timeout=5,
    ).raise_for_status()


def held_requests(server: SandboxServer) -> int:
    faults = requests.get(f"{server.url}/_admin/faults", timeout=5).json()["faults"]
    return sum(fault["injected"] for fault in faults if fault["kind"] == "hold")


def let_go(server: SandboxServer) -> None:
    requests.delete(f"{server.url}/_admin/faults", timeout=5).raise_for_status()


def concurrency(server: SandboxServer) -> dict[str, dict[str, int]]:
    return requests.get(f"{server.url}/_admin/state", timeout=5).json()["concurrency"]


def in_flight(server: SandboxServer, scope: str) -> int:
    return concurrency(server)["inFlight"].get(scope, 0)


def test_a_fifth_request_in_flight_for_one_app_and_mailbox_is_throttled(graph_sandbox: SandboxServer) -> None:
    # given four requests of the demo app to the finance mailbox held in flight
    headers = bearer(graph_sandbox)
    scope = f"{DEMO_CLIENT_ID}|{DEMO_CALENDAR_USER}"
    hold_calendar_requests(graph_sandbox)
    with ThreadPoolExecutor(max_workers=5) as pool:
        held = [pool.submit(list_events, graph_sandbox, headers) for _ in range(4)]
        wait_for(lambda: in_flight(graph_sandbox, scope) == 4)
        # when a fifth comes for the same mailbox
        fifth = list_events(graph_sandbox, headers)
        # then Outlook's concurrency answer: 429 ApplicationThrottled with a Retry-After
        assert fifth.status_code == 429
        assert fifth.headers["Retry-After"] == "1"
        error = fifth.json()["error"]
        assert (error["code"], error["message"]) == (
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
        # and it is in the request log
        log = requests.get(
            f"{graph_sandbox.url}/_admin/requests", params={"path_prefix": "/v1.0/"}, timeout=5
        ).json()["requests"]
        assert [entry["status"] for entry in log] == [429]
        # and another mailbox is not affected (its request is held like the others, not refused)
        other = pool.submit(list_events, graph_sandbox, headers, AVERY)
        wait_for(lambda: in_flight(graph_sandbox, f"{DEMO_CLIENT_ID}|{AVERY}") == 1)
        # and once the four are answered, the mailbox is served again
        let_go(graph_sandbox)
        assert [call.result(timeout=10).status_code for call in held] == [200] * 4
        assert other.result(timeout=10).status_code == 200
    assert list_events(graph_sandbox, headers).status_code == 200
    state = concurrency(graph_sandbox)
    assert state["inFlight"] == {} and state["peak"][scope] == 4


def test_the_concurrency_limit_is_configurable_and_off_with_the_rate_limits(
    graph_sandbox: SandboxServer,
) -> None:
    headers = bearer(graph_sandbox)
    scope = f"{DEMO_CLIENT_ID}|{DEMO_CALENDAR_USER}"
    # given a limit of 1 in flight, fractional Retry-After and a 0.25 s wait for the concurrency 429
    configure(
        graph_sandbox,
        concurrent_requests_per_mailbox=1,
        concurrency_retry_after_seconds=0.25,
        retry_after_fractional=True,
    )
    hold_calendar_requests(graph_sandbox)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(list_events, graph_sandbox, headers)
        wait_for(lambda: in_flight(graph_sandbox, scope) == 1)
        second = list_events(graph_sandbox, headers)
        assert second.status_code == 429 and second.headers["Retry-After"] == "0.25"
        # when the limits are turned off, then four more are let in while the first is still in flight
        configure(graph_sandbox, rate_limits_enabled=False)
        more = [pool.submit(list_events, graph_sandbox, headers) for _ in range(4)]
        wait_for(lambda: held_requests(graph_sandbox) == 5)
        let_go(graph_sandbox)
        assert [call.result(timeout=10).status_code for call in [first, *more]] == [200] * 5


def test_directory_calls_are_not_counted_against_a_mailbox(graph_sandbox: SandboxServer) -> None:
    headers = bearer(graph_sandbox)
    configure(graph_sandbox, concurrent_requests_per_mailbox=1)
    hold_calendar_requests(graph_sandbox)
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(list_events, graph_sandbox, headers)
        wait_for(lambda: in_flight(graph_sandbox, f"{DEMO_CLIENT_ID}|{DEMO_CALENDAR_USER}") == 1)
        let_go(graph_sandbox)
        assert held.result(timeout=10).status_code == 200
    user = requests.get(f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}", headers=headers, timeout=5)
    assert user.status_code == 200
    assert concurrency(graph_sandbox)["peak"] == {f"{DEMO_CLIENT_ID}|{DEMO_CALENDAR_USER}": 1}


@pytest.mark.parametrize(
    "options",
    [
        {"concurrent_requests_per_mailbox": -1},
        {"concurrency_retry_after_seconds": 0},
        {"fault_retry_after_seconds": "later"},
        {"retry_after_fractional": "yes"},
    ],
)
def test_bad_concurrency_and_retry_after_options_are_refused(
    graph_sandbox: SandboxServer, options: dict
) -> None:
    before = requests.get(f"{graph_sandbox.url}/_admin/config", timeout=5).json()
    reply = configure(graph_sandbox, **options)
    assert reply.status_code == 400 and reply.json()["error"]
    assert requests.get(f"{graph_sandbox.url}/_admin/config", timeout=5).json() == before


def test_reset_restores_outlooks_four_and_whole_second_retry_after(graph_sandbox: SandboxServer) -> None:
    configure(graph_sandbox, concurrent_requests_per_mailbox=9, retry_after_fractional=True)
    requests.post(f"{graph_sandbox.url}/_admin/reset", timeout=5)
    config = requests.get(f"{graph_sandbox.url}/_admin/config", timeout=5).json()
    assert config["concurrent_requests_per_mailbox"] == 4
    assert config["retry_after_fractional"] is False
    assert config["fault_retry_after_seconds"] == 1.0
