"""The API Gateway front: payload format 2.0 events, integration responses, routing, throttling."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from ledgerlink_local.stack.front import (
    ApiFront,
    HttpRequestIn,
    RequestRecord,
    Route,
    TokenBucket,
    build_event,
    find_route,
    gateway_time,
    integration_response,
)
from ledgerlink_local.stack.runtime import InvocationResult
from tests.conftest import FIXTURES

RECORDED_EVENT = json.loads((FIXTURES / "apigw" / "http-api-v2-post-webhook.json").read_text())
WEBHOOK_ROUTE = Route("POST", "/v1/webhooks/qbo", "qbo_ingest")
NOW = datetime(2026, 3, 10, 14, 2, 3, tzinfo=UTC)


def _request(**overrides: Any) -> HttpRequestIn:
    values: dict[str, Any] = {
        "method": "POST",
        "target": "/v1/webhooks/qbo?source=intuit&source=retry",
        "headers": (
            ("Host", "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"),
            ("User-Agent", "Intuit-Webhooks/1.0"),
            ("Content-Type", "application/json"),
            ("Content-Length", "2"),
            ("Accept", "*/*"),
            ("intuit-signature", "c2lnbmF0dXJl"),
            ("X-Custom", "one"),
            ("x-custom", "two"),
            ("Cookie", "session=abc; theme=dark"),
            ("Connection", "keep-alive"),
        ),
        "body": b"[]",
        "source_ip": "203.0.113.7",
    }
    values.update(overrides)
    return HttpRequestIn(**values)


def _event(
    request: HttpRequestIn, route: Route = WEBHOOK_ROUTE, params: dict[str, str] | None = None
) -> dict:
    return build_event(
        request,
        route,
        params or {},
        account_id="123456789012",
        api="a1b2c3d4e5",
        request_id="JKJaXmPLvHcESHA=",
        now=NOW,
        server_port=443,
    )


def _keys(document: dict, *path: str) -> set[str]:
    for name in path:
        document = document[name]
    return {key for key in document if not key.startswith("_")}


def test_the_event_has_every_field_of_the_gateways_event_and_no_other():
    # given a request like the one the recorded gateway event describes
    event = _event(_request())
    # then the event has the recorded event's fields at every level
    assert _keys(event) == _keys(RECORDED_EVENT)
    assert _keys(event, "requestContext") == _keys(RECORDED_EVENT, "requestContext")
    assert _keys(event, "requestContext", "http") == _keys(RECORDED_EVENT, "requestContext", "http")
    # and the same values where they do not depend on the moment or the trace
    for name in (
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "cookies",
        "queryStringParameters",
        "body",
    ):
        assert event[name] == RECORDED_EVENT[name], name
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    for name in (
        "accountId",
        "apiId",
        "domainName",
        "domainPrefix",
        "http",
        "routeKey",
        "stage",
        "time",
        "timeEpoch",
    ):
        assert context[name] == RECORDED_EVENT["requestContext"][name], name


def test_headers_are_lower_cased_duplicates_comma_joined_and_cookies_moved_out():
    event = _event(_request())
    headers = event["headers"]
    assert headers["x-custom"] == "one,two"
    assert headers["intuit-signature"] == "c2lnbmF0dXJl"
    assert all(name == name.lower() for name in headers)
    assert "cookie" not in headers and "connection" not in headers
    # the gateway's own headers are there, as the deployed API adds them
    assert {"x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"} <= set(headers)
    assert set(headers) == _keys(RECORDED_EVENT, "headers")


@pytest.mark.parametrize(
    ("content_type", "encoded"),
    [
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/plain", False),
        ("application/cloudevents+json", False),
        ("application/xml", False),
        ("application/octet-stream", True),
        ("application/x-www-form-urlencoded", True),
        ("image/png", True),
        (None, True),
    ],
)
def test_a_body_is_base64_encoded_unless_its_content_type_is_text(content_type, encoded):
    raw = b"\x00\x01 binary-ish \xff" if encoded else b'{"a": 1}'
    headers = (("Content-Type", content_type),) if content_type else ()
    event = _event(_request(headers=headers, body=raw))
    assert event["isBase64Encoded"] is encoded
    received = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    assert received == raw  # the exact bytes either way (signatures are over them)


def test_a_request_without_body_has_no_body_field_and_no_query_has_no_parameters():
    event = _event(_request(target="/v1/webhooks/qbo", body=b"", headers=()))
    assert "body" not in event and "queryStringParameters" not in event and "cookies" not in event
    assert event["rawQueryString"] == ""
    assert event["isBase64Encoded"] is False


def test_path_variables_become_path_parameters():
    route = Route("GET", "/v1/replays/{delivery}/{rest+}", "replay")
    found = find_route([route], "GET", "/v1/replays/abc/x/y")
    assert found is not None
    event = _event(_request(method="GET", target="/v1/replays/abc/x/y"), route, found[1])
    assert event["pathParameters"] == {"delivery": "abc", "rest": "x/y"}
    assert event["routeKey"] == "GET /v1/replays/{delivery}/{rest+}"


def test_an_exact_route_wins_over_a_variable_one():
    exact = Route("POST", "/v1/webhooks/qbo", "exact")
    variable = Route("POST", "/v1/webhooks/{vendor}", "variable")
    found = find_route([variable, exact], "POST", "/v1/webhooks/qbo")
    assert found is not None and found[0] is exact
    assert find_route([exact], "GET", "/v1/webhooks/qbo") is None


def test_the_request_time_is_in_the_gateways_format_whatever_the_locale():
    assert gateway_time(datetime(2026, 11, 5, 9, 8, 7, tzinfo=UTC)) == "05/Nov/2026:09:08:07 +0000"


# --- integration responses


def _ok(payload: Any) -> InvocationResult:
    return InvocationResult("r", True, payload)


def test_a_response_with_status_code_is_passed_through():
    response = integration_response(
        _ok({"statusCode": 401, "headers": {"content-type": "application/json"}, "body": '{"error":"x"}'})
    )
    assert response.status == 401
    assert response.body == b'{"error":"x"}'
    assert ("content-type", "application/json") in response.headers


def test_a_base64_response_body_is_decoded_and_cookies_become_set_cookie():
    body = base64.b64encode(b"\x89PNG").decode()
    response = integration_response(
        _ok({"statusCode": 200, "body": body, "isBase64Encoded": True, "cookies": ["a=1", "b=2"]})
    )
    assert response.body == b"\x89PNG"
    assert [value for name, value in response.headers if name == "set-cookie"] == ["a=1", "b=2"]


@pytest.mark.parametrize("payload", [{"accepted": 1}, "hello", [1, 2], None])
def test_a_value_without_status_code_is_a_json_200(payload):
    response = integration_response(_ok(payload))
    assert response.status == 200
    assert json.loads(response.body) == payload
    assert ("content-type", "application/json") in response.headers


@pytest.mark.parametrize(
    "result",
    [
        InvocationResult("r", False, error_type="ValueError", error_message="boom"),
        InvocationResult("r", False, error_type="Task.TimedOut", error_message="Task timed out"),
        _ok({"statusCode": "not a number"}),
        _ok({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}),
        _ok({"statusCode": 999}),
    ],
)
def test_a_failed_or_malformed_integration_is_the_gateways_500(result):
    response = integration_response(result)
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}


# --- throttling


def test_the_token_bucket_allows_the_burst_then_the_rate():
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token refills at 2/s
    assert [bucket.take(), bucket.take()] == [True, False]
    now[0] += 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


# --- the served gateway


class _RecordingInvoker:
    def __init__(self, result: InvocationResult) -> None:
        self.result = result
        self.events: list[dict] = []

    def __call__(self, function: str, event: dict, request_id: str) -> InvocationResult:
        self.events.append(event)
        return self.result


@pytest.fixture
def served():
    invoker = _RecordingInvoker(_ok({"statusCode": 200, "body": '{"accepted":0}'}))
    records: list[RequestRecord] = []
    now = [0.0]
    front = ApiFront(
        [WEBHOOK_ROUTE],
        invoker,
        throttle=TokenBucket(1.0, 2, clock=lambda: now[0]),
        account_id="123456789012",
        api_name="ledgerlink-local-api",
        on_request=records.append,
    ).start()
    yield front, invoker, records
    front.stop()


def test_a_request_on_the_route_reaches_the_function_and_its_answer_comes_back(served):
    front, invoker, records = served
    reply = requests.post(
        front.url + "/v1/webhooks/qbo?x=1",
        data=b"[]",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert reply.status_code == 200 and reply.json() == {"accepted": 0}
    assert reply.headers["apigw-requestid"] == invoker.events[0]["requestContext"]["requestId"]
    assert invoker.events[0]["body"] == "[]" and invoker.events[0]["rawQueryString"] == "x=1"
    assert [(record.phase, record.status) for record in records] == [("in", None), ("out", 200)]


def test_an_unknown_route_is_the_gateways_404_and_reaches_no_function(served):
    front, invoker, _records = served
    reply = requests.get(front.url + "/v1/webhooks/qbo", timeout=5)
    assert reply.status_code == 404 and reply.json() == {"message": "Not Found"}
    assert invoker.events == []


def test_past_the_burst_the_gateway_answers_429_without_invoking(served):
    front, invoker, _records = served
    statuses = [
        requests.post(front.url + "/v1/webhooks/qbo", data=b"[]", timeout=5).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert len(invoker.events) == 2
    reply = requests.post(front.url + "/v1/webhooks/qbo", data=b"[]", timeout=5)
    assert reply.json() == {"message": "Too Many Requests"}
