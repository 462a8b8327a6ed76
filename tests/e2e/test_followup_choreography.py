"""End to end on the local stack as `make run` wires it: an invoice entered already past its due date
becomes a deal, a calendar event and a Teams follow-up meeting (read back through the Graph sandbox's
API: organizer, attendees, start/end in the company's zone, join URL); paid in QBO, the meeting is
cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import graph_events, local_environment, wait_for

LOS_ANGELES = "America/Los_Angeles"  # the demo company's zone (local/config/local.toml)
LATE_INVOICE_STEP = 4  # the demo enters its second new invoice already past due


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    with local_environment(tmp_path_factory.mktemp("ledgerlink-state")) as environment:
        yield environment


def _meetings(environment: LocalEnvironment, doc_number: str) -> list[dict[str, Any]]:
    """The follow-up meetings of the invoice, as their organizers' calendars have them."""
    return [
        e
        for e in graph_events(environment, LOS_ANGELES)
        if e["subject"].startswith(f"Payment follow-up: invoice {doc_number},") and e["isOrganizer"]
    ]


def test_an_overdue_invoice_becomes_a_teams_meeting_that_a_payment_cancels(
    environment: LocalEnvironment,
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given an invoice entered in QBO already ten days past its due date
    change = qbo.demo_activity_step(LATE_INVOICE_STEP)
    with qbo.lock:
        invoice = qbo.companies[realm].read("Invoice", change["id"])
    assert (change["entity"], change["operation"]) == ("Invoice", "Create")

    # then a Teams meeting about it appears: organised by the accounts-receivable mailbox, in the
    # company's business hours, with a join URL and the customer's billing contact invited
    (meeting,) = wait_for(
        lambda: _meetings(environment, invoice["DocNumber"]) or None, "the follow-up meeting"
    )
    assert meeting["isOnlineMeeting"] is True
    assert meeting["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting["organizer"]["emailAddress"]["address"] == "finance@ledgerlinkdemo.onmicrosoft.com"
    assert meeting["start"]["timeZone"] == LOS_ANGELES
    assert "09:00:00" <= meeting["start"]["dateTime"][11:19] < "17:00:00"
    assert "10 days overdue" in meeting["subject"]
    invited = {a["emailAddress"]["address"] for a in meeting["attendees"]}
    assert "avery.chen@ledgerlinkdemo.onmicrosoft.com" in invited
    billing = (invoice.get("BillEmail") or {}).get("Address")
    if billing:
        assert billing in invited

    # when it is paid in full in QBO
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

    # then the meeting is cancelled
    wait_for(lambda: _meetings(environment, invoice["DocNumber"]) == [] or None, "the meeting cancelled")
