"""The follow-up flow: a Teams meeting about an unpaid invoice when one of its connection's rules comes
due, once per invoice and rule (docs/followups.md).

For each invoice a trigger names (a calendar.synced event: every rule; a followup.due event from the
sweep: its rule), compare what the invoice says now with the rule's follow-up item
(:mod:`ledgerlink.outlook_items`, kind ``followup#<rule>``) and act:

- owed, the rule in force, no meeting yet → find the first free slot (:mod:`.slots`, the organizer's
  ``getSchedule``), check the organizer's calendar offers Teams, create the meeting (``transactionId``
  from connection, invoice, rule and generation), and check Graph made it a Teams meeting (a join URL);
- owed, a meeting ahead → a changed balance updates its subject and body (``If-Match``; 412: re-read and
  apply again);
- paid, voided or deleted, a meeting ahead → the organizer cancels it with a comment (attendees are
  told); re-opened later with the rule in force → a new meeting (the next generation);
- a meeting already held is left alone; an older trigger than the item reflects changes nothing.

The item is saved with an optimistic lock, so a sweep and an event for the same invoice never make two
meetings: the loser starts again from what the winner saved, and the same ``transactionId`` means
Graph recognises a repeated create.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.configfile import FollowUpSettings
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import Counter as MetricsSink
from ledgerlink.consumer.outcome import NoMetrics, Outcome, OutcomeStatus, count_failure
from ledgerlink.followups.errors import (
    FollowUpWriteConflict,
    NoOrganizer,
    TeamsMeetingNotOnline,
    TeamsNotAllowed,
)
from ledgerlink.followups.inbox import (
    CalendarSynced,
    FollowUpDue,
    Invoice,
    log_fields,
)
from ledgerlink.followups.meeting import Attendee, create_body, follow_up_meeting
from ledgerlink.followups.rules import FollowUpRule, rules_of
from ledgerlink.followups.slots import Busy, first_free_slot, search_window
from ledgerlink.graph.client import GraphCalendar, GraphEvent, Schedule
from ledgerlink.graph.errors import EventChanged, EventGone
from ledgerlink.outlook_items import CALENDAR, OutlookItem, OutlookItemStore

logger = Logger(child=True)

TEAMS: Final = "teamsForBusiness"
MAX_SAVE_RACES: Final = 3
MAX_CONFLICTS: Final = 3
# How long a mailbox's allowed online-meeting providers are trusted (they change with licences, rarely).
CALENDAR_CACHE_SECONDS: Final = 3600.0


class Meetings(Protocol):
    """The Graph calls the flow makes (``ledgerlink.graph.client.GraphClient``)."""

    def calendar(self, mailbox: str) -> GraphCalendar: ...

    def get_schedule(
        self, mailbox: str, start: datetime, end: datetime, *, interval_minutes: int = 30
    ) -> Schedule: ...

    def create_event(self, mailbox: str, body: Any, *, transaction_id: str) -> GraphEvent: ...

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent | None: ...

    def update_event(self, mailbox: str, event_id: str, changes: Any, *, etag: str) -> GraphEvent: ...

    def cancel_event(self, mailbox: str, event_id: str, comment: str) -> bool: ...


class Directory(Protocol):
    """HubSpot: a deal owner's and a contact's e-mail (None when there is none)."""

    def owner_email(self, owner_id: str) -> str | None: ...

    def contact_email(self, contact_id: str) -> str | None: ...


@dataclass(frozen=True)
class FollowUpConfig:
    connection: str
    config_version: str
    settings: FollowUpSettings
    outlook_time_zone: str | None = None


class _LostRace(Exception):
    pass


def transaction_id(connection: str, invoice_key: str, rule: str, generation: int) -> str:
    digest = hashlib.sha256(f"{connection}|{invoice_key}|followup|{rule}|{generation}".encode()).hexdigest()
    return f"ledgerlink-{digest[:40]}"


class FollowUpService:
    """One connection's follow-ups."""

    def __init__(
        self,
        *,
        meetings: Meetings,
        directory: Directory,
        items: OutlookItemStore,
        config: FollowUpConfig,
        clock: Clock | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.meetings = meetings
        self.directory = directory
        self.items = items
        self.config = config
        self.rules = rules_of(config.settings)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
        self._calendars: dict[str, tuple[GraphCalendar, float]] = {}
        self._lock = threading.Lock()

    # ---- a batch

    def sync(self, triggers: Sequence[CalendarSynced | FollowUpDue]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        shared: Outcome | None = None
        for trigger in triggers:
            if shared is not None:
                outcomes[trigger.message_id] = shared
                continue
            try:
                outcome = self._trigger(trigger)
            except Exception as error:  # noqa: BLE001 - classified into the record's outcome
                outcome = Outcome.failure(error)
                logger.warning(
                    "follow-up failed",
                    extra={**log_fields(trigger), "reason": outcome.reason, "retryable": outcome.retryable},
                )
                count_failure(self.metrics, outcome)
                if outcome.scope is FailureScope.SHARED:
                    shared = outcome
            outcomes[trigger.message_id] = outcome
        return outcomes

    def _trigger(self, trigger: CalendarSynced | FollowUpDue) -> Outcome:
        if isinstance(trigger, CalendarSynced):
            results = [self._follow(trigger.invoice, rule) for rule in self.rules]
            return _combined(results)
        invoice = self._stored_invoice(trigger.invoice_key)
        if invoice is None:
            return Outcome(
                OutcomeStatus.UNCHANGED, reason="the invoice's calendar item is gone: nothing to follow up"
            )
        rule = FollowUpRule.parse(trigger.rule)
        if rule not in self.rules:
            return Outcome(
                OutcomeStatus.IGNORED, reason=f"rule {rule.id} is no longer in the configuration file"
            )
        return self._follow(invoice, rule)

    def _stored_invoice(self, invoice_key: str) -> Invoice | None:
        realm, _, invoice_id = invoice_key.partition(":")
        item = self.items.get(f"{realm}#Invoice#{invoice_id}", CALENDAR)
        if item is None or not item.snapshot:
            return None
        return Invoice.from_payload(
            json.loads(item.snapshot),
            connection=self.config.connection,
            organizer=item.mailbox,
            organizer_source=item.mailbox_source,
        )

    # ---- one invoice and rule

    def _follow(self, invoice: Invoice, rule: FollowUpRule) -> Outcome:
        kind = f"followup#{rule.id}"
        for _ in range(MAX_SAVE_RACES):
            item = self.items.get(invoice.pk, kind)
            if item is not None and item.version > invoice.version:
                return Outcome(OutcomeStatus.STALE, reason="the follow-up already reflects a newer version")
            try:
                outcome = self._reconcile(
                    invoice, rule, item or OutlookItem(invoice.pk, kind, self.config.connection)
                )
            except _LostRace:
                continue
            if outcome is not None:
                logger.info(
                    "follow-up synced",
                    extra={
                        "invoice_key": invoice.invoice_key,
                        "rule": rule.id,
                        "outcome": outcome.status,
                        **dict(outcome.detail),
                    },
                )
                return outcome
        raise FollowUpWriteConflict(
            f"invoice {invoice.invoice_key}: its {rule.id} follow-up kept changing; retried"
        )

    def _reconcile(self, invoice: Invoice, rule: FollowUpRule, item: OutlookItem) -> Outcome | None:
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        zone = ZoneInfo(invoice.time_zone)
        today = now.astimezone(zone).date()
        meta: dict[str, Any] = json.loads(item.snapshot) if item.snapshot else {}
        stamp = _stamp(invoice)
        starts_at = datetime.fromisoformat(meta["starts_at"]) if meta.get("starts_at") else None
        if item.present and starts_at is not None and starts_at <= now:
            return Outcome(OutcomeStatus.UNCHANGED, reason="the meeting has been held: left alone")
        if not invoice.owes:
            if not item.present:
                return self._save(item.but(**stamp), _unchanged("no meeting to cancel"))
            assert item.mailbox and item.item_id
            comment = (
                f"Invoice {invoice.label} is {invoice.status.replace('_', ' ')}: this payment follow-up is no "
                "longer needed."
            )
            self.meetings.cancel_event(item.mailbox, item.item_id, comment)
            self.metrics.count("FollowUpsCancelled")
            cancelled = item.but(**stamp, present=False, snapshot=json.dumps({**meta, "state": "cancelled"}))
            return self._save(cancelled, _synced("cancelled", item.mailbox))
        assert invoice.due_date is not None
        if item.present:
            return self._update(invoice, rule, item, meta, today, stamp)
        if item.generation and meta.get("state") != "cancelled":
            # Once per invoice and rule: this one was held, or deleted by a person in Outlook.
            return self._save(item.but(**stamp), _unchanged(f"the {rule.id} follow-up was made already"))
        if not rule.in_force(invoice.due_date, today):
            return self._save(item.but(**stamp), _unchanged(f"rule {rule.id} is not in force today"))
        return self._create(invoice, rule, item, now, zone, today, stamp)

    def _create(
        self,
        invoice: Invoice,
        rule: FollowUpRule,
        item: OutlookItem,
        now: datetime,
        zone: ZoneInfo,
        today: Any,
        stamp: dict[str, Any],
    ) -> Outcome | None:
        organizer = invoice.organizer
        if not organizer:
            raise NoOrganizer(
                f"invoice {invoice.invoice_key} has no calendar mailbox on record (deal owner or "
                "accounts-receivable): its due date must be on a calendar first"
            )
        self._require_teams(organizer)
        attendees = self._attendees(invoice, organizer)
        start, end = search_window(now, self.config.settings)
        schedule = self.meetings.get_schedule(organizer, start, end)
        schedule.raise_for_error()
        busy = [Busy(b.start, b.end) for b in schedule.busy]
        slot = first_free_slot(now, zone, self.config.settings, busy, organizer=organizer)
        meeting = follow_up_meeting(invoice, rule, today, attendees)
        body = create_body(
            meeting, slot, invoice.time_zone, attendees, zone_override=self.config.outlook_time_zone
        )
        generation = item.generation + 1
        key = transaction_id(self.config.connection, invoice.invoice_key, rule.id, generation)
        created = self.meetings.create_event(organizer, body, transaction_id=key)
        if not created.join_url:
            self.meetings.cancel_event(
                organizer,
                created.id,
                "This meeting could not be set up as a Teams meeting; LedgerLink withdrew it.",
            )
            raise TeamsMeetingNotOnline(
                f"Graph created the follow-up for invoice {invoice.invoice_key} in {organizer}'s calendar "
                f"without a Teams join URL (isOnlineMeeting {created.is_online_meeting}, provider "
                f"{created.online_meeting_provider}); it was cancelled. Enable Teams for that mailbox, then replay"
            )
        self.metrics.count("FollowUpsCreated")
        meta = {
            "state": "scheduled",
            "starts_at": slot.start.isoformat(),
            "ends_at": slot.end.isoformat(),
            "join_url": created.join_url,
            "attendees": [{"address": a.address, "name": a.name, "role": a.role} for a in attendees],
            "rule": rule.id,
        }
        saved = item.but(
            **stamp,
            present=True,
            mailbox=organizer,
            mailbox_source=invoice.organizer_source,
            item_id=created.id,
            etag=created.etag,
            transaction_id=key,
            generation=generation,
            fingerprint=_facts(invoice),
            snapshot=json.dumps(meta, sort_keys=True),
        )
        return self._save(saved, _synced("created", organizer, created.id, starts_at=slot.start.isoformat()))

    def _update(
        self,
        invoice: Invoice,
        rule: FollowUpRule,
        item: OutlookItem,
        meta: dict[str, Any],
        today: Any,
        stamp: dict[str, Any],
    ) -> Outcome | None:
        assert item.mailbox and item.item_id
        attendees = [
            Attendee(a["address"], a.get("name"), a.get("role") or "invited")
            for a in meta.get("attendees") or ()
        ]
        meeting = follow_up_meeting(invoice, rule, today, attendees)
        # The body lists who was invited with their roles; a balance change rewrites only what it says
        # of the invoice, so the fingerprint is of the invoice's facts, not of today's date.
        facts = _facts(invoice)
        if item.fingerprint == facts:
            return self._save(item.but(**stamp), _unchanged("the meeting already says this"))
        etag = item.etag or "*"
        for _ in range(MAX_CONFLICTS):
            try:
                updated = self.meetings.update_event(item.mailbox, item.item_id, meeting.content(), etag=etag)
            except EventGone:
                gone = item.but(
                    **stamp, present=False, snapshot=json.dumps({**meta, "state": "deleted_in_outlook"})
                )
                return self._save(gone, _unchanged("the meeting was deleted in Outlook: left deleted"))
            except EventChanged:
                current = self.meetings.get_event(item.mailbox, item.item_id)
                latest = self.items.get(item.pk, item.kind)
                if current is None:
                    continue
                if latest is None or latest.revision != item.revision:
                    raise _LostRace() from None
                etag = current.etag or "*"
                continue
            self.metrics.count("FollowUpsUpdated")
            saved = item.but(**stamp, etag=updated.etag, fingerprint=facts)
            return self._save(saved, _synced("updated", item.mailbox, item.item_id))
        raise FollowUpWriteConflict(f"the {rule.id} follow-up of {invoice.invoice_key} kept changing (412)")

    # ---- helpers

    def _require_teams(self, mailbox: str) -> None:
        now = self.clock.now()
        with self._lock:
            cached = self._calendars.get(mailbox.lower())
        if cached is None or cached[1] <= now:
            calendar = self.meetings.calendar(mailbox)
            with self._lock:
                self._calendars[mailbox.lower()] = (calendar, now + CALENDAR_CACHE_SECONDS)
        else:
            calendar = cached[0]
        if TEAMS not in calendar.allowed_online_meeting_providers:
            raise TeamsNotAllowed(
                f"the calendar of {mailbox} offers no Teams meetings (allowedOnlineMeetingProviders: "
                f"{', '.join(calendar.allowed_online_meeting_providers) or 'none'}): Graph would create an "
                "ordinary event without a join link; give the mailbox Teams, or another organizer, then replay"
            )

    def _attendees(self, invoice: Invoice, organizer: str) -> list[Attendee]:
        """The billing contact (QBO BillEmail, else the deal's HubSpot contact), the deal owner (when not the
        organizer) and the configured finance attendees; no address twice, never the organizer."""
        found: list[Attendee] = []
        billing = _address(invoice.customer.get("email"))
        contact_id = invoice.customer.get("contact_id")
        if billing is None and contact_id:
            billing = _address(self.directory.contact_email(str(contact_id)))
        if billing is not None:
            found.append(Attendee(billing, invoice.customer.get("name"), "billing contact"))
        if invoice.organizer_source != "deal_owner" and invoice.owner_id:
            owner = _address(self.directory.owner_email(invoice.owner_id))
            if owner is not None:
                found.append(Attendee(owner, None, "deal owner"))
        for finance in self.config.settings.finance_attendees:
            address = _address(finance)
            if address is not None:
                found.append(Attendee(address, None, "finance"))
        unique: list[Attendee] = []
        seen = {organizer.lower()}
        for attendee in found:
            if attendee.address.lower() not in seen:
                seen.add(attendee.address.lower())
                unique.append(attendee)
        return unique

    def _save(self, item: OutlookItem, outcome: Outcome) -> Outcome | None:
        return outcome if self.items.save(item) is not None else None


def _address(value: Any) -> str | None:
    text = str(value or "").strip()
    return text if "@" in text and " " not in text else None


def _facts(invoice: Invoice) -> str:
    content = json.dumps(
        {
            "balance": str(invoice.balance),
            "currency": invoice.currency,
            "name": invoice.customer.get("name"),
            "due": invoice.due_date.isoformat() if invoice.due_date else None,
        },
        sort_keys=True,
    )
    return hashlib.sha256(content.encode()).hexdigest()


def _stamp(invoice: Invoice) -> dict[str, Any]:
    return {
        "version_ms": invoice.last_updated_ms,
        "sync_token": invoice.sync_token,
        "terminal": invoice.status == "deleted",
        "status": invoice.status,
        "balance": str(invoice.balance) if invoice.balance is not None else None,
        "currency": invoice.currency,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "deal_id": invoice.deal_id,
    }


def _unchanged(reason: str) -> Outcome:
    return Outcome(OutcomeStatus.UNCHANGED, reason=reason)


def _synced(action: str, organizer: str, event_id: str | None = None, **more: str) -> Outcome:
    detail = {"action": action, "organizer": organizer, **more}
    if event_id:
        detail["meeting_id"] = event_id
    return Outcome(OutcomeStatus.SYNCED, detail=detail)


def _combined(results: list[Outcome]) -> Outcome:
    failed = [r for r in results if not r.ok]
    if failed:
        return failed[0]
    synced = [r for r in results if r.status is OutcomeStatus.SYNCED]
    if synced:
        return synced[0]
    return (
        results[0]
        if results
        else Outcome(OutcomeStatus.IGNORED, reason="the connection has no follow-up rules")
    )
