"""The HubSpot deal sync: one SQS batch of ``qbo.entity.changed`` events → HubSpot, exactly once.

:meth:`DealSyncService.sync` takes every event of a batch (≤ 100) and returns an :class:`Outcome` per
SQS message; the handler fails exactly the failed messages (partial batch response). The work is
batched across the whole SQS batch so the vendor call count does not grow with the events:

1. **claim** each event under its idempotency record (:mod:`ledgerlink.sync.ledger`): a duplicate
   delivery of a completed event is done; one in progress elsewhere is retried later. A redelivered
   message that already failed for good fails again at once, without a vendor call;
2. per realm, **read links** (one BatchGetItem per 100) and skip out-of-order events: an event older
   than the version HubSpot already shows (counted as stale);
3. **fetch** from QBO with ``Id IN (...)`` queries: payments (→ the invoices they pay are re-synced),
   invoices, estimates, then the customers that changed or that a deal names without a link yet,
   and the items whose SKUs the line items carry (cached). An entity whose version is not newer than
   the link's is not written again (stale, counted);
4. **map** with the pure mapping (a :class:`MappingError` — unsupported currency, totals that do not add
   up — fails that document's events only, for good);
5. **write** HubSpot in batches: companies/contacts (matched first, :mod:`ledgerlink.sync.customers`),
   deals (upsert by ``qbo_invoice_id`` / ``qbo_estimate_id``), line items (upsert by ``qbo_line_id``),
   archive the line items LedgerLink wrote earlier that the document no longer has, and v4
   associations only where new. Deletes move the deal to the voided stage and set
   ``qbo_status=deleted`` (nothing is deleted in the CRM). Then the deals' owners (one batch read).
   A record a user deleted in HubSpot heals in the same invocation: the links naming it are dropped, the
   customer is resolved again and the documents concerned are written once more
   (docs/deal-sync.md#records-deleted-in-hubspot);
6. **publish** ``ledgerlink.deal.synced`` for each invoice deal written, carrying the correlation id of
   the event that caused it;
7. **record** the links (conditional: versions only move forward) after the publication, so a failed
   publication is retried; then complete or release each idempotency claim and record failures.

Failures are per document where the vendor says which input failed (HubSpot 207 errors by
``objectWriteTraceId``), per realm where it does not (QBO down, the OAuth connection revoked). Each
failed outcome says whether retrying can help; :mod:`ledgerlink.sync.deadletter` decides from that
whether SQS retries the record or it goes to the dead-letter queue with its reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.failures import Classified, FailureScope, classify
from ledgerlink.hubspot.client import (
    AssociationsFailed,
    HubSpotClient,
    HubSpotError,
    ObjectsNotFound,
    Update,
    Upsert,
)
from ledgerlink.qbo.client import QboClient
from ledgerlink.sync import properties as prop
from ledgerlink.sync.customers import CustomerCounts, Resolved, resolve_customers
from ledgerlink.sync.dates import epoch_ms, parse_qbo_date, parse_qbo_datetime, start_of_day
from ledgerlink.sync.errors import MappingError, UnsupportedCurrency
from ledgerlink.sync.inbox import SYNCED_ENTITIES, ChangeEvent
from ledgerlink.sync.ledger import Claim, EventLedger
from ledgerlink.sync.links import EntityKey, Failure, Link, LinkStore
from ledgerlink.sync.mapping import (
    CompanyContext,
    DealMapping,
    invoice_ids_paid_by,
    map_estimate,
    map_invoice,
)
from ledgerlink.sync.matching import first_email
from ledgerlink.sync.stages import StageMap

logger = Logger(child=True)

DELETED_STATUS: Final = "deleted"
# Invoice status whose stage a deleted invoice's deal moves to; for an estimate, "rejected".
DELETED_INVOICE_STAGE_OF: Final = "voided"
DELETED_ESTIMATE_STAGE_OF: Final = "rejected"
OWNER_PROPERTY: Final = "hubspot_owner_id"
# HubSpot calculates a line item's amount (price x quantity - discount x quantity) and refuses a
# written value; the mapping chooses price, quantity and discount so its calculation gives QBO's amount.
LINE_ITEM_CALCULATED: Final = frozenset({"amount"})
# Time kept back from the invocation's budget when isolating a failing record: settling the batch
# (idempotency records, failures, dead letters, visibility changes) must still fit.
ISOLATION_RESERVE_SECONDS: Final = 15.0


class OutcomeStatus(StrEnum):
    SYNCED = "synced"  # HubSpot now shows this change
    STALE = "stale"  # HubSpot already shows this version or a newer one
    DUPLICATE = "duplicate"  # this event was processed before
    UNCHANGED = "unchanged"  # nothing in HubSpot depends on it (e.g. an unknown entity that is gone)
    IGNORED = "ignored"  # an entity this Lambda does not sync
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    reason: str | None = None
    retryable: bool = False
    error_type: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    scope: FailureScope | None = None
    """Whose failure it is (failed outcomes only; ledgerlink.failures)."""
    retry_after: float | None = None
    """At least this many seconds before a retry can help (Retry-After, breaker), when known."""

    @property
    def ok(self) -> bool:
        return self.status is not OutcomeStatus.FAILED

    @property
    def unexpected(self) -> bool:
        return self.scope is FailureScope.UNEXPECTED

    @classmethod
    def failure(cls, error: BaseException) -> Outcome:
        return cls.classified(classify(error))

    @classmethod
    def classified(cls, failure: Classified) -> Outcome:
        return cls(
            OutcomeStatus.FAILED,
            reason=failure.reason,
            retryable=failure.retryable,
            error_type=failure.error_type,
            scope=failure.scope,
            retry_after=failure.retry_after,
        )

    def result(self) -> dict[str, Any]:
        """What the idempotency record stores for a completed event."""
        return {"status": self.status.value, **dict(self.detail)}


class MetricsSink(Protocol):
    def count(self, name: str, value: int = 1) -> None: ...


class EventPublisher(Protocol):
    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


class NoMetrics:
    def count(self, name: str, value: int = 1) -> None:
        return None


@dataclass(frozen=True)
class SyncConfig:
    time_zone: ZoneInfo
    invoice_stages: StageMap
    estimate_stages: StageMap
    # How long a process trusts what it read about a realm (home currency, portal currencies, SKUs).
    cache_seconds: float = 900.0


@dataclass
class _Doc:
    """One invoice or estimate to bring to HubSpot in this batch."""

    entity: str
    entity_id: str
    key: EntityKey
    link: Link | None
    raw: Mapping[str, Any] | None = None  # None: QBO no longer has it
    events: list[ChangeEvent] = field(default_factory=list)  # events that name it directly
    causes: list[ChangeEvent] = field(default_factory=list)  # every event that made it part of the batch
    version: tuple[int, int] | None = None
    outcome: Outcome | None = None
    mapping: DealMapping | None = None
    deal_id: str | None = None
    line_item_ids: frozenset[str] = frozenset()
    company_id: str | None = None
    contact_id: str | None = None
    owner_id: str | None = None
    status: str | None = None
    gone: list[ObjectsNotFound] = field(default_factory=list)  # records HubSpot refused as deleted

    @property
    def deleted(self) -> bool:
        return self.raw is None

    def fail(self, error: BaseException) -> None:
        if isinstance(error, ObjectsNotFound):
            self.gone.append(error)
        if self.outcome is None or self.outcome.ok:
            self.outcome = Outcome.failure(error)

    def write_again(self) -> None:
        """Forget what the last write attempt produced (the mapping and version stay)."""
        self.outcome = None
        self.gone = []
        self.deal_id = self.company_id = self.contact_id = self.owner_id = self.status = None
        self.line_item_ids = frozenset()


@dataclass
class _Cached:
    value: Any
    until: float


class DealSyncService:
    def __init__(
        self,
        *,
        qbo: QboClient,
        hubspot: HubSpotClient,
        links: LinkStore,
        ledger: EventLedger,
        publisher: EventPublisher,
        config: SyncConfig,
        clock: Clock | None = None,
        metrics: MetricsSink | None = None,
        realm_check: Callable[[str], str | None] = lambda realm_id: None,
    ) -> None:
        self.qbo = qbo
        self.hubspot = hubspot
        self.links = links
        self.ledger = ledger
        self.publisher = publisher
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
        # Says why a realm cannot be synced (e.g. the OAuth secret is for another company), or None.
        self.realm_check = realm_check
        self._contexts: dict[str, _Cached] = {}
        self._skus: dict[str, dict[str, _Cached]] = {}

    # ---- the batch

    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]:
        """An outcome per SQS message id. Never raises for one event's problem."""
        self.metrics.count("EventsReceived", len(events))
        by_event: dict[str, list[ChangeEvent]] = {}
        for event in events:
            by_event.setdefault(event.event_id, []).append(event)
        outcomes: dict[str, Outcome] = {}  # by event id

        claims = self.ledger.claim_all(list(by_event), remaining_ms)
        claimed: list[ChangeEvent] = []
        for event_id, claim in claims.items():
            if claim is Claim.COMPLETED:
                outcomes[event_id] = Outcome(OutcomeStatus.DUPLICATE)
            elif claim is Claim.IN_PROGRESS:
                outcomes[event_id] = Outcome(
                    OutcomeStatus.FAILED,
                    reason="the event is being processed by another invocation; retry later",
                    retryable=True,
                    error_type="InProgress",
                )
            else:
                claimed.append(by_event[event_id][0])
        duplicates = sum(1 for outcome in outcomes.values() if outcome.status is OutcomeStatus.DUPLICATE)
        if duplicates:
            self.metrics.count("DuplicateEvents", duplicates)

        known: dict[str, Failure] = {}
        try:
            # One read per 100 events: a redelivery that failed for good fails again at once, and a
            # failure on record is cleared when its event succeeds (after a DLQ replay too).
            known = self.links.failures(event.event_id for event in claimed) if claimed else {}
            work = self._without_known_permanent_failures(claimed, known, outcomes)
            by_realm: dict[str, list[ChangeEvent]] = {}
            for event in work:
                by_realm.setdefault(event.realm_id, []).append(event)
            deadline = self._isolation_deadline(remaining_ms)
            for realm_id, realm_events in by_realm.items():
                outcomes.update(self._sync_realm_safely(realm_id, realm_events, deadline))
        except Exception as error:  # noqa: BLE001 - the links table failed: every claimed event is retried
            for event in claimed:
                outcomes.setdefault(event.event_id, Outcome.failure(error))
        self._settle(claimed, outcomes, known)
        return {event.message_id: outcomes[event.event_id] for event in events}

    def _isolation_deadline(self, remaining_ms: int | None) -> float | None:
        """When isolating a failing record must stop, leaving time to settle the batch."""
        if remaining_ms is None:
            return None
        return self.clock.now() + max(0.0, remaining_ms / 1000 - ISOLATION_RESERVE_SECONDS)

    def _without_known_permanent_failures(
        self, claimed: list[ChangeEvent], known: Mapping[str, Failure], outcomes: dict[str, Outcome]
    ) -> list[ChangeEvent]:
        """A redelivered message that failed for good fails again without calling any vendor (the same
        message only: a replayed one has a new message id and is tried for real)."""
        work = []
        for event in claimed:
            failure = known.get(event.event_id)
            if failure is not None and not failure.retryable and failure.message_id == event.message_id:
                outcomes[event.event_id] = Outcome(
                    OutcomeStatus.FAILED,
                    reason=failure.reason,
                    retryable=False,
                    error_type=failure.error_type,
                )
            else:
                work.append(event)
        return work

    def _sync_realm_safely(
        self, realm_id: str, events: list[ChangeEvent], deadline: float | None = None
    ) -> dict[str, Outcome]:
        """The realm's events synced together; a failure that is not the realm's is isolated.

        A failure every event shares (QBO or HubSpot down, a 429, an open breaker, a revoked connection:
        :attr:`~ledgerlink.failures.FailureScope.SHARED`) fails the realm's events together. Any other
        failure that escapes the batch (a refused input, an id QBO could never have, an exception nobody
        classified) belongs to some record: the events are split in halves and each half is synced
        again, until the failing record is alone with its own reason and every other record has
        succeeded. Re-syncing is safe (every write is an upsert or a conditional link save) and costs
        about ``2 * log2(n)`` extra passes per failing record. Past ``deadline`` (the invocation's time
        budget) the halves not yet tried are handed back to SQS as retryable.
        """
        try:
            refusal = self.realm_check(realm_id)
            if refusal is not None:
                outcome = Outcome(
                    OutcomeStatus.FAILED,
                    reason=refusal,
                    retryable=False,
                    error_type="RealmNotConnected",
                    scope=FailureScope.SHARED,
                )
                return {event.event_id: outcome for event in events}
            return _RealmSync(self, realm_id, events).run()
        except Exception as error:  # classified below: shared, one record's, or a bug
            outcome = Outcome.failure(error)
            fields = {
                "realm_id": realm_id,
                "events": len(events),
                "reason": outcome.reason,
                "retryable": outcome.retryable,
                "scope": outcome.scope,
                "error_type": outcome.error_type,
            }
            if outcome.scope is FailureScope.SHARED or len(events) == 1:
                if outcome.unexpected:
                    # A bug: the traceback goes to the log once, where the alarm sends people.
                    logger.exception("unexpected error syncing an event", extra=fields)
                    self.metrics.count("UnexpectedErrors", len(events))
                else:
                    logger.warning("realm sync failed", extra=fields)
                return {event.event_id: outcome for event in events}
        if deadline is not None and self.clock.now() >= deadline:
            late = Outcome(
                OutcomeStatus.FAILED,
                reason=f"not retried in isolation before the invocation's deadline (batch failed: {outcome.reason})",
                retryable=True,
                error_type="IsolationDeadline",
                scope=FailureScope.RECORD,
            )
            return {event.event_id: late for event in events}
        logger.warning("batch failed; isolating the failing record", extra=fields)
        self.metrics.count("BatchIsolations")
        middle = len(events) // 2
        outcomes = self._sync_realm_safely(realm_id, events[:middle], deadline)
        outcomes.update(self._sync_realm_safely(realm_id, events[middle:], deadline))
        return outcomes

    def _settle(
        self, claimed: list[ChangeEvent], outcomes: Mapping[str, Outcome], known: Mapping[str, Failure]
    ) -> None:
        """Complete or release each claim; record failures where an operator (and a redelivery) sees them."""
        completed = {e.event_id: outcomes[e.event_id].result() for e in claimed if outcomes[e.event_id].ok}
        failed = [e for e in claimed if not outcomes[e.event_id].ok]
        if completed:
            self.ledger.complete_all(completed)
        if failed:
            self.ledger.release_all([event.event_id for event in failed])
        now = datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="milliseconds")
        failures = []
        for event in failed:
            outcome = outcomes[event.event_id]
            failures.append(
                Failure(
                    event_id=event.event_id,
                    reason=outcome.reason or "",
                    error_type=outcome.error_type or "",
                    retryable=outcome.retryable,
                    message_id=event.message_id,
                    receive_count=event.receive_count,
                    realm_id=event.realm_id,
                    entity=event.entity,
                    entity_id=event.entity_id,
                    failed_at=now,
                )
            )
            logger.error(
                "event not synced",
                extra={**event.log_fields(), "reason": outcome.reason, "retryable": outcome.retryable},
            )
        if failures:
            self.metrics.count("EventsFailed", len(failures))
            self.metrics.count("EventsFailedPermanently", sum(1 for f in failures if not f.retryable))
            self.links.record_failures(failures)
        recovered = [e.event_id for e in claimed if outcomes[e.event_id].ok and e.event_id in known]
        if recovered:
            self.links.clear_failures(recovered)

    # ---- per-realm caches

    def context(self, realm_id: str) -> CompanyContext:
        now = self.clock.now()
        cached = self._contexts.get(realm_id)
        if cached is not None and cached.until > now:
            context: CompanyContext = cached.value
            return context
        context = CompanyContext(
            realm_id=realm_id,
            home_currency=self.qbo.home_currency(realm_id),
            time_zone=self.config.time_zone,
            portal_currencies=self.hubspot.enabled_currencies(),
        )
        self._contexts[realm_id] = _Cached(context, now + self.config.cache_seconds)
        return context

    def refresh_portal_currencies(self, realm_id: str) -> CompanyContext:
        """The realm's context with the portal's currencies read again (the rest as cached)."""
        context = self.context(realm_id)
        refreshed = dataclasses.replace(context, portal_currencies=self.hubspot.enabled_currencies())
        self._contexts[realm_id] = _Cached(refreshed, self.clock.now() + self.config.cache_seconds)
        return refreshed

    def item_skus(self, realm_id: str, item_ids: Iterable[str]) -> dict[str, str]:
        now = self.clock.now()
        cache = self._skus.setdefault(realm_id, {})
        wanted = set(item_ids)
        missing = [item_id for item_id in wanted if item_id not in cache or cache[item_id].until <= now]
        if missing:
            items = self.qbo.read_many(realm_id, "Item", missing)
            for item_id in missing:
                sku = str((items.get(item_id) or {}).get("Sku") or "").strip()
                cache[item_id] = _Cached(sku, now + self.config.cache_seconds)
        return {item_id: cache[item_id].value for item_id in wanted if cache[item_id].value}


class _RealmSync:
    """One realm's share of a batch (see the module docstring for the steps)."""

    def __init__(self, service: DealSyncService, realm_id: str, events: list[ChangeEvent]) -> None:
        self.s = service
        self.realm_id = realm_id
        self.events = events
        self.outcomes: dict[str, Outcome] = {}
        self.now = datetime.fromtimestamp(service.clock.now(), UTC)

    def key(self, entity: str, entity_id: str) -> EntityKey:
        return EntityKey(self.realm_id, entity, entity_id)

    def run(self) -> dict[str, Outcome]:
        s = self.s
        events: list[ChangeEvent] = []
        for event in self.events:
            if event.entity not in SYNCED_ENTITIES:
                self.outcomes[event.event_id] = Outcome(OutcomeStatus.IGNORED)
            else:
                events.append(event)
        links = s.links.get_many(self.key(e.entity, e.entity_id) for e in events)
        live: list[ChangeEvent] = []
        for event in events:
            link = links.get(self.key(event.entity, event.entity_id))
            if link is not None and event.operation != "Delete" and link.newer_than(event.last_updated_ms):
                self.outcomes[event.event_id] = Outcome(OutcomeStatus.STALE)
                s.metrics.count("StaleEventsSkipped")
            else:
                live.append(event)
        if not live:
            return self.outcomes
        context = s.context(self.realm_id)

        payments = self._fetch("Payment", {e.entity_id for e in live if e.entity == "Payment"})
        docs: dict[EntityKey, _Doc] = {}
        payment_invoices: dict[str, set[str]] = {}
        for event in live:
            if event.entity == "Payment":
                link = links.get(self.key("Payment", event.entity_id))
                payment = payments.get(event.entity_id)
                paid = set(invoice_ids_paid_by(payment)) if payment else set()
                payment_invoices[event.entity_id] = paid
                for invoice_id in paid | set(link.invoice_ids if link else ()):
                    self._doc(docs, "Invoice", invoice_id, links).causes.append(event)
            elif event.entity in ("Invoice", "Estimate"):
                doc = self._doc(docs, event.entity, event.entity_id, links)
                doc.events.append(event)
                doc.causes.append(event)
        missing_links = [doc.key for doc in docs.values() if doc.key not in links]
        links.update(s.links.get_many(missing_links))
        for doc in docs.values():
            doc.link = links.get(doc.key)

        invoices = self._fetch("Invoice", {d.entity_id for d in docs.values() if d.entity == "Invoice"})
        estimates = self._fetch("Estimate", {d.entity_id for d in docs.values() if d.entity == "Estimate"})
        to_write: list[_Doc] = []
        for doc in docs.values():
            doc.raw = (invoices if doc.entity == "Invoice" else estimates).get(doc.entity_id)
            if doc.raw is None:
                if doc.link is None or not doc.link.hubspot_id:
                    doc.outcome = Outcome(OutcomeStatus.UNCHANGED)  # never synced and gone: nothing to do
                elif doc.link.status == DELETED_STATUS:
                    doc.outcome = Outcome(OutcomeStatus.STALE)
                else:
                    to_write.append(doc)
                continue
            doc.version = _version(doc.raw, context)
            if doc.link is not None and doc.link.already_synced(*doc.version):
                doc.outcome = Outcome(OutcomeStatus.STALE)
            else:
                to_write.append(doc)
        stale_docs = sum(
            1
            for d in docs.values()
            if d.events and d.outcome is not None and d.outcome.status is OutcomeStatus.STALE
        )
        if stale_docs:
            s.metrics.count("StaleEventsSkipped", stale_docs)

        self._map(to_write, context)
        customer_results, customer_outcomes = self._customers(
            live, [d for d in to_write if d.outcome is None], links, context
        )
        self._write_deals([d for d in to_write if d.outcome is None], customer_results)
        self._write_again_where_gone(to_write, links, context, customer_results, customer_outcomes)
        self._publish([d for d in to_write if d.outcome is None and d.entity == "Invoice"], context)
        self._save_doc_links([d for d in to_write if d.outcome is None])
        self._save_payment_links(live, payments, payment_invoices, docs, context)

        for event in live:
            if event.event_id in self.outcomes:
                continue
            if event.entity == "Customer":
                self.outcomes[event.event_id] = customer_outcomes[event.entity_id]
            elif event.entity == "Payment":
                self.outcomes[event.event_id] = self._payment_outcome(event, payment_invoices, docs)
            else:
                doc = docs[self.key(event.entity, event.entity_id)]
                self.outcomes[event.event_id] = doc.outcome or Outcome(
                    OutcomeStatus.SYNCED, detail=_doc_detail(doc)
                )
        return self.outcomes

    # ---- reading

    def _doc(
        self, docs: dict[EntityKey, _Doc], entity: str, entity_id: str, links: Mapping[EntityKey, Link]
    ) -> _Doc:
        key = self.key(entity, entity_id)
        if key not in docs:
            docs[key] = _Doc(entity, entity_id, key, links.get(key))
        return docs[key]

    def _fetch(self, entity: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return self.s.qbo.read_many(self.realm_id, entity, ids)

    # ---- customers

    def _customers(
        self,
        live: list[ChangeEvent],
        docs: list[_Doc],
        links: dict[EntityKey, Link],
        context: CompanyContext,
        *,
        gone: Mapping[str, set[str]] | None = None,
    ) -> tuple[dict[str, Resolved], dict[str, Outcome]]:
        """Resolve the customers that changed and the unlinked customers of the deals to write.

        A customer whose link names a company or contact HubSpot no longer has (in ``gone``, by object
        type, when HubSpot refused a write naming it; else found by :meth:`_stale_customer_links`) has
        its link dropped and is resolved like a new customer.
        """
        s = self.s
        changed_ids = {e.entity_id for e in live if e.entity == "Customer"}
        doc_customers = {
            str((doc.raw.get("CustomerRef") or {}).get("value"))
            for doc in docs
            if doc.raw is not None and (doc.raw.get("CustomerRef") or {}).get("value") is not None
        }
        wanted = changed_ids | doc_customers
        new_keys = [self.key("Customer", cid) for cid in wanted if self.key("Customer", cid) not in links]
        links.update(s.links.get_many(new_keys))
        customer_links = {
            cid: links[self.key("Customer", cid)] for cid in wanted if self.key("Customer", cid) in links
        }
        stale = self._stale_customer_links(docs, customer_links, changed_ids, gone)
        for cid, stale_link in stale.items():
            s.links.forget(stale_link)
            del customer_links[cid]
            links.pop(stale_link.key, None)
        unlinked = {
            cid for cid in doc_customers if cid not in customer_links or not customer_links[cid].hubspot_id
        }
        fetched = self._fetch("Customer", changed_ids | unlinked)

        outcomes: dict[str, Outcome] = {}
        to_resolve: dict[str, dict[str, Any]] = {}
        versions: dict[str, tuple[int, int]] = {}
        for cid, raw in fetched.items():
            versions[cid] = _version(raw, context)
            link = customer_links.get(cid)
            if (
                cid in changed_ids
                and cid not in unlinked
                and link is not None
                and link.already_synced(*versions[cid])
            ):
                outcomes[cid] = Outcome(OutcomeStatus.STALE)
                s.metrics.count("StaleEventsSkipped")
                continue
            to_resolve[cid] = raw
        for cid in changed_ids - set(fetched):
            outcomes[cid] = Outcome(OutcomeStatus.UNCHANGED)  # gone from QBO: the CRM keeps its records

        results: dict[str, Resolved] = {}
        if to_resolve:
            results, counts = resolve_customers(
                s.hubspot, context, to_resolve, changed=changed_ids, links=customer_links
            )
            self._count_customers(counts)
        for cid, resolved in results.items():
            if resolved.error is not None:
                outcomes[cid] = Outcome.failure(resolved.error)
                continue
            if not resolved.company_id and not resolved.contact_id:
                # Ambiguous: nothing linked, so nothing recorded; the next change tries again.
                outcomes[cid] = Outcome(OutcomeStatus.SYNCED, detail={"ambiguous": "true"})
                continue
            link = Link(
                key=self.key("Customer", cid),
                hubspot_id=resolved.company_id,
                contact_id=resolved.contact_id,
                synced_ms=versions[cid][0],
                sync_token=versions[cid][1],
                status="linked",
            )
            # A customer written because a deal names it records the deal's event instead.
            event_id = next(
                (e.event_id for e in live if e.entity == "Customer" and e.entity_id == cid), "via-deal"
            )
            if s.links.save(link, event_id=event_id):
                links[link.key] = link
                outcomes[cid] = Outcome(
                    OutcomeStatus.SYNCED,
                    detail={
                        k: v
                        for k, v in (("company_id", resolved.company_id), ("contact_id", resolved.contact_id))
                        if v
                    },
                )
            else:
                outcomes[cid] = _lost_race()
        self._report_healed(stale, results)
        # Deals of customers whose link was known and unchanged use the link.
        for cid, link in customer_links.items():
            if cid not in results and link.hubspot_id:
                results[cid] = Resolved(
                    customer_key=context.key(cid), company_id=link.hubspot_id, contact_id=link.contact_id
                )
        return results, outcomes

    def _stale_customer_links(
        self,
        docs: list[_Doc],
        customer_links: Mapping[str, Link],
        changed_ids: set[str],
        gone: Mapping[str, set[str]] | None,
    ) -> dict[str, Link]:
        """The customer links that name a company or contact HubSpot no longer has (a user deleted it).

        Known from ``gone`` when HubSpot refused a write naming it. Otherwise checked only where no write
        would tell: a deal already associated with the customer's recorded company/contact gets no
        association call (they are made only where new), so those ids are batch-read, one call per
        object type and batch. Deals still to be associated, and changed customers (written again
        anyway), need no read: their writes name the records and HubSpot's refusal says which are gone.
        """
        missing: dict[str, set[str]] = {t: set(ids) for t, ids in (gone or {}).items()}
        if gone is None:
            to_check: dict[str, set[str]] = {"companies": set(), "contacts": set()}
            for doc in docs:
                cid = _customer_id(doc)
                link = customer_links.get(cid) if cid is not None else None
                deal = doc.link
                # Changed and company-less customers are resolved (searched, written) again anyway.
                if link is None or not link.hubspot_id or cid in changed_ids:
                    continue
                if deal is None or not deal.hubspot_id:
                    continue
                if link.hubspot_id == deal.company_id:
                    to_check["companies"].add(link.hubspot_id)
                if link.contact_id and link.contact_id == deal.contact_id:
                    to_check["contacts"].add(link.contact_id)
            for object_type, ids in to_check.items():
                if ids:
                    found = self.s.hubspot.batch_read(object_type, ids, ["hs_object_id"])
                    missing.setdefault(object_type, set()).update(ids - set(found))
        companies, contacts = missing.get("companies", set()), missing.get("contacts", set())
        return {
            cid: link
            for cid, link in customer_links.items()
            if (link.hubspot_id and link.hubspot_id in companies)
            or (link.contact_id and link.contact_id in contacts)
        }

    def _report_healed(self, stale: Mapping[str, Link], results: Mapping[str, Resolved]) -> None:
        for cid, old in stale.items():
            resolved = results.get(cid)
            fields = {
                "realm_id": self.realm_id,
                "entity": "Customer",
                "entity_id": cid,
                "old_company_id": old.hubspot_id,
                "old_contact_id": old.contact_id,
                "new_company_id": resolved.company_id if resolved is not None else None,
                "new_contact_id": resolved.contact_id if resolved is not None else None,
            }
            if resolved is None or resolved.error is not None:
                logger.warning("stale link dropped, customer not resolved again", extra=fields)
                continue
            logger.info("stale link healed", extra=fields)
            self.s.metrics.count("StaleLinksHealed")

    def _write_again_where_gone(
        self,
        docs: list[_Doc],
        links: dict[EntityKey, Link],
        context: CompanyContext,
        customers: dict[str, Resolved],
        customer_outcomes: dict[str, Outcome],
    ) -> None:
        """One more pass, in this invocation, for the documents HubSpot refused because a record they
        name was deleted there: the customer links naming it are dropped, those customers resolved again
        (matching may find another existing company, else they are created) and the documents written
        once more. Bounded: a document refused again keeps its failure, and SQS retries it."""
        again = [doc for doc in docs if doc.gone]
        if not again:
            return
        gone: dict[str, set[str]] = {}
        for doc in again:
            for error in doc.gone:
                gone.setdefault(error.object_type, set()).update(error.ids)
        logger.info(
            "records deleted in HubSpot, writing again",
            extra={
                "realm_id": self.realm_id,
                "documents": [f"{doc.entity} {doc.entity_id}" for doc in again],
                "gone": {object_type: sorted(ids) for object_type, ids in gone.items()},
            },
        )
        for doc in again:
            doc.write_again()
        results, outcomes = self._customers([], again, links, context, gone=gone)
        customers.update(results)
        customer_outcomes.update(outcomes)
        self._write_deals(again, customers)

    def _count_customers(self, counts: CustomerCounts) -> None:
        metrics = self.s.metrics
        for name, value in (
            ("CompaniesCreated", counts.companies_created),
            ("CompaniesLinked", counts.companies_linked),
            ("ContactsCreated", counts.contacts_created),
            ("ContactsLinked", counts.contacts_linked),
            ("AmbiguousMatches", counts.ambiguities),
        ):
            if value:
                metrics.count(name, value)

    # ---- mapping

    def _map(self, docs: list[_Doc], context: CompanyContext) -> None:
        item_ids = {item_id for doc in docs if doc.raw is not None for item_id in _item_ids(doc.raw)}
        skus = self.s.item_skus(self.realm_id, item_ids) if item_ids else {}
        currencies_refreshed = False

        def map_doc(doc: _Doc, raw: Mapping[str, Any], context: CompanyContext) -> DealMapping:
            if doc.entity == "Invoice":
                return map_invoice(
                    raw,
                    context,
                    self.s.config.invoice_stages,
                    now=self.now,
                    item_skus=skus,
                    void_operation_seen=any(e.operation == "Void" for e in doc.events),
                )
            return map_estimate(raw, context, self.s.config.estimate_stages, now=self.now, item_skus=skus)

        for doc in docs:
            if doc.raw is None:
                continue
            try:
                try:
                    doc.mapping = map_doc(doc, doc.raw, context)
                except UnsupportedCurrency:
                    if currencies_refreshed:
                        raise
                    # The portal's currencies are cached; someone may have just enabled this one (the
                    # fix for a dead-lettered event before its replay): ask HubSpot once more.
                    context = self.s.refresh_portal_currencies(self.realm_id)
                    currencies_refreshed = True
                    doc.mapping = map_doc(doc, doc.raw, context)
            except MappingError as error:
                logger.warning(
                    "document cannot be mapped",
                    extra={"entity": doc.entity, "entity_id": doc.entity_id, "reason": str(error)},
                )
                doc.fail(error)
                self.s.metrics.count("MappingErrors")

    # ---- HubSpot writes

    def _write_deals(self, docs: list[_Doc], customers: Mapping[str, Resolved]) -> None:
        if not docs:
            return
        hubspot = self.s.hubspot
        upserts = [d for d in docs if d.mapping is not None]
        deletes = [d for d in docs if d.deleted]
        outcome = (
            hubspot.batch_upsert(
                "deals",
                [
                    Upsert(d.mapping.deal.id_property, d.mapping.deal.id, d.mapping.deal.properties)
                    for d in upserts
                    if d.mapping
                ],
            )
            if upserts
            else None
        )
        for doc in upserts:
            assert doc.mapping is not None and outcome is not None
            written = outcome.written.get(doc.mapping.deal.id)
            if written is None:
                doc.fail(outcome.failed.get(doc.mapping.deal.id) or HubSpotError("deal not written"))
                continue
            doc.deal_id = written.id
            doc.status = doc.mapping.status.value
            if written.new:
                self.s.metrics.count("DealsCreated")
                if doc.link is not None and doc.link.hubspot_id and doc.link.hubspot_id != written.id:
                    # The deal written before is gone (a user deleted it in HubSpot): the upsert by the
                    # QBO key made a new one, which gets the line items and associations below.
                    logger.info(
                        "stale link healed",
                        extra={
                            "realm_id": self.realm_id,
                            "entity": doc.entity,
                            "entity_id": doc.entity_id,
                            "old_deal_id": doc.link.hubspot_id,
                            "new_deal_id": written.id,
                        },
                    )
                    self.s.metrics.count("StaleLinksHealed")
        if deletes:
            self._mark_deleted(deletes)

        written_docs = [d for d in upserts if d.outcome is None and d.mapping is not None]
        line_inputs = [
            Upsert(
                item.id_property,
                item.id,
                {k: v for k, v in item.properties.items() if k not in LINE_ITEM_CALCULATED},
            )
            for doc in written_docs
            if doc.mapping is not None
            for item in doc.mapping.line_items
        ]
        line_outcome = hubspot.batch_upsert("line_items", line_inputs) if line_inputs else None
        to_archive: set[str] = set()
        pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for doc in written_docs:
            assert doc.mapping is not None and doc.deal_id is not None
            ids: set[str] = set()
            for item in doc.mapping.line_items:
                record = line_outcome.written.get(item.id) if line_outcome else None
                if record is None:
                    error = line_outcome.failed.get(item.id) if line_outcome else None
                    doc.fail(error or HubSpotError(f"line item {item.id} not written"))
                    break
                ids.add(record.id)
            if doc.outcome is not None:
                continue
            doc.line_item_ids = frozenset(ids)
            previous = (
                doc.link.line_item_ids
                if doc.link is not None and doc.link.hubspot_id == doc.deal_id
                else frozenset()
            )
            to_archive |= (
                doc.link.line_item_ids if doc.link is not None else frozenset()
            ) - doc.line_item_ids
            pairs.setdefault(("deals", "line_items"), []).extend(
                (doc.deal_id, li) for li in doc.line_item_ids - previous
            )
            resolved = customers.get(doc.mapping.customer_key.split(":", 1)[1])
            if resolved is not None:
                doc.company_id, doc.contact_id = resolved.company_id, resolved.contact_id
            same_deal = doc.link is not None and doc.link.hubspot_id == doc.deal_id
            if doc.company_id and not (
                same_deal and doc.link is not None and doc.link.company_id == doc.company_id
            ):
                pairs.setdefault(("deals", "companies"), []).append((doc.deal_id, doc.company_id))
            if doc.contact_id and not (
                same_deal and doc.link is not None and doc.link.contact_id == doc.contact_id
            ):
                pairs.setdefault(("deals", "contacts"), []).append((doc.deal_id, doc.contact_id))
        if line_outcome is not None:
            self.s.metrics.count("LineItemsWritten", len(line_outcome.written))
        if to_archive:
            hubspot.batch_archive("line_items", to_archive)
            self.s.metrics.count("LineItemsArchived", len(to_archive))
        for (from_type, to_type), type_pairs in pairs.items():
            try:
                hubspot.associate_default(from_type, to_type, type_pairs)
            except AssociationsFailed as error:
                # Only the deals of the refused pairs fail (a deleted company fails its own deals).
                for doc in written_docs:
                    for (deal_id, _), reason in error.failed.items():
                        if deal_id == doc.deal_id:
                            doc.fail(reason)
            except HubSpotError as error:
                failed_deals = {deal for deal, _ in type_pairs}
                for doc in written_docs:
                    if doc.deal_id in failed_deals:
                        doc.fail(error)
        owners = hubspot.batch_read(
            "deals", [d.deal_id for d in docs if d.deal_id and d.outcome is None], [OWNER_PROPERTY]
        )
        for doc in docs:
            if doc.deal_id and doc.deal_id in owners:
                doc.owner_id = owners[doc.deal_id].prop(OWNER_PROPERTY) or None
        self.s.metrics.count("DealsWritten", sum(1 for d in docs if d.outcome is None))

    def _mark_deleted(self, docs: list[_Doc]) -> None:
        """QBO deleted the document: the deal moves to the voided (rejected) stage, marked deleted."""
        updates = []
        for doc in docs:
            assert doc.link is not None and doc.link.hubspot_id is not None
            if doc.entity == "Invoice":
                stage = self.s.config.invoice_stages.by_status[DELETED_INVOICE_STAGE_OF]
            else:
                stage = self.s.config.estimate_stages.by_status[DELETED_ESTIMATE_STAGE_OF]
            updates.append(
                Update(
                    doc.link.hubspot_id,
                    {prop.QBO_STATUS: DELETED_STATUS, "pipeline": stage.pipeline, "dealstage": stage.stage},
                )
            )
        outcome = self.s.hubspot.batch_update("deals", updates)
        for doc in docs:
            assert doc.link is not None and doc.link.hubspot_id is not None
            failure = outcome.failed.get(doc.link.hubspot_id)
            if failure is not None and not isinstance(failure, ObjectsNotFound):
                doc.fail(failure)
                continue
            doc.deal_id = doc.link.hubspot_id
            doc.status = DELETED_STATUS
            doc.line_item_ids = doc.link.line_item_ids  # kept: QBO's lines are gone, the CRM's history is not
            doc.company_id, doc.contact_id = doc.link.company_id, doc.link.contact_id
            if failure is not None:
                # A user deleted the deal in HubSpot too: nothing is left to mark; the link records it.
                logger.info(
                    "deal already deleted in HubSpot",
                    extra={"realm_id": self.realm_id, "entity": doc.entity, "entity_id": doc.entity_id},
                )
                continue
            self.s.metrics.count("DealsMarkedDeleted")

    # ---- publication and links

    def _publish(self, docs: list[_Doc], context: CompanyContext) -> None:
        if not docs:
            return
        envelopes = [deal_synced_envelope(doc, context) for doc in docs]
        try:
            self.s.publisher.publish(envelopes)
        except Exception as error:  # noqa: BLE001 - not published: the deals are re-synced and re-published
            for doc in docs:
                doc.fail(error)
            return
        self.s.metrics.count("DealSyncedPublished", len(envelopes))

    def _save_doc_links(self, docs: list[_Doc]) -> None:
        pending: list[tuple[Link, str]] = []
        for doc in docs:
            assert doc.deal_id is not None
            if doc.version is None:  # deleted: its last known version plus the delete event's time
                latest = max((e.last_updated_ms for e in doc.causes), default=0)
                doc.version = (max(latest, doc.link.synced_ms or 0) if doc.link else latest, 0)
            link = Link(
                key=doc.key,
                hubspot_id=doc.deal_id,
                synced_ms=doc.version[0],
                sync_token=doc.version[1],
                company_id=doc.company_id,
                contact_id=doc.contact_id,
                line_item_ids=doc.line_item_ids,
                status=doc.status,
            )
            pending.append((link, doc.causes[-1].event_id if doc.causes else "unknown"))
        for doc, saved in zip(docs, self.s.links.save_all(pending), strict=True):
            if not saved:
                doc.outcome = _lost_race()

    def _save_payment_links(
        self,
        live: list[ChangeEvent],
        payments: Mapping[str, Mapping[str, Any]],
        payment_invoices: Mapping[str, set[str]],
        docs: Mapping[EntityKey, _Doc],
        context: CompanyContext,
    ) -> None:
        for event in live:
            if event.entity != "Payment":
                continue
            outcome = self._payment_outcome(event, payment_invoices, docs)
            payment = payments.get(event.entity_id)
            if not outcome.ok or payment is None:
                continue
            ms, token = _version(payment, context)
            self.s.links.save(
                Link(
                    key=self.key("Payment", event.entity_id),
                    synced_ms=ms,
                    sync_token=token,
                    invoice_ids=frozenset(payment_invoices.get(event.entity_id, ())),
                    status="applied",
                ),
                event_id=event.event_id,
            )

    def _payment_outcome(
        self, event: ChangeEvent, payment_invoices: Mapping[str, set[str]], docs: Mapping[EntityKey, _Doc]
    ) -> Outcome:
        related = [doc for doc in docs.values() if event in doc.causes]
        failed = [doc.outcome for doc in related if doc.outcome is not None and not doc.outcome.ok]
        if failed:
            return failed[0]
        return Outcome(
            OutcomeStatus.SYNCED,
            detail={"invoices": ",".join(sorted(payment_invoices.get(event.entity_id, set())))},
        )


def _customer_id(doc: _Doc) -> str | None:
    """The QBO Id of the customer a document names, if it has one."""
    value = ((doc.raw or {}).get("CustomerRef") or {}).get("value")
    return str(value) if value is not None else None


def _lost_race() -> Outcome:
    return Outcome(
        OutcomeStatus.FAILED,
        reason="a newer version of this entity was synced concurrently; the next attempt re-writes the newest",
        retryable=True,
        error_type="ConcurrentSync",
    )


def _doc_detail(doc: _Doc) -> dict[str, str]:
    detail = {"deal_id": doc.deal_id or "", "status": doc.status or ""}
    return {k: v for k, v in detail.items() if v}


def _version(entity: Mapping[str, Any], context: CompanyContext) -> tuple[int, int]:
    """(LastUpdatedTime in epoch ms, SyncToken): QBO's timestamp has whole seconds, the token breaks ties."""
    label = f"{entity.get('Id')}"
    raw_time = (entity.get("MetaData") or {}).get("LastUpdatedTime")
    ms = (
        epoch_ms(
            parse_qbo_datetime(raw_time, context.time_zone, entity=label, field="MetaData.LastUpdatedTime")
        )
        if raw_time
        else 0
    )
    try:
        token = int(str(entity.get("SyncToken", "0")))
    except ValueError:
        token = 0
    return ms, token


def _item_ids(document: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for line in document.get("Line") or ():
        lines = [line, *((line.get("GroupLineDetail") or {}).get("Line") or ())]
        for candidate in lines:
            item = (candidate.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
            if item.get("value") is not None:
                found.add(str(item["value"]))
    return found


def deal_synced_envelope(doc: _Doc, context: CompanyContext) -> Envelope:
    """The ``ledgerlink.deal.synced`` event of one written invoice deal (schema in schemas/events/)."""
    assert doc.deal_id is not None
    raw = doc.raw or {}
    properties = doc.mapping.deal.properties if doc.mapping is not None else {}
    due = raw.get("DueDate")
    due_date = (
        start_of_day(
            parse_qbo_date(due, entity=f"Invoice {doc.entity_id}", field="DueDate"), context.time_zone
        ).isoformat()
        if due
        else None
    )
    last_updated = (raw.get("MetaData") or {}).get("LastUpdatedTime")
    customer_ref = raw.get("CustomerRef") or {}
    email = first_email((raw.get("BillEmail") or {}).get("Address"))
    version = doc.version or (0, 0)
    identity = f"{doc.deal_id}|{doc.key.realm_id}:{doc.entity_id}|{version[0]}|{version[1]}|{doc.status}"
    cause = max(doc.causes, key=lambda event: event.last_updated_ms) if doc.causes else None
    occurred = (
        datetime.fromtimestamp(version[0] / 1000, UTC) if version[0] else datetime.now(UTC)
    ).isoformat(timespec="milliseconds")
    payload = {
        "deal_id": doc.deal_id,
        "invoice_id": doc.entity_id,
        "invoice_key": f"{doc.key.realm_id}:{doc.entity_id}",
        "realm_id": doc.key.realm_id,
        "doc_number": str(raw.get("DocNumber") or "").strip(),
        "status": doc.status,
        "amount": properties.get("amount") if doc.mapping else None,
        "balance": properties.get(prop.QBO_BALANCE) if doc.mapping else None,
        "currency": doc.mapping.currency if doc.mapping else None,
        "due_date": due_date,
        "time_zone": context.time_zone.key,
        "customer": {
            "qbo_customer_id": f"{doc.key.realm_id}:{customer_ref['value']}"
            if customer_ref.get("value")
            else None,
            "company_id": doc.company_id,
            "contact_id": doc.contact_id,
            "email": email,
            "name": (str(customer_ref.get("name")).strip() or None) if customer_ref.get("name") else None,
        },
        "owner_id": doc.owner_id,
        "pipeline": properties.get("pipeline") if doc.mapping else None,
        "deal_stage": properties.get("dealstage") if doc.mapping else None,
        "last_updated": str(last_updated) if last_updated else None,
    }
    return Envelope(
        source=EventSource.HUBSPOT_DEAL_SYNC,
        detail_type=DetailType.DEAL_SYNCED,
        payload=payload,
        correlation_id=cause.correlation_id if cause is not None else doc.key.pk,
        event_id=hashlib.sha256(identity.encode("utf-8")).hexdigest(),
        occurred_at=occurred,
    )
