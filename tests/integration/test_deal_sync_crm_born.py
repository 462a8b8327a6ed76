"""CRM-born documents: the QBO Estimate and Invoice LedgerLink created for a HubSpot deal come back
through QBO's webhooks and land on that deal, never on a second one, and never against the salesperson.

A salesperson's deal D (its own name, stage, amount, line items and company) is made through HubSpot's
API; the documents are made in the QBO sandbox as the HubSpot → QBO flow makes them: with the marker in
``PrivateNote`` (the webhook may come before the link) or with the link claimed for D
(``LinkStore.claim_for_deal``). Their change events are then synced on moto and the sandboxes, twice and
out of order. Request bodies are checked against the vendors' specs by the ``world`` fixture.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
import requests

from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.mapping.origin import ORIGIN_HUBSPOT, origin_marker
from ledgerlink.mapping.properties import custom_property_names
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_PORTAL_ID
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import DealSyncWorld

world = support.world  # the fixture

HUBSPOT_AUTH = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}
PORTAL = str(DEMO_PORTAL_ID)
ACME_CUSTOMER = "1"  # QBO demo customer Acme Robotics; the demo portal has its company
DEAL_TO_COMPANY_PRIMARY, LINE_ITEM_TO_DEAL = 5, 20  # HubSpot-defined association types
# The salesperson's deal: what LedgerLink must never change on it.
SALESPERSON_PROPERTIES = ("dealname", "amount", "deal_currency_code", "closedate", "pipeline", "dealstage")
SALES_PIPELINE, QUOTE_STAGE = "default", "contractsent"
QBO_LINES = [
    {
        "Amount": "1200.00",
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 8, "UnitPrice": "150.00"},
    },
    {
        "Amount": "300.00",
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "3"}, "Qty": 1, "UnitPrice": "300.00"},
    },
]


def key(entity_id: str) -> str:
    return f"{DEMO_REALM_ID}:{entity_id}"


def hubspot_api(world: DealSyncWorld, method: str, path: str, body: Any = None) -> Any:
    """HubSpot's API as the salesperson's tools call it."""
    response = requests.request(
        method, f"{world.hubspot.url}{path}", headers=HUBSPOT_AUTH, json=body, timeout=10
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def salespersons_deal(world: DealSyncWorld) -> str:
    """Deal D as a salesperson made it: in the sales pipeline at the quote stage, with Acme's company and
    two line items of their own (which the QBO lines need not match)."""
    (company_id,) = [
        cid for cid, props in world.objects("companies").items() if props["name"] == "Acme Robotics"
    ]
    deal = hubspot_api(
        world,
        "POST",
        "/crm/v3/objects/deals",
        {
            "properties": {
                "dealname": "Acme — warehouse grounds (Q3)",
                "amount": "1450",
                "deal_currency_code": "USD",
                "pipeline": SALES_PIPELINE,
                "dealstage": QUOTE_STAGE,
                "closedate": "2031-09-30T00:00:00Z",
            },
            "associations": [
                {
                    "to": {"id": company_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": DEAL_TO_COMPANY_PRIMARY,
                        }
                    ],
                }
            ],
        },
    )
    for name, quantity, price in (("Garden design", "8", "150"), ("Site survey", "1", "250")):
        hubspot_api(
            world,
            "POST",
            "/crm/v3/objects/line_items",
            {
                "properties": {"name": name, "quantity": quantity, "price": price},
                "associations": [
                    {
                        "to": {"id": deal["id"]},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": LINE_ITEM_TO_DEAL}
                        ],
                    }
                ],
            },
        )
    return str(deal["id"])


def deal_as_salesperson_sees_it(world: DealSyncWorld, deal_id: str) -> dict[str, Any]:
    """What the salesperson owns on D: its own properties, line items (with their properties) and records."""
    props = world.objects("deals")[deal_id]
    line_items = world.objects("line_items")
    volatile = {"hs_lastmodifieddate", "lastmodifieddate"}
    return {
        "properties": {name: props.get(name) for name in SALESPERSON_PROPERTIES},
        "line_items": {
            item_id: {k: v for k, v in line_items[item_id].items() if k not in volatile}
            for item_id in world.associated("deals", deal_id, "line_items")
        },
        "companies": world.associated("deals", deal_id, "companies"),
        "contacts": world.associated("deals", deal_id, "contacts"),
    }


def qbo_document(world: DealSyncWorld, entity: str, note: str | None, **fields: Any) -> dict[str, Any]:
    """An Estimate or Invoice for Acme as the HubSpot → QBO flow creates it (the demo company numbers
    its documents itself: CustomTxnNumbers is on)."""
    body: dict[str, Any] = {
        "CustomerRef": {"value": ACME_CUSTOMER},
        "Line": QBO_LINES,
        "DocNumber": f"HS-{entity[0]}-1001",
        **fields,
    }
    if note is not None:
        body["PrivateNote"] = note
    return world.qbo_write(entity, "create", body)


def live_deals(world: DealSyncWorld) -> set[str]:
    return set(world.objects("deals"))


def link(world: DealSyncWorld, entity: str, entity_id: str) -> Link:
    (found,) = world.parts.service.links.get_many([EntityKey(DEMO_REALM_ID, entity, entity_id)]).values()
    return found


def sync_all(world: DealSyncWorld, batches: Sequence[Sequence[ChangeEvent]]) -> None:
    for batch in batches:
        outcomes = world.sync(batch)
        assert all(outcome.ok for outcome in outcomes.values()), outcomes


def hubspot_writes(world: DealSyncWorld) -> list[str]:
    """The paths of the code's writes to HubSpot deals, line items and deal associations."""
    return [
        sent.path
        for sent in world.capture.to(world.hubspot.url)
        if sent.method != "GET"
        and not sent.path.endswith("/batch/read")
        and (
            "/objects/deals" in sent.path
            or "/objects/line_items" in sent.path
            or "/associations/deals" in sent.path
        )
    ]


# ---- the marker in PrivateNote (the webhooks come before the link)


@pytest.mark.parametrize("order", ["invoice first", "estimate first", "one batch", "shuffled"])
def test_the_estimate_and_invoice_land_on_the_salespersons_deal_and_the_invoice_wins(
    world: DealSyncWorld, order: str
) -> None:
    # given the salesperson's deal D at the quote stage, with its own line items
    deal_id = salespersons_deal(world)
    before = deal_as_salesperson_sees_it(world, deal_id)
    deals_before = live_deals(world)
    world.capture.clear()  # the requests captured from here on are the code's
    marker = f"Created by LedgerLink. {origin_marker(deal_id, PORTAL)}"
    # and the estimate LedgerLink created for D, whose webhook was synced
    estimate = qbo_document(world, "Estimate", marker)
    estimate_created = world.change("Estimate", estimate["Id"], "Create")
    sync_all(world, [[estimate_created]])
    assert world.objects("deals")[deal_id]["qbo_estimate_id"] == key(estimate["Id"])
    assert world.objects("deals")[deal_id]["qbo_status"] == "pending"
    # and then D won: LedgerLink created the invoice from the estimate, which QBO closed
    invoice = qbo_document(
        world, "Invoice", marker, LinkedTxn=[{"TxnId": estimate["Id"], "TxnType": "Estimate"}]
    )
    closed = world.qbo_entity("Estimate", estimate["Id"])
    assert closed is not None and closed["TxnStatus"] == "Closed"
    invoice_created = world.change("Invoice", invoice["Id"], "Create")
    estimate_closed = world.change("Estimate", estimate["Id"], "Update")

    # when their webhooks are synced, each twice, out of order, with the estimate's first one again
    batches: list[list[ChangeEvent]] = {
        "invoice first": [
            [invoice_created, estimate_created],
            [estimate_closed, invoice_created],
            [estimate_closed],
        ],
        "estimate first": [
            [estimate_closed],
            [invoice_created, estimate_closed],
            [estimate_created, invoice_created],
        ],
        "one batch": [[estimate_closed, invoice_created, estimate_created, invoice_created, estimate_closed]],
        "shuffled": [
            [event]
            for event in random.Random(13).sample(
                [invoice_created, estimate_closed, invoice_created, estimate_created, estimate_closed], 5
            )
        ],
    }[order]
    sync_all(world, batches)

    # then the portal still has one deal for them: D, no other
    assert live_deals(world) == deals_before
    props = world.objects("deals")[deal_id]
    # and D carries both documents' keys and the invoice's books' values, whatever the order
    invoice_now = world.qbo_entity("Invoice", invoice["Id"])
    assert invoice_now is not None
    assert props["qbo_invoice_id"] == key(invoice["Id"])
    assert props["qbo_estimate_id"] == key(estimate["Id"])
    assert props["qbo_status"] == "open"  # the invoice's, not the closed estimate's
    assert props["qbo_doc_number"] == invoice_now["DocNumber"]
    assert Decimal(props["qbo_balance"]) == Decimal(str(invoice_now["Balance"]))
    assert props["qbo_customer_id"] == key(ACME_CUSTOMER)
    assert props["qbo_realm_id"] == DEMO_REALM_ID
    assert props["qbo_due_date"] and props["qbo_txn_date"] and props["qbo_last_updated"]
    # and what the salesperson owns is as they left it: name, stage, pipeline, amount, line items, company
    assert deal_as_salesperson_sees_it(world, deal_id) == before
    assert not any("/batch/upsert" in path or "line_items" in path for path in hubspot_writes(world))
    # and ledgerlink.deal.synced named D, where the salesperson has it
    published = world.published()
    assert published and {event["payload"]["deal_id"] for event in published} == {deal_id}
    last = published[-1]["payload"]
    assert (last["invoice_key"], last["status"]) == (key(invoice["Id"]), "open")
    assert (last["pipeline"], last["deal_stage"]) == (SALES_PIPELINE, QUOTE_STAGE)
    assert last["amount"] == f"{Decimal(str(invoice_now['TotalAmt'])):.2f}"
    # and both links name D and say where the documents came from, at the versions synced
    for entity, document_id in (("Invoice", invoice["Id"]), ("Estimate", estimate["Id"])):
        recorded = link(world, entity, document_id)
        assert (recorded.hubspot_id, recorded.origin) == (deal_id, ORIGIN_HUBSPOT)
        assert recorded.synced_ms is not None and recorded.line_item_ids == frozenset()
        current = world.qbo_entity(entity, document_id)
        assert current is not None and recorded.sync_token == int(current["SyncToken"])


def test_a_marker_for_another_portal_is_not_this_connections_deal(world: DealSyncWorld) -> None:
    # given D, and an invoice whose note names a deal of another portal with D's id
    deal_id = salespersons_deal(world)
    before = deal_as_salesperson_sees_it(world, deal_id)
    invoice = qbo_document(world, "Invoice", origin_marker(deal_id, "99999999"))

    # when its webhook is synced
    sync_all(world, [[world.change("Invoice", invoice["Id"], "Create")]])

    # then it is a QBO user's invoice: a deal of its own, and D untouched
    assert world.deals()[key(invoice["Id"])]["id"] != deal_id
    assert "qbo_invoice_id" not in {k for k, v in world.objects("deals")[deal_id].items() if v}
    assert deal_as_salesperson_sees_it(world, deal_id) == before


# ---- the link claimed for D (no marker)


def test_an_invoice_claimed_for_a_deal_lands_on_it_and_the_claim_keeps_the_synced_version(
    world: DealSyncWorld,
) -> None:
    # given D won without an estimate: LedgerLink created the invoice straight from it and claimed its link
    deal_id = salespersons_deal(world)
    before = deal_as_salesperson_sees_it(world, deal_id)
    deals_before = live_deals(world)
    invoice = qbo_document(world, "Invoice", None)
    invoice_key = EntityKey(DEMO_REALM_ID, "Invoice", invoice["Id"])
    world.parts.service.links.claim_for_deal(invoice_key, deal_id)
    created = world.change("Invoice", invoice["Id"], "Create")

    # when its webhook is synced, then delivered again after the other flow claimed the link once more
    sync_all(world, [[created]])
    synced = link(world, "Invoice", invoice["Id"])
    world.parts.service.links.claim_for_deal(invoice_key, deal_id)
    again = world.sync([world.change("Invoice", invoice["Id"], "Update")])

    # then D carries the invoice, no deal was created, and D's own values stay
    assert live_deals(world) == deals_before
    props = world.objects("deals")[deal_id]
    assert (props["qbo_invoice_id"], props["qbo_status"]) == (key(invoice["Id"]), "open")
    assert deal_as_salesperson_sees_it(world, deal_id) == before
    # and the claim kept the version the sync recorded: the same version is not written again
    assert next(iter(again.values())).status is OutcomeStatus.STALE
    assert link(world, "Invoice", invoice["Id"]) == synced
    assert (synced.hubspot_id, synced.origin) == (deal_id, ORIGIN_HUBSPOT)
    assert [event["payload"]["deal_id"] for event in world.published()] == [deal_id]


def test_an_invoice_deleted_in_qbo_only_marks_the_salespersons_deal(world: DealSyncWorld) -> None:
    # given a CRM-born invoice synced onto D
    deal_id = salespersons_deal(world)
    invoice = qbo_document(world, "Invoice", None)
    world.parts.service.links.claim_for_deal(EntityKey(DEMO_REALM_ID, "Invoice", invoice["Id"]), deal_id)
    sync_all(world, [[world.change("Invoice", invoice["Id"], "Create")]])
    before = deal_as_salesperson_sees_it(world, deal_id)

    # when a QBO user deletes the invoice and its webhook is synced
    current = world.qbo_entity("Invoice", invoice["Id"])
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": invoice["Id"], "SyncToken": current["SyncToken"]})
    sync_all(world, [[world.change("Invoice", invoice["Id"], "Delete", last_updated="2099-01-01T00:00:00Z")]])

    # then D says so, and stays at the salesperson's stage (not moved to the voided stage)
    assert world.objects("deals")[deal_id]["qbo_status"] == "deleted"
    assert deal_as_salesperson_sees_it(world, deal_id) == before
    assert world.published()[-1]["payload"]["status"] == "deleted"


# ---- D deleted in HubSpot


def test_a_crm_born_invoice_whose_deal_was_deleted_gets_a_deal_of_its_own(
    world: DealSyncWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # given an invoice LedgerLink created for D, and a salesperson who then deleted D in HubSpot
    deal_id = salespersons_deal(world)
    invoice = qbo_document(world, "Invoice", origin_marker(deal_id, PORTAL))
    world.parts.service.links.claim_for_deal(EntityKey(DEMO_REALM_ID, "Invoice", invoice["Id"]), deal_id)
    hubspot_api(world, "DELETE", f"/crm/v3/objects/deals/{deal_id}")

    # when the invoice's webhook is synced
    with caplog.at_level(logging.WARNING):
        outcomes = world.sync([world.change("Invoice", invoice["Id"], "Create")])

    # then it is synced as a QBO user's invoice: a new deal with QBO's values and lines
    assert [outcome.status for outcome in outcomes.values()] == [OutcomeStatus.SYNCED]
    deal = world.deals()[key(invoice["Id"])]
    assert deal["id"] != deal_id
    props = deal["properties"]
    assert props["amount"] == "1500.00" and props["dealname"].startswith("Invoice ")
    assert len(world.associated("deals", deal["id"], "line_items")) == len(QBO_LINES)
    assert world.associated("deals", deal["id"], "companies")
    # and the fallback was logged at WARNING with HubSpot's reason, and counted
    (warning,) = [r for r in caplog.records if "CRM-born" in r.getMessage() and r.levelno == logging.WARNING]
    assert getattr(warning, "deal_id", None) == deal_id and deal_id in str(getattr(warning, "reason", ""))
    assert world.metrics.counts["CrmBornDealsGone"] == 1
    # and the link names the new deal and no longer claims a salesperson's deal
    recorded = link(world, "Invoice", invoice["Id"])
    assert (recorded.hubspot_id, recorded.origin) == (deal["id"], None)
    assert world.published()[-1]["payload"]["deal_id"] == deal["id"]

    # and a later change updates that deal (the note still names D): no third deal, no warning again
    caplog.clear()
    current = world.qbo_entity("Invoice", invoice["Id"])
    assert current is not None
    world.qbo_write(
        "Invoice",
        "update",
        {"Id": invoice["Id"], "SyncToken": current["SyncToken"], "sparse": True, "DueDate": "2031-12-31"},
    )
    sync_all(world, [[world.change("Invoice", invoice["Id"], "Update")]])
    assert world.deals()[key(invoice["Id"])]["id"] == deal["id"]
    assert (
        sum(1 for p in world.objects("deals").values() if p.get("qbo_invoice_id") == key(invoice["Id"])) == 1
    )
    assert not [r for r in caplog.records if "CRM-born" in r.getMessage()]
    assert world.metrics.counts["CrmBornDealsGone"] == 1


def test_books_properties_are_the_only_deal_properties_a_crm_born_document_writes(
    world: DealSyncWorld,
) -> None:
    # given a CRM-born invoice for D
    deal_id = salespersons_deal(world)
    invoice = qbo_document(world, "Invoice", origin_marker(deal_id, PORTAL))
    world.capture.clear()  # the requests captured from here on are the code's

    # when it is synced
    sync_all(world, [[world.change("Invoice", invoice["Id"], "Create")]])

    # then the one deal write named D by id and carried nothing but QBO's facts
    (update,) = [
        sent.json()
        for sent in world.capture.to(world.hubspot.url)
        if sent.path == "/crm/v3/objects/deals/batch/update"
    ]
    (written,) = update["inputs"]
    assert written["id"] == deal_id
    assert set(written["properties"]) <= custom_property_names("deals") - {
        "qbo_estimate_id",
        "qbo_expiration_date",
    }
    assert {"qbo_invoice_id", "qbo_status", "qbo_balance", "qbo_doc_number"} <= set(written["properties"])
