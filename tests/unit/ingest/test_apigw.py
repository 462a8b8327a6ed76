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
