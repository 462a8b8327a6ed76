"""The API Gateway front: payload format 2.0 events, integration responses, routing, throttling."""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass
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


# --- request framing, over raw sockets (a hang is the client socket's timeout, a failure)

WEBHOOK_HEAD = b"POST /v1/webhooks/qbo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
CLIENT_TIMEOUT = 5.0


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool
    """The server closed the connection after its answer."""

    def json(self) -> Any:
        return json.loads(self.body)


def _read_answer(client: socket.socket) -> RawAnswer:
    """One HTTP response read off ``client``; then whether the server closed the connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = client.recv(65536)
        if not chunk:
            raise AssertionError(f"the server dropped the connection without an answer: {received!r}")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = client.recv(65536)
        if not chunk:
            raise AssertionError("the server closed the connection inside its answer")
        rest += chunk
    closed = False
    if headers.get("connection", "").lower() == "close":
        closed = client.recv(65536) == b""  # waits for the close (or the client's timeout)
    return RawAnswer(int(status_line.split(" ")[1]), headers, rest[:length], closed)


def _exchange(front: ApiFront, raw: bytes) -> RawAnswer:
    with socket.create_connection((front.host, front.port), timeout=CLIENT_TIMEOUT) as client:
        client.sendall(raw)
        return _read_answer(client)


def _still_serves(front: ApiFront) -> bool:
    reply = requests.post(front.url + "/v1/webhooks/qbo", data=b"[]", timeout=CLIENT_TIMEOUT)
    return reply.status_code == 200 and reply.json() == {"accepted": 0}


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: abc\r\n", id="letters"),
        pytest.param(b"Content-Length: -1\r\n", id="negative"),
        pytest.param(b"Content-Length: 1e3\r\n", id="exponent"),
        pytest.param(b"Content-Length: +2\r\n", id="signed"),
        pytest.param(b"Content-Length: 2, 2\r\n", id="a list"),
        pytest.param(b"Content-Length: 2\r\nContent-Length: 5\r\n", id="two conflicting headers"),
        pytest.param(b"Content-Length: 99999999999999999999999999\r\n", id="absurdly large"),
        pytest.param(b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", id="both headers"),
        pytest.param(b"Transfer-Encoding: chunked, gzip\r\n", id="chunked not last"),
        pytest.param(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", id="chunked twice"),
    ],
)
def test_a_badly_framed_request_is_the_gateways_400_and_the_server_goes_on(served, framing):
    front, invoker, records = served
    # given a request whose headers frame its body badly
    answer = _exchange(front, WEBHOOK_HEAD + framing + b"\r\n[]")
    # then the gateway answers 400 with its JSON body and closes the connection cleanly
    assert (answer.status, answer.json()) == (400, {"message": "Bad Request"})
    assert answer.headers["content-type"] == "application/json" and "apigw-requestid" in answer.headers
    assert answer.closed
    # and no function saw it, the hop log has the answer, and the next request is served
    assert invoker.events == []
    assert [(record.status, record.function) for record in records] == [(400, None)]
    assert _still_serves(front)


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(b"zz\r\n[]\r\n0\r\n\r\n", id="size not hex"),
        pytest.param(b"0x2\r\n[]\r\n0\r\n\r\n", id="size with 0x"),
        pytest.param(b"-2\r\n[]\r\n0\r\n\r\n", id="negative size"),
        pytest.param(b"\r\n[]\r\n0\r\n\r\n", id="no size"),
        pytest.param(b"2\n[]\r\n0\r\n\r\n", id="bare LF"),
        pytest.param(b"2;\r\n[]\r\n0\r\n\r\n", id="empty extension"),
        pytest.param(b'2;a="b\r\n[]\r\n0\r\n\r\n', id="unterminated quoted extension"),
        pytest.param(b"2\r\n[]xx\r\n0\r\n\r\n", id="data longer than its size"),
        pytest.param(b"2\r\n[]\r\n0\r\nno colon here\r\n\r\n", id="malformed trailer"),
        pytest.param(b"4\r\n[]", id="closed inside a chunk"),
    ],
)
def test_a_malformed_chunked_body_is_the_gateways_400(served, chunked):
    front, invoker, _records = served
    raw = WEBHOOK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    with socket.create_connection((front.host, front.port), timeout=CLIENT_TIMEOUT) as client:
        client.sendall(raw)
        client.shutdown(socket.SHUT_WR)  # all of it was sent: a short chunk is the end of the stream
        answer = _read_answer(client)
    assert (answer.status, answer.json()) == (400, {"message": "Bad Request"}) and answer.closed
    assert invoker.events == []
    assert _still_serves(front)


def test_a_chunked_body_is_decoded_with_its_extensions_and_trailers(served):
    front, invoker, _records = served
    # given a webhook sent in chunks: hex sizes, an extension, a trailer field
    chunked = b'A;name=value;q="x y"\r\n{"eventNot\r\n000a\r\nifications\r\n3\r\n":1\r\n1\r\n}\r\n'
    chunked += b"0\r\nX-Checksum: abc\r\n\r\n"
    with socket.create_connection((front.host, front.port), timeout=CLIENT_TIMEOUT) as client:
        client.sendall(WEBHOOK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        answer = _read_answer(client)
        # then the function gets the body, whole, and the connection stays open for the next request
        assert answer.status == 200 and not answer.closed
        assert invoker.events[0]["body"] == '{"eventNotifications":1}'
        assert "transfer-encoding" not in invoker.events[0]["headers"]
        client.sendall(WEBHOOK_HEAD + b"Content-Length: 2\r\n\r\n[]")
        assert _read_answer(client).status == 200
    assert invoker.events[1]["body"] == "[]"


def test_a_chunked_body_sent_by_requests_reaches_the_function(served):
    front, invoker, _records = served
    # requests sends a generator body chunked, without Content-Length
    reply = requests.post(
        front.url + "/v1/webhooks/qbo",
        data=iter([b'{"a":', b"1}"]),
        headers={"Content-Type": "application/json"},
        timeout=CLIENT_TIMEOUT,
    )
    assert reply.status_code == 200
    assert invoker.events[0]["body"] == '{"a":1}'


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: 10485761\r\n\r\n", id="content-length past 10 MB"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\nA00001\r\n", id="one chunk past 10 MB"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nA00000\r\n", id="chunks add up past"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n" + b"F" * 40 + b"\r\n", id="forty hex digits"),
    ],
)
def test_a_body_past_the_payload_limit_is_413_before_it_is_read(served, framing):
    front, invoker, _records = served
    # the client sends only the framing: an answer that waited for the body would be a timeout here
    answer = _exchange(front, WEBHOOK_HEAD + framing)
    assert (answer.status, answer.json()) == (413, {"message": "Request Entity Too Large"})
    assert answer.closed and invoker.events == []
    assert _still_serves(front)


@pytest.mark.parametrize(
    ("framing", "status", "message"),
    [
        (b"Transfer-Encoding: gzip, chunked\r\n", 501, "Not Implemented"),
        (b"Transfer-Encoding: identity\r\n", 400, "Bad Request"),
    ],
)
def test_a_transfer_coding_other_than_chunked_is_refused(served, framing, status, message):
    front, invoker, _records = served
    answer = _exchange(front, WEBHOOK_HEAD + framing + b"\r\n2\r\n[]\r\n0\r\n\r\n")
    assert (answer.status, answer.json()) == (status, {"message": message}) and answer.closed
    assert invoker.events == []
    assert _still_serves(front)


def test_transfer_encoding_on_an_http_1_0_request_is_refused(served):
    front, _invoker, _records = served
    raw = b"POST /v1/webhooks/qbo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n"
    answer = _exchange(front, raw)
    assert (answer.status, answer.json()) == (400, {"message": "Bad Request"}) and answer.closed
    assert _still_serves(front)


def test_a_post_without_content_length_or_transfer_encoding_has_an_empty_body(served):
    front, invoker, _records = served
    answer = _exchange(front, WEBHOOK_HEAD + b"Connection: close\r\n\r\n")
    assert answer.status == 200
    assert "body" not in invoker.events[0] and invoker.events[0]["isBase64Encoded"] is False


def test_an_unreadable_request_line_gets_the_gateways_json_not_an_html_page(served):
    front, _invoker, _records = served
    answer = _exchange(front, b"GARBAGE\r\n\r\n")
    assert (answer.status, answer.json()) == (400, {"message": "Bad Request"}) and answer.closed
    assert _still_serves(front)


@pytest.fixture
def impatient():
    """A gateway that waits only 0.2 s for each read from a client."""
    invoker = _RecordingInvoker(_ok({"statusCode": 200, "body": '{"accepted":0}'}))
    front = ApiFront(
        [WEBHOOK_ROUTE],
        invoker,
        throttle=TokenBucket(1.0, 2, clock=lambda: 0.0),
        account_id="123456789012",
        api_name="ledgerlink-local-api",
        read_timeout=0.2,
    ).start()
    yield front, invoker
    front.stop()


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param(b"Content-Length: 10\r\n\r\n[1,", id="content-length"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n8\r\n[1,", id="inside a chunk"),
        pytest.param(b"Transfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n", id="between chunks"),
    ],
)
def test_a_client_that_stalls_inside_its_body_gets_408_and_frees_the_thread(impatient, partial):
    front, invoker = impatient
    # given a client that sends part of its body and then nothing, without closing
    answer = _exchange(front, WEBHOOK_HEAD + partial)
    # then once the read timeout passes the gateway answers 408 and closes
    assert (answer.status, answer.json()) == (408, {"message": "Request Timeout"}) and answer.closed
    assert invoker.events == []
    assert _still_serves(front)


def test_an_idle_connection_is_closed_after_the_read_timeout(impatient):
    front, _invoker = impatient
    with socket.create_connection((front.host, front.port), timeout=CLIENT_TIMEOUT) as client:
        client.sendall(b"POST /v1/webhooks/qbo HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
        assert client.recv(65536) == b""  # closed, without an answer to a request never made
    assert _still_serves(front)


def test_the_read_timeout_must_be_positive():
    with pytest.raises(ValueError, match="read timeout"):
        ApiFront(
            [WEBHOOK_ROUTE],
            _RecordingInvoker(_ok(None)),
            throttle=TokenBucket(1.0, 1),
            account_id="123456789012",
            api_name="x",
            read_timeout=0,
        )


def test_a_gateway_that_never_served_stops_at_once():
    # given a gateway that took its port but was never started (a stack failing between the two)
    front = ApiFront(
        [WEBHOOK_ROUTE],
        _RecordingInvoker(_ok({"statusCode": 200})),
        throttle=TokenBucket(1.0, 2),
        account_id="123456789012",
        api_name="ledgerlink-local-api",
    )
    port = front.port
    # when it is stopped, it returns (shutdown() would wait for a loop that never ran) and frees the port
    front.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
