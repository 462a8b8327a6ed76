"""HubSpot's v3 request signature: vectors computed here from HubSpot's documented algorithm
(base64 of HMAC-SHA256 with the app's client secret over method + URI + body + timestamp, with only
HubSpot's listed percent-escapes decoded in the URI), never with the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ledgerlink.hubspot import webhooks
from ledgerlink.hubspot.webhooks import (
    MAX_AGE_MS,
    InvalidSignature,
    InvalidTimestamp,
    MissingSignature,
    StaleTimestamp,
    signed_uri,
    verify_v3,
)

SECRET = "6f1c9b2e-8a47-4d3f-b05e-2e9a7c4d1f08"
BODY = (
    b'[{"eventId":3000000101,"subscriptionId":2910004,"portalId":48213570,"appId":3105112,'
    b'"occurredAt":1795615370120,"subscriptionType":"deal.propertyChange","attemptNumber":0,'
    b'"objectId":91027,"propertyName":"dealstage","propertyValue":"contractsent","changeSource":"CRM_UI"}]'
)
URL = "https://hooks.example.com/v1/webhooks/hubspot"
NOW_MS = 1_795_615_372_123
TIMESTAMP = str(NOW_MS - 2_000)


def documented_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's algorithm, spelled out: ``uri`` already as HubSpot signs it."""
    source = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


# (the URL HubSpot called, the URI it signs): only %3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B
# are decoded, in either case; %20, %7E and every other escape are signed as sent.
URLS = [
    (URL, URL),
    (f"{URL}?portal=48213570&source=hubspot", f"{URL}?portal=48213570&source=hubspot"),
    (f"{URL}?next=%2Fdeals%3A91027&by=ops%40example.com", f"{URL}?next=/deals:91027&by=ops@example.com"),
    (f"{URL}?note=a%20b&home=%7Eops", f"{URL}?note=a%20b&home=%7Eops"),
    (f"{URL}?time=14%3a02%3A52", f"{URL}?time=14:02:52"),
    (f"{URL}?literal=%253A", f"{URL}?literal=%253A"),
    (
        f"{URL}?all=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B",
        f"{URL}?all=:/?@!$'()*,;",
    ),
    (f"{URL}?plus=a+b&eq=%3D&amp=%26&pct=%25", f"{URL}?plus=a+b&eq=%3D&amp=%26&pct=%25"),
    (
        "https://api.example.com/ledger%3Alink/v1/webhooks/hubspot/",
        "https://api.example.com/ledger:link/v1/webhooks/hubspot/",
    ),
]


@pytest.mark.parametrize(("url", "signed"), URLS, ids=[signed for _, signed in URLS])
def test_a_request_signed_as_hubspot_documents_is_accepted(url: str, signed: str) -> None:
    # given HubSpot's signature of the request, over the URI as HubSpot signs it
    signature = documented_signature(SECRET, "POST", signed, BODY, TIMESTAMP)
    # when it is verified against the URL that was called: then it passes (no exception)
    verify_v3(SECRET, "POST", url, BODY, TIMESTAMP, signature, NOW_MS)


@pytest.mark.parametrize(("url", "signed"), URLS, ids=[signed for _, signed in URLS])
def test_signed_uri_decodes_only_the_escapes_hubspot_lists(url: str, signed: str) -> None:
    assert signed_uri(url) == signed


def test_a_signature_over_the_fully_decoded_url_is_refused() -> None:
    # given a signature made over the URL with every escape decoded (as some community code does)
    url = f"{URL}?note=a%20b&home=%7Eops"
    signature = documented_signature(SECRET, "POST", f"{URL}?note=a b&home=~ops", BODY, TIMESTAMP)
    # then it is not HubSpot's signature of that URL
    with pytest.raises(InvalidSignature):
        verify_v3(SECRET, "POST", url, BODY, TIMESTAMP, signature, NOW_MS)


@pytest.mark.parametrize(
    ("method", "url", "body", "timestamp"),
    [
        ("GET", URL, BODY, TIMESTAMP),
        ("POST", URL + "/", BODY, TIMESTAMP),
        ("POST", "http://hooks.example.com/v1/webhooks/hubspot", BODY, TIMESTAMP),
        ("POST", URL, BODY.replace(b"contractsent", b"closedwon"), TIMESTAMP),
        ("POST", URL, BODY + b"\n", TIMESTAMP),
        ("POST", URL, BODY, str(NOW_MS - 1_000)),
    ],
    ids=["method", "trailing slash", "scheme", "body", "a byte more", "timestamp"],
)
def test_a_request_that_differs_from_what_was_signed_in_any_part_is_refused(
    method: str, url: str, body: bytes, timestamp: str
) -> None:
    signature = documented_signature(SECRET, "POST", URL, BODY, TIMESTAMP)
    with pytest.raises(InvalidSignature):
        verify_v3(SECRET, method, url, body, timestamp, signature, NOW_MS)


def test_query_parameters_in_another_order_are_another_url() -> None:
    signature = documented_signature(SECRET, "POST", f"{URL}?a=1&b=2", BODY, TIMESTAMP)
    with pytest.raises(InvalidSignature):
        verify_v3(SECRET, "POST", f"{URL}?b=2&a=1", BODY, TIMESTAMP, signature, NOW_MS)


def test_a_signature_made_with_another_secret_is_refused_without_telling_either() -> None:
    # given the request signed with another app's client secret
    other = "00000000-1111-4222-8333-444444444444"
    signature = documented_signature(other, "POST", URL, BODY, TIMESTAMP)
    expected = documented_signature(SECRET, "POST", URL, BODY, TIMESTAMP)
    # when it is verified with the portal's secret
    with pytest.raises(InvalidSignature) as raised:
        verify_v3(SECRET, "POST", URL, BODY, TIMESTAMP, signature, NOW_MS)
    # then it is refused, and the message holds neither secret nor the signature it expected
    message = str(raised.value)
    assert raised.value.reason == "invalid_signature"
    assert "x-hubspot-signature-v3" in message
    for hidden in (SECRET, other, expected, base64.b64decode(expected).hex()):
        assert hidden not in message


def test_the_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the comparison recorded (still the real one)
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def recording_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(webhooks.hmac, "compare_digest", recording_compare)
    signature = documented_signature(SECRET, "POST", URL, BODY, TIMESTAMP)
    # when a request is verified
    verify_v3(SECRET, "POST", URL, BODY, TIMESTAMP, signature, NOW_MS)
    # then the decoded digests went through hmac.compare_digest
    assert compared == [(base64.b64decode(signature), base64.b64decode(signature))]


@pytest.mark.parametrize(
    "signature",
    ["not base64!", "c2lnbmF0dXJl=", documented_signature(SECRET, "POST", URL, BODY, TIMESTAMP)[:-4]],
    ids=["not base64", "bad padding", "cut short"],
)
def test_a_signature_that_is_not_base64_of_a_digest_is_invalid(signature: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_v3(SECRET, "POST", URL, BODY, TIMESTAMP, signature, NOW_MS)


@pytest.mark.parametrize(
    ("age_ms", "accepted"),
    [
        (0, True),
        (MAX_AGE_MS, True),
        (MAX_AGE_MS + 1, False),
        (60 * 60 * 1000, False),
        (-MAX_AGE_MS, True),
        (-MAX_AGE_MS - 1, False),
    ],
    ids=[
        "now",
        "exactly 5 minutes old",
        "a millisecond older",
        "an hour old",
        "5 minutes ahead",
        "further ahead",
    ],
)
def test_a_timestamp_more_than_five_minutes_from_now_is_refused_even_if_signed(
    age_ms: int, accepted: bool
) -> None:
    # given a request HubSpot signed with a timestamp age_ms before now
    timestamp = str(NOW_MS - age_ms)
    signature = documented_signature(SECRET, "POST", URL, BODY, timestamp)
    if accepted:
        verify_v3(SECRET, "POST", URL, BODY, timestamp, signature, NOW_MS)
        return
    with pytest.raises(StaleTimestamp) as raised:
        verify_v3(SECRET, "POST", URL, BODY, timestamp, signature, NOW_MS)
    assert raised.value.reason == "stale_timestamp"
    assert ("old" if age_ms > 0 else "in the future") in str(raised.value)


@pytest.mark.parametrize(
    "timestamp", ["soon", "1795615370.120", "-1795615370120", " 1795615370120", "0x1A", "1" * 16]
)
def test_a_timestamp_that_is_not_milliseconds_is_refused(timestamp: str) -> None:
    signature = documented_signature(SECRET, "POST", URL, BODY, timestamp)
    with pytest.raises(InvalidTimestamp) as raised:
        verify_v3(SECRET, "POST", URL, BODY, timestamp, signature, NOW_MS)
    # a kind of unusable timestamp: the handler answers it like a stale one (401)
    assert isinstance(raised.value, StaleTimestamp)
    assert raised.value.reason == "invalid_timestamp"


@pytest.mark.parametrize(
    ("timestamp", "signature", "header"),
    [
        (TIMESTAMP, None, "x-hubspot-signature-v3"),
        (TIMESTAMP, "  ", "x-hubspot-signature-v3"),
        (None, "c2lnbmF0dXJl", "x-hubspot-request-timestamp"),
        ("", "c2lnbmF0dXJl", "x-hubspot-request-timestamp"),
    ],
    ids=["no signature", "blank signature", "no timestamp", "empty timestamp"],
)
def test_a_missing_header_is_named(timestamp: str | None, signature: str | None, header: str) -> None:
    with pytest.raises(MissingSignature) as raised:
        verify_v3(SECRET, "POST", URL, BODY, timestamp, signature, NOW_MS)
    assert raised.value.reason == "missing_signature"
    assert str(raised.value) == f"the {header} header is missing"
