"""What the follow-up meeting is: a Teams meeting as a calendar event in the organizer's calendar.

``POST /users/{organizer}/events`` with ``isOnlineMeeting: true`` and ``onlineMeetingProvider:
"teamsForBusiness"`` (Microsoft's way for a meeting that must be on calendars, with invitations: the
standalone onlineMeetings API puts nothing on any calendar). Times are the slot's local times in the
company's Windows zone, so every attendee's Outlook shows the meeting in the company's business hours.
Field choices: docs/followups.md.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from ledgerlink.followups.inbox import Invoice
from ledgerlink.followups.rules import PAST_DUE, FollowUpRule
from ledgerlink.followups.slots import Slot
from ledgerlink.graph.zones import outlook_zone
from ledgerlink.money import display_amount

CATEGORY: Final = "LedgerLink"
REMINDER_MINUTES: Final = 15


@dataclass(frozen=True)
class Attendee:
    address: str
    name: str | None
    role: str  # "billing contact", "deal owner", "finance"


@dataclass(frozen=True)
class FollowUpMeeting:
    subject: str
    body_html: str

    def content(self) -> dict[str, Any]:
        """The fields a balance change updates."""
        return {"subject": self.subject, "body": {"contentType": "HTML", "content": self.body_html}}


def days_overdue(invoice: Invoice, today: date) -> int:
    return max(0, (today - invoice.due_date).days) if invoice.due_date else 0


def follow_up_meeting(
    invoice: Invoice, rule: FollowUpRule, today: date, attendees: Sequence[Attendee]
) -> FollowUpMeeting:
    currency = invoice.currency or ""
    balance = display_amount(invoice.balance, currency) if invoice.balance is not None and currency else "?"
    customer = str(invoice.customer.get("name") or "customer without a name")
    overdue = days_overdue(invoice, today)
    when = (
        f"{overdue} day{'s' if overdue != 1 else ''} overdue"
        if overdue
        else f"due {invoice.due_date:%d %B %Y}".replace(" 0", " ")
    )
    subject = f"Payment follow-up: invoice {invoice.label}, {customer}, {balance} open, {when}"
    invited = "".join(
        f"<li>{html.escape(a.name or a.address)} &lt;{html.escape(a.address)}&gt; ({html.escape(a.role)})</li>"
        for a in attendees
    )
    missing = (
        ""
        if any(a.role == "billing contact" for a in attendees)
        else "<p>The invoice has no billing e-mail and the deal's HubSpot contact has none either: the "
        "customer is not invited. Add one in QBO or HubSpot and forward this invitation.</p>"
    )
    body = "".join(
        (
            f"<p>Payment follow-up for invoice <b>{html.escape(invoice.label)}</b> of "
            f"<b>{html.escape(customer)}</b>: <b>{html.escape(balance)}</b> open, "
            f"{'due' if rule.kind != PAST_DUE else 'was due'} {invoice.due_date:%d %B %Y} "
            f"({html.escape(when)}).</p>",
            f"<p>Rule: {html.escape(rule.describe())}.</p>",
            f"<ul>{invited}</ul>" if invited else "",
            missing,
            "<p>Scheduled by LedgerLink. It is cancelled if the invoice is paid, voided or deleted before "
            "the meeting; the balance here follows the invoice.</p>",
        )
    )
    return FollowUpMeeting(subject, body)


def create_body(
    meeting: FollowUpMeeting,
    slot: Slot,
    time_zone: str,
    attendees: Sequence[Attendee],
    *,
    zone_override: str | None,
) -> dict[str, Any]:
    zone_name = outlook_zone(time_zone, zone_override)
    start, end = slot.start, slot.end
    return {
        **meeting.content(),
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone_name},
        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone_name},
        "isAllDay": False,
        "showAs": "busy",
        "isReminderOn": True,
        "reminderMinutesBeforeStart": REMINDER_MINUTES,
        "categories": [CATEGORY],
        "attendees": [
            {
                "emailAddress": {"address": a.address, **({"name": a.name} if a.name else {})},
                "type": "required",
            }
            for a in attendees
        ],
        "allowNewTimeProposals": True,
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
    }
