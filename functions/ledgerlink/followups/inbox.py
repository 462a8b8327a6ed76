"""SQS records of the teams-invite queue → what triggered the follow-up flow.

Three rules feed the queue:

- ``ledgerlink.calendar.synced`` (:class:`CalendarSynced`): the invoice's due date was just written to (or
  removed from) its calendar; carries the invoice as the deal shows it and whose calendar it is on;
- ``ledgerlink.followup.due`` (:class:`FollowUpDue`): the sweep found that time alone brought an owed
  invoice into a rule; the invoice is read from LedgerLink's own store (its calendar item's snapshot);
- EventBridge's ``Scheduled Event`` (:class:`SweepRequested`): the schedule asks for a sweep.

A record that is none of these, or off its schema, is :class:`~ledgerlink.consumer.batch.MalformedRecord`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from ledgerlink.consumer.batch import MalformedRecord
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.consumer.records import read_envelope
from ledgerlink.dates import epoch_ms
from ledgerlink.events import DetailType
from ledgerlink.history import Subject
from ledgerlink.mapping.stages import OWED_STATUSES

SCHEDULED_EVENT: Final = "Scheduled Event"


@dataclass(frozen=True)
class Invoice:
    """An invoice as the follow-up flow sees it (from calendar.synced, or a calendar item's snapshot)."""

    connection: str
    invoice_key: str
    invoice_id: str
    realm_id: str
    doc_number: str
    deal_id: str
    status: str
    balance: Decimal | None
    currency: str | None
    due_date: date | None
    time_zone: str
    customer: Mapping[str, str | None]
    owner_id: str | None
    organizer: str | None  # the mailbox whose calendar holds the due date: the deal owner's or AR's
    organizer_source: str | None  # "deal_owner" | "accounts_receivable"
    last_updated_ms: int
    sync_token: int
    correlation_id: str

    @property
    def version(self) -> tuple[float, int]:
        return (math.inf, 0) if self.status == "deleted" else (float(self.last_updated_ms), self.sync_token)

    @property
    def owes(self) -> bool:
        return (
            self.status in OWED_STATUSES
            and self.due_date is not None
            and self.balance is not None
            and self.balance > 0
        )

    @property
    def pk(self) -> str:
        return f"{self.realm_id}#Invoice#{self.invoice_id}"

    @property
    def label(self) -> str:
        return self.doc_number or f"#{self.invoice_id}"

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        *,
        connection: str,
        organizer: str | None,
        organizer_source: str | None,
    ) -> Invoice:
        """From a calendar.synced payload or a calendar item's snapshot (the same fields)."""
        last_updated = payload.get("last_updated")
        due = payload.get("due_date")
        balance = payload.get("balance")
        return cls(
            connection=connection,
            invoice_key=str(payload["invoice_key"]),
            invoice_id=str(payload["invoice_id"]),
            realm_id=str(payload["realm_id"]),
            doc_number=str(payload.get("doc_number") or ""),
            deal_id=str(payload["deal_id"]),
            status=str(payload["status"]),
            balance=Decimal(str(balance)) if balance is not None else None,
            currency=payload.get("currency"),
            due_date=date.fromisoformat(str(due)[:10]) if due else None,
            time_zone=str(payload["time_zone"]),
            customer=dict(payload.get("customer") or {}),
            owner_id=payload.get("owner_id"),
            organizer=organizer,
            organizer_source=organizer_source,
            last_updated_ms=epoch_ms(datetime.fromisoformat(str(last_updated).replace("Z", "+00:00")))
            if last_updated
            else 0,
            sync_token=int(payload.get("sync_token") or 0),
            correlation_id=str(payload.get("correlation_id") or ""),
        )


@dataclass(frozen=True)
class CalendarSynced:
    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    invoice: Invoice

    @property
    def connection(self) -> str:
        return self.invoice.connection


@dataclass(frozen=True)
class FollowUpDue:
    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    connection: str
    invoice_key: str
    rule: str
    entered_on: date


@dataclass(frozen=True)
class SweepRequested:
    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    requested_at: datetime


Trigger = CalendarSynced | FollowUpDue | SweepRequested


def log_fields(trigger: Trigger) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "message_id": trigger.message_id,
        "event_id": trigger.event_id,
        "correlation_id": trigger.correlation_id,
        "receive_count": trigger.receive_count,
        "trigger": type(trigger).__name__,
    }
    if isinstance(trigger, CalendarSynced):
        fields.update(connection=trigger.connection, invoice_key=trigger.invoice.invoice_key)
    elif isinstance(trigger, FollowUpDue):
        fields.update(connection=trigger.connection, invoice_key=trigger.invoice_key, rule=trigger.rule)
    return fields


def parse_record(record: Mapping[str, Any]) -> Trigger:
    """One SQS record → its trigger, or :class:`MalformedRecord` naming what is wrong."""
    message_id = str(record.get("messageId") or "")
    try:
        body = json.loads(record.get("body") or "")
    except ValueError:
        raise MalformedRecord(f"message {message_id or '?'}: body is not JSON") from None
    detail_type = body.get("detail-type") if isinstance(body, dict) else None
    if detail_type == SCHEDULED_EVENT:
        return _sweep(record, body, message_id)
    if detail_type == DetailType.FOLLOWUP_DUE:
        received = read_envelope(record, DetailType.FOLLOWUP_DUE)
        payload = received.envelope.payload
        return FollowUpDue(
            message_id=received.message_id,
            receive_count=received.receive_count,
            event_id=received.envelope.event_id,
            correlation_id=received.envelope.correlation_id,
            connection=str(payload["connection"]),
            invoice_key=str(payload["invoice_key"]),
            rule=str(payload["rule"]),
            entered_on=date.fromisoformat(str(payload["entered_on"])),
        )
    received = read_envelope(record, DetailType.CALENDAR_SYNCED)
    payload = received.envelope.payload
    invoice = Invoice.from_payload(
        {**payload, "correlation_id": received.envelope.correlation_id},
        connection=str(payload["connection"]),
        organizer=str(payload["mailbox"]),
        organizer_source=str(payload["mailbox_source"]),
    )
    return CalendarSynced(
        message_id=received.message_id,
        receive_count=received.receive_count,
        event_id=received.envelope.event_id,
        correlation_id=received.envelope.correlation_id,
        invoice=invoice,
    )


def _sweep(record: Mapping[str, Any], body: Mapping[str, Any], message_id: str) -> SweepRequested:
    if not message_id:
        raise MalformedRecord("SQS record has no messageId")
    if body.get("source") != "aws.events":
        raise MalformedRecord(f"message {message_id}: a Scheduled Event must come from aws.events")
    try:
        requested = datetime.fromisoformat(str(body.get("time")).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecord(f"message {message_id}: $.time is not a date-time") from None
    attributes = record.get("attributes") or {}
    return SweepRequested(
        message_id=message_id,
        receive_count=int(attributes.get("ApproximateReceiveCount", "1") or 1),
        event_id=str(body.get("id") or message_id),
        correlation_id=f"sweep-{body.get('id') or message_id}",
        requested_at=requested if requested.tzinfo else requested.replace(tzinfo=UTC),
    )


def history_subject(trigger: Trigger, outcome: Outcome) -> Subject | None:
    """What a record's history row names (ledgerlink.history): the invoice and its Teams meeting; a
    sweep request is about no one record (None)."""
    meeting = outcome.detail.get("meeting_id") or None
    if isinstance(trigger, CalendarSynced):
        invoice = trigger.invoice
        return Subject(
            connection=invoice.connection,
            source_entity="Invoice",
            source_id=invoice.invoice_id,
            realm_id=invoice.realm_id,
            source_number=invoice.doc_number or None,
            deal_id=invoice.deal_id or None,
            teams_meeting_id=meeting,
        )
    if isinstance(trigger, FollowUpDue):
        realm_id, _, invoice_id = trigger.invoice_key.rpartition(":")
        return Subject(
            connection=trigger.connection,
            source_entity="Invoice",
            source_id=invoice_id,
            realm_id=realm_id or None,
            teams_meeting_id=meeting,
        )
    return None
