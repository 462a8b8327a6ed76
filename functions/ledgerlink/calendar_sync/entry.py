"""What goes on the calendar for an invoice that is owed: the due-date event's Graph body.

The field choices are documented in docs/calendar-sync.md (a mapping table). In short: an all-day
event on the due date in the company's zone (start and end are midnights in that zone, sent with the
zone's Windows name, so neither UTC nor a DST change can move it to another day), a subject naming
the invoice, the customer and the open balance, a body linking the HubSpot deal and the QBO invoice,
shown as free, with a reminder the configured number of days before.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from ledgerlink.calendar_sync.inbox import DealSynced
from ledgerlink.configfile import CalendarSettings
from ledgerlink.graph.zones import outlook_zone
from ledgerlink.money import display_amount

# Graph's category on every event LedgerLink writes: lets a person filter them in Outlook.
CATEGORY: Final = "LedgerLink"
MINUTES_PER_DAY: Final = 24 * 60


@dataclass(frozen=True)
class DueDateEntry:
    subject: str
    body_html: str
    due_date: date
    time_zone: str  # the name sent to Graph (Windows, or IANA from Graph's list)
    show_as: str
    reminder_minutes: int

    def graph_body(self) -> dict[str, Any]:
        """The event resource fields LedgerLink owns (create body; the same fields patch an update)."""
        start = self.due_date
        end = start + timedelta(days=1)
        return {
            "subject": self.subject,
            "body": {"contentType": "HTML", "content": self.body_html},
            "start": {"dateTime": f"{start.isoformat()}T00:00:00", "timeZone": self.time_zone},
            "end": {"dateTime": f"{end.isoformat()}T00:00:00", "timeZone": self.time_zone},
            "isAllDay": True,
            "showAs": self.show_as,
            "isReminderOn": True,
            "reminderMinutesBeforeStart": self.reminder_minutes,
            "categories": [CATEGORY],
        }

    def fingerprint(self, mailbox: str) -> str:
        """A hash of what would be written where: equal fingerprints need no write."""
        content = json.dumps({"mailbox": mailbox.lower(), "body": self.graph_body()}, sort_keys=True)
        return hashlib.sha256(content.encode("utf-8")).hexdigest()


def invoice_label(event: DealSynced) -> str:
    return event.doc_number or f"#{event.invoice_id}"


def due_date_entry(
    event: DealSynced, settings: CalendarSettings, *, portal_id: str, time_zone_override: str | None = None
) -> DueDateEntry:
    """The event for an invoice that is owed (``event.owes``)."""
    assert event.due_date is not None and event.balance is not None
    currency = event.currency or ""
    customer = event.customer.name or "customer without a name"
    balance = display_amount(event.balance, currency) if currency else str(event.balance)
    number = invoice_label(event)
    subject = f"Invoice {number} due: {customer}, {balance} open"
    links = deal_links(event, settings, portal_id=portal_id)
    body = "".join(
        (
            f"<p>Invoice <b>{html.escape(number)}</b> for <b>{html.escape(customer)}</b> is due on "
            f"{event.due_date.strftime('%d %B %Y').lstrip('0')}.</p>",
            f"<p>Open balance: <b>{html.escape(balance)}</b>.</p>",
            "<p>"
            + " · ".join(
                f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'
                for label, url in links.items()
            )
            + "</p>",
            "<p>Written by LedgerLink. It follows the invoice: edits here are replaced when the invoice "
            "changes, and the event is removed when the invoice is paid, voided or deleted.</p>",
        )
    )
    return DueDateEntry(
        subject=subject,
        body_html=body,
        due_date=event.due_date,
        time_zone=outlook_zone(event.time_zone, time_zone_override or settings.outlook_time_zone),
        show_as=settings.show_as,
        reminder_minutes=settings.reminder_days_before * MINUTES_PER_DAY,
    )


def deal_links(event: DealSynced, settings: CalendarSettings, *, portal_id: str) -> Mapping[str, str]:
    """The HubSpot deal's record page and the QBO invoice's page (URL shapes: docs/calendar-sync.md)."""
    return {
        "HubSpot deal": f"{settings.hubspot_app_url}/contacts/{portal_id}/record/0-3/{event.deal_id}",
        "QuickBooks invoice": f"{settings.qbo_app_url}/app/invoice?txnId={event.invoice_id}",
    }
