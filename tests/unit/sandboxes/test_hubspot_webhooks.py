"""HubSpot sandbox: deal webhooks, v3 signatures (verified with HubSpot's documented algorithm),
subscriptions, batching, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from ledgerlink_local.sandboxes.hubspot import DEMO_APP_ID, DEMO_CLIENT_SECRET, DEMO_PORTAL_ID
from tests.unit.sandboxes.polling import wait_for
from tests.unit.sandboxes.test_hubspot_support import (
    HubSpotApi,
    ReceivedRequest,
    WebhookReceiver,
    hubspot,
    receiver,
)

__all__ = ["hubspot", "receiver"]


def _verify_v3(request: ReceivedRequest, uri: str) -> bool:
    """HubSpot's documented v3 check, written independently of the sandbox: reject timestamps
    older than 5 minutes, HMAC-SHA256(client secret, method + uri + body + timestamp), base64,
    compared in constant time."""
    timestamp = request.headers["X-HubSpot-Request-Timestamp"]
    if time.time() * 1000 - int(timestamp) > 5 * 60 * 1000:
        return False
    message = request.method.encode() + uri.encode() + request.body + timestamp.encode()
    expected = base64.b64encode(
        hmac.new(DEMO_CLIENT_SECRET.encode(), message, hashlib.sha256).digest()
    ).decode()
    return hmac.compare_digest(expected, request.headers["X-HubSpot-Signature-v3"])


def _listen(hubspot: HubSpotApi, receiver: WebhookReceiver, **options: object) -> None:
    hubspot.configure(webhook_url=receiver.url, webhook_time_factor=0.001, **options)


def test_deal_changes_are_posted_signed_with_v3(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    # given a webhook target
    _listen(hubspot, receiver)
    # when a deal is created and moved to Closed Won through the API
    deal = hubspot.post(
        "/crm/v3/objects/deals", {"properties": {"dealname": "Invoice 1041", "dealstage": "contractsent"}}
    ).json()
    hubspot.patch(f"/crm/v3/objects/deals/{deal['id']}", {"properties": {"dealstage": "closedwon"}})
    events = wait_for(lambda: len(receiver.events()) >= 5 and receiver.events())
    # then every request verifies with HubSpot's v3 algorithm (and the legacy v1 one)
    for request in receiver.received:
        assert request.path.startswith("/webhooks/hubspot")
        assert _verify_v3(request, receiver.url)
        assert request.headers["X-HubSpot-Signature-Version"] == "v1"
        assert (
            request.headers["X-HubSpot-Signature"]
            == hashlib.sha256(DEMO_CLIENT_SECRET.encode() + request.body).hexdigest()
        )
        assert request.headers["Content-Type"] == "application/json"
    # and the events are HubSpot's: creation, then property changes, API writes from the app.
    # Batches go out concurrently and HubSpot does not promise delivery order either, so the
    # order asserted is the one the events occurred in.
    events = sorted(events, key=lambda e: (e["occurredAt"], e["eventId"]))
    kinds = [(e["subscriptionType"], e.get("propertyName"), e.get("propertyValue")) for e in events]
    assert kinds == [
        ("deal.creation", None, None),
        ("deal.propertyChange", "dealname", "Invoice 1041"),
        ("deal.propertyChange", "dealstage", "contractsent"),
        ("deal.propertyChange", "pipeline", "default"),
        ("deal.propertyChange", "dealstage", "closedwon"),
    ]
    first = events[0]
    assert (first["portalId"], first["appId"], first["objectId"]) == (
        DEMO_PORTAL_ID,
        DEMO_APP_ID,
        int(deal["id"]),
    )
    assert first["changeFlag"] == "CREATED" and first["attemptNumber"] == 0
    assert {e["changeSource"] for e in events} == {"INTEGRATION"} and {e["sourceId"] for e in events} == {
        str(DEMO_APP_ID)
    }
    assert len({e["eventId"] for e in events}) == 5
    assert all(isinstance(e["occurredAt"], int) for e in events)


def test_tampered_body_fails_verification(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    _listen(hubspot, receiver)
    hubspot.post("/crm/v3/objects/deals", {"properties": {"dealname": "Check"}})
    request = wait_for(lambda: receiver.received and receiver.received[0])
    forged = ReceivedRequest(
        request.method, request.path, request.headers, request.body.replace(b"Check", b"Cheque")
    )
    assert _verify_v3(request, receiver.url) and not _verify_v3(forged, receiver.url)


def test_only_subscribed_properties_are_sent(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    # given a subscription to dealstage changes only
    _listen(
        hubspot,
        receiver,
        webhook_subscriptions=[{"subscriptionType": "deal.propertyChange", "propertyName": "dealstage"}],
    )
    # when the amount changes, then the stage, then a user archives the deal
    hubspot.patch("/crm/v3/objects/deals/91005", {"properties": {"amount": "19000"}})
    hubspot.patch("/crm/v3/objects/deals/91005", {"properties": {"dealstage": "closedwon"}})
    hubspot.patch(
        "/crm/v3/objects/deals/91005", {"properties": {"dealstage": "closedwon"}}
    )  # no change, no event
    hubspot.delete("/crm/v3/objects/deals/91005")
    # then only the stage change was published, and it is what arrives
    published = hubspot.admin("GET", "webhook_events")["events"]
    assert [(e["subscriptionType"], e["propertyName"], e["propertyValue"]) for e in published] == [
        ("deal.propertyChange", "dealstage", "closedwon")
    ]
    delivered = wait_for(lambda: receiver.events())
    assert [e["eventId"] for e in delivered] == [published[0]["eventId"]] and delivered[0][
        "objectId"
    ] == 91005


def test_user_edits_in_hubspot_report_crm_ui(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    _listen(hubspot, receiver)
    edited = hubspot.admin(
        "POST", "ui_update", {"objectType": "deals", "id": "91006", "properties": {"dealstage": "closedwon"}}
    )
    events = wait_for(lambda: receiver.events())
    assert edited["properties"]["dealstage"] == "closedwon"
    assert (events[0]["changeSource"], events[0]["sourceId"]) == ("CRM_UI", "userId:8100101")


def test_deletion_event(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    _listen(hubspot, receiver, webhook_subscriptions=["deal.deletion"])
    hubspot.delete("/crm/v3/objects/deals/91007")
    events = wait_for(lambda: receiver.events())
    assert [(e["subscriptionType"], e["objectId"], e["changeFlag"]) for e in events] == [
        ("deal.deletion", 91007, "DELETED")
    ]


def test_at_most_100_events_per_request(hubspot: HubSpotApi, receiver: WebhookReceiver) -> None:
    # given a creation-only subscription and a long batch window, so all events wait together
    _listen(hubspot, receiver, webhook_subscriptions=["deal.creation"])
    hubspot.configure(webhook_time_factor=0.5)
    # when 150 deals are created in two batches
    for start in (0, 100):
        size = 100 if start == 0 else 50
        inputs = [{"properties": {"dealname": f"Bulk {start + n}"}} for n in range(size)]
        assert hubspot.post("/crm/v3/objects/deals/batch/create", {"inputs": inputs}).status_code == 201
    wait_for(lambda: len(receiver.events()) == 150)
    # then no request carried more than 100 events, and none was lost or repeated
    sizes = sorted(len(json.loads(r.body)) for r in receiver.received)
    assert max(sizes) <= 100 and sum(sizes) == 150
    assert len({e["eventId"] for e in receiver.events()}) == 150


def test_failed_delivery_is_retried_with_a_fresh_signature(
    hubspot: HubSpotApi, receiver: WebhookReceiver
) -> None:
    # given a target that fails twice
    receiver.statuses = [500, 503]
    _listen(hubspot, receiver, webhook_subscriptions=["deal.creation"])
    # when a deal is created
    hubspot.post("/crm/v3/objects/deals", {"properties": {"dealname": "Retry me"}})
    wait_for(lambda: len(receiver.received) == 3)
    # then the same event came three times, counting attempts, each request validly signed
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [b[0]["attemptNumber"] for b in bodies] == [0, 1, 2]
    assert len({b[0]["eventId"] for b in bodies}) == 1
    assert all(_verify_v3(r, receiver.url) for r in receiver.received)
    # (the dispatcher logs an attempt once it has the answer, just after the receiver saw it)
    wait_for(lambda: len(hubspot.admin("GET", "webhooks")["attempts"]) >= 3)
    attempts = hubspot.admin("GET", "webhooks")["attempts"]
    assert [a["status"] for a in attempts] == [500, 503, 200]
