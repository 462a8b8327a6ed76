"""The HTTP API v2 request model and the one place errors become responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ledgerlink.apigw import (
    BadRequest,
    HttpRequest,
    PayloadTooLarge,
    error_response,
    json_response,
)
from ledgerlink.observability import Service, get_logger
from ledgerlink.qbo.webhooks import InvalidSignature, MalformedWebhook
from tests.unit.ingest.signed_requests import apigw_event, body_of

LOGGER = get_logger(Service.QBO_INGEST)


def test_the_recorded_event_becomes_a_request() -> None:
    body = body_of("cloudevents_invoice_created.json")
    request = HttpRequest.from_event(apigw_event(body, extra_headers={"Intuit-T-Id": "upper"}))

    assert request.request_id == "Bq9kTgYcIAMEbXw="
    assert request.route_key == "POST /v1/webhooks/qbo"
    assert request.method == "POST"
    assert request.path == "/v1/webhooks/qbo"
    assert request.received_at == datetime(2026, 11, 25, 14, 2, 52, 123000, tzinfo=UTC)
    assert request.header("Intuit-T-Id") == "upper"
    assert request.body(1024 * 1024) == body


def test_an_event_without_a_request_id_is_refused() -> None:
    with pytest.raises(BadRequest, match="requestId"):
        HttpRequest.from_event({"body": "[]"})


def test_a_body_over_the_limit_is_refused_before_it_is_decoded() -> None:
    # given a base64 body far over the limit whose text is not even valid base64
    request = HttpRequest.from_event({**apigw_event(b"[]"), "body": "!" * 5000, "isBase64Encoded": True})

    # then the size alone refuses it (decoding would have failed with a different error)
    with pytest.raises(PayloadTooLarge, match="exceeds 3000 bytes"):
        request.body(3000)


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_the_limit_is_on_the_bytes_received(base64_encoded: bool) -> None:
    exactly = b"[" + b" " * 98 + b"]"
    assert HttpRequest.from_event(apigw_event(exactly, base64_encoded=base64_encoded)).body(100) == exactly
    one_more = b"[" + b" " * 99 + b"]"
    with pytest.raises(PayloadTooLarge):
        HttpRequest.from_event(apigw_event(one_more, base64_encoded=base64_encoded)).body(100)


def test_multibyte_text_is_measured_in_bytes() -> None:
    # 40 characters, 80 bytes in UTF-8
    body = ('["' + "é" * 38 + '"]').encode()
    with pytest.raises(PayloadTooLarge):
        HttpRequest.from_event(apigw_event(body)).body(79)


def test_a_body_marked_base64_that_is_not_is_a_bad_request() -> None:
    request = HttpRequest.from_event({**apigw_event(b"[]"), "body": "not*base64", "isBase64Encoded": True})
    with pytest.raises(BadRequest, match="not valid base64"):
        request.body(1000)


def test_a_text_body_that_has_no_utf8_bytes_is_a_bad_request_not_a_crash() -> None:
    event = apigw_event(b"[]")
    event["body"] = "[\ud800]"  # what json.loads makes of an event carrying a lone surrogate escape
    with pytest.raises(BadRequest, match="not UTF-8"):
        HttpRequest.from_event(event).body(1024)


def test_json_response_shape() -> None:
    response = json_response(200, {"accepted": 3})
    assert response == {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": '{"accepted":3}',
        "isBase64Encoded": False,
    }


def test_mapped_errors_become_their_status_with_reason_and_message() -> None:
    statuses: dict[type[BaseException], int] = {InvalidSignature: 401, MalformedWebhook: 400}
    response = error_response(MalformedWebhook("$[0].time: bad"), statuses, LOGGER)
    assert response["statusCode"] == 400
    assert json.loads(response["body"]) == {"error": "malformed", "message": "$[0].time: bad"}
    response = error_response(PayloadTooLarge("the body exceeds 10 bytes"), statuses, LOGGER)
    assert response["statusCode"] == 413
    assert json.loads(response["body"])["error"] == "payload_too_large"


def test_a_subclass_takes_the_status_of_its_mapped_parent() -> None:
    class VeryInvalid(InvalidSignature):
        pass

    assert error_response(VeryInvalid("no"), {InvalidSignature: 401}, LOGGER)["statusCode"] == 401


def test_an_unmapped_error_is_a_generic_500_that_reveals_nothing() -> None:
    response = error_response(KeyError("secret-value-in-a-bug"), {}, LOGGER)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": "internal_error", "message": "internal error"}
    assert "secret-value" not in response["body"]


@pytest.mark.parametrize("time_epoch", [None, "yesterday", 10**20])
def test_an_odd_receipt_time_falls_back_to_now(time_epoch: object) -> None:
    event = apigw_event(b"[]")
    event["requestContext"]["timeEpoch"] = time_epoch
    before = datetime.now(UTC)
    assert HttpRequest.from_event(event).received_at >= before


# --- the public URL a sender called (HubSpot signs it) ----------------------------------------------


def _hubspot_request(**changes: object) -> HttpRequest:
    from tests.unit.ingest.hubspot_requests import apigw_event as hubspot_event

    event = hubspot_event(b"[]")
    event.update(changes)
    return HttpRequest.from_event(event)


def test_the_request_carries_the_raw_path_query_domain_and_stage() -> None:
    request = _hubspot_request(rawQueryString="a=%3A1&b=two")
    assert (request.raw_path, request.raw_query_string, request.domain_name, request.stage) == (
        "/v1/webhooks/hubspot",
        "a=%3A1&b=two",
        "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
        "$default",
    )


def test_the_public_url_is_https_host_raw_path_and_raw_query() -> None:
    host = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    assert _hubspot_request().public_url() == f"{host}/v1/webhooks/hubspot"
    assert (
        _hubspot_request(rawQueryString="a=%3A1&b=%20").public_url()
        == f"{host}/v1/webhooks/hubspot?a=%3A1&b=%20"
    )
    # the raw path keeps its escapes (http.path has them decoded)
    escaped = _hubspot_request(rawPath="/v1/webhooks/hub%7Espot")
    assert escaped.public_url() == f"{host}/v1/webhooks/hub%7Espot"


def test_the_host_header_names_the_domain_and_domain_name_stands_in_without_one() -> None:
    event_headers = {"host": "hooks.example.com", "content-type": "application/json"}
    assert (
        _hubspot_request(headers=event_headers).public_url()
        == "https://hooks.example.com/v1/webhooks/hubspot"
    )
    without = _hubspot_request(headers={"content-type": "application/json"})
    assert (
        without.public_url() == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/webhooks/hubspot"
    )


def test_a_configured_url_replaces_scheme_host_and_path_and_keeps_the_query() -> None:
    registered = "https://hooks.example.com/ledgerlink/v1/webhooks/hubspot/"
    assert _hubspot_request().public_url(registered) == registered
    assert _hubspot_request(rawQueryString="x=1").public_url(registered) == f"{registered}?x=1"


def test_a_request_naming_no_host_has_no_public_url() -> None:
    request = _hubspot_request(headers={})
    request = HttpRequest(**{**request.__dict__, "domain_name": ""})
    with pytest.raises(BadRequest, match="no host"):
        request.public_url()


def test_the_qbo_event_still_reads_as_before() -> None:
    request = HttpRequest.from_event(apigw_event(b"[]"))
    assert (request.raw_path, request.raw_query_string, request.stage) == ("/v1/webhooks/qbo", "", "$default")
    assert request.path == "/v1/webhooks/qbo"
