"""VendorHttpClient against a real local HTTP server: what is sent, how often, and how long it waits."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from ledgerlink.http.backoff import Backoff
from ledgerlink.http.errors import RateLimited, VendorConnectionError, VendorHttpError, VendorTimeout
from tests.unit.http.support import (
    Reply,
    ScriptedVendor,
    fixture_body,
    make_harness,
    make_policy,
    unused_port,
)

QBO_FAULT = fixture_body("qbo_fault_500.json")
GRAPH_THROTTLED = fixture_body("graph_throttled_429.json")
HUBSPOT_RATE_LIMITED = fixture_body("hubspot_rate_limit_429.json")
DEAL = fixture_body("hubspot_deal_created.json")


def test_success_returns_the_response_and_sends_one_request(vendor: ScriptedVendor) -> None:
    # given a vendor that answers 200 with a deal
    vendor.will(Reply(200, DEAL))
    harness = make_harness(make_policy(vendor.url))

    # when the deal is read with query parameters
    response = harness.client.get("/crm/v3/objects/deals/512", scope="portal-1", params={"archived": "false"})

    # then exactly that request was sent, and the body comes back untouched
    assert response.json()["id"] == "512"
    assert [(r.method, r.path) for r in vendor.received] == [
        ("GET", "/crm/v3/objects/deals/512?archived=false")
    ]
    assert harness.clock.sleeps == []


def test_backoff_delays_are_full_jitter_ceilings_doubling_from_base(vendor: ScriptedVendor) -> None:
    # given a vendor failing with 503 three times before succeeding, and a random source that always
    # draws the top of its range
    vendor.will(Reply(503, QBO_FAULT), Reply(502), Reply(500, QBO_FAULT), Reply(200, DEAL))
    policy = make_policy(vendor.url, backoff=Backoff(base_seconds=0.5, cap_seconds=1.5))
    harness = make_harness(policy)

    # when one GET is made
    response = harness.client.get("/v3/company/9130357992/invoice/146", scope="9130357992")

    # then it slept min(cap, base * 2**n) before each retry, drawn from uniform(0, that)
    assert response.status_code == 200
    assert len(vendor.received) == 4
    assert harness.clock.sleeps == [0.5, 1.0, 1.5]
    assert harness.rng.ranges == [(0.0, 0.5), (0.0, 1.0), (0.0, 1.5)]


def test_backoff_with_a_seeded_random_source_is_reproducible(vendor: ScriptedVendor) -> None:
    # given two identical clients with the same seed
    delays = []
    for _ in range(2):
        vendor.will(Reply(503), Reply(503), Reply(200))
        harness = make_harness(make_policy(vendor.url, backoff=Backoff(1.0, 30.0)), rng=random.Random(7))
        # when each makes a call that fails twice
        harness.client.get("/ping", scope="s")
        delays.append(harness.clock.sleeps)

    # then both slept the same jittered delays, each inside its full-jitter interval
    expected = random.Random(7)
    assert delays[0] == delays[1] == [expected.uniform(0, 1.0), expected.uniform(0, 2.0)]


def test_retry_after_in_seconds_takes_precedence_over_backoff(vendor: ScriptedVendor) -> None:
    # given Graph throttling a call with Retry-After: 7
    vendor.will(Reply(429, GRAPH_THROTTLED, {"Retry-After": "7"}), Reply(200))
    harness = make_harness(make_policy(vendor.url))

    # when the call is made
    harness.client.get("/users/ap@example.com/events", scope="ap@example.com")

    # then it waited exactly 7 s (no jitter drawn) and the retry succeeded
    assert harness.clock.sleeps == [7.0]
    assert harness.rng.ranges == []
    assert len(vendor.received) == 2


def test_retry_after_as_http_date_is_measured_from_the_injected_clock(vendor: ScriptedVendor) -> None:
    # given a 503 whose Retry-After is an HTTP-date 12 s after the client's "now"
    harness = make_harness(make_policy(vendor.url))
    when = datetime.fromtimestamp(harness.clock.now() + 12, tz=UTC)
    vendor.will(Reply(503, QBO_FAULT, {"Retry-After": format_datetime(when, usegmt=True)}), Reply(200))

    # when the call is made
    harness.client.get("/v3/company/1/companyinfo/1", scope="1")

    # then it waited 12 s
    assert harness.clock.sleeps == [12.0]


def test_retry_after_beyond_the_maximum_wait_raises_rate_limited_without_sleeping(
    vendor: ScriptedVendor,
) -> None:
    # given HubSpot asking for 120 s, more than the client may sleep (20 s)
    vendor.will(Reply(429, HUBSPOT_RATE_LIMITED, {"Retry-After": "120"}))
    harness = make_harness(make_policy(vendor.url, max_wait_seconds=20.0))

    # when the call is made
    with pytest.raises(RateLimited) as raised:
        harness.client.get("/crm/v3/objects/deals", scope="portal-7")

    # then nothing slept, one request went out, and the error tells SQS when to come back
    assert harness.clock.sleeps == []
    assert len(vendor.received) == 1
    assert raised.value.retry_after == 120.0
    assert raised.value.retryable is True
    assert raised.value.status == 429
    assert "retry after 120.000s" in str(raised.value)
    assert "portal-7" in str(raised.value)


def test_qbo_429_without_retry_after_waits_the_documented_60_seconds(vendor: ScriptedVendor) -> None:
    # given QBO's policy (60 s after a 429) and a 429 with no Retry-After
    vendor.will(Reply(429, b'{"Fault":{"Error":[{"Message":"ThrottleExceeded","code":"003001"}]}}'))
    harness = make_harness(make_policy(vendor.url, default_429_wait_seconds=60.0, max_wait_seconds=20.0))

    # when a query is made
    with pytest.raises(RateLimited) as raised:
        harness.client.get("/v3/company/1/query", scope="1", params={"query": "select * from Invoice"})

    # then the work is handed back with 60 s, nothing slept
    assert raised.value.retry_after == 60.0
    assert harness.clock.sleeps == []


def test_max_attempts_then_the_last_status_error(vendor: ScriptedVendor) -> None:
    # given a vendor that keeps failing with 503
    vendor.will(*[Reply(503, QBO_FAULT)] * 5)
    harness = make_harness(make_policy(vendor.url, max_attempts=3, backoff=Backoff(0.25, 10.0)))

    # when a GET is made
    with pytest.raises(VendorHttpError) as raised:
        harness.client.get("/v3/company/1/invoice/146", scope="1", params={"minorversion": "75"})

    # then exactly 3 attempts were sent, with 2 sleeps between, and the error names the status,
    # the call (without its query string) and an excerpt of the fault
    assert len(vendor.received) == 3
    assert harness.clock.sleeps == [0.25, 0.5]
    error = raised.value
    assert (error.status, error.vendor, error.retryable) == (503, "testvendor", True)
    assert str(error).startswith("testvendor answered HTTP 503 (GET /v3/company/1/invoice/146):")
    assert "SystemFault" in error.body_excerpt
    assert "minorversion" not in str(error)


def test_repeated_429_exhausts_attempts_into_rate_limited(vendor: ScriptedVendor) -> None:
    vendor.will(*[Reply(429, GRAPH_THROTTLED, {"Retry-After": "1"})] * 3)
    harness = make_harness(make_policy(vendor.url, max_attempts=3))

    with pytest.raises(RateLimited) as raised:
        harness.client.get("/users/u/events", scope="u")

    assert len(vendor.received) == 3
    assert harness.clock.sleeps == [1.0, 1.0]
    assert raised.value.retry_after == 1.0


def test_total_wait_budget_stops_a_call_from_sleeping_past_it(vendor: ScriptedVendor) -> None:
    # given waits of 8 s each and a budget of 20 s for the whole call
    vendor.will(*[Reply(503, headers={"Retry-After": "8"})] * 4)
    harness = make_harness(make_policy(vendor.url, max_attempts=10, max_total_wait_seconds=20.0))

    with pytest.raises(VendorHttpError) as raised:
        harness.client.get("/x", scope="s")

    # then two waits fit (16 s), the third would not, and the error carries it
    assert harness.clock.sleeps == [8.0, 8.0]
    assert len(vendor.received) == 3
    assert raised.value.retry_after == 8.0


def test_client_errors_are_not_retried_and_are_not_retryable(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(400, b'{"Fault":{"Error":[{"code":"6140","Message":"Duplicate Document Number"}]}}'))
    harness = make_harness(make_policy(vendor.url))

    with pytest.raises(VendorHttpError) as raised:
        harness.client.put("/v3/company/1/invoice", scope="1", json={"DocNumber": "1042"})

    assert len(vendor.received) == 1
    assert raised.value.status == 400
    assert raised.value.retryable is False
    assert "6140" in raised.value.body_excerpt


def test_accepted_statuses_are_returned_for_the_caller_to_parse(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(404, b'{"status":"error","message":"Object not found"}'))
    harness = make_harness(make_policy(vendor.url))

    response = harness.client.get("/crm/v3/objects/deals/999", scope="p", accept={404})

    assert response.status_code == 404
    assert len(vendor.received) == 1


def test_post_is_not_retried_after_a_5xx(vendor: ScriptedVendor) -> None:
    # given a POST without an idempotency key, answered 503
    vendor.will(Reply(503), Reply(200))
    harness = make_harness(make_policy(vendor.url))

    # when it is sent
    with pytest.raises(VendorHttpError) as raised:
        harness.client.post("/v3/company/1/invoice", scope="1", json={"Line": []})

    # then it went out exactly once: the vendor may have created the invoice
    assert len(vendor.received) == 1
    assert raised.value.status == 503
    assert harness.clock.sleeps == []


def test_post_with_an_idempotency_key_is_retried_with_the_same_body(vendor: ScriptedVendor) -> None:
    # given a QBO create carrying its requestid, answered 503 once
    vendor.will(Reply(503, QBO_FAULT), Reply(200, b'{"Invoice":{"Id":"146"}}'))
    harness = make_harness(make_policy(vendor.url))

    # when it is sent as idempotent
    response = harness.client.post(
        "/v3/company/1/invoice",
        scope="1",
        params={"requestid": "7d5c1a8e-3b0e-4b7a-9a57-2c7e1f9c0d11"},
        json={"Line": [], "CustomerRef": {"value": "58"}},
        idempotent=True,
    )

    # then the identical request was sent twice and the second answer returned
    assert response.json()["Invoice"]["Id"] == "146"
    assert len(vendor.received) == 2
    first, second = vendor.received
    assert first.path == second.path == "/v3/company/1/invoice?requestid=7d5c1a8e-3b0e-4b7a-9a57-2c7e1f9c0d11"
    assert json.loads(first.body) == json.loads(second.body) == {"Line": [], "CustomerRef": {"value": "58"}}


def test_patch_is_not_retried_unless_declared_idempotent(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(502), Reply(502), Reply(200))
    harness = make_harness(make_policy(vendor.url))

    with pytest.raises(VendorHttpError):
        harness.client.patch("/users/u/events/AAMk", scope="u", json={"subject": "Invoice 1042 due"})
    response = harness.client.patch(
        "/users/u/events/AAMk", scope="u", json={"subject": "Invoice 1042 due"}, idempotent=True
    )

    assert response.status_code == 200
    assert len(vendor.received) == 3


def test_read_timeout_on_post_is_not_retried(vendor: ScriptedVendor) -> None:
    # given a vendor that answers after the read timeout
    vendor.will(Reply(200, delay_seconds=0.4), Reply(200))
    harness = make_harness(make_policy(vendor.url, read_timeout_seconds=0.1))

    # when a non-idempotent POST is sent
    with pytest.raises(VendorTimeout) as raised:
        harness.client.post("/v1.0/users/u/events", scope="u", json={"subject": "x"})

    # then it is not repeated (the event may exist) and the error says which phase timed out
    assert len(vendor.received) == 1
    assert raised.value.phase == "read"
    assert raised.value.retryable is True
    assert str(raised.value) == "testvendor read timed out after 0.1s (POST /v1.0/users/u/events)"


def test_read_timeout_on_get_is_retried(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(200, delay_seconds=0.4), Reply(200, DEAL))
    harness = make_harness(make_policy(vendor.url, read_timeout_seconds=0.1, backoff=Backoff(2.0, 20.0)))

    response = harness.client.get("/crm/v3/objects/deals/512", scope="p")

    assert response.json()["id"] == "512"
    assert len(vendor.received) == 2
    assert harness.clock.sleeps == [2.0]


def test_dropped_connection_on_post_is_not_retried(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(drop=True), Reply(200))
    harness = make_harness(make_policy(vendor.url))

    with pytest.raises(VendorConnectionError) as raised:
        harness.client.post("/crm/v3/objects/deals", scope="p", json={"properties": {}})

    assert len(vendor.received) == 1
    assert "connection lost during the call" in str(raised.value)


def test_connection_refused_is_retried_even_for_post_then_reported() -> None:
    # given nothing listening on the port: the request can never have reached a vendor
    harness = make_harness(make_policy(f"http://127.0.0.1:{unused_port()}", max_attempts=3))

    # when a POST is sent
    with pytest.raises(VendorConnectionError) as raised:
        harness.client.post("/crm/v3/objects/deals", scope="p", json={"properties": {}})

    # then every attempt was made, with backoff between, and the error is retryable
    assert harness.clock.sleeps == [0.5, 1.0]
    assert raised.value.retryable is True
    assert str(raised.value) == "testvendor connection failed (POST /crm/v3/objects/deals): could not connect"


def test_absolute_url_on_another_host_is_refused_before_anything_is_sent(vendor: ScriptedVendor) -> None:
    harness = make_harness(make_policy(vendor.url))

    with pytest.raises(ValueError, match="not the vendor's origin"):
        harness.client.get("https://evil.example.com/steal", scope="p")
    same_origin = harness.client.get(f"{vendor.url}/crm/v3/objects/deals?after=100", scope="p")

    assert same_origin.status_code == 200
    assert [r.path for r in vendor.received] == ["/crm/v3/objects/deals?after=100"]


def test_relative_path_must_start_with_a_slash(vendor: ScriptedVendor) -> None:
    harness = make_harness(make_policy(vendor.url))

    with pytest.raises(ValueError, match="must start with '/'"):
        harness.client.get("crm/v3/objects/deals", scope="p")
    assert vendor.received == []
