"""The intuit-signature check: base64(HMAC-SHA256(verifier token, raw body)), compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ledgerlink.apigw import HttpRequest
from ledgerlink.qbo.webhooks import (
    InvalidSignature,
    MissingSignature,
    compute_signature,
    verify_signature,
)
from tests.unit.ingest.signed_requests import OTHER_TOKEN, VERIFIER_TOKEN, apigw_event, body_of


def test_a_delivery_signed_with_the_verifier_token_is_accepted() -> None:
    # given the body Intuit sent and the signature it computed over those bytes
    body = body_of("cloudevents_multi_realm.json")
    signature = base64.b64encode(hmac.new(VERIFIER_TOKEN.encode(), body, hashlib.sha256).digest()).decode()

    # when / then: it verifies (no exception)
    verify_signature(VERIFIER_TOKEN, body, signature)
    assert compute_signature(VERIFIER_TOKEN, body) == signature


def test_surrounding_whitespace_in_the_header_is_tolerated() -> None:
    body = body_of("cloudevents_invoice_created.json")
    verify_signature(VERIFIER_TOKEN, body, f"  {compute_signature(VERIFIER_TOKEN, body)}\n")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_signature_is_refused(header: str | None) -> None:
    body = body_of("cloudevents_invoice_created.json")
    with pytest.raises(MissingSignature, match="intuit-signature header is missing"):
        verify_signature(VERIFIER_TOKEN, body, header)


def test_a_signature_made_with_another_key_is_refused() -> None:
    body = body_of("cloudevents_invoice_created.json")
    with pytest.raises(InvalidSignature, match="does not match the body"):
        verify_signature(VERIFIER_TOKEN, body, compute_signature(OTHER_TOKEN, body))


def test_a_wrong_signature_is_refused() -> None:
    body = body_of("cloudevents_invoice_created.json")
    wrong = base64.b64encode(b"\x00" * 32).decode()
    with pytest.raises(InvalidSignature):
        verify_signature(VERIFIER_TOKEN, body, wrong)


def test_a_truncated_signature_is_refused() -> None:
    body = body_of("cloudevents_invoice_created.json")
    truncated = base64.b64encode(
        hmac.new(VERIFIER_TOKEN.encode(), body, hashlib.sha256).digest()[:16]
    ).decode()
    with pytest.raises(InvalidSignature):
        verify_signature(VERIFIER_TOKEN, body, truncated)


def test_a_signature_that_is_not_base64_is_refused() -> None:
    body = body_of("cloudevents_invoice_created.json")
    with pytest.raises(InvalidSignature, match="not base64"):
        verify_signature(VERIFIER_TOKEN, body, "not base64 at all!")


def test_a_body_changed_after_signing_is_refused() -> None:
    # given a signature over the original body
    body = body_of("cloudevents_invoice_created.json")
    signature = compute_signature(VERIFIER_TOKEN, body)
    # when one character of the body changes (the entity id 145 -> 146)
    tampered = body.replace(b'"intuitentityid": "145"', b'"intuitentityid": "146"')
    assert tampered != body
    # then the signature no longer verifies
    with pytest.raises(InvalidSignature):
        verify_signature(VERIFIER_TOKEN, tampered, signature)


def test_reformatting_the_json_breaks_the_signature() -> None:
    # The signature covers the raw bytes, not the parsed JSON: re-serialising must not verify.
    body = body_of("cloudevents_invoice_created.json")
    signature = compute_signature(VERIFIER_TOKEN, body)
    reformatted = body.replace(b"\n", b"\r\n")
    assert reformatted != body
    with pytest.raises(InvalidSignature):
        verify_signature(VERIFIER_TOKEN, reformatted, signature)


def test_a_base64_encoded_body_is_verified_over_the_decoded_bytes() -> None:
    # given API Gateway delivered the body base64-encoded (isBase64Encoded), signed over the raw bytes
    body = body_of("legacy_multi_realm.json")
    event = apigw_event(body, base64_encoded=True)
    request = HttpRequest.from_event(event)

    # when the body is read back
    decoded = request.body(max_bytes=1024 * 1024)

    # then it is the exact bytes Intuit signed, and the signature verifies against them (and not the text)
    assert decoded == body
    verify_signature(VERIFIER_TOKEN, decoded, request.header("intuit-signature"))
    with pytest.raises(InvalidSignature):
        verify_signature(VERIFIER_TOKEN, request.raw_body.encode(), request.header("intuit-signature"))


def test_the_error_never_shows_the_expected_signature_or_the_token() -> None:
    body = body_of("cloudevents_invoice_created.json")
    expected = compute_signature(VERIFIER_TOKEN, body)
    with pytest.raises(InvalidSignature) as caught:
        verify_signature(VERIFIER_TOKEN, body, compute_signature(OTHER_TOKEN, body))
    assert expected not in str(caught.value)
    assert VERIFIER_TOKEN not in str(caught.value)
