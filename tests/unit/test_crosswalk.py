"""The crosswalk (the links table and the failures on record), against moto's DynamoDB; the behaviour
tests run against the in-memory store too (what benchmarks run the flow on), so the two cannot drift."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.crosswalk import (
    NO_ORIGIN,
    EntityKey,
    Failure,
    InMemoryLinksTable,
    InMemoryLinkStore,
    Link,
    LinkStore,
)
from ledgerlink.mapping.origin import ORIGIN_HUBSPOT
from tests.integration.test_deal_sync_support import TABLES, create_aws_resources

INVOICE = EntityKey("9341453908059321", "Invoice", "130")


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        create_aws_resources()
        yield boto3.client("dynamodb", region_name="us-east-1")


StoreFactory = Callable[..., LinkStore]


@pytest.fixture(params=["dynamodb", "in_memory"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Link stores over one table: DynamoDB's (moto) or the in-memory one; keyword arguments as
    LinkStore's (connection, config_version)."""
    if request.param == "in_memory":
        table = InMemoryLinksTable()
        yield lambda **options: InMemoryLinkStore(table, **options)
        return
    client = request.getfixturevalue("dynamodb")
    yield lambda **options: LinkStore(TABLES["links"], client, **options)


def test_a_link_only_moves_forward_and_a_lost_race_marks_it_dirty(make_store: StoreFactory) -> None:
    # given worker B recorded version (t=2000, SyncToken 3) of an invoice
    store = make_store()
    assert store.save(Link(INVOICE, hubspot_id="91", synced_ms=2000, sync_token=3), event_id="b")

    # when slower worker A, which read the older version (t=1000), tries to record it
    recorded = store.save(Link(INVOICE, hubspot_id="91", synced_ms=1000, sync_token=2), event_id="a")

    # then A is refused, the newer version stays, and the link is dirty: the newest version must be
    # written again because A's HubSpot write may have landed after B's
    assert recorded is False
    link = store.get_many([INVOICE])[INVOICE]
    assert (link.synced_ms, link.sync_token) == (2000, 3)
    assert link.dirty is True
    assert link.already_synced(2000, 3) is False

    # and the next write of that version clears it
    assert store.save(Link(INVOICE, hubspot_id="91", synced_ms=2000, sync_token=3), event_id="c")
    assert store.get_many([INVOICE])[INVOICE].already_synced(2000, 3) is True


def test_two_edits_within_one_second_differ_by_their_sync_token(make_store: StoreFactory) -> None:
    store = make_store()
    store.save(Link(INVOICE, hubspot_id="91", synced_ms=5000, sync_token=4), event_id="e1")
    link = store.get_many([INVOICE])[INVOICE]
    assert link.already_synced(5000, 4) and not link.already_synced(5000, 5)
    assert store.save(Link(INVOICE, hubspot_id="91", synced_ms=5000, sync_token=5), event_id="e2")


def test_line_items_and_invoices_are_remembered_and_forgotten(make_store: StoreFactory) -> None:
    store = make_store()
    store.save(Link(INVOICE, hubspot_id="91", synced_ms=1, line_item_ids=frozenset({"7", "8"})), event_id="e")
    assert store.get_many([INVOICE])[INVOICE].line_item_ids == {"7", "8"}
    store.save(Link(INVOICE, hubspot_id="91", synced_ms=2), event_id="f")  # voided: no line items left
    assert store.get_many([INVOICE])[INVOICE].line_item_ids == frozenset()


def test_failures_are_recorded_listed_and_cleared(make_store: StoreFactory) -> None:
    store = make_store()
    failure = Failure(
        "ev-1",
        "currency EUR is not enabled",
        "UnsupportedCurrency",
        False,
        "m-1",
        2,
        "1",
        "Invoice",
        "5",
        "2026-01-01T00:00:00.000+00:00",
    )
    store.record_failures([failure])
    assert store.failures(["ev-1", "ev-2"]) == {"ev-1": failure}
    assert store.recent_failures() == [failure]
    store.clear_failures(["ev-1"])
    assert store.recent_failures() == []


def test_a_stale_customer_link_is_forgotten_only_while_it_names_the_deleted_records(
    make_store: StoreFactory,
) -> None:
    # given a customer linked to company 21 and contact 51, which a HubSpot user then deleted
    store = make_store()
    customer = EntityKey("9341453908059321", "Customer", "1")
    stale = Link(customer, hubspot_id="21", contact_id="51", synced_ms=1000, status="linked")
    store.save(stale, event_id="e1")

    # when another worker already re-linked the customer, the stale view of it cannot drop that link
    store.save(Link(customer, hubspot_id="22", contact_id="52", synced_ms=1000), event_id="e2")
    assert store.forget(stale) is False
    assert store.get_many([customer])[customer].hubspot_id == "22"

    # and a link still naming the deleted records is dropped, so the customer is resolved like a new one
    current = store.get_many([customer])[customer]
    assert store.forget(current) is True
    assert store.get_many([customer]) == {}


def test_every_row_names_its_connection_and_the_configuration_version(dynamodb: Any) -> None:
    # given the store of connection "demo" under configuration version abc123
    store = LinkStore(TABLES["links"], dynamodb, connection="demo", config_version="abc123")
    key = EntityKey("9341453908059321", "Invoice", "1")
    # when a link and a failure are written
    assert store.save(Link(key, hubspot_id="deal-1", synced_ms=1000), event_id="e1")
    store.record_failures(
        [
            Failure(
                event_id="e2",
                reason="why",
                error_type="X",
                retryable=False,
                message_id="m",
                receive_count=1,
                realm_id=key.realm_id,
                entity="Invoice",
                entity_id="2",
                failed_at="2026-12-01T00:00:00.000+00:00",
            )
        ]
    )
    # then both rows say which connection and which configuration wrote them
    items = dynamodb.scan(TableName=TABLES["links"])["Items"]
    assert len(items) == 2
    assert all(item["connection"]["S"] == "demo" for item in items)
    assert all(item["config_version"]["S"] == "abc123" for item in items)


def test_an_origin_is_recorded_and_kept_by_later_saves_until_removed(make_store: StoreFactory) -> None:
    # given an invoice link recorded as created for HubSpot deal 91
    store = make_store()
    assert store.save(Link(INVOICE, hubspot_id="91", synced_ms=1000, origin=ORIGIN_HUBSPOT), event_id="e1")
    assert store.get_many([INVOICE])[INVOICE].origin == ORIGIN_HUBSPOT

    # when a later save says nothing about the origin, it stays
    assert store.save(Link(INVOICE, hubspot_id="91", synced_ms=2000), event_id="e2")
    assert store.get_many([INVOICE])[INVOICE].origin == ORIGIN_HUBSPOT

    # and a save that removes it (the deal sync took the document over) leaves none
    assert store.save(Link(INVOICE, hubspot_id="92", synced_ms=3000, origin=NO_ORIGIN), event_id="e3")
    link = store.get_many([INVOICE])[INVOICE]
    assert (link.hubspot_id, link.origin, link.synced_ms) == ("92", None, 3000)


def test_a_claim_creates_the_link_with_the_deal_and_origin_only(dynamodb: Any) -> None:
    # given no link for a new invoice
    store = LinkStore(TABLES["links"], dynamodb, connection="demo", config_version="abc123")

    # when the HubSpot → QBO flow claims it for deal 91
    store.claim_for_deal(INVOICE, "91")

    # then the link names the deal and its origin, and no synced version: the deal sync writes it
    link = store.get_many([INVOICE])[INVOICE]
    assert link == Link(INVOICE, hubspot_id="91", origin=ORIGIN_HUBSPOT)
    assert link.already_synced(1000, 0) is False
    (item,) = dynamodb.scan(TableName=TABLES["links"])["Items"]
    assert (item["connection"]["S"], item["config_version"]["S"]) == ("demo", "abc123")


def test_a_claim_leaves_what_the_deal_sync_recorded(dynamodb: Any) -> None:
    # given a link the deal sync recorded (version, line items, status), then lost a race on (dirty)
    synced = LinkStore(TABLES["links"], dynamodb, connection="demo", config_version="v1")
    synced.save(
        Link(INVOICE, hubspot_id="91", synced_ms=2000, sync_token=3, company_id="21", status="open"),
        event_id="e1",
    )
    synced.mark_dirty(INVOICE)
    before = dynamodb.scan(TableName=TABLES["links"])["Items"][0]

    # when the other flow, under a newer configuration, claims it for the deal
    LinkStore(TABLES["links"], dynamodb, connection="demo", config_version="v2").claim_for_deal(INVOICE, "91")

    # then only the origin was added: the version, the dirty flag and every other attribute stay
    (after,) = dynamodb.scan(TableName=TABLES["links"])["Items"]
    assert after == {**before, "origin": {"S": ORIGIN_HUBSPOT}}
    link = synced.get_many([INVOICE])[INVOICE]
    assert (link.synced_ms, link.sync_token, link.dirty, link.origin) == (2000, 3, True, ORIGIN_HUBSPOT)


def test_a_claim_names_the_deal_and_keeps_the_synced_version_and_dirty_flag(make_store: StoreFactory) -> None:
    # given no link for one invoice, and a synced (then raced, dirty) link for another
    store = make_store(connection="demo", config_version="v1")
    other = EntityKey(INVOICE.realm_id, "Invoice", "131")
    store.save(Link(other, hubspot_id="92", synced_ms=2000, sync_token=3, status="open"), event_id="e1")
    store.mark_dirty(other)
    # when the HubSpot -> QBO flow claims both
    store.claim_for_deal(INVOICE, "91")
    store.claim_for_deal(other, "92")
    # then the new link has the deal and origin only, and the other keeps its version, status and flag
    links = store.get_many([INVOICE, other])
    assert links[INVOICE] == Link(INVOICE, hubspot_id="91", origin=ORIGIN_HUBSPOT)
    claimed = links[other]
    assert (claimed.hubspot_id, claimed.synced_ms, claimed.sync_token, claimed.status, claimed.dirty) == (
        "92",
        2000,
        3,
        "open",
        True,
    )
    assert claimed.origin == ORIGIN_HUBSPOT
