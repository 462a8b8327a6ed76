"""End to end on the local stack as `make run` wires it: a QBO invoice's due date on an Outlook calendar.

QBO sandbox webhook → gateway → ingest → deal sync (HubSpot deal) → deal.synced → calendar-sync queue →
the Outlook calendar sync → the Graph sandbox's calendar, read back through Graph's own API; then the
due date moves (the same event moves) and the invoice is paid (the event is gone).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import graph_events, local_environment, wait_for

LOS_ANGELES = "America/Los_Angeles"  # the demo company's zone (local/config/local.toml)


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    with local_environment(tmp_path_factory.mktemp("ledgerlink-state")) as environment:
        yield environment


def _calendar_events(environment: LocalEnvironment, subject_part: str) -> list[dict[str, Any]]:
    """The events whose subject names the invoice, on any of the tenant's calendars."""
    return [e for e in graph_events(environment, LOS_ANGELES) if subject_part in e["subject"]]


def test_an_invoice_due_date_is_on_a_calendar_moves_with_it_and_leaves_when_it_is_paid(
    environment: LocalEnvironment,
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given a new invoice in QBO (the demo's first step), with its due date
    change = qbo.demo_activity_step(0)
    with qbo.lock:
        invoice = qbo.companies[realm].read("Invoice", change["id"])
    label = f"Invoice {invoice['DocNumber']} due:"
    due = date.fromisoformat(invoice["DueDate"])

    # then its due date appears on a calendar: all day, midnight to midnight in the company's zone
    (event,) = wait_for(lambda: _calendar_events(environment, label) or None, f"a calendar event for {label}")
    assert event["isAllDay"] is True
    assert event["start"] == {"dateTime": f"{due.isoformat()}T00:00:00.0000000", "timeZone": LOS_ANGELES}
    assert event["end"]["dateTime"].startswith((due + timedelta(days=1)).isoformat() + "T00:00:00")
    assert event["originalStartTimeZone"] == "Pacific Standard Time"

    # when the due date moves by a week in QBO
    moved = due + timedelta(days=7)
    with qbo.lock:
        current = qbo.companies[realm].read("Invoice", change["id"])
        qbo.companies[realm].update(
            "Invoice",
            {
                "Id": current["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                "DueDate": moved.isoformat(),
            },
        )

    # then the same event moves to the new day
    def moved_event() -> dict[str, Any] | None:
        events = _calendar_events(environment, label)
        return events[0] if events and events[0]["start"]["dateTime"].startswith(moved.isoformat()) else None

    after = wait_for(moved_event, f"the event of {label} on {moved}")
    assert after["id"] == event["id"]

    # when the invoice is paid in full
    with qbo.lock:
        current = qbo.companies[realm].read("Invoice", change["id"])
        balance = Decimal(str(current["Balance"]))
        qbo.companies[realm].create(
            "Payment",
            {
                "CustomerRef": current["CustomerRef"],
                "TotalAmt": str(balance),
                "Line": [
                    {"Amount": str(balance), "LinkedTxn": [{"TxnId": current["Id"], "TxnType": "Invoice"}]}
                ],
            },
        )

    # then the event is gone from the calendar
    wait_for(lambda: _calendar_events(environment, label) == [] or None, f"the event of {label} removed")
