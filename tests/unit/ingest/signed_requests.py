"""The requests the QBO ingest tests send: fixture bodies, Intuit's signature, API Gateway v2 events."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

from ledgerlink.qbo.webhooks import compute_signature
from tests.conftest import FIXTURES

WEBHOOKS = FIXTURES / "qbo_webhooks"
VERIFIER_TOKEN = "f3a9c2e1-7b64-4d0a-9e85-2c1b0f6d4a37"
OTHER_TOKEN = "0d4e6b1a-93c2-4f58-a7e0-5b2c8d9f1e64"


def body_of(name: str) -> bytes:
    """A fixture body, byte for byte as stored."""
    return (WEBHOOKS / name).read_bytes()


def malformed_cases() -> list[dict[str, str]]:
    cases: list[dict[str, str]] = json.loads((WEBHOOKS / "malformed" / "cases.json").read_text())["cases"]
    return cases


def apigw_event(
    body: bytes,
    *,
    signature: str | None = "sign",
    token: str = VERIFIER_TOKEN,
    base64_encoded: bool = False,
    request_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The recorded API Gateway v2 event carrying ``body``, signed with ``token`` unless told otherwise.

    ``signature="sign"`` computes Intuit's signature; ``None`` leaves the header out; any other
    string is sent as is.
    """
    event: dict[str, Any] = copy.deepcopy(json.loads((WEBHOOKS / "apigw_v2_event.json").read_text()))
    headers: dict[str, str] = event["headers"]
    headers["content-length"] = str(len(body))
    if signature == "sign":
        headers["intuit-signature"] = compute_signature(token, body)
    elif signature is not None:
        headers["intuit-signature"] = signature
    headers.update(extra_headers or {})
    if base64_encoded:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = body.decode("utf-8")
    if request_id is not None:
        event["requestContext"]["requestId"] = request_id
    return event


def fixture_path(name: str) -> Path:
    return WEBHOOKS / name


# Every variable Settings requires, with the names the ingest tests create their resources under.
INGEST_ENVIRONMENT = {
    "LEDGERLINK_EVENT_BUS_NAME": "ledgerlink-test",
    "LEDGERLINK_RAW_BUCKET_NAME": "ledgerlink-test-raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "ledgerlink-test-idempotency",
    "LEDGERLINK_LINKS_TABLE_NAME": "ledgerlink-test-links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "ledgerlink-test-vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "ledgerlink/test/qbo-webhook",
    # serves the realms of the recorded deliveries
    "LEDGERLINK_CONFIG_FILE": str(
        Path(__file__).resolve().parents[2] / "fixtures" / "config" / "recorded-realms.toml"
    ),
}
# The connections of that file, for tests that build the ingest ports themselves.
RECORDED_REALMS = {"9341455130122367": "sample", "4620816365215648290": "second"}
