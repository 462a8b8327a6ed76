"""Line items without a unique property: the deal sync finds a deal's line items through its link or its
associations, matches them by ``qbo_line_id``, and converges with no duplicate line item however the
events arrive (replayed, doubled, shuffled, after a crash, without a link).

HubSpot documents unique-value properties for contacts, companies, deals, tickets and custom objects
only, and the HubSpot sandbox refuses ``hasUniqueValue`` on line items as HubSpot would
(docs/mapping.md#line-items-and-their-identity). Every test runs in the ``world`` fixture (moto and the
sandboxes), which also checks every request body against the vendors' specs.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
import requests

from ledgerlink.crosswalk import EntityKey, Link, LinkStoreError
from ledgerlink.deal_sync.inbox import parse_record
from ledgerlink.deal_sync.mapping import TAX_LINE_SUFFIX
from ledgerlink.http.errors import VendorHttpError, VendorTimeout
from ledgerlink.hubspot.client import BatchOutcome, Create
from ledgerlink.mapping.properties import CUSTOM_PROPERTIES, QBO_LINE_ID
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import TABLES, DealSyncWorld

world = support.world  # the fixture

ACME, SUMMIT = "1", "4"  # demo invoices: Acme three lines and tax, Summit two lines and tax
HUBSPOT_AUTH = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}


def key(invoice_id: str) -> str:
    return f"{DEMO_REALM_ID}:{invoice_id}"


def link(world: DealSyncWorld, invoice_id: str) -> Link:
    (found,) = world.parts.service.links.get_many([EntityKey(DEMO_REALM_ID, "Invoice", invoice_id)]).values()
    return found


def line_amount(item: Mapping[str, Any]) -> Decimal:
    """What HubSpot calculates for a line item: price x quantity - discount x quantity."""
    quantity = Decimal(item["quantity"])
    return Decimal(item["price"]) * quantity - Decimal(item.get("discount") or "0") * quantity


def qbo_line_keys(world: DealSyncWorld, invoice_id: str) -> list[str]:
    """The qbo_line_id of every line item the invoice should have now: its sales lines, and its tax."""
    invoice = world.qbo_entity("Invoice", invoice_id)
    assert invoice is not None
    keys = [
        f"{key(invoice_id)}:{line['Id']}"
        for line in invoice["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]
    if Decimal(str((invoice.get("TxnTaxDetail") or {}).get("TotalTax") or "0")):
        keys.append(f"{key(invoice_id)}:{TAX_LINE_SUFFIX}")
    return keys


def owned_line_items(world: DealSyncWorld, invoice_id: str) -> dict[str, dict[str, Any]]:
    """Every live line item in HubSpot carrying one of the invoice's line keys, on its deal or not."""
    prefix = f"{key(invoice_id)}:"
    return {
        item_id: props
        for item_id, props in world.objects("line_items").items()
        if (props.get(QBO_LINE_ID) or "").startswith(prefix)
    }


def assert_converged(world: DealSyncWorld, invoice_id: str) -> dict[str, str]:
    """HubSpot shows the invoice's lines exactly once each, on its deal, adding up to the deal amount;
    the link lists them. Answers qbo_line_id -> line item id."""
    deal = world.deals()[key(invoice_id)]
    owned = owned_line_items(world, invoice_id)
    on_deal = world.associated("deals", deal["id"], "line_items")
    assert sorted(props[QBO_LINE_ID] for props in owned.values()) == sorted(qbo_line_keys(world, invoice_id))
    assert set(owned) <= on_deal, "a line item of this invoice is not on its deal"
    assert sum((line_amount(props) for props in owned.values()), Decimal(0)) == Decimal(
        deal["properties"]["amount"]
    )
    assert link(world, invoice_id).line_item_ids == frozenset(owned)
    return {props[QBO_LINE_ID]: item_id for item_id, props in owned.items()}


def edit_lines(world: DealSyncWorld, invoice_id: str, change: Any) -> None:
    """A user edits the invoice's sales lines in QBO: ``change`` gets them (Ids kept) and answers the new list."""
    current = world.qbo_entity("Invoice", invoice_id)
    assert current is not None
    sales = [
        {k: v for k, v in line.items() if k != "LineNum"}
        for line in current["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]
    world.qbo_write(
        "Invoice",
        "update",
        {"Id": invoice_id, "SyncToken": current["SyncToken"], "sparse": True, "Line": change(sales)},
    )


def added_line(amount: str = "100.00") -> dict[str, Any]:
    return {
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 1, "UnitPrice": amount},
    }


def with_quantity(line: dict[str, Any], quantity: int) -> dict[str, Any]:
    detail = dict(line["SalesItemLineDetail"])
    detail["Qty"] = quantity
    unit = Decimal(str(detail["UnitPrice"]))
    return {**line, "Amount": str(unit * quantity), "SalesItemLineDetail": detail}


def hubspot_calls(world: DealSyncWorld, since: int) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in world.requests_to(world.hubspot)[since:]]


def synced(
    world: DealSyncWorld, *invoice_ids: str, operation: str = "Update", receive_count: int = 1
) -> None:
    events = [world.change("Invoice", i, operation, receive_count=receive_count) for i in invoice_ids]
    outcomes = world.sync(events)
    assert all(outcome.ok for outcome in outcomes.values()), outcomes


# ---- the portal


def test_line_items_get_qbo_line_id_as_an_ordinary_property_and_the_sandbox_refuses_a_unique_one(
    world: DealSyncWorld,
) -> None:
    # given the portal LedgerLink set up (the world fixture ran `hubspot setup`)
    line_items = world.parts.hubspot.properties("line_items")

    # then qbo_line_id exists on line items without unique values, as LedgerLink's catalogue says
    assert line_items[QBO_LINE_ID]["hasUniqueValue"] is False
    assert not any(spec.unique for spec in CUSTOM_PROPERTIES["line_items"])

    # and a unique property on line items is refused with HubSpot's validation error
    body = {
        "name": "qbo_other_line_key",
        "label": "Other line key",
        "type": "string",
        "fieldType": "text",
        "groupName": "ledgerlink",
        "hasUniqueValue": True,
    }
    with pytest.raises(VendorHttpError) as raised:
        world.parts.hubspot.create_property("line_items", body)
    assert raised.value.status == 400 and not raised.value.retryable
    answer = requests.post(
        f"{world.hubspot.url}/crm/v3/properties/line_items", json=body, headers=HUBSPOT_AUTH, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert answer.json()["message"].startswith(
        "Unique values are not supported for properties of object type line_items"
    )


# ---- convergence


def test_a_new_invoice_creates_its_line_items_on_its_deal_in_one_call(world: DealSyncWorld) -> None:
    # when a new invoice is synced
    before = len(world.requests_to(world.hubspot))
    synced(world, ACME, operation="Create")

    # then its line items were created already associated with the new deal: no look-up, no association call
    assert_converged(world, ACME)
    calls = hubspot_calls(world, before)
    assert calls.count("POST /crm/v3/objects/line_items/batch/create") == 1
    assert not [c for c in calls if "/line_items" in c and "batch/create" not in c]


def test_a_replayed_event_writes_no_second_line_item(world: DealSyncWorld) -> None:
    # given Acme's invoice synced
    event = world.change("Invoice", ACME, "Create")
    world.sync([event])
    first = assert_converged(world, ACME)

    # when the same event is delivered again, then replayed from the dead-letter queue as a new message
    again = world.sync([event])
    replayed = world.sync(
        [parse_record({**world.record("Invoice", ACME, "Create"), "messageId": "replayed-1"})]
    )

    # then nothing new exists: the same line items, once each
    assert all(outcome.ok for outcome in (*again.values(), *replayed.values()))
    assert assert_converged(world, ACME) == first


def test_a_line_removed_in_qbo_is_archived_and_the_others_are_updated_in_place(world: DealSyncWorld) -> None:
    # given Acme's invoice synced (three sales lines and tax)
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)

    # when its second line is removed in QBO
    edit_lines(world, ACME, lambda lines: [lines[0], lines[2]])
    synced(world, ACME)

    # then that line item is archived, the others keep their HubSpot ids
    after = assert_converged(world, ACME)
    removed = before[f"{key(ACME)}:2"]
    assert after == {k: v for k, v in before.items() if k != f"{key(ACME)}:2"}
    assert removed in world.objects("line_items", archived=True)


def test_reordered_lines_keep_their_line_items_and_take_their_new_positions(world: DealSyncWorld) -> None:
    # given Acme's invoice synced
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)

    # when its lines are put in the opposite order in QBO
    edit_lines(world, ACME, lambda lines: list(reversed(lines)))
    synced(world, ACME)

    # then the same line items show the new order
    after = assert_converged(world, ACME)
    assert after == before
    positions = {
        props[QBO_LINE_ID]: props["hs_position_on_quote"] for props in owned_line_items(world, ACME).values()
    }
    assert [positions[f"{key(ACME)}:{n}"] for n in ("3", "2", "1")] == ["0", "1", "2"]


def test_a_changed_amount_updates_its_line_item_and_the_deal_still_adds_up(world: DealSyncWorld) -> None:
    # given Acme's invoice synced
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)

    # when the quantity of its first line changes in QBO
    edit_lines(world, ACME, lambda lines: [with_quantity(lines[0], 5), *lines[1:]])
    sent_before = len(world.capture.to(world.hubspot.url))
    synced(world, ACME)

    # then the same line item carries the new amount, and the lines add up to the new deal amount;
    # only that line item was written (the others already showed their lines)
    after = assert_converged(world, ACME)
    assert after == before
    (update,) = [
        s
        for s in world.capture.to(world.hubspot.url)[sent_before:]
        if s.path.endswith("/line_items/batch/update")
    ]
    assert [item["id"] for item in update.json()["inputs"]] == [after[f"{key(ACME)}:1"]]
    first = owned_line_items(world, ACME)[after[f"{key(ACME)}:1"]]
    invoice = world.qbo_entity("Invoice", ACME)
    assert invoice is not None
    assert line_amount(first) == Decimal(str(invoice["Line"][0]["Amount"]))


def test_events_delivered_twice_and_shuffled_converge_with_no_duplicate_line_item(
    world: DealSyncWorld,
) -> None:
    # given two invoices that change four times each in QBO, part of the events delivered as they come,
    # doubled and shuffled (other Lambdas got the rest)
    rng = random.Random(20251110)
    records: list[dict[str, Any]] = []
    edits = [
        lambda lines: [*lines, added_line()],
        lambda lines: [with_quantity(lines[0], 7), *lines[1:]],
        lambda lines: list(reversed(lines)),
        lambda lines: lines[1:],
    ]
    for edit in edits:
        for invoice_id in (ACME, SUMMIT):
            world.qbo_admin(
                "POST", "clock", {"advance_seconds": 5}
            )  # edits seconds apart, as people make them
            edit_lines(world, invoice_id, edit)
            records.append(world.record("Invoice", invoice_id, "Update"))
        sample = rng.sample(records, k=min(3, len(records)))
        outcomes = world.sync([parse_record(record) for record in [*sample, *sample]])
        assert all(outcome.ok for outcome in outcomes.values()), outcomes

    # when every event is delivered again, twice, shuffled, in batches of three
    deliver_doubled_and_shuffled(world, records, rng)

    # then each invoice's lines exist once each, on its deal, adding up to its amount
    settled = {invoice_id: assert_converged(world, invoice_id) for invoice_id in (ACME, SUMMIT)}

    # and when LedgerLink's tables are lost (links and idempotency records) and it all arrives once more
    for table in (TABLES["links"], TABLES["idempotency"]):
        forget_table(world, table)
    deliver_doubled_and_shuffled(world, records, rng)

    # then the deals' line items were found through their associations: the same ones, none created
    assert {invoice_id: assert_converged(world, invoice_id) for invoice_id in (ACME, SUMMIT)} == settled


def deliver_doubled_and_shuffled(
    world: DealSyncWorld, records: list[dict[str, Any]], rng: random.Random
) -> None:
    doubled = [*records, *({**r, "attributes": {"ApproximateReceiveCount": "2"}} for r in records)]
    rng.shuffle(doubled)
    for start in range(0, len(doubled), 3):
        outcomes = world.sync([parse_record(record) for record in doubled[start : start + 3]])
        assert all(outcome.ok for outcome in outcomes.values()), outcomes


def forget_table(world: DealSyncWorld, table: str) -> None:
    dynamodb = world.aws["dynamodb"]
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    names = [part["AttributeName"] for part in schema]
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=table, Key={name: item[name] for name in names})


# ---- crashes and lost links


def fail_next_link_save(world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The next save of the links fails: the Lambda dies after its HubSpot writes, before recording them.
    Answers the sizes of the saves that failed (one at most)."""
    links = world.parts.service.links
    original = links.save_all
    failed: list[int] = []

    def save_all(pending: Sequence[tuple[Link, str]]) -> list[bool]:
        if not failed:
            failed.append(len(pending))
            raise LinkStoreError("links table unavailable (test)")
        return original(pending)

    monkeypatch.setattr(links, "save_all", save_all)
    return failed


def test_a_crash_after_creating_a_new_deals_line_items_converges_on_the_retry(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a new invoice whose first attempt wrote the deal and its line items, then failed to save its link
    failed = fail_next_link_save(world, monkeypatch)
    first = world.sync([world.change("Invoice", ACME, "Create")])
    assert failed and not next(iter(first.values())).ok and next(iter(first.values())).retryable
    created = owned_line_items(world, ACME)
    assert len(created) == len(qbo_line_keys(world, ACME))

    # when SQS delivers it again
    synced(world, ACME, operation="Create", receive_count=2)

    # then the retry found the line items through the deal's associations: none created twice
    assert set(assert_converged(world, ACME).values()) == set(created)


def test_a_crash_after_adding_a_line_converges_on_the_retry(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given Acme's invoice synced, then a line added in QBO whose sync created it and failed to save the link
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)
    edit_lines(world, ACME, lambda lines: [*lines, added_line()])
    failed = fail_next_link_save(world, monkeypatch)
    outcomes = world.sync([world.change("Invoice", ACME, "Update")])
    assert failed and not next(iter(outcomes.values())).ok
    assert link(world, ACME).line_item_ids == frozenset(before.values())  # the old link, still

    # when SQS delivers it again
    synced(world, ACME, receive_count=2)

    # then the added line exists once, beside the line items it had
    after = assert_converged(world, ACME)
    assert len(after) == len(before) + 1
    assert {k: v for k, v in after.items() if k in before} == before


def test_a_create_whose_answer_is_lost_is_looked_for_not_sent_twice(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given HubSpot creating the next batch of line items but its answer never arriving (a read timeout)
    hubspot = world.parts.hubspot
    original = hubspot.batch_create
    lost: list[int] = []

    def batch_create(object_type: str, inputs: Sequence[Create]) -> BatchOutcome:
        outcome = original(object_type, inputs)
        if not lost:
            lost.append(len(outcome.written))
            raise VendorTimeout(
                vendor="hubspot",
                method="POST",
                path="/crm/v3/objects/line_items/batch/create",
                phase="read",
                timeout_seconds=10,
            )
        return outcome

    monkeypatch.setattr(hubspot, "batch_create", batch_create)

    # when two new invoices are synced
    synced(world, ACME, SUMMIT, operation="Create")

    # then the line items that landed were found on their deals and kept, in the same invocation
    assert lost == [len(qbo_line_keys(world, ACME)) + len(qbo_line_keys(world, SUMMIT))]
    assert_converged(world, ACME)
    assert_converged(world, SUMMIT)


def test_a_lost_link_row_finds_the_deals_line_items_through_its_associations(world: DealSyncWorld) -> None:
    # given Acme's invoice synced, then its link row lost
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)
    world.aws["dynamodb"].delete_item(
        TableName=TABLES["links"],
        Key={"pk": {"S": EntityKey(DEMO_REALM_ID, "Invoice", ACME).pk}, "sk": {"S": "link"}},
    )

    # when the invoice changes in QBO
    edit_lines(world, ACME, lambda lines: [with_quantity(lines[0], 2), *lines[1:]])
    start = len(world.requests_to(world.hubspot))
    synced(world, ACME)

    # then the deal's line items were found and updated in place, none created; the link is back
    assert assert_converged(world, ACME) == before
    calls = [c for c in hubspot_calls(world, start) if "line_items" in c]
    assert sorted(calls) == [
        "POST /crm/v3/objects/line_items/batch/read",
        "POST /crm/v3/objects/line_items/batch/update",
        "POST /crm/v4/associations/deals/line_items/batch/read",
    ]


def test_two_line_items_with_one_key_keep_the_linked_one_and_a_users_line_item_stays(
    world: DealSyncWorld,
) -> None:
    # given Acme's invoice synced; then a second line item carrying its first line's key on the deal (what
    # a concurrent worker that lost the race to save the link leaves: its link is marked dirty), and a
    # line item a HubSpot user added to the deal themselves
    synced(world, ACME, operation="Create")
    before = assert_converged(world, ACME)
    deal_id = str(world.deals()[key(ACME)]["id"])
    first_line = owned_line_items(world, ACME)[before[f"{key(ACME)}:1"]]
    duplicate = create_line_item(world, deal_id, {k: v for k, v in first_line.items() if k in WRITABLE})
    users = create_line_item(world, deal_id, {"name": "Extra service", "quantity": "1", "price": "10"})
    world.parts.service.links.mark_dirty(EntityKey(DEMO_REALM_ID, "Invoice", ACME))

    # when the invoice is synced again
    synced(world, ACME)

    # then the duplicate is archived, the linked line item kept, and the user's line item left alone
    assert assert_converged(world, ACME) == before
    assert duplicate in world.objects("line_items", archived=True)
    assert users in world.objects("line_items") and users in world.associated("deals", deal_id, "line_items")
    assert world.metrics.counts.get("DuplicateLineItemsArchived") == 1


WRITABLE = {"name", "quantity", "price", "discount", QBO_LINE_ID, "hs_line_item_currency_code"}


def create_line_item(world: DealSyncWorld, deal_id: str, properties: Mapping[str, str]) -> str:
    """A line item written to the deal through HubSpot's API, as another tool (or worker) would."""
    response = requests.post(
        f"{world.hubspot.url}/crm/v3/objects/line_items",
        headers=HUBSPOT_AUTH,
        json={
            "properties": dict(properties),
            "associations": [
                {
                    "to": {"id": deal_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}],
                }
            ],
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
