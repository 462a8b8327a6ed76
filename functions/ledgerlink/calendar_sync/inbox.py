"""SQS records of the calendar-sync queue → typed :class:`DealSynced` events.

Each message carries a ``ledgerlink.deal.synced`` v1 envelope: what the invoice's HubSpot deal now
says (:func:`~ledgerlink.consumer.records.read_envelope` checks it against its schema). The calendar
follows the deal, so this is the flow's only input.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerlink.consumer.batch import MalformedRecord
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.consumer.records import read_envelope
from ledgerlink.dates import epoch_ms
from ledgerlink.events import DetailType
from ledgerlink.history import Subject
from ledgerlink.mapping.stages import OWED_STATUSES


@dataclass(frozen=True)
class Customer:
    name: str | None
    email: str | None
    qbo_customer_id: str | None
    company_id: str | None
    contact_id: str | None

    def as_payload(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "email": self.email,
            "qbo_customer_id": self.qbo_customer_id,
            "company_id": self.company_id,
            "contact_id": self.contact_id,
        }


@dataclass(frozen=True)
class DealSynced:
    """One invoice deal as the deal sync wrote it."""

    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    connection: str | None
    deal_id: str
    invoice_id: str
    invoice_key: str
    realm_id: str
    doc_number: str
    status: str
    balance: Decimal | None
    currency: str | None
    due_date: date | None
    time_zone: str
    customer: Customer
    owner_id: str | None
    last_updated: str | None
    last_updated_ms: int | None
    sync_token: int

    @property
    def version(self) -> tuple[float, int]:
        """The QBO version the deal reflects, for ordering: a deleted invoice never comes back (QBO does
        not reuse ids), so its deletion is newer than any version of it."""
        if self.status == "deleted":
            return (math.inf, 0)
        return (float(self.last_updated_ms or 0), self.sync_token)

    @property
    def owes(self) -> bool:
        """True when the invoice is still owed and has a due date: it belongs on a calendar."""
        return (
            self.status in OWED_STATUSES
            and self.due_date is not None
            and self.balance is not None
            and self.balance > 0
        )

    def snapshot(self) -> str:
        """The invoice as this event describes it (JSON), kept with its calendar item for the Teams
        flow's sweep, which runs when no event does."""
        return json.dumps(
            {
                "invoice_key": self.invoice_key,
                "invoice_id": self.invoice_id,
                "realm_id": self.realm_id,
                "doc_number": self.doc_number,
                "deal_id": self.deal_id,
                "status": self.status,
                "balance": str(self.balance) if self.balance is not None else None,
                "currency": self.currency,
                "due_date": self.due_date.isoformat() if self.due_date else None,
                "time_zone": self.time_zone,
                "customer": self.customer.as_payload(),
                "owner_id": self.owner_id,
                "last_updated": self.last_updated,
                "sync_token": self.sync_token,
                "correlation_id": self.correlation_id,
            },
            sort_keys=True,
        )

    def log_fields(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "invoice_key": self.invoice_key,
            "deal_id": self.deal_id,
            "status": self.status,
            "message_id": self.message_id,
            "receive_count": self.receive_count,
        }


def parse_record(record: Mapping[str, Any]) -> DealSynced:
    """One SQS record (Lambda's SQS event shape) → :class:`DealSynced`, or :class:`MalformedRecord`."""
    received = read_envelope(record, DetailType.DEAL_SYNCED)
    message_id, envelope = received.message_id, received.envelope
    payload = envelope.payload
    customer = payload.get("customer") or {}

    def text(value: Any) -> str | None:
        return str(value) if value not in (None, "") else None

    due = payload.get("due_date")
    last_updated = text(payload.get("last_updated"))
    try:
        # The first instant of the due date in the company's zone, with its offset: its date is the due date.
        due_date = datetime.fromisoformat(str(due)).date() if due else None
    except ValueError:
        raise MalformedRecord(f"message {message_id}: $.detail.payload.due_date is not a date-time") from None
    try:
        last_updated_ms = (
            epoch_ms(datetime.fromisoformat(last_updated.replace("Z", "+00:00"))) if last_updated else None
        )
    except ValueError:
        raise MalformedRecord(
            f"message {message_id}: $.detail.payload.last_updated is not a date-time"
        ) from None
    balance = payload.get("balance")
    try:
        parsed_balance = Decimal(str(balance)) if balance is not None else None
    except InvalidOperation:
        raise MalformedRecord(f"message {message_id}: $.detail.payload.balance is not a decimal") from None
    return DealSynced(
        message_id=message_id,
        receive_count=received.receive_count,
        event_id=envelope.event_id,
        correlation_id=envelope.correlation_id,
        connection=text(payload.get("connection")),
        deal_id=str(payload["deal_id"]),
        invoice_id=str(payload["invoice_id"]),
        invoice_key=str(payload["invoice_key"]),
        realm_id=str(payload["realm_id"]),
        doc_number=str(payload.get("doc_number") or ""),
        status=str(payload["status"]),
        balance=parsed_balance,
        currency=text(payload.get("currency")),
        due_date=due_date,
        time_zone=str(payload["time_zone"]),
        customer=Customer(
            name=text(customer.get("name")),
            email=text(customer.get("email")),
            qbo_customer_id=text(customer.get("qbo_customer_id")),
            company_id=text(customer.get("company_id")),
            contact_id=text(customer.get("contact_id")),
        ),
        owner_id=text(payload.get("owner_id")),
        last_updated=last_updated,
        last_updated_ms=last_updated_ms,
        sync_token=int(payload.get("sync_token") or 0),
    )


def history_subject(event: DealSynced, outcome: Outcome) -> Subject | None:
    """What a record's history row names (ledgerlink.history): the invoice, its deal, its Outlook event."""
    if not event.connection:
        return None
    return Subject(
        connection=event.connection,
        source_entity="Invoice",
        source_id=event.invoice_id,
        realm_id=event.realm_id,
        source_number=event.doc_number or None,
        deal_id=event.deal_id or None,
        outlook_event_id=outcome.detail.get("calendar_event_id") or None,
    )
