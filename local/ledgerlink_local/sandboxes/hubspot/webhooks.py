"""HubSpot webhook deliveries: event payloads and request signatures (v3 and v1).

HubSpot POSTs a JSON array of up to 100 events. v3 signature (the one to verify):
``X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client_secret, method + uri + body + timestamp))``
with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds; receivers reject timestamps older
than 5 minutes. HubSpot also sends the older v1 signature (``X-HubSpot-Signature`` =
hex(SHA-256(client_secret + body)), ``X-HubSpot-Signature-Version: v1``).

Each retry is a fresh request: a new timestamp and signature and ``attemptNumber`` + 1.
HubSpot documents up to 10 attempts spread over about 24 hours (with randomisation); the
schedule below (seconds after the previous attempt) reproduces that span; the exact intervals
are not published, so they are an assumption.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_EVENTS_PER_REQUEST = 100
# 9 retries after the first attempt: 10 attempts over ~24 hours.
RETRY_SCHEDULE_SECONDS: list[float] = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800]
BATCH_WINDOW_SECONDS = 1.0
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon-executor"


@dataclass(frozen=True)
class WebhookEvent:
    sequence: int  # order of enqueueing; groups events into requests of at most 100
    event_id: int
    subscription_id: int
    portal_id: int
    app_id: int
    occurred_at: int  # epoch milliseconds
    subscription_type: str  # e.g. deal.propertyChange
    object_id: int
    change_source: str
    source_id: str | None
    property_name: str | None = None
    property_value: str | None = None
    change_flag: str | None = None

    def describe(self, attempt_number: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "eventId": self.event_id,
            "subscriptionId": self.subscription_id,
            "portalId": self.portal_id,
            "appId": self.app_id,
            "occurredAt": self.occurred_at,
            "subscriptionType": self.subscription_type,
            "attemptNumber": attempt_number,
            "objectId": self.object_id,
        }
        if self.property_name is not None:
            body["propertyName"] = self.property_name
            body["propertyValue"] = self.property_value or ""
        if self.change_flag is not None:
            body["changeFlag"] = self.change_flag
        body["changeSource"] = self.change_source
        if self.source_id is not None:
            body["sourceId"] = self.source_id
        return body


def signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")
    digest = hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_v1(client_secret: str, body: bytes) -> str:
    return hashlib.sha256(client_secret.encode("utf-8") + body).hexdigest()


def build_request(
    events: list[WebhookEvent],
    attempt: int,
    *,
    url: str,
    client_secret: str,
    wall_clock: Callable[[], float] = time.time,
) -> tuple[bytes, dict[str, str]]:
    """One delivery attempt (attempt counts from 1; HubSpot's attemptNumber from 0)."""
    payload = [event.describe(attempt - 1) for event in events]
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    # The timestamp is the sender's real time, not the sandbox clock: receivers check it against
    # their own clock for the 5-minute replay window.
    timestamp = str(int(wall_clock() * 1000))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-HubSpot-Timeout-Millis": "10000",
        "X-HubSpot-Signature": signature_v1(client_secret, body),
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature-v3": signature_v3(client_secret, "POST", url, body, timestamp),
        "X-HubSpot-Request-Timestamp": timestamp,
    }
    return body, headers
