"""The calendar flow: each invoice's due date on the right Outlook calendar, exactly once.

For each ``deal.synced`` event (the newest per invoice when a batch holds several), compare what the
deal now says with what LedgerLink last wrote (the invoice's Outlook item,
:mod:`ledgerlink.outlook_items`) and make the calendar match:

- an invoice that is owed and has a due date gets one all-day event (:mod:`.entry`) on its calendar
  (:mod:`.mailboxes`). Created with a ``transactionId`` derived from the connection, the invoice and the
  event's generation, so a retried create makes no second event; updated with ``If-Match`` on the etag
  LedgerLink last saw (412: someone changed the event; re-read it and apply the invoice's fields over
  it); moved to the new calendar when the deal owner changes;
- an invoice that is paid, voided, deleted or has lost its due date loses its event: cancelled when it
  has attendees (they are told), deleted otherwise;
- an event a person deleted in Outlook stays deleted until the invoice changes again; then a new event
  (the next generation, hence a new ``transactionId``) is created. Nothing is written when the content
  would not change, so nothing loops;
- an event older than what the calendar reflects (a ``deal.synced`` delivered late) changes nothing.

After each write, ``ledgerlink.calendar.synced`` is published, then the Outlook item is saved with an
optimistic lock; a worker that loses that race starts again from what the winner saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

from aws_lambda_powertools import Logger

from ledgerlink.calendar_sync.entry import DueDateEntry, due_date_entry, invoice_label
from ledgerlink.calendar_sync.inbox import DealSynced
from ledgerlink.calendar_sync.mailboxes import Mailbox, MailboxResolver
from ledgerlink.calendar_sync.ports import Calendar, CalendarConfig, EventPublisher, MetricsSink, NoMetrics
from ledgerlink.calendar_sync.published import calendar_synced_envelope
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus, count_failure
from ledgerlink.graph.client import GraphEvent
from ledgerlink.graph.errors import EventChanged, EventGone
from ledgerlink.outlook_items import CALENDAR, OutlookItem, OutlookItemStore

logger = Logger(child=True)

# Saves lost to another worker before the record is given back to SQS (each loss means that worker
# made progress, so more would be very unusual).
MAX_SAVE_RACES: Final = 3
# 412s in a row on one update: someone keeps editing the event; SQS retries later.
MAX_CONFLICTS: Final = 3


class CalendarWriteConflict(RuntimeError):
    """Another worker or a person kept changing this invoice's event while it was written: retry later."""

    retryable = True
    record_scoped = True
    reason = "calendar_write_conflict"


class _LostRace(Exception):
    """The invoice's Outlook item changed under this worker: start again from the stored state."""


def transaction_id(connection: str, invoice_key: str, generation: int) -> str:
    """Graph's idempotency key for creating the invoice's ``generation``-th event."""
    digest = hashlib.sha256(f"{connection}|{invoice_key}|calendar|{generation}".encode()).hexdigest()
    return f"ledgerlink-{digest[:40]}"


class CalendarSyncService:
    def __init__(
        self,
        *,
        calendar: Calendar,
        mailboxes: MailboxResolver,
        items: OutlookItemStore,
        publisher: EventPublisher,
        config: CalendarConfig,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.calendar = calendar
        self.mailboxes = mailboxes
        self.items = items
        self.publisher = publisher
        self.config = config
        self.metrics: MetricsSink = metrics if metrics is not None else NoMetrics()

    def sync(self, events: Sequence[DealSynced], remaining_ms: int | None = None) -> dict[str, Outcome]:
        """An :class:`Outcome` per SQS message id. A failure every record shares (Graph down, throttled,
        credentials refused) ends the batch: the records not yet tried fail with it, untried."""
        self.metrics.count("EventsReceived", len(events))
        outcomes: dict[str, Outcome] = {}
        newest: dict[str, DealSynced] = {}
        for event in events:
            held = newest.get(event.invoice_key)
            if held is None or event.version >= held.version:
                if held is not None:
                    outcomes[held.message_id] = _stale("a newer deal.synced of this invoice was in the batch")
                newest[event.invoice_key] = event
            else:
                outcomes[event.message_id] = _stale("a newer deal.synced of this invoice was in the batch")
        shared: Outcome | None = None
        for event in newest.values():
            if shared is not None:
                outcomes[event.message_id] = shared
                continue
            try:
                outcome = self._sync_one(event)
            except Exception as error:  # noqa: BLE001 - classified into the record's outcome
                outcome = Outcome.failure(error)
                logger.warning(
                    "calendar sync failed",
                    extra={**event.log_fields(), "reason": outcome.reason, "retryable": outcome.retryable},
                )
                count_failure(self.metrics, outcome)
                if outcome.scope is FailureScope.SHARED:
                    shared = outcome
            outcomes[event.message_id] = outcome
        return outcomes

    # ---- one invoice

    def _sync_one(self, event: DealSynced) -> Outcome:
        pk = f"{event.realm_id}#Invoice#{event.invoice_id}"
        for _ in range(MAX_SAVE_RACES):
            stored = self.items.get(pk, CALENDAR)
            if stored is not None and stored.version > event.version:
                return _stale("the calendar already reflects a newer version of this invoice")
            try:
                outcome = self._reconcile(event, stored or OutlookItem(pk, CALENDAR, self.config.connection))
            except _LostRace:
                continue
            if outcome is not None:
                logger.info(
                    "calendar synced",
                    extra={**event.log_fields(), "outcome": outcome.status, **dict(outcome.detail)},
                )
                return outcome
        raise CalendarWriteConflict(
            f"invoice {event.invoice_key}: its calendar entry kept changing under this worker; retried"
        )

    def _reconcile(self, event: DealSynced, item: OutlookItem) -> Outcome | None:
        """Make the calendar match ``event``; None when the save lost a race (start again)."""
        stamp = _stamp(event)
        if not event.owes:
            if not item.present:
                return self._save(item.but(**stamp), _unchanged(event, "no event to remove"))
            action = self._remove(event, item)
            mailbox = Mailbox(item.mailbox or "", item.mailbox_source or "")
            self._publish(event, action, mailbox, None)
            removed = item.but(**stamp, present=False, item_id=None, etag=None, fingerprint=None)
            return self._save(removed, _synced(action, mailbox, None))
        mailbox = self.mailboxes.mailbox_for(event.owner_id)
        entry = due_date_entry(event, self.config.settings, portal_id=self.config.portal_id)
        fingerprint = entry.fingerprint(mailbox.address)
        same_calendar = item.present and (item.mailbox or "").lower() == mailbox.address.lower()
        if same_calendar and item.fingerprint == fingerprint:
            return self._save(item.but(**stamp), _unchanged(event, "the calendar already shows this"))
        if same_calendar:
            updated = self._update(mailbox, item, entry)
            if updated is not None:
                self._publish(event, "updated", mailbox, updated.id)
                saved = item.but(**stamp, etag=updated.etag, item_id=updated.id, fingerprint=fingerprint)
                self.metrics.count("CalendarEventsUpdated")
                return self._save(saved, _synced("updated", mailbox, updated.id))
            # A person deleted the event; the invoice has changed since: it gets a new one.
            logger.info("calendar event was deleted in Outlook: creating it again", extra=event.log_fields())
        elif item.present:
            # The deal's owner changed: the event moves to the new owner's calendar.
            self._remove(event, item)
        generation = item.generation + 1
        key = transaction_id(self.config.connection, event.invoice_key, generation)
        created = self.calendar.create_event(mailbox.address, entry.graph_body(), transaction_id=key)
        self._publish(event, "created", mailbox, created.id)
        saved = item.but(
            **stamp,
            present=True,
            mailbox=mailbox.address,
            mailbox_source=mailbox.source,
            item_id=created.id,
            etag=created.etag,
            transaction_id=key,
            generation=generation,
            fingerprint=fingerprint,
        )
        self.metrics.count("CalendarEventsCreated")
        outcome = self._save(saved, _synced("created", mailbox, created.id))
        if outcome is None:
            self._drop_orphan(item.pk, mailbox, created)
        return outcome

    def _update(self, mailbox: Mailbox, item: OutlookItem, entry: DueDateEntry) -> GraphEvent | None:
        """PATCH the event with If-Match; the event, or None when it is gone (deleted in Outlook)."""
        assert item.item_id is not None
        etag = item.etag or "*"
        for _ in range(MAX_CONFLICTS):
            try:
                return self.calendar.update_event(
                    mailbox.address, item.item_id, entry.graph_body(), etag=etag
                )
            except EventGone:
                return None
            except EventChanged:
                current = self.calendar.get_event(mailbox.address, item.item_id)
                if current is None:
                    return None
                latest = self.items.get(item.pk, CALENDAR)
                if latest is None or latest.revision != item.revision:
                    # Another worker wrote this invoice meanwhile: what it saved decides.
                    raise _LostRace() from None
                # A person edited the event: the invoice's fields are applied over the new version.
                self.metrics.count("CalendarEditConflicts")
                etag = current.etag or "*"
        raise CalendarWriteConflict(
            f"the event of invoice item {item.pk} kept changing (412 x{MAX_CONFLICTS})"
        )

    def _remove(self, event: DealSynced, item: OutlookItem) -> str:
        """Take the event off its calendar: "cancelled" (it had attendees, who are told), "deleted", or
        "gone" (someone deleted it already)."""
        if not item.mailbox or not item.item_id:
            return "gone"
        current = self.calendar.get_event(item.mailbox, item.item_id)
        if current is None:
            return "gone"
        self.metrics.count("CalendarEventsRemoved")
        if current.attendees:
            comment = (
                f"Invoice {invoice_label(event)} is {event.status.replace('_', ' ')}: "
                "LedgerLink removed its due date from the calendar."
            )
            return "cancelled" if self.calendar.cancel_event(item.mailbox, item.item_id, comment) else "gone"
        return "deleted" if self.calendar.delete_event(item.mailbox, item.item_id) else "gone"

    def _drop_orphan(self, pk: str, mailbox: Mailbox, created: GraphEvent) -> None:
        """After a lost save: if the winner's event is another one, the one this worker made is a
        duplicate (Graph did not recognise the transactionId) and is deleted."""
        winner = self.items.get(pk, CALENDAR)
        if winner is not None and winner.item_id and winner.item_id != created.id:
            logger.warning("duplicate calendar event deleted", extra={"pk": pk, "mailbox": mailbox.address})
            self.calendar.delete_event(mailbox.address, created.id)

    def _publish(self, event: DealSynced, action: str, mailbox: Mailbox, event_id: str | None) -> None:
        self.publisher.publish(
            [
                calendar_synced_envelope(
                    event,
                    connection=self.config.connection,
                    config_version=self.config.config_version,
                    action="deleted" if action == "gone" else action,
                    mailbox=mailbox,
                    event_id=event_id,
                )
            ]
        )
        self.metrics.count("CalendarSyncedPublished")

    def _save(self, item: OutlookItem, outcome: Outcome) -> Outcome | None:
        return outcome if self.items.save(item) is not None else None


def _stamp(event: DealSynced) -> dict[str, Any]:
    """What the Outlook item records of the invoice, whatever was written."""
    return {
        "version_ms": event.last_updated_ms or 0,
        "sync_token": event.sync_token,
        "terminal": event.status == "deleted",
        "status": event.status,
        "balance": str(event.balance) if event.balance is not None else None,
        "currency": event.currency,
        "due_date": event.due_date.isoformat() if event.due_date else None,
        "deal_id": event.deal_id,
        "owed": event.owes,
        "snapshot": event.snapshot(),
    }


def _stale(reason: str) -> Outcome:
    return Outcome(OutcomeStatus.STALE, reason=reason)


def _unchanged(event: DealSynced, reason: str) -> Outcome:
    return Outcome(OutcomeStatus.UNCHANGED, reason=reason, detail={"status": event.status})


def _synced(action: str, mailbox: Mailbox, event_id: str | None) -> Outcome:
    detail = {"action": "deleted" if action == "gone" else action, "mailbox": mailbox.address}
    if event_id:
        detail["calendar_event_id"] = event_id
    return Outcome(OutcomeStatus.SYNCED, detail=detail)
