"""The HubSpot deal sync: one SQS batch of ``qbo.entity.changed`` events → HubSpot, exactly once.

:meth:`DealSyncService.sync` takes every event of a batch (≤ 100) and returns an :class:`~ledgerlink.consumer.outcome.Outcome`
per SQS message; the handler fails exactly the failed messages (partial batch response). The work is
batched across the whole SQS batch so the vendor call count does not grow with the events:

1. **claim** each event under its idempotency record (:mod:`ledgerlink.consumer.ledger`): a duplicate
   delivery of a completed event is done; one in progress elsewhere is retried later. A redelivered
   message that already failed for good fails again at once, without a vendor call;
2. per realm (:mod:`ledgerlink.deal_sync.realm`), **read links** (one BatchGetItem per 100) and skip out-of-order events: an event older
   than the version HubSpot already shows (counted as stale);
3. **fetch** from QBO with ``Id IN (...)`` queries: payments (→ the invoices they pay are re-synced),
   invoices, estimates, then the customers that changed or that a deal names without a link yet,
   and the items whose SKUs the line items carry (cached). An entity whose version is not newer than
   the link's is not written again (stale, counted);
4. **map** with the pure mapping (a :class:`~ledgerlink.mapping.errors.MappingError` — unsupported currency, totals that do not add
   up — fails that document's events only, for good);
5. **write** HubSpot in batches (:mod:`ledgerlink.deal_sync.writes`): companies/contacts (matched first, :mod:`ledgerlink.deal_sync.customers`),
   deals (upsert by ``qbo_invoice_id`` / ``qbo_estimate_id``), line items (matched by ``qbo_line_id``),
   archive the line items LedgerLink wrote earlier that the document no longer has, and v4
   associations only where new; a CRM-born document (created in QBO for a HubSpot deal,
   :mod:`ledgerlink.deal_sync.crm_born`) is written by id to that deal instead, books' properties only. Deletes move the deal to the voided stage and set
   ``qbo_status=deleted`` (nothing is deleted in the CRM). Then the deals' owners (one batch read).
   A record a user deleted in HubSpot heals in the same invocation: the links naming it are dropped, the
   customer is resolved again and the documents concerned are written once more
   (docs/deal-sync.md#records-deleted-in-hubspot);
6. **publish** ``ledgerlink.deal.synced`` (:mod:`ledgerlink.deal_sync.published`) for each invoice deal written, carrying the correlation id of
   the event that caused it;
7. **record** the links (conditional: versions only move forward) after the publication, so a failed
   publication is retried; then complete or release each idempotency claim and record failures.

Failures are per document where the vendor says which input failed (HubSpot 207 errors by
``objectWriteTraceId``), per realm where it does not (QBO down, the OAuth connection revoked). Each
failed outcome says whether retrying can help; :mod:`ledgerlink.consumer.deadletter` decides from that
whether SQS retries the record or it goes to the dead-letter queue with its reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.ledger import Claim, EventLedger
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import Failure, LinkStore
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.deal_sync.mapping import CompanyContext
from ledgerlink.deal_sync.ports import EventPublisher, MetricsSink, NoMetrics, SyncConfig
from ledgerlink.deal_sync.realm import RealmSync
from ledgerlink.hubspot.client import HubSpotClient
from ledgerlink.qbo.client import QboClient

logger = Logger(child=True)

# Time kept back from the invocation's budget when isolating a failing record: settling the batch
# (idempotency records, failures, dead letters, visibility changes) must still fit.
ISOLATION_RESERVE_SECONDS: Final = 15.0


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
        :attr:`~ledgerlink.consumer.failures.FailureScope.SHARED`) fails the realm's events together. Any other
        failure that escapes the batch (a refused input, an id QBO could never have, an exception nobody
        classified) belongs to some record: the events are split in halves and each half is synced
        again, until the failing record is alone with its own reason and every other record has
        succeeded. Re-syncing is safe (every write is an upsert, an update by id or a conditional link
        save; line items are looked for on their deal before any is created again) and costs
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
            return RealmSync(self, realm_id, events).run()
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
            refused = sum(1 for event in failed if outcomes[event.event_id].refused_by == "hubspot")
            if refused:
                self.metrics.count("HubSpotTokenRejected", refused)
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
