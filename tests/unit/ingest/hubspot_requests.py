"""The requests the HubSpot ingest tests send: fixture bodies, HubSpot's v3 signature (computed here,
from HubSpot's documented algorithm, not with the code under test), API Gateway v2 events."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from typing import Any

from tests.conftest import FIXTURES

WEBHOOKS = FIXTURES / "hubspot_webhooks"
# The connections of tests/fixtures/config/recorded-realms.toml, by portal, and their apps' client secrets.
RECORDED_PORTALS = {"48213570": "sample", "48213571": "second"}
CLIENT_SECRETS = {
    "sample": "6f1c9b2e-8a47-4d3f-b05e-2e9a7c4d1f08",
    "second": "a93e0d57-1b6c-4f28-9e4a-7c5d2b8f0e13",
}
OTHER_SECRET = "00000000-1111-4222-8333-444444444444"
PUBLIC_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/webhooks/hubspot"
# The gateway's receipt time in the recorded event (requestContext.timeEpoch), and a timestamp HubSpot
# would have sent two seconds before it.
RECEIVED_MS = 1795615372123
SENT_MS = RECEIVED_MS - 2000
STAGE = "dev"


def body_of(name: str) -> bytes:
    """A fixture body, byte for byte as stored."""
    return (WEBHOOKS / name).read_bytes()


def malformed_cases() -> list[dict[str, str]]:
    cases: list[dict[str, str]] = json.loads((WEBHOOKS / "malformed" / "cases.json").read_text())["cases"]
    return cases


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature: base64(HMAC-SHA256(client secret, method + URI + body + timestamp))."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def secret_name(connection: str, stage: str = STAGE) -> str:
    return f"ledgerlink/{stage}/connections/{connection}/hubspot/app"


def apigw_event(
    body: bytes,
    *,
    secret: str | None = CLIENT_SECRETS["sample"],
    signed_url: str = PUBLIC_URL,
    timestamp: str | None = str(SENT_MS),
    signature: str | None = None,
    raw_query: str = "",
    request_id: str | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """The recorded API Gateway v2 event carrying ``body``, signed by HubSpot with ``secret`` for
    ``signed_url`` (None: no signature header) unless ``signature`` is given."""
    event: dict[str, Any] = copy.deepcopy(json.loads((WEBHOOKS / "apigw_v2_event.json").read_text()))
    headers: dict[str, str] = event["headers"]
    headers["content-length"] = str(len(body))
    if timestamp is not None:
        headers["x-hubspot-request-timestamp"] = timestamp
    if signature is not None:
        headers["x-hubspot-signature-v3"] = signature
    elif secret is not None:
        headers["x-hubspot-signature-v3"] = hubspot_signature(
            secret, "POST", signed_url, body, timestamp or ""
        )
    event["rawQueryString"] = raw_query
    if base64_encoded:
        event["body"] = base64.b64encode(body).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = body.decode("utf-8")
    if request_id is not None:
        event["requestContext"]["requestId"] = request_id
    return event
