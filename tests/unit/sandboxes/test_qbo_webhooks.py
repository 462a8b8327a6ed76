"""QBO sandbox: webhooks like Intuit sends them (CloudEvents or legacy, signed, batched, retried)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests
from quickbooks import QuickBooks

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_VERIFIER_TOKEN
from tests.unit.sandboxes.polling import wait_for
from tests.unit.sandboxes.qbo_support import QboApi, payload, webhook_receiver


def _expected_signature(body: bytes, verifier_token: str = DEMO_VERIFIER_TOKEN) -> str:
    """Intuit's documented algorithm: base64(HMAC-SHA256(key=verifier token, msg=raw body))."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def test_cloudevents_delivery_is_signed_with_the_verifier_token(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        # given the sandbox pointed at a receiver (batch window compressed to 10 ms)
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.01)
        # when a customer is created
        customer = api.created("Customer", payload("customer_create"))
        delivery = receiver.wait_for(1)[0]
    # then one CloudEvents array arrives, naming the entity and the realm only
    events = json.loads(delivery.body)
    assert isinstance(events, list) and len(events) == 1
    event = events[0]
    assert event["specversion"] == "1.0" and event["datacontenttype"] == "application/json"
    assert event["type"] == "qbo.customer.created.v1"
    assert (event["intuitentityid"], event["intuitaccountid"]) == (customer["Id"], api.realm)
    assert event["source"].startswith("intuit.") and event["data"] == {}
    assert event["time"].endswith("Z") and len(event["time"].split(".")[1]) == 10  # nanoseconds + Z
    # and the signature verifies with the documented algorithm, and with python-quickbooks' check
    signature = delivery.headers["intuit-signature"]
    assert hmac.compare_digest(signature, _expected_signature(delivery.body))
    assert QuickBooks.validate_webhook_signature(None, delivery.body.decode(), signature, DEMO_VERIFIER_TOKEN)
    assert not hmac.compare_digest(signature, _expected_signature(delivery.body, "another-token"))


def test_changes_are_batched_over_the_window_in_order(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        # given the default one-second batch window
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=1.0)
        # when five changes happen within it
        customer = api.created("Customer", payload("customer_create"))
        body = payload("invoice_create")
        body["CustomerRef"] = {"value": customer["Id"]}
        invoice = api.created("Invoice", body)
        api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "rush"})
        api.post("invoice", {"Id": invoice["Id"], "SyncToken": "1"}, operation="void")
        api.post("invoice", {"Id": invoice["Id"], "SyncToken": "2"}, operation="delete")
        deliveries = receiver.wait_for(1)
    # then they arrive together, in order, one event each
    events = json.loads(deliveries[0].body)
    assert [event["type"] for event in events] == payload("webhook_cloudevents_expected_types")
    assert [event["intuitentityid"] for event in events] == [customer["Id"]] + [invoice["Id"]] * 4
    assert len({event["id"] for event in events}) == 5
    assert len(receiver.deliveries) == 1


def test_side_effects_are_announced_too(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.05)
        payment = api.created("Payment", payload("payment_create"))
        events = json.loads(receiver.wait_for(1)[0].body)
    assert [(e["type"], e["intuitentityid"]) for e in events] == [
        ("qbo.payment.created.v1", payment["Id"]),
        ("qbo.invoice.updated.v1", "1"),  # its balance changed
    ]


def test_legacy_event_notifications_format(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.01, webhook_format="legacy")
        invoice = api.read("Invoice", "1")
        api.post(
            "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "x"}
        )
        delivery = receiver.wait_for(1)[0]
    body = json.loads(delivery.body)
    notification = body["eventNotifications"][0]
    assert notification["realmId"] == api.realm
    entity = notification["dataChangeEvent"]["entities"][0]
    assert (entity["name"], entity["id"], entity["operation"]) == ("Invoice", "1", "Update")
    assert entity["lastUpdated"][-6:] in ("-08:00", "-07:00")
    assert hmac.compare_digest(delivery.headers["intuit-signature"], _expected_signature(delivery.body))


def test_failed_delivery_is_retried_on_intuits_schedule_then_succeeds(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver(statuses=[500, 503]) as receiver:
        # given a receiver that fails twice, and Intuit's schedule (10 s, 20 s, ...) compressed 1000 times
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.001)
        api.created("Customer", payload("customer_create"))
        deliveries = receiver.wait_for(3)
    # then the same signed body was delivered three times
    assert len({delivery.body for delivery in deliveries}) == 1
    assert len({delivery.headers["intuit-signature"] for delivery in deliveries}) == 1

    # (the dispatcher logs an attempt once it has the answer, just after the receiver saw it; only this
    # receiver's attempts count: a delivery an earlier test left in flight may be logged late)
    def ours() -> list[dict[str, object]]:
        return [a for a in api.admin("GET", "webhooks").json()["attempts"] if a["url"] == receiver.url]

    wait_for(lambda: len(ours()) >= 3)
    assert [(a["attempt"], a["status"]) for a in ours()] == [(1, 500), (2, 503), (3, 200)]


def test_no_webhook_url_means_no_delivery(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.created("Customer", payload("customer_create"))
    flushed = requests.post(qbo_sandbox.url + "/_admin/webhooks").json()
    assert flushed["attempts"] == []


def test_deliveries_are_accepted_by_ledgerlinks_ingest_in_both_formats(qbo_sandbox: SandboxServer) -> None:
    # given the same change delivered once in each format
    from ledgerlink.qbo.webhooks import parse_delivery, verify_signature

    api = QboApi(qbo_sandbox)
    parsed = []
    for webhook_format in ("cloudevents", "legacy"):
        with webhook_receiver() as receiver:
            api.configure(webhook_url=receiver.url, webhook_time_factor=0.01, webhook_format=webhook_format)
            invoice = api.read("Invoice", "1")
            api.post(
                "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "x"}
            )
            delivery = receiver.wait_for(1)[0]
        # when LedgerLink's ingest checks and parses it
        verify_signature(DEMO_VERIFIER_TOKEN, delivery.body, delivery.headers["intuit-signature"])
        parsed.append(parse_delivery(delivery.body))
    # then both name the same change of the same realm
    for delivery in parsed:
        assert [(c.realm_id, c.entity, c.entity_id, c.operation) for c in delivery.changes] == [
            (api.realm, "Invoice", "1", "Update")
        ]
        assert delivery.unsupported == ()
    assert [delivery.source_format for delivery in parsed] == ["cloudevents", "legacy"]


def test_held_webhooks_are_never_sent_even_after_release(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        # given the sandbox holding back its webhooks
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.01, webhooks_held=True)
        # when a customer is created while held, then another after release
        held = api.created("Customer", payload("customer_create"))
        api.configure(webhooks_held=False)
        body = payload("customer_create")
        body["DisplayName"] = "After Release Ltd"
        released = api.created("Customer", body)
        events = json.loads(receiver.wait_for(1)[0].body)
    # then only the second is announced; the first is recorded (state counts it) but never sent
    assert [event["intuitentityid"] for event in events] == [released["Id"]]
    assert held["Id"] != released["Id"]
    state = requests.get(f"{qbo_sandbox.url}/_admin/state", timeout=10).json()
    assert state["webhooks_withheld"] == 1
