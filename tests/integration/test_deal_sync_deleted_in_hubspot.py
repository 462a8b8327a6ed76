"""Records a user deleted in HubSpot: the deal sync heals in the same invocation.

A HubSpot user deletes (archives) a company, contact, line item or deal LedgerLink linked, through
HubSpot's API as any tool of theirs would (``DELETE /crm/v3/objects/{type}/{id}``, batch archive); QBO
then changes and the sync runs on moto and the sandboxes. Request bodies are checked against the
vendors' specs by the ``world`` fixture.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.crosswalk import EntityKey, Failure, Link
from ledgerlink.deal_sync.inbox import ChangeEvent, parse_record
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import DealSyncWorld

world = support.world  # the fixture

ACME, CAFE, SUMMIT = "1", "2", "4"  # invoices
ACME_CUSTOMER, SUMMIT_CUSTOMER = "1", "7"
ACME_EMAIL = "ap@acmerobotics.example"
SUMMIT_DOMAIN = "summitoutdoor.example"
# What a batch with a new invoice of such a customer answered before LedgerLink healed deleted records.
REASON_BEFORE_THE_FIX = (
    "HubSpot refused 1 of 2 deals→companies associations: "
    "Could not find some COMPANY objects: they may be deleted or not exist."
)


def key(entity_id: str) -> str:
    return f"{DEMO_REALM_ID}:{entity_id}"


def delete_in_hubspot(world: DealSyncWorld, object_type: str, *ids: str) -> None:
    """What a HubSpot user (or a clean-up tool of theirs) does: archive records through the API."""
    for object_id in ids:
        response = requests.delete(
            f"{world.hubspot.url}/crm/v3/objects/{object_type}/{object_id}",
            headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 204, response.text


def create_in_hubspot(world: DealSyncWorld, object_type: str, properties: dict[str, str]) -> str:
    response = requests.post(
        f"{world.hubspot.url}/crm/v3/objects/{object_type}",
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        json={"properties": properties, "associations": []},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def change_invoice(
    world: DealSyncWorld, invoice_id: str, due_date: str = "2031-03-31", *, last_updated: str | None = None
) -> ChangeEvent:
    """A user edits the invoice in QBO (its due date); returns the change event its webhook produces.

    ``last_updated`` stands in for the notification's timestamp when a test edits twice within one
    second (QBO's timestamps have whole seconds, and the event id is derived from it)."""
    current = world.qbo_entity("Invoice", invoice_id)
    assert current is not None
    world.qbo_write(
        "Invoice",
        "update",
        {"Id": invoice_id, "SyncToken": current["SyncToken"], "sparse": True, "DueDate": due_date},
    )
    return world.change("Invoice", invoice_id, "Update", last_updated=last_updated)


def link(world: DealSyncWorld, entity: str, entity_id: str) -> Link:
    found = world.parts.service.links.get_many([EntityKey(DEMO_REALM_ID, entity, entity_id)])
    (only,) = found.values()
    return only


def owned_companies(world: DealSyncWorld, customer_id: str) -> dict[str, dict[str, Any]]:
    """Live companies carrying the customer's QBO key (there must never be more than one)."""
    return {
        company_id: props
        for company_id, props in world.objects("companies").items()
        if props.get("qbo_customer_id") == key(customer_id)
    }


def synced_deal(world: DealSyncWorld, invoice_id: str) -> tuple[str, str, str]:
    """(deal id, its one company, its one contact) as HubSpot shows them."""
    deal_id = str(world.deals()[key(invoice_id)]["id"])
    (company_id,) = world.associated("deals", deal_id, "companies")
    (contact_id,) = world.associated("deals", deal_id, "contacts")
    return deal_id, company_id, contact_id


def test_a_deleted_company_and_contact_are_created_again_and_the_changed_invoice_ends_associated(
    world: DealSyncWorld,
) -> None:
    # given Acme's invoice synced: a deal associated with the company and contact the sync linked
    world.sync([world.change("Invoice", ACME, "Create")])
    deal_id, old_company, old_contact = synced_deal(world, ACME)
    # and a HubSpot user deleted that company and contact
    delete_in_hubspot(world, "companies", old_company)
    delete_in_hubspot(world, "contacts", old_contact)

    # when the invoice changes in QBO and its event is synced
    event = change_invoice(world, ACME)
    outcomes = world.sync([event])

    # then it is synced in this invocation, with no failure on record
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    assert world.parts.service.links.recent_failures() == []
    # and the same deal is associated with a live company and contact for Acme again (no other
    # company matches Acme now, so both were created), associated with each other
    assert world.deals()[key(ACME)]["id"] == deal_id
    _, company_id, contact_id = synced_deal(world, ACME)
    assert company_id != old_company and contact_id != old_contact
    assert list(owned_companies(world, ACME_CUSTOMER)) == [company_id]
    assert world.objects("contacts")[contact_id]["email"] == ACME_EMAIL
    assert company_id in world.associated("contacts", contact_id, "companies")
    # and the links name the new records
    customer = link(world, "Customer", ACME_CUSTOMER)
    assert (customer.hubspot_id, customer.contact_id) == (company_id, contact_id)
    invoice = link(world, "Invoice", ACME)
    assert (invoice.company_id, invoice.contact_id) == (company_id, contact_id)
    # and ledgerlink.deal.synced names them; the healing was counted
    assert world.published()[-1]["payload"]["customer"]["company_id"] == company_id
    assert world.published()[-1]["payload"]["customer"]["contact_id"] == contact_id
    assert world.metrics.counts["StaleLinksHealed"] == 1
    # and what the user deleted stays deleted
    assert old_company in world.objects("companies", archived=True)
    assert old_contact in world.objects("contacts", archived=True)


def test_a_new_invoice_of_a_customer_whose_company_was_deleted_is_synced_and_its_neighbours_too(
    world: DealSyncWorld,
) -> None:
    # given Acme's first invoice synced, then its company and contact deleted by a HubSpot user
    world.sync([world.change("Invoice", ACME, "Create")])
    _, old_company, old_contact = synced_deal(world, ACME)
    delete_in_hubspot(world, "companies", old_company)
    delete_in_hubspot(world, "contacts", old_contact)

    # when a new Acme invoice is synced in one batch with another customer's invoice (before the fix
    # both failed for good: "Could not find some COMPANY objects", the deals written but unassociated)
    created = world.qbo_write(
        "Invoice",
        "create",
        {
            "CustomerRef": {"value": ACME_CUSTOMER},
            "Line": [
                {
                    "Amount": "240.00",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 2, "UnitPrice": "120.00"},
                }
            ],
        },
    )
    events = [world.change("Invoice", created["Id"], "Create"), world.change("Invoice", CAFE, "Create")]
    outcomes = world.sync(events)

    # then both are synced
    assert [outcomes[e.message_id].status for e in events] == [OutcomeStatus.SYNCED, OutcomeStatus.SYNCED]
    # and the new deal has Acme's new company and contact, the only company carrying Acme's key
    _, company_id, contact_id = synced_deal(world, created["Id"])
    assert list(owned_companies(world, ACME_CUSTOMER)) == [company_id] and company_id != old_company
    assert world.objects("contacts")[contact_id]["email"] == ACME_EMAIL
    assert (link(world, "Customer", ACME_CUSTOMER).hubspot_id, contact_id) == (company_id, contact_id)
    # and the café's deal was never held up by Acme's records
    synced_deal(world, CAFE)


def test_a_deleted_company_is_matched_again_to_the_company_the_crm_kept_instead_of_duplicated(
    world: DealSyncWorld,
) -> None:
    # given Summit's invoice synced: linked to the CRM's "Summit Outdoor Supply" company by its domain
    world.sync([world.change("Invoice", SUMMIT, "Create")])
    deal_id, old_company, contact_id = synced_deal(world, SUMMIT)
    # and the sales team cleaned up: they keep another Summit record on that domain and deleted ours
    kept = create_in_hubspot(
        world, "companies", {"name": "Summit Outdoor Supply Co.", "domain": SUMMIT_DOMAIN}
    )
    delete_in_hubspot(world, "companies", old_company)
    created_before = world.metrics.counts.get("CompaniesCreated", 0)

    # when the invoice changes in QBO
    event = change_invoice(world, SUMMIT)
    outcomes = world.sync([event])

    # then the deal is associated with the company the team kept, now carrying Summit's QBO key; no
    # company was created, and the CRM's own name for it is left alone
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    assert synced_deal(world, SUMMIT) == (deal_id, kept, contact_id)
    assert list(owned_companies(world, SUMMIT_CUSTOMER)) == [kept]
    assert world.objects("companies")[kept]["name"] == "Summit Outdoor Supply Co."
    assert world.metrics.counts.get("CompaniesCreated", 0) == created_before
    assert [c for c, p in world.objects("companies").items() if p.get("domain") == SUMMIT_DOMAIN] == [kept]
    assert link(world, "Customer", SUMMIT_CUSTOMER).hubspot_id == kept


def test_a_deleted_contact_alone_is_created_again_and_the_company_is_kept(world: DealSyncWorld) -> None:
    # given Acme's invoice synced, and its contact (only) deleted by a HubSpot user
    world.sync([world.change("Invoice", ACME, "Create")])
    deal_id, company_id, old_contact = synced_deal(world, ACME)
    delete_in_hubspot(world, "contacts", old_contact)
    created_before = world.metrics.counts.get("CompaniesCreated", 0)

    # when the invoice changes in QBO
    event = change_invoice(world, ACME)
    outcomes = world.sync([event])

    # then the deal keeps its company and has a new contact with Acme's email, associated with it
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    same_deal, same_company, contact_id = synced_deal(world, ACME)
    assert (same_deal, same_company) == (deal_id, company_id) and contact_id != old_contact
    assert world.objects("contacts")[contact_id]["email"] == ACME_EMAIL
    assert company_id in world.associated("contacts", contact_id, "companies")
    # and no company was created
    assert world.metrics.counts.get("CompaniesCreated", 0) == created_before
    assert list(owned_companies(world, ACME_CUSTOMER)) == [company_id]
    customer = link(world, "Customer", ACME_CUSTOMER)
    assert (customer.hubspot_id, customer.contact_id) == (company_id, contact_id)


def test_a_customer_change_after_its_company_and_contact_were_deleted_creates_them_again(
    world: DealSyncWorld,
) -> None:
    # given Acme linked through its invoice, then its company and contact deleted by a HubSpot user
    world.sync([world.change("Invoice", ACME, "Create")])
    _, old_company, old_contact = synced_deal(world, ACME)
    delete_in_hubspot(world, "companies", old_company)
    delete_in_hubspot(world, "contacts", old_contact)

    # when the customer changes in QBO
    customer = world.qbo_entity("Customer", ACME_CUSTOMER)
    assert customer is not None
    world.qbo_write(
        "Customer",
        "update",
        {
            "Id": ACME_CUSTOMER,
            "SyncToken": customer["SyncToken"],
            "sparse": True,
            "PrimaryPhone": {"FreeFormNumber": "(415) 555-0199"},
        },
    )
    event = world.change("Customer", ACME_CUSTOMER, "Update")
    outcomes = world.sync([event])

    # then its company (upserted by its QBO key) and contact (by email) exist again, linked
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    (company_id,) = owned_companies(world, ACME_CUSTOMER)
    linked = link(world, "Customer", ACME_CUSTOMER)
    assert linked.hubspot_id == company_id != old_company
    assert linked.contact_id is not None and linked.contact_id != old_contact
    assert world.objects("contacts")[linked.contact_id]["email"] == ACME_EMAIL
    assert company_id in world.associated("contacts", linked.contact_id, "companies")


def test_line_items_deleted_in_hubspot_are_created_again(world: DealSyncWorld) -> None:
    # given Acme's invoice synced, and every line item of its deal deleted by a HubSpot user
    world.sync([world.change("Invoice", ACME, "Create")])
    deal_id = str(world.deals()[key(ACME)]["id"])
    old_lines = world.associated("deals", deal_id, "line_items")
    delete_in_hubspot(world, "line_items", *sorted(old_lines))

    # when the invoice changes in QBO
    event = change_invoice(world, ACME)
    outcomes = world.sync([event])

    # then the deal has live line items again, as many as before, adding up to the deal amount
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    lines = world.associated("deals", deal_id, "line_items")
    live = world.objects("line_items")
    assert len(lines) == len(old_lines) and lines <= set(live) and not lines & old_lines
    amount = Decimal(world.deals()[key(ACME)]["properties"]["amount"])
    total = sum(
        Decimal(live[i]["price"]) * Decimal(live[i]["quantity"])
        - Decimal(live[i].get("discount") or "0") * Decimal(live[i]["quantity"])
        for i in lines
    )
    assert total == amount
    assert link(world, "Invoice", ACME).line_item_ids == frozenset(lines)


def test_a_deal_deleted_in_hubspot_is_created_again_with_its_line_items_company_and_contact(
    world: DealSyncWorld,
) -> None:
    # given Acme's invoice synced, then its deal deleted by a HubSpot user
    world.sync([world.change("Invoice", ACME, "Create")])
    old_deal, company_id, contact_id = synced_deal(world, ACME)
    delete_in_hubspot(world, "deals", old_deal)

    # when the invoice changes in QBO
    event = change_invoice(world, ACME)
    outcomes = world.sync([event])

    # then a new deal carries the invoice, with its line items, company and contact
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    deal_id, same_company, same_contact = synced_deal(world, ACME)
    assert deal_id != old_deal and (same_company, same_contact) == (company_id, contact_id)
    assert world.associated("deals", deal_id, "line_items")
    assert link(world, "Invoice", ACME).hubspot_id == deal_id
    assert world.metrics.counts["StaleLinksHealed"] == 1


def test_an_invoice_deleted_in_qbo_whose_deal_was_deleted_in_hubspot_is_done(world: DealSyncWorld) -> None:
    # given Summit's invoice synced, then its deal deleted in HubSpot and the invoice deleted in QBO
    world.sync([world.change("Invoice", SUMMIT, "Create")])
    deal_id = str(world.deals()[key(SUMMIT)]["id"])
    delete_in_hubspot(world, "deals", deal_id)
    current = world.qbo_entity("Invoice", SUMMIT)
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": SUMMIT, "SyncToken": current["SyncToken"]})

    # when the delete event is synced
    event = world.change("Invoice", SUMMIT, "Delete", last_updated="2099-01-01T00:00:00Z")
    outcomes = world.sync([event])

    # then there is nothing left to mark: it is synced, nothing is re-created, the link records it
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    assert key(SUMMIT) not in world.deals()
    assert link(world, "Invoice", SUMMIT).status == "deleted"
    assert world.parts.service.links.recent_failures() == []


def test_healing_survives_duplicate_and_out_of_order_deliveries(world: DealSyncWorld) -> None:
    # given Acme's invoice synced, then its company and contact deleted by a HubSpot user
    created_record = world.record("Invoice", ACME, "Create")
    world.sync([parse_record(created_record)])
    _, old_company, old_contact = synced_deal(world, ACME)
    delete_in_hubspot(world, "companies", old_company)
    delete_in_hubspot(world, "contacts", old_contact)

    # when the invoice changes and one batch brings its event twice (an SQS duplicate) and the old
    # creation event again (out of order)
    change = change_invoice(world, ACME)
    duplicate = world.change(
        "Invoice", ACME, "Update", last_updated=world.last_updated("Invoice", ACME), message_id="dup"
    )
    assert duplicate.event_id == change.event_id
    late = parse_record({**created_record, "messageId": "late-" + created_record["messageId"]})
    outcomes = world.sync([late, change, duplicate])

    # then nothing fails, Acme has one company and one contact again, healed once
    assert all(outcome.ok for outcome in outcomes.values()), outcomes
    _, company_id, contact_id = synced_deal(world, ACME)
    assert list(owned_companies(world, ACME_CUSTOMER)) == [company_id] and company_id != old_company
    assert [c for c, p in world.objects("contacts").items() if p.get("email") == ACME_EMAIL] == [contact_id]
    assert world.metrics.counts["StaleLinksHealed"] == 1

    # and when the change is redelivered later, and the invoice changes once more, nothing heals again
    world.sync([world.change("Invoice", ACME, "Update", message_id="redelivered")])
    later = change_invoice(world, ACME, due_date="2031-04-30", last_updated="2099-01-01T00:00:00Z")
    assert world.sync([later])[later.message_id].status is OutcomeStatus.SYNCED
    assert synced_deal(world, ACME)[1:] == (company_id, contact_id)
    assert list(owned_companies(world, ACME_CUSTOMER)) == [company_id]
    assert world.metrics.counts["StaleLinksHealed"] == 1


def test_an_event_dead_lettered_before_the_fix_is_synced_when_replayed_and_its_failure_cleared(
    world: DealSyncWorld,
) -> None:
    # given Acme linked, its company and contact deleted by a HubSpot user, and a new Acme invoice whose
    # event failed for good that way before LedgerLink healed deleted records (its reason on record)
    world.sync([world.change("Invoice", ACME, "Create")])
    _, old_company, old_contact = synced_deal(world, ACME)
    delete_in_hubspot(world, "companies", old_company)
    delete_in_hubspot(world, "contacts", old_contact)
    created = world.qbo_write(
        "Invoice",
        "create",
        {
            "CustomerRef": {"value": ACME_CUSTOMER},
            "Line": [
                {
                    "Amount": "120.00",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 1, "UnitPrice": "120.00"},
                }
            ],
        },
    )
    record = world.record("Invoice", created["Id"], "Create")
    event = parse_record(record)
    world.parts.service.links.record_failures(
        [
            Failure(
                event_id=event.event_id,
                reason=REASON_BEFORE_THE_FIX,
                error_type="HubSpotError",
                retryable=False,
                message_id=event.message_id,
                receive_count=1,
                realm_id=DEMO_REALM_ID,
                entity="Invoice",
                entity_id=created["Id"],
                failed_at="2025-11-09T10:00:00.000+00:00",
            )
        ]
    )

    # when `ledgerlink dlq replay` puts the message back (same body, a new SQS message)
    replayed = parse_record({**record, "messageId": "replayed-" + record["messageId"]})
    outcomes = world.sync([replayed])

    # then it is synced, associated with Acme's new records, and its failure is no longer on record
    assert outcomes[replayed.message_id].status is OutcomeStatus.SYNCED
    _, company_id, contact_id = synced_deal(world, created["Id"])
    assert company_id != old_company and contact_id != old_contact
    assert world.parts.service.links.recent_failures() == []


def test_looking_for_deleted_records_costs_a_read_per_type_and_batch_only_where_no_write_would_tell(
    world: DealSyncWorld,
) -> None:
    # given every demo invoice synced for the first time (new deals: their association calls name the
    # companies and contacts, so HubSpot's refusal would say which are gone)
    invoice_ids = sorted(world.qbo.sandbox.companies[DEMO_REALM_ID].objects["Invoice"])  # type: ignore[attr-defined]
    world.sync([world.change("Invoice", invoice_id, "Create") for invoice_id in invoice_ids])
    reads = [
        r["path"]
        for r in world.requests_to(world.hubspot)
        if r["path"] in ("/crm/v3/objects/companies/batch/read", "/crm/v3/objects/contacts/batch/read")
    ]
    assert reads == []

    # when three of them change (their deals keep their company and contact: no association is sent)
    before = len(world.requests_to(world.hubspot))
    events = [change_invoice(world, invoice_id) for invoice_id in (ACME, CAFE, SUMMIT)]
    outcomes = world.sync(events)

    # then the linked companies and contacts were checked with one batch read each, for the whole batch
    assert all(outcome.status is OutcomeStatus.SYNCED for outcome in outcomes.values())
    calls = [r["path"] for r in world.requests_to(world.hubspot)[before:]]
    assert sorted(calls) == sorted(
        [
            "/crm/v3/objects/companies/batch/read",
            "/crm/v3/objects/contacts/batch/read",
            "/crm/v3/objects/deals/batch/upsert",
            # the linked line items (no unique property on them to upsert by); their lines did not
            # change (a due date did), so nothing is written to them
            "/crm/v3/objects/line_items/batch/read",
            "/crm/v3/objects/deals/batch/read",  # the owners
        ]
    )
