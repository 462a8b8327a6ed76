"""The deal sync service against the QBO and HubSpot sandboxes and moto: what HubSpot shows afterwards.

Every test runs in the ``world`` fixture, which also validates every request body the code sent
against HubSpot's OpenAPI specs and Intuit's XSD when the test ends.
"""

from __future__ import annotations

from decimal import Decimal

from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink_local.sandboxes.hubspot.model import INVOICE_STAGE_IDS, INVOICES_PIPELINE_ID
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import DealSyncWorld

world = support.world  # the fixture, shared with the integration tests

ACME_INVOICE = "1"  # open, three lines, Acme Robotics (demo company)
CAFE_INVOICE = "2"  # partially paid, Bluebird Café
SUMMIT_INVOICE = "4"  # overdue, Summit Outdoor Supply
EUR_INVOICE = "5"  # Nordlicht, EUR
CATERING = "3"  # Bluebird Catering shares billing@bluebird.example with the café (customer 2)


def key(invoice_id: str) -> str:
    return f"{DEMO_REALM_ID}:{invoice_id}"


def line_amount(item: dict[str, str]) -> Decimal:
    """What HubSpot calculates for a line item: price x quantity - discount x quantity."""
    quantity = Decimal(item["quantity"])
    return Decimal(item["price"]) * quantity - Decimal(item.get("discount") or "0") * quantity


def test_an_invoice_becomes_a_deal_with_line_items_company_and_contact(world: DealSyncWorld) -> None:
    # given the demo company's open invoice for Acme Robotics
    invoice = world.qbo_entity("Invoice", ACME_INVOICE)
    assert invoice is not None

    # when its change event is synced
    event = world.change("Invoice", ACME_INVOICE, "Create")
    outcomes = world.sync([event])

    # then the deal shows QBO's numbers in the configured pipeline stage
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    deal = world.deals()[key(ACME_INVOICE)]
    props = deal["properties"]
    assert props["amount"] == f"{Decimal(invoice['TotalAmt']):.2f}"
    assert props["deal_currency_code"] == "USD"
    assert props["qbo_balance"] == f"{Decimal(invoice['Balance']):.2f}"
    assert (props["pipeline"], props["dealstage"]) == (INVOICES_PIPELINE_ID, INVOICE_STAGE_IDS["open"])
    assert props["qbo_status"] == "open"
    # and its line items, associated with it, add up (as HubSpot calculates them) to the deal amount
    line_ids = world.associated("deals", deal["id"], "line_items")
    items = world.objects("line_items")
    sales_lines = [line for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    tax = Decimal(str((invoice.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    assert len(line_ids) == len(sales_lines) + (1 if tax else 0)
    assert sum(line_amount(items[line_id]) for line_id in line_ids) == Decimal(props["amount"])
    # and the customer became a company and a contact, associated with the deal and each other
    (company_id,) = world.associated("deals", deal["id"], "companies")
    (contact_id,) = world.associated("deals", deal["id"], "contacts")
    company = world.objects("companies")[company_id]
    assert company["qbo_customer_id"] == f"{DEMO_REALM_ID}:1"
    # (the demo portal already had "Acme Robotics" on the same domain: linked, keeping the CRM's name)
    assert company["name"] == "Acme Robotics"
    assert world.objects("contacts")[contact_id]["email"] == "ap@acmerobotics.example"
    assert company_id in world.associated("contacts", contact_id, "companies")
    # and ledgerlink.deal.synced went out with the triggering event's correlation id
    (published,) = world.published()
    assert published["correlation_id"] == event.correlation_id
    payload = published["payload"]
    assert payload["deal_id"] == deal["id"] and payload["invoice_key"] == key(ACME_INVOICE)
    assert payload["amount"] == props["amount"] and payload["status"] == "open"
    assert payload["customer"]["email"] == "ap@acmerobotics.example"
    assert payload["customer"]["company_id"] == company_id
    assert payload["due_date"].startswith(invoice["DueDate"] + "T00:00:00-0")  # Pacific offset


def test_a_batch_costs_a_few_calls_whatever_its_size(world: DealSyncWorld) -> None:
    # given every invoice of the demo company changed at once
    invoice_ids = sorted(world.qbo.sandbox.companies[DEMO_REALM_ID].objects["Invoice"])  # type: ignore[attr-defined]
    events = [world.change("Invoice", invoice_id, "Create") for invoice_id in invoice_ids]

    # when the batch is synced
    outcomes = world.sync(events)

    # then every invoice has its deal, and the calls are per batch, not per event
    assert all(outcome.status is OutcomeStatus.SYNCED for outcome in outcomes.values())
    assert set(world.deals()) >= {key(invoice_id) for invoice_id in invoice_ids}
    qbo_calls, hubspot_calls = world.vendor_calls()
    # token, preferences, invoices, customers, items
    assert qbo_calls <= 5
    # currencies, 2 company + 1 contact searches, company + contact upserts, company + contact
    # updates (the demo portal's existing records linked to their QBO customers), 1 association,
    # deal + line item upserts, 3 deal associations, owners
    assert hubspot_calls <= 15


def test_an_event_older_than_what_hubspot_shows_is_skipped_and_counted(world: DealSyncWorld) -> None:
    # given an invoice synced at its current version
    world.sync([world.change("Invoice", SUMMIT_INVOICE, "Create")])
    before = world.vendor_calls()

    # when an out-of-order event from before that version arrives
    old = world.change("Invoice", SUMMIT_INVOICE, "Update", last_updated="2020-01-01T00:00:00Z")
    outcomes = world.sync([old])

    # then it is skipped without reading or writing anything, and counted
    assert outcomes[old.message_id].status is OutcomeStatus.STALE
    assert world.vendor_calls() == before
    assert world.metrics.counts["StaleEventsSkipped"] == 1


def test_a_new_event_for_an_unchanged_version_writes_nothing(world: DealSyncWorld) -> None:
    # given an invoice synced at its current version
    world.sync([world.change("Invoice", CAFE_INVOICE, "Create")])
    hubspot_before = len(world.requests_to(world.hubspot))

    # when another event (an "Emailed" notification) names the same version
    again = world.change("Invoice", CAFE_INVOICE, "Emailed", last_updated="2099-01-01T00:00:00Z")
    outcomes = world.sync([again])

    # then QBO is read once but HubSpot is not written
    assert outcomes[again.message_id].status is OutcomeStatus.STALE
    assert len(world.requests_to(world.hubspot)) == hubspot_before
    assert world.metrics.counts["StaleEventsSkipped"] == 1


def test_a_payment_re_syncs_the_invoice_it_pays(world: DealSyncWorld) -> None:
    # given Acme's open invoice synced
    world.sync([world.change("Invoice", ACME_INVOICE, "Create")])
    invoice = world.qbo_entity("Invoice", ACME_INVOICE)
    assert invoice is not None

    # when the customer pays it in full in QBO and the Payment event arrives (no Invoice event)
    payment = world.qbo_write(
        "Payment",
        "create",
        {
            "CustomerRef": {"value": "1"},
            "TotalAmt": invoice["Balance"],
            "Line": [
                {"Amount": invoice["Balance"], "LinkedTxn": [{"TxnId": ACME_INVOICE, "TxnType": "Invoice"}]}
            ],
        },
    )
    event = world.change("Payment", payment["Id"], "Create")
    outcomes = world.sync([event])

    # then the deal is paid: paid stage, zero balance, and a deal.synced saying so
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    props = world.deals()[key(ACME_INVOICE)]["properties"]
    assert props["qbo_status"] == "paid"
    assert props["dealstage"] == INVOICE_STAGE_IDS["paid"]
    assert Decimal(props["qbo_balance"]) == 0
    assert [p["payload"]["status"] for p in world.published()] == ["open", "paid"]


def test_a_voided_invoice_moves_to_the_voided_stage_and_loses_its_line_items(world: DealSyncWorld) -> None:
    # given an invoice synced with its line items
    world.sync([world.change("Invoice", SUMMIT_INVOICE, "Create")])
    deal = world.deals()[key(SUMMIT_INVOICE)]
    lines_before = world.associated("deals", deal["id"], "line_items")

    # when it is voided in QBO
    current = world.qbo_entity("Invoice", SUMMIT_INVOICE)
    assert current is not None
    world.qbo_write("Invoice", "void", {"Id": SUMMIT_INVOICE, "SyncToken": current["SyncToken"]})
    event = world.change("Invoice", SUMMIT_INVOICE, "Void")
    world.sync([event])

    # then the same deal is voided, amount zero, and the line items LedgerLink wrote are archived
    voided = world.deals()[key(SUMMIT_INVOICE)]
    assert voided["id"] == deal["id"]
    assert voided["properties"]["qbo_status"] == "voided"
    assert voided["properties"]["dealstage"] == INVOICE_STAGE_IDS["voided"]
    assert Decimal(voided["properties"]["amount"]) == 0
    assert lines_before <= set(world.objects("line_items", archived=True))


def test_a_deleted_invoice_keeps_its_deal_marked_deleted_in_the_voided_stage(world: DealSyncWorld) -> None:
    # given an invoice synced
    world.sync([world.change("Invoice", SUMMIT_INVOICE, "Create")])
    deal = world.deals()[key(SUMMIT_INVOICE)]
    lines = world.associated("deals", deal["id"], "line_items")

    # when it is deleted in QBO
    current = world.qbo_entity("Invoice", SUMMIT_INVOICE)
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": SUMMIT_INVOICE, "SyncToken": current["SyncToken"]})
    event = world.change("Invoice", SUMMIT_INVOICE, "Delete", last_updated="2099-01-01T00:00:00Z")
    outcomes = world.sync([event])

    # then nothing is deleted in HubSpot: the deal is marked and moved, its line items stay
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    kept = world.deals()[key(SUMMIT_INVOICE)]
    assert kept["id"] == deal["id"]
    assert kept["properties"]["qbo_status"] == "deleted"
    assert kept["properties"]["dealstage"] == INVOICE_STAGE_IDS["voided"]
    assert world.associated("deals", deal["id"], "line_items") == lines
    assert set(world.objects("line_items")) >= lines
    assert world.published()[-1]["payload"]["status"] == "deleted"


def test_a_line_removed_in_qbo_is_archived_in_hubspot(world: DealSyncWorld) -> None:
    # given Acme's invoice (three lines) synced
    world.sync([world.change("Invoice", ACME_INVOICE, "Create")])
    deal = world.deals()[key(ACME_INVOICE)]
    before = world.associated("deals", deal["id"], "line_items")

    # when its first sales line (the untaxed site survey) is removed in QBO
    current = world.qbo_entity("Invoice", ACME_INVOICE)
    assert current is not None
    kept = [line for line in current["Line"] if line["DetailType"] == "SalesItemLineDetail"][1:]
    world.qbo_write(
        "Invoice",
        "update",
        {
            "Id": ACME_INVOICE,
            "SyncToken": current["SyncToken"],
            "sparse": True,
            "Line": [{k: v for k, v in line.items() if k != "LineNum"} for line in kept],
        },
    )
    world.sync([world.change("Invoice", ACME_INVOICE, "Update")])

    # then exactly one line item was archived and the rest still add up to the new amount
    after = world.associated("deals", deal["id"], "line_items")
    live = world.objects("line_items")
    archived = before - {line_id for line_id in before if line_id in live}
    assert len(archived) == 1
    amount = Decimal(world.deals()[key(ACME_INVOICE)]["properties"]["amount"])
    assert sum(line_amount(live[line_id]) for line_id in after if line_id in live) == amount


def test_a_currency_the_portal_lacks_fails_that_record_only(world: DealSyncWorld) -> None:
    # given a portal that has USD only, and a EUR invoice in the same batch as a USD one
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    eur = world.change("Invoice", EUR_INVOICE, "Create")
    usd = world.change("Invoice", ACME_INVOICE, "Create")

    # when the batch is synced
    outcomes = world.sync([eur, usd])

    # then the EUR record fails for good, naming the currency, and the USD one is synced
    failed = outcomes[eur.message_id]
    assert failed.status is OutcomeStatus.FAILED and not failed.retryable
    assert "currency EUR is not enabled in the HubSpot portal" in (failed.reason or "")
    assert outcomes[usd.message_id].status is OutcomeStatus.SYNCED
    assert key(EUR_INVOICE) not in world.deals()
    assert key(ACME_INVOICE) in world.deals()


def test_an_existing_hubspot_company_with_the_customers_domain_is_linked_not_duplicated(
    world: DealSyncWorld,
) -> None:
    # given the sales team already has Summit's company in HubSpot (the demo portal's own record,
    # with no QBO key yet), renamed the way sales people name things
    (existing_id,) = [
        cid
        for cid, props in world.objects("companies").items()
        if props.get("domain") == "summitoutdoor.example"
    ]
    world.hubspot_admin(
        "POST",
        "ui_update",
        {"objectType": "companies", "id": existing_id, "properties": {"name": "Summit Outdoor (HQ)"}},
    )

    # when Summit's invoice is synced
    world.sync([world.change("Invoice", SUMMIT_INVOICE, "Create")])

    # then the deal is on that company, which now carries the QBO key and keeps its own name
    deal = world.deals()[key(SUMMIT_INVOICE)]
    assert world.associated("deals", deal["id"], "companies") == {existing_id}
    company = world.objects("companies")[existing_id]
    assert company["qbo_customer_id"] == f"{DEMO_REALM_ID}:7"
    assert company["name"] == "Summit Outdoor (HQ)"
    same_domain = [
        p for p in world.objects("companies").values() if p.get("domain") == "summitoutdoor.example"
    ]
    assert len(same_domain) == 1
    assert world.metrics.counts.get("CompaniesLinked") == 1


def test_two_customers_sharing_an_email_never_merge_into_one_contact(world: DealSyncWorld) -> None:
    # given the café (customer 2) and its catering arm (customer 3) share billing@bluebird.example
    catering_invoice = world.qbo_write(
        "Invoice",
        "create",
        {
            "CustomerRef": {"value": CATERING},
            "Line": [
                {
                    "Amount": "100.00",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "3"}, "Qty": 1, "UnitPrice": "100.00"},
                }
            ],
        },
    )

    # when both customers' invoices are synced, the catering one first
    world.sync([world.change("Invoice", catering_invoice["Id"], "Create")])
    world.sync([world.change("Invoice", CAFE_INVOICE, "Create")])

    # then one contact has the address, owned by one customer; the other customer has no contact link
    contacts = [p for p in world.objects("contacts").values() if p.get("email") == "billing@bluebird.example"]
    assert len(contacts) == 1
    owners = {contacts[0]["qbo_customer_id"]}
    cafe_deal = world.deals()[key(CAFE_INVOICE)]
    catering_deal = world.deals()[key(catering_invoice["Id"])]
    with_contact = [
        deal for deal in (cafe_deal, catering_deal) if world.associated("deals", deal["id"], "contacts")
    ]
    assert len(with_contact) == 1
    assert owners == {with_contact[0]["properties"]["qbo_customer_id"]}
    # both customers have their own company
    companies = {world.associated("deals", d["id"], "companies").pop() for d in (cafe_deal, catering_deal)}
    assert len(companies) == 2
    assert world.metrics.counts.get("AmbiguousMatches", 0) >= 1


def test_a_second_delivery_of_a_processed_event_calls_no_vendor(world: DealSyncWorld) -> None:
    # given an event processed once
    record = world.record("Invoice", ACME_INVOICE, "Create")
    from ledgerlink.deal_sync.inbox import parse_record

    world.sync([parse_record(record)])
    before = world.vendor_calls()

    # when SQS delivers the same message again
    redelivered = parse_record({**record, "attributes": {"ApproximateReceiveCount": "2"}})
    outcomes = world.sync([redelivered])

    # then it succeeds as a duplicate, with no call to QBO or HubSpot
    assert outcomes[redelivered.message_id].status is OutcomeStatus.DUPLICATE
    assert world.vendor_calls() == before
    assert world.metrics.counts["DuplicateEvents"] == 1


def test_a_redelivered_message_that_failed_for_good_fails_again_without_vendor_calls(
    world: DealSyncWorld,
) -> None:
    # given a record that failed for good (currency the portal lacks)
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    record = world.record("Invoice", EUR_INVOICE, "Create")
    from ledgerlink.deal_sync.inbox import parse_record

    first = world.sync([parse_record(record)])
    before = world.vendor_calls()

    # when SQS delivers it again (before maxReceiveCount moves it to the dead-letter queue)
    again = parse_record({**record, "attributes": {"ApproximateReceiveCount": "2"}})
    outcomes = world.sync([again])

    # then it fails with the same reason, and neither vendor is called
    assert outcomes[again.message_id].status is OutcomeStatus.FAILED
    assert outcomes[again.message_id].reason == first[again.message_id].reason
    assert world.vendor_calls() == before
    # and the reason is on record for operators
    (failure,) = world.parts.service.links.recent_failures()
    assert failure.entity_id == EUR_INVOICE and "EUR" in failure.reason and not failure.retryable


def test_an_estimate_becomes_a_deal_in_the_estimate_stages(world: DealSyncWorld) -> None:
    # given the demo company's pending estimate
    estimate = world.qbo_entity("Estimate", "2")
    assert estimate is not None and estimate.get("TxnStatus", "Pending") == "Pending"

    # when its change is synced
    event = world.change("Estimate", "2", "Create")
    outcomes = world.sync([event])

    # then a deal keyed by qbo_estimate_id sits in the default pipeline's estimate stage, with line items
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    deal = world.deals()[f"{DEMO_REALM_ID}:2"]
    assert deal["properties"]["qbo_estimate_id"] == f"{DEMO_REALM_ID}:2"
    assert deal["properties"].get("qbo_invoice_id") in (None, "")
    assert (deal["properties"]["pipeline"], deal["properties"]["dealstage"]) in (
        ("default", "presentationscheduled"),  # pending
        ("default", "closedlost"),  # expired, if the demo estimate's date has passed
    )
    assert world.associated("deals", deal["id"], "line_items")
    # estimates publish nothing: deal.synced is about invoices (due dates, balances)
    assert world.published() == []


def test_a_customer_change_updates_its_company_and_contact(world: DealSyncWorld) -> None:
    # given Acme's company and contact written by an earlier sync
    world.sync([world.change("Invoice", ACME_INVOICE, "Create")])
    (company_id,) = world.associated("deals", world.deals()[key(ACME_INVOICE)]["id"], "companies")

    # when Acme's phone number changes in QBO
    customer = world.qbo_entity("Customer", "1")
    assert customer is not None
    world.qbo_write(
        "Customer",
        "update",
        {
            "Id": "1",
            "SyncToken": customer["SyncToken"],
            "sparse": True,
            "PrimaryPhone": {"FreeFormNumber": "(415) 555-0199"},
        },
    )
    event = world.change("Customer", "1", "Update")
    outcomes = world.sync([event])

    # then the same company (and its contact) show the new number; nothing was duplicated
    assert outcomes[event.message_id].status is OutcomeStatus.SYNCED
    assert world.objects("companies")[company_id]["phone"] == "(415) 555-0199"
    contacts = [p for p in world.objects("contacts").values() if p.get("email") == "ap@acmerobotics.example"]
    assert [c["phone"] for c in contacts] == ["(415) 555-0199"]
    companies = [
        p for p in world.objects("companies").values() if p.get("qbo_customer_id") == f"{DEMO_REALM_ID}:1"
    ]
    assert len(companies) == 1


def test_the_deal_owner_set_in_hubspot_travels_in_deal_synced(world: DealSyncWorld) -> None:
    # given a synced deal that a sales rep then took ownership of in HubSpot
    world.sync([world.change("Invoice", CAFE_INVOICE, "Create")])
    deal = world.deals()[key(CAFE_INVOICE)]
    owner = world.hubspot.sandbox.portal.owners[0].id  # type: ignore[attr-defined]
    world.hubspot_admin(
        "POST",
        "ui_update",
        {"objectType": "deals", "id": deal["id"], "properties": {"hubspot_owner_id": owner}},
    )

    # when the invoice changes in QBO
    current = world.qbo_entity("Invoice", CAFE_INVOICE)
    assert current is not None
    world.qbo_write(
        "Invoice",
        "update",
        {"Id": CAFE_INVOICE, "SyncToken": current["SyncToken"], "sparse": True, "DueDate": "2030-01-31"},
    )
    world.sync([world.change("Invoice", CAFE_INVOICE, "Update")])

    # then the deal keeps its owner and the event names them, with the new due date
    assert world.deals()[key(CAFE_INVOICE)]["properties"]["hubspot_owner_id"] == str(owner)
    latest = world.published()[-1]["payload"]
    assert latest["owner_id"] == str(owner)
    assert latest["due_date"] == "2030-01-31T00:00:00-08:00"  # Pacific standard time in January


def test_a_dead_lettered_event_replayed_after_the_fix_is_synced_and_its_failure_cleared(
    world: DealSyncWorld,
) -> None:
    # given the EUR invoice failed for good (the portal lacked EUR) and its reason is on record
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    record = world.record("Invoice", EUR_INVOICE, "Create")
    from ledgerlink.deal_sync.inbox import parse_record

    first = world.sync([parse_record(record)])
    assert not next(iter(first.values())).ok
    assert [f.entity_id for f in world.parts.service.links.recent_failures()] == [EUR_INVOICE]

    # when an administrator enables EUR in HubSpot and the message is replayed from the dead-letter
    # queue (the same body as a new SQS message), within the service's 15-minute currency cache
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {"EUR": "1.08"}})
    replayed = parse_record({**record, "messageId": "replayed-" + record["messageId"]})
    outcomes = world.sync([replayed])

    # then it is synced (the cached currencies were read again), and no failure is on record any more
    assert outcomes[replayed.message_id].status is OutcomeStatus.SYNCED
    assert world.deals()[key(EUR_INVOICE)]["properties"]["deal_currency_code"] == "EUR"
    assert world.parts.service.links.recent_failures() == []
