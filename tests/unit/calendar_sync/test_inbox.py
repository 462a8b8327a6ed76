"""SQS records of the calendar-sync queue → DealSynced (ledgerlink.calendar_sync.inbox)."""

from __future__ import annotations

import json
import math
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ledgerlink.calendar_sync.inbox import parse_record
from ledgerlink.consumer.batch import MalformedRecord
from tests.conftest import FIXTURES

RECORDED = json.loads((FIXTURES / "events" / "deal-synced-open-invoice.json").read_text())


def record(**payload: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(RECORDED))
    body["detail"]["payload"].update(payload)
    return {"messageId": "m-1", "body": json.dumps(body), "attributes": {"ApproximateReceiveCount": "3"}}


def test_a_recorded_deal_synced_event_parses_into_what_the_calendar_needs() -> None:
    event = parse_record(record())
    assert (event.invoice_key, event.deal_id, event.connection) == (
        "9341453908059321:1042",
        "31000000412",
        "demo",
    )
    assert event.due_date == date(2026, 3, 8)
    assert event.balance == Decimal("1250.00")
    assert event.receive_count == 3
    assert event.owes


@pytest.mark.parametrize(
    ("changes", "owes"),
    [
        ({"status": "paid", "balance": "0.00"}, False),
        ({"status": "voided", "balance": "0.00"}, False),
        ({"status": "overdue"}, True),
        ({"due_date": None}, False),
        ({"status": "partially_paid", "balance": "0.00"}, False),
    ],
)
def test_an_invoice_is_owed_while_open_with_a_balance_and_a_due_date(
    changes: dict[str, Any], owes: bool
) -> None:
    assert parse_record(record(**changes)).owes is owes


def test_a_deleted_invoice_is_newer_than_any_version_of_it() -> None:
    deleted = parse_record(
        record(status="deleted", balance=None, amount=None, currency=None, last_updated=None)
    )
    assert deleted.version == (math.inf, 0)
    assert deleted.version > parse_record(record(last_updated="2099-01-01T00:00:00Z")).version


def test_two_edits_in_one_second_are_ordered_by_sync_token() -> None:
    assert parse_record(record(sync_token=2)).version > parse_record(record(sync_token=1)).version


def test_another_detail_type_is_malformed_naming_it() -> None:
    body = json.loads(json.dumps(RECORDED))
    body["detail-type"] = "qbo.entity.changed"
    with pytest.raises(MalformedRecord, match=r"detail-type is 'qbo\.entity\.changed'"):
        parse_record({"messageId": "m-1", "body": json.dumps(body)})


def test_a_payload_off_its_schema_is_malformed_naming_the_field() -> None:
    with pytest.raises(MalformedRecord, match="due_date"):
        parse_record(record(due_date="next tuesday"))
