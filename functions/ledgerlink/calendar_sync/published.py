"""The ``ledgerlink.calendar.synced`` event: one per write to an Outlook calendar, published before the
write is recorded (so a failed publication is retried with the write, which is idempotent), carrying
the correlation id of the webhook that started the chain. Schema:
``schemas/events/ledgerlink.calendar.synced.v1.json``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from ledgerlink.calendar_sync.inbox import DealSynced
from ledgerlink.calendar_sync.mailboxes import Mailbox
from ledgerlink.events import DetailType, Envelope, EventSource


def calendar_synced_envelope(
    event: DealSynced,
    *,
    connection: str,
    config_version: str,
    action: str,
    mailbox: Mailbox,
    event_id: str | None,
) -> Envelope:
    identity = f"{connection}|{event.invoice_key}|{event.version}|{action}|{mailbox.address.lower()}"
    occurred = (
        datetime.fromtimestamp(event.last_updated_ms / 1000, UTC)
        if event.last_updated_ms
        else datetime.now(UTC)
    ).isoformat(timespec="milliseconds")
    return Envelope(
        source=EventSource.OUTLOOK_CALENDAR_SYNC,
        detail_type=DetailType.CALENDAR_SYNCED,
        payload={
            "connection": connection,
            "config_version": config_version,
            "action": action,
            "invoice_key": event.invoice_key,
            "invoice_id": event.invoice_id,
            "realm_id": event.realm_id,
            "doc_number": event.doc_number,
            "deal_id": event.deal_id,
            "status": event.status,
            "balance": str(event.balance) if event.balance is not None else None,
            "currency": event.currency,
            "due_date": event.due_date.isoformat() if event.due_date else None,
            "time_zone": event.time_zone,
            "mailbox": mailbox.address,
            "mailbox_source": mailbox.source,
            "event_id": event_id,
            "customer": event.customer.as_payload(),
            "owner_id": event.owner_id,
            "last_updated": event.last_updated,
            "sync_token": event.sync_token,
        },
        correlation_id=event.correlation_id,
        event_id=hashlib.sha256(identity.encode("utf-8")).hexdigest(),
        occurred_at=occurred,
    )
