"""Outlook items in the links table (ledgerlink.outlook_items): one per invoice and kind, beside the
invoice's link, written under an optimistic lock."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ledgerlink.outlook_items import CALENDAR, OutlookItem, OutlookItemStore

TABLE = "links"
PK = "9341453908059321#Invoice#1042"


@pytest.fixture
def store() -> Iterator[OutlookItemStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield OutlookItemStore(TABLE, client, connection="demo", config_version="abc123")


def test_an_item_is_stored_beside_the_invoice_link_and_read_back(store: OutlookItemStore) -> None:
    item = OutlookItem(
        PK, CALENDAR, "demo", mailbox="finance@x.example", item_id="AAMk1", etag='W/"1"', present=True
    )
    saved = store.save(item)
    assert saved is not None and saved.revision == 1
    assert store.get(PK, CALENDAR) == saved
    raw = store._client.get_item(TableName=TABLE, Key={"pk": {"S": PK}, "sk": {"S": "outlook#calendar"}})[
        "Item"
    ]
    assert raw["connection"]["S"] == "demo" and raw["config_version"]["S"] == "abc123"


def test_a_write_from_a_stale_read_loses(store: OutlookItemStore) -> None:
    # given two workers that read the same revision
    first = store.save(OutlookItem(PK, CALENDAR, "demo", etag='W/"1"'))
    assert first is not None
    # when one saves, then the other
    winner = store.save(first.but(etag='W/"2"'))
    loser = store.save(first.but(etag='W/"3"'))
    # then only the first write counts
    assert winner is not None and loser is None
    assert store.get(PK, CALENDAR) == winner


def test_a_second_creation_of_the_same_item_loses(store: OutlookItemStore) -> None:
    assert store.save(OutlookItem(PK, CALENDAR, "demo", item_id="A")) is not None
    assert store.save(OutlookItem(PK, CALENDAR, "demo", item_id="B")) is None
    stored = store.get(PK, CALENDAR)
    assert stored is not None and stored.item_id == "A"
