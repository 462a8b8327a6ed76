"""End to end on the local stack: a deal moved through the HubSpot sandbox's API, the sandbox's v3-signed
webhook through the gateway and the HubSpot ingest function, to the bus as ``hubspot.deal.changed``;
a delivery signed with another secret moves nothing.

A probe rule on the stack's bus (besides the document sync's own) sends those events to a
probe queue, where the test reads them (as test_webhook_to_queue.py reads the deal-sync queue). The
stack runs without pollers, so nothing else writes to HubSpot meanwhile.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ledgerlink_local.stack.up import HUBSPOT_WEBHOOK_PATH, LocalEnvironment
from tests.e2e.conftest import local_environment, raw_objects, wait_for

PROBE_QUEUE = "ledgerlink-local-probe-hubspot-deal-changed"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    with local_environment(state_dir, start_pollers=False) as environment:
        yield environment


@pytest.fixture(scope="module")
def probe(environment: LocalEnvironment) -> str:
    """A queue that receives every hubspot.deal.changed event of the stack's bus; returns its URL."""
    assert environment.stack.topology is not None
    sqs, events = environment.stack.client("sqs"), environment.stack.client("events")
    url = sqs.create_queue(QueueName=PROBE_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = environment.stack.topology.event_bus.name
    pattern = {"source": ["ledgerlink.hubspot.webhooks"], "detail-type": ["hubspot.deal.changed"]}
    events.put_rule(Name="probe-hubspot-deal-changed", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="probe-hubspot-deal-changed", EventBusName=bus, Targets=[{"Id": "probe", "Arn": arn}]
    )
    return str(url)


class Probe:
    """What reached the probe queue so far (each message read once, kept here)."""

    def __init__(self, environment: LocalEnvironment, url: str) -> None:
        self.sqs = environment.stack.client("sqs")
        self.url = url
        self.seen: list[dict[str, Any]] = []

    def events(self) -> list[dict[str, Any]]:
        reply = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            self.seen.append(json.loads(message["Body"]))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return self.seen


def _hubspot(environment: LocalEnvironment, connection: str = "demo") -> dict[str, str]:
    (own,) = [c for c in environment.description["connections"] if c["name"] == connection]
    hubspot: dict[str, str] = own["hubspot"]
    return hubspot


def _api(environment: LocalEnvironment, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    hubspot = _hubspot(environment)
    reply = requests.request(
        method,
        hubspot["base_url"] + path,
        json=body,
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    assert reply.status_code < 300, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _sign(secret: str, url: str, body: bytes, timestamp: str) -> str:
    """HubSpot's v3 signature, computed here independently of the code under test."""
    message = b"POST" + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def test_a_deal_moved_to_the_quote_stage_reaches_the_bus_as_hubspot_deal_changed(
    environment: LocalEnvironment, probe: str
) -> None:
    hubspot = _hubspot(environment)
    seen = Probe(environment, probe)
    # given a deal created through HubSpot's API in the demo connection's portal
    deal = _api(
        environment,
        "POST",
        "/crm/v3/objects/deals",
        {
            "properties": {
                "dealname": f"Quote {uuid.uuid4().hex[:8]}",
                "pipeline": "default",
                "amount": "1250",
            }
        },
    )
    # when it is moved to the quote stage (contractsent)
    _api(
        environment,
        "PATCH",
        f"/crm/v3/objects/deals/{deal['id']}",
        {"properties": {"dealstage": "contractsent"}},
    )

    # then the sandbox's signed webhook became a hubspot.deal.changed event on the bus
    def moved() -> list[dict[str, Any]]:
        return [
            event
            for event in seen.events()
            if event["detail"]["payload"]["deal_id"] == deal["id"]
            and event["detail"]["payload"]["property_value"] == "contractsent"
        ]

    (event,) = wait_for(moved, "the stage change on the bus")
    assert (event["source"], event["detail-type"]) == ("ledgerlink.hubspot.webhooks", "hubspot.deal.changed")
    payload = event["detail"]["payload"]
    assert (payload["connection"], payload["portal_id"], payload["change"], payload["object_type"]) == (
        "demo",
        hubspot["portal_id"],
        "stage_changed",
        "deal",
    )
    assert (payload["subscription_type"], payload["property_name"]) == ("deal.propertyChange", "dealstage")
    assert event["detail"]["correlation_id"] == event["detail"]["event_id"]
    # and the delivery it came in is archived, verified against the URL the sandbox was pointed at
    assert environment.stack.resources is not None
    archived = json.loads(
        environment.stack.client("s3")
        .get_object(Bucket=environment.stack.resources.bucket_name, Key=payload["raw_object_key"])["Body"]
        .read()
    )
    assert archived["verified"] == "v3"
    assert archived["public_url"] == environment.stack.gateway_url + HUBSPOT_WEBHOOK_PATH
    assert {"x-hubspot-signature-v3", "x-hubspot-request-timestamp"} <= set(archived["headers"])
    (sent,) = [
        item
        for item in json.loads(archived["body"])
        if item["objectId"] == int(deal["id"]) and item.get("propertyName") == "dealstage"
    ]
    # and the event carries what HubSpot's said (the sandbox names API writes' source as HubSpot does)
    assert (payload["hubspot_event_id"], payload["occurred_at_ms"], payload["change_source"]) == (
        str(sent["eventId"]),
        sent["occurredAt"],
        sent["changeSource"],
    )
    # and HubSpot (the sandbox) was answered 2xx, so it does not retry
    portal = environment.sandboxes.sandbox("hubspot").portal_sandbox(hubspot["portal_id"])
    assert portal.webhooks.attempts and {attempt.status for attempt in portal.webhooks.attempts} == {200}


def test_a_line_item_created_through_the_api_is_a_line_item_change(
    environment: LocalEnvironment, probe: str
) -> None:
    seen = Probe(environment, probe)
    # given a line item created in the demo portal
    item = _api(
        environment,
        "POST",
        "/crm/v3/objects/line_items",
        {"properties": {"name": "Site survey", "quantity": "2", "price": "150"}},
    )

    # then its creation and its quantity and price reach the bus as line_item_changed
    def changes() -> list[tuple[str | None, str | None]]:
        found = [
            (event["detail"]["payload"]["subscription_type"], event["detail"]["payload"]["property_name"])
            for event in seen.events()
            if event["detail"]["payload"]["object_id"] == item["id"]
        ]
        return found if len(found) >= 3 else []

    found = wait_for(changes, "the line item's events on the bus")
    assert sorted(found, key=str) == sorted(
        [
            ("line_item.creation", None),
            ("line_item.propertyChange", "price"),
            ("line_item.propertyChange", "quantity"),
        ],
        key=str,
    )
    assert {
        event["detail"]["payload"]["change"]
        for event in seen.seen
        if event["detail"]["payload"]["object_id"] == item["id"]
    } == {"line_item_changed"}


def test_each_portal_is_verified_with_its_own_apps_secret(environment: LocalEnvironment, probe: str) -> None:
    # given a delivery from the second connection's portal, as HubSpot would send it
    thames = _hubspot(environment, "thames")
    url = environment.stack.gateway_url + HUBSPOT_WEBHOOK_PATH
    event = {
        "eventId": 4000000001,
        "subscriptionId": 2910004,
        "portalId": int(thames["portal_id"]),
        "appId": 3105187,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": 91999,
        "propertyName": "dealstage",
        "propertyValue": "closedwon",
        "changeSource": "CRM_UI",
    }
    body = json.dumps([event]).encode()
    timestamp = str(int(time.time() * 1000))
    headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": timestamp}
    objects_before = set(raw_objects(environment))

    # when it is signed with the demo portal's secret, it is refused and nothing is stored
    wrong = _sign(_hubspot(environment)["client_secret"], url, body, timestamp)
    reply = requests.post(url, data=body, headers={**headers, "X-HubSpot-Signature-v3": wrong}, timeout=30)
    assert (reply.status_code, reply.json()["error"]) == (401, "invalid_signature")
    assert set(raw_objects(environment)) == objects_before

    # when it is signed with its own app's secret, it is accepted as the thames connection's
    right = _sign(thames["client_secret"], url, body, timestamp)
    reply = requests.post(url, data=body, headers={**headers, "X-HubSpot-Signature-v3": right}, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1
    seen = Probe(environment, probe)
    (published,) = wait_for(
        lambda: [e for e in seen.events() if e["detail"]["payload"]["object_id"] == "91999"],
        "the thames event",
    )
    assert published["detail"]["payload"]["connection"] == "thames"
