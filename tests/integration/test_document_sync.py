"""The document sync against the QBO and HubSpot sandboxes: deals a salesperson moves in HubSpot become QBO
estimates and invoices, exactly once, with every decision audited (docs/document-sync.md)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from ledgerlink.audit import Decision
from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.crosswalk import EntityKey
from ledgerlink.mapping import properties as prop
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo.sandbox import DEMO_REALM_ID
from tests.conftest import FIXTURES
from tests.integration.document_sync_support import (
    QUOTE_STAGE,
    WON_STAGE,
    DocumentWorld,
    LineSpec,
    build_world,
    money,
)
from tests.qbo_xsd import assert_fields_conform

XSD_NAMES = {
    "customer": "Customer",
    "estimate": "Estimate",
    "invoice": "Invoice",
    "preferences": "Preferences",
}
ACME = {"name": "Acme Rockets", "domain": "acme-rockets.example"}
WILE = {"email": "wile@acme-rockets.example", "firstname": "Wile", "lastname": "Coyote"}


@pytest.fixture
def world(
    qbo_sandbox: SandboxServer, hubspot_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DocumentWorld]:
    with mock_aws():
        built = build_world(qbo_sandbox, hubspot_sandbox, monkeypatch)
        try:
            yield built
            # Whatever the test did, every QBO body the code sent must be one Intuit's schema allows.
            for sent in built.qbo_writes():
                entity = sent.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                assert_fields_conform(XSD_NAMES[entity], sent.json())
        finally:
            built.parts.close()


def seed_items(world: DocumentWorld) -> None:
    world.qbo_admin(
        "POST",
        "seed",
        {
            "realm_id": DEMO_REALM_ID,
            "entities": {
                "Item": [
                    {"Name": "Rocket skates", "Sku": "RS-100", "Type": "Service", "UnitPrice": 400,
                     "IncomeAccountRef": {"value": "1"}, "Taxable": True},
                    {"Name": "Giant magnet", "Sku": "GM-7", "Type": "Service", "UnitPrice": 75,
                     "IncomeAccountRef": {"value": "1"}},
                ]
            },
        },
    )  # fmt: skip


# ---- quote stage -> estimate


def test_a_deal_moved_to_the_quote_stage_gets_one_estimate_with_its_lines_customer_and_total(
    world: DocumentWorld,
) -> None:
    # Given a deal with line items matching QBO items by SKU, by name and by neither (the default item)
    seed_items(world)
    deal_id = world.make_deal(
        lines=(
            LineSpec("Rocket skates, pair", "2", "400", sku="RS-100"),
            LineSpec("Giant magnet", "1", "75"),
            LineSpec("Custom paint job", "3", "20.50"),
        ),
        company=ACME,
        contacts=(WILE,),
    )
    world.move_deal(deal_id, QUOTE_STAGE)

    # When the stage change is delivered twice
    first = world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    second = world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))

    # Then QBO has exactly one estimate for the deal, Pending, for a new customer named after the company
    assert first.status is OutcomeStatus.SYNCED, first.reason
    assert second.status is OutcomeStatus.UNCHANGED, second.reason
    [estimate] = world.estimates_of(deal_id)
    assert estimate["TxnStatus"] == "Pending"
    customer = world.qbo_read("Customer", estimate["CustomerRef"]["value"])
    assert customer is not None and customer["DisplayName"] == "Acme Rockets"
    assert customer["PrimaryEmailAddr"]["Address"] == "wile@acme-rockets.example"
    items = [
        (
            line["SalesItemLineDetail"]["ItemRef"]["name"],
            money(line["SalesItemLineDetail"]["Qty"]),
            money(line["Amount"]),
        )
        for line in estimate["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]
    assert items == [
        ("Rocket skates", money(2), money(800)),
        ("Giant magnet", money(1), money(75)),
        ("Services", money(3), money("61.50")),
    ]
    assert money(estimate["TotalAmt"]) >= money("936.50")
    # And the deal names its estimate, the crosswalk says the estimate is the deal's, the company its customer
    assert world.deal(deal_id)[prop.QBO_ESTIMATE_ID] == f"{DEMO_REALM_ID}:{estimate['Id']}"
    link = world.parts.only.service.links.get_many([EntityKey(DEMO_REALM_ID, "Estimate", estimate["Id"])])
    assert [(ln.hubspot_id, ln.origin) for ln in link.values()] == [(deal_id, "hubspot")]
    # And the audit tells the story
    history = world.audit(deal_id)
    assert [r.decision for r in history] == [Decision.CREATED, Decision.UNCHANGED]
    assert history[0].deal_stage == QUOTE_STAGE and history[0].estimate_id == estimate["Id"]
    assert "1 by sku" in history[0].reason and "1 by default" in history[0].reason


def test_a_changed_line_item_updates_a_pending_estimate_and_nothing_when_it_already_matches(
    world: DocumentWorld,
) -> None:
    # Given a quoted deal
    deal_id = world.make_deal(company=ACME, contacts=(WILE,), stage=QUOTE_STAGE)
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [before] = world.estimates_of(deal_id)
    [line_id] = world.line_items_of(deal_id)

    # When the salesperson changes the quantity and HubSpot sends the line item's change
    world.ui_update("line_items", line_id, {"quantity": "5"})
    outcome = world.sync_one(
        world.event(deal_id, change="line_item_changed", object_type="line_item", object_id=line_id)
    )

    # Then the same estimate now bills 5
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    [after] = world.estimates_of(deal_id)
    assert after["Id"] == before["Id"] and int(after["SyncToken"]) > int(before["SyncToken"])
    assert money(after["Line"][0]["SalesItemLineDetail"]["Qty"]) == money(5)
    assert world.audit(deal_id)[-1].decision is Decision.UPDATED


def test_an_accepted_estimate_is_not_changed_by_the_deal(world: DocumentWorld) -> None:
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [estimate] = world.estimates_of(deal_id)
    world.parts.only.qbo.client.update(
        DEMO_REALM_ID,
        "Estimate",
        {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"], "sparse": True, "TxnStatus": "Accepted"},
        request_id="test-accept",
    )
    [line_id] = world.line_items_of(deal_id)
    world.ui_update("line_items", line_id, {"quantity": "9"})

    outcome = world.sync_one(
        world.event(deal_id, change="line_item_changed", object_type="line_item", object_id=line_id)
    )

    assert outcome.status is OutcomeStatus.IGNORED
    assert "Accepted in QBO" in (outcome.reason or "")
    [unchanged] = world.estimates_of(deal_id)
    assert unchanged["SyncToken"] == str(int(estimate["SyncToken"]) + 1)


def test_an_estimate_someone_saves_in_qbo_meanwhile_is_read_again_and_updated(
    world: DocumentWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a quoted deal whose line item changes
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [estimate] = world.estimates_of(deal_id)
    [line_id] = world.line_items_of(deal_id)
    world.ui_update("line_items", line_id, {"quantity": "4"})
    client = world.parts.only.qbo.client
    real_update = client.update
    saved_by_a_person: list[str] = []

    def update_after_a_person_saved(realm_id: str, entity: str, body: Any, *, request_id: str) -> Any:
        if not saved_by_a_person:
            # An accountant saves the estimate (a new memo) just before LedgerLink's update lands.
            current = client.read(realm_id, "Estimate", estimate["Id"])
            assert current is not None
            real_update(
                realm_id,
                "Estimate",
                {
                    "Id": current["Id"],
                    "SyncToken": current["SyncToken"],
                    "sparse": True,
                    "CustomerMemo": {"value": "Thanks!"},
                },
                request_id="test-person-save",
            )
            saved_by_a_person.append(current["SyncToken"])
        return real_update(realm_id, entity, body, request_id=request_id)

    monkeypatch.setattr(client, "update", update_after_a_person_saved)

    # When the change is synced: QBO answers 5010 to the first update (its SyncToken is stale)
    outcome = world.sync_one(
        world.event(deal_id, change="line_item_changed", object_type="line_item", object_id=line_id)
    )

    # Then LedgerLink read the estimate again and applied the deal over the person's save, keeping the memo
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    [after] = world.estimates_of(deal_id)
    assert money(after["Line"][0]["SalesItemLineDetail"]["Qty"]) == money(4)
    assert after["CustomerMemo"]["value"] == "Thanks!"


# ---- won stage -> invoice


def test_closed_won_makes_the_invoice_linked_to_the_estimate_with_its_lines(world: DocumentWorld) -> None:
    # Given a quoted deal
    seed_items(world)
    deal_id = world.make_deal(
        lines=(LineSpec("Rocket skates", "1", "400", sku="RS-100"), LineSpec("Giant magnet", "2", "75")),
        company=ACME,
        contacts=(WILE,),
        stage=QUOTE_STAGE,
    )
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [estimate] = world.estimates_of(deal_id)

    # When the deal is won (and HubSpot delivers it twice)
    world.move_deal(deal_id, WON_STAGE)
    outcomes = [world.sync_one(world.event(deal_id, stage=WON_STAGE)) for _ in range(2)]

    # Then one invoice, linked to the estimate, with the estimate's lines and total; the estimate is closed
    assert [o.status for o in outcomes] == [OutcomeStatus.SYNCED, OutcomeStatus.UNCHANGED]
    [invoice] = world.invoices_of(deal_id)
    assert {"TxnId": estimate["Id"], "TxnType": "Estimate"} in invoice["LinkedTxn"]
    assert money(invoice["TotalAmt"]) == money(estimate["TotalAmt"])
    assert invoice["CustomerRef"]["value"] == estimate["CustomerRef"]["value"]
    assert [
        ln["SalesItemLineDetail"]["ItemRef"]["value"] for ln in invoice["Line"] if "SalesItemLineDetail" in ln
    ] == [
        ln["SalesItemLineDetail"]["ItemRef"]["value"]
        for ln in estimate["Line"]
        if "SalesItemLineDetail" in ln
    ]
    closed = world.qbo_read("Estimate", estimate["Id"])
    assert closed is not None and closed["TxnStatus"] in ("Closed", "Converted")
    deal = world.deal(deal_id)
    assert deal[prop.QBO_INVOICE_ID] == f"{DEMO_REALM_ID}:{invoice['Id']}"
    assert deal[prop.QBO_ESTIMATE_ID] == f"{DEMO_REALM_ID}:{estimate['Id']}"
    created = world.audit(deal_id)[-2]
    assert created.decision is Decision.CREATED and created.document == "Invoice"
    assert created.invoice_id == invoice["Id"] and "linked to estimate" in created.reason


def test_won_without_an_estimate_invoices_straight_from_the_deal_and_says_so(world: DocumentWorld) -> None:
    deal_id = world.make_deal(company=ACME, contacts=(WILE,), stage=WON_STAGE)

    outcome = world.sync_one(world.event(deal_id, stage=WON_STAGE))

    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    [invoice] = world.invoices_of(deal_id)
    assert "LinkedTxn" not in invoice or not [
        ln for ln in invoice["LinkedTxn"] if ln["TxnType"] == "Estimate"
    ]
    assert money(invoice["TotalAmt"]) >= money(300)
    assert world.estimates_of(deal_id) == []
    [record] = world.audit(deal_id)
    assert "no estimate" in record.reason and "straight from the deal" in record.reason


@pytest.mark.parametrize("status", ["Closed", "Rejected"])
def test_won_with_an_estimate_already_closed_fails_and_makes_no_lone_invoice(
    world: DocumentWorld, status: str
) -> None:
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [estimate] = world.estimates_of(deal_id)
    world.parts.only.qbo.client.update(
        DEMO_REALM_ID,
        "Estimate",
        {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"], "sparse": True, "TxnStatus": status},
        request_id=f"test-{status}",
    )
    world.move_deal(deal_id, WON_STAGE)

    outcome = world.sync_one(world.event(deal_id, stage=WON_STAGE))

    assert outcome.status is OutcomeStatus.FAILED and not outcome.retryable
    assert f"is {status} in QBO" in (outcome.reason or "")
    assert world.invoices_of(deal_id) == []
    assert world.audit(deal_id)[-1].decision is Decision.FAILED


# ---- nothing to do


def test_a_stage_reverted_before_processing_writes_nothing_and_the_audit_says_why(
    world: DocumentWorld,
) -> None:
    # Given a deal moved to the quote stage and straight back before LedgerLink read it
    deal_id = world.make_deal(company=ACME)
    world.move_deal(deal_id, QUOTE_STAGE)
    world.move_deal(deal_id, "appointmentscheduled")

    outcome = world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))

    assert outcome.status is OutcomeStatus.IGNORED
    assert world.estimates_of(deal_id) == [] and world.qbo_writes() == []
    [record] = world.audit(deal_id)
    assert record.decision is Decision.SKIPPED and record.deal_stage == "appointmentscheduled"
    assert "the webhook said contractsent" in record.reason


def test_a_deleted_deal_writes_nothing(world: DocumentWorld) -> None:
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    world.parts.only.hubspot.batch_archive("deals", [deal_id])

    outcome = world.sync_one(world.event(deal_id, change="deleted"))

    assert outcome.status is OutcomeStatus.IGNORED and world.qbo_writes() == []
    assert "no longer exists in HubSpot" in world.audit(deal_id)[0].reason


def test_duplicated_and_shuffled_webhooks_make_one_estimate_and_one_invoice(world: DocumentWorld) -> None:
    # Given a deal that went to the quote stage, then won, and every webhook of it twice, in any order
    deal_id = world.make_deal(company=ACME, contacts=(WILE,), stage=QUOTE_STAGE)
    quote = [world.event(deal_id, stage=QUOTE_STAGE, occurred_at_ms=1_000) for _ in range(2)]
    world.sync(quote[:1])
    world.move_deal(deal_id, WON_STAGE)
    won = [world.event(deal_id, stage=WON_STAGE, occurred_at_ms=2_000) for _ in range(2)]
    late = quote + won
    random.Random(13).shuffle(late)

    for event in late:
        assert world.sync_one(event).ok

    assert len(world.estimates_of(deal_id)) == 1
    assert len(world.invoices_of(deal_id)) == 1


# ---- mapping with care


def test_a_line_matching_no_item_without_a_default_fails_that_deal_only_naming_line_and_sku(
    qbo_sandbox: SandboxServer, hubspot_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    config = (
        (FIXTURES / "config" / "document-sync.toml").read_text().replace('default_item = "Services"\n', "")
    )
    config_file = tmp_path / "no-default.toml"
    config_file.write_text(config)
    with mock_aws():
        world = build_world(qbo_sandbox, hubspot_sandbox, monkeypatch, config_file=config_file)
        try:
            seed_items(world)
            bad = world.make_deal(name="Odd deal", company=ACME, stage=QUOTE_STAGE,
                                  lines=(LineSpec("Anvil", "1", "10", sku="ANV-1"),))  # fmt: skip
            good = world.make_deal(name="Good deal", company=ACME, stage=QUOTE_STAGE,
                                   lines=(LineSpec("Skates", "1", "400", sku="RS-100"),))  # fmt: skip

            outcomes = world.sync([world.event(bad, stage=QUOTE_STAGE), world.event(good, stage=QUOTE_STAGE)])

            failed, synced = outcomes["msg-1"], outcomes["msg-2"]
            assert failed.status is OutcomeStatus.FAILED and not failed.retryable
            assert "ANV-1" in (failed.reason or "") and "Anvil" in (failed.reason or "")
            assert synced.status is OutcomeStatus.SYNCED
            assert world.estimates_of(bad) == [] and len(world.estimates_of(good)) == 1
        finally:
            world.parts.close()


def test_a_taken_display_name_gets_a_deterministic_suffix_and_the_second_contact_never_fails(
    world: DocumentWorld,
) -> None:
    # Given two people called Jane Doe with no company, each with a deal at the quote stage
    first = world.make_deal(name="Jane 1", contacts=({"email": "jane@one.example", "firstname": "Jane", "lastname": "Doe"},), stage=QUOTE_STAGE)  # fmt: skip
    second = world.make_deal(name="Jane 2", contacts=({"email": "jane@two.example", "firstname": "Jane", "lastname": "Doe"},), stage=QUOTE_STAGE)  # fmt: skip

    outcomes = world.sync([world.event(first, stage=QUOTE_STAGE), world.event(second, stage=QUOTE_STAGE)])

    assert all(o.status is OutcomeStatus.SYNCED for o in outcomes.values()), outcomes
    names = sorted(
        world.qbo_read("Customer", e["CustomerRef"]["value"])["DisplayName"]  # type: ignore[index]
        for deal in (first, second)
        for e in world.estimates_of(deal)
    )
    assert names == ["Jane Doe", "Jane Doe (jane@two.example)"]


def test_a_taken_doc_number_is_retried_with_the_next_and_the_number_used_is_recorded(
    world: DocumentWorld,
) -> None:
    # Given a company that numbers its own documents (the demo company does), where HSE-1001 is in use
    client = world.parts.only.qbo.client
    customer = client.create(DEMO_REALM_ID, "Customer", {"DisplayName": "Someone"}, request_id="test-someone")
    client.create(
        DEMO_REALM_ID,
        "Estimate",
        {
            "CustomerRef": {"value": customer["Id"]},
            "DocNumber": "HSE-1001",
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": 1,
                    "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
                }
            ],
        },
        request_id="test-hse-1001",
    )
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)

    # When the deal is quoted
    outcome = world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))

    # Then QBO's 6140 made LedgerLink take the next number, and the audit names it
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    [estimate] = world.estimates_of(deal_id)
    assert estimate["DocNumber"] == "HSE-1002"
    assert world.audit(deal_id)[-1].estimate_number == "HSE-1002"


def test_without_custom_numbers_no_doc_number_is_sent_and_qbo_numbers_the_document(
    world: DocumentWorld,
) -> None:
    world.qbo_admin("POST", "preferences", {"SalesFormsPrefs": {"CustomTxnNumbers": False}})
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)

    assert world.sync_one(world.event(deal_id, stage=QUOTE_STAGE)).status is OutcomeStatus.SYNCED

    [create] = [sent for sent in world.qbo_writes() if "/estimate" in sent.url]
    assert "DocNumber" not in create.json()
    [estimate] = world.estimates_of(deal_id)
    assert estimate.get("DocNumber") and world.audit(deal_id)[-1].estimate_number == estimate["DocNumber"]


def test_a_merge_acts_on_the_surviving_deal_and_records_the_merged_one(world: DocumentWorld) -> None:
    # Given deal B merged into deal A (at the quote stage); HubSpot names both in the merge event
    survivor = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    merged_away = "99990001"

    outcome = world.sync_one(world.event(survivor, change="merged", merged=(merged_away, survivor)))

    # Then the survivor gets its estimate, and the merged-away deal's audit says where it went
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    assert len(world.estimates_of(survivor)) == 1
    [record] = world.audit(merged_away)
    assert record.decision is Decision.SKIPPED and f"merged into deal {survivor}" in record.reason


def test_an_echo_of_ledgerlinks_own_write_costs_no_vendor_call(world: DocumentWorld) -> None:
    # Given the deal sync moved a deal the books made (HubSpot names the writing app in sourceId)
    deal_id = world.make_deal(company=ACME, stage=WON_STAGE)
    world.capture.clear()

    outcome = world.sync_one(world.event(deal_id, stage=WON_STAGE, source_id="2910012", app_id="2910012"))

    # Then nothing is read or written, in either system
    assert outcome.status is OutcomeStatus.IGNORED and "own HubSpot write" in (outcome.reason or "")
    assert world.capture.to(world.hubspot.url) == [] and world.capture.to(world.qbo.url) == []
    assert world.invoices_of(deal_id) == []
    # ... while the same move by a person (another source) makes the invoice
    assert (
        world.sync_one(world.event(deal_id, stage=WON_STAGE, source_id="userId:4410001")).status
        is OutcomeStatus.SYNCED
    )


def test_a_deal_that_lost_its_mark_is_marked_again_when_its_event_comes_back(world: DocumentWorld) -> None:
    # Given a quoted deal whose qbo_estimate_id did not stick (the marking failed after QBO's create)
    deal_id = world.make_deal(company=ACME, stage=QUOTE_STAGE)
    world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))
    [estimate] = world.estimates_of(deal_id)
    world.ui_update("deals", deal_id, {prop.QBO_ESTIMATE_ID: ""})

    # When the event is delivered again
    outcome = world.sync_one(world.event(deal_id, stage=QUOTE_STAGE))

    # Then nothing is written to QBO, and the deal names its estimate again
    assert outcome.status is OutcomeStatus.UNCHANGED
    assert len(world.estimates_of(deal_id)) == 1
    assert world.deal(deal_id)[prop.QBO_ESTIMATE_ID] == f"{DEMO_REALM_ID}:{estimate['Id']}"
