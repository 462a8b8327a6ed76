"""The document sync: each HubSpot deal's QBO Estimate and Invoice, from what the deal says now.

For every deal a batch names (a line item's event names its deal; the newest event of a deal stands for
all of them), :meth:`DocumentSyncService.sync` re-reads the deal from HubSpot and acts on that alone — the
webhook's claims only explain the audit record:

- the deal is at a **quote stage** of its pipeline → its QBO Estimate is created, or updated while QBO
  still has it Pending (nothing is sent when it already matches the deal);
- at a **won stage** → its Invoice is created, linked to the estimate (lines copied: QBO does not) and
  checked to carry the link; without an estimate, straight from the deal;
- anything else (another stage, a deal deleted or merged away, a deal the books made, a webhook whose
  stage the deal no longer has) → nothing is written.

Every decision is an audit row (:mod:`ledgerlink.audit`). Exactly once: each create carries a ``requestid``
fixed by (connection, deal, kind, generation, DocNumber attempt) — the same on every retry — and updates
carry the estimate's ``SyncToken`` (Fault 5010: read again, apply again). The documents row
(:mod:`.records`), the crosswalk link of each document (``origin = hubspot``) and the ``qbo_*_id`` written
on the deal let the deal sync put QBO's echo of these writes on the same deal, so the two flows never
ping-pong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aws_lambda_powertools import Logger

from ledgerlink.audit import AuditRecord, AuditStore, Decision
from ledgerlink.clock import Clock, SystemClock
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus, count_failure
from ledgerlink.crosswalk import EntityKey
from ledgerlink.dates import company_today
from ledgerlink.document_sync.bodies import (
    OWNED_FIELDS,
    estimate_body,
    fingerprint,
    invoice_from_deal,
    invoice_from_estimate,
    links_estimate,
)
from ledgerlink.document_sync.customers import CrmWriter, CustomerResolver, QboCustomer
from ledgerlink.document_sync.deal import CrmDeal, DealReader
from ledgerlink.document_sync.errors import (
    CurrencyNotInCompany,
    DocNumbersExhausted,
    DocumentWriteConflict,
    EstimateNotLinkable,
)
from ledgerlink.document_sync.inbox import DealChanged
from ledgerlink.document_sync.lines import Catalog, QboItem, SalesLine, TaxRules, sales_lines
from ledgerlink.document_sync.numbering import DocNumbers
from ledgerlink.document_sync.ports import Books, DocumentConfig, Links, MetricsSink, NoMetrics
from ledgerlink.document_sync.records import DealDocuments, DealDocumentStore, LostRace
from ledgerlink.document_sync.stages import Action, decide
from ledgerlink.hubspot.client import Update
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.origin import origin_marker
from ledgerlink.qbo.client import QboFault

logger = Logger(child=True)

MAX_RACES: Final = 3  # saves lost to another worker on one deal before SQS retries it
MAX_STALE_UPDATES: Final = 3  # Fault 5010 in a row on one estimate
LINKABLE_STATUSES: Final = frozenset({"Pending", "Accepted"})


@dataclass
class _Company:
    custom_numbers: bool
    multicurrency: bool
    home_currency: str
    catalog: Catalog
    tax: TaxRules
    until: float


def request_id(connection: str, deal_id: str, kind: str, generation: int, attempt: int) -> str:
    """QBO's idempotency key of one create: the same for every retry of that create (at most 50 chars)."""
    digest = hashlib.sha256(f"{connection}|{deal_id}|{kind}|{generation}|{attempt}".encode()).hexdigest()
    return f"ll-{digest[:40]}"


class DocumentSyncService:
    def __init__(
        self,
        *,
        books: Books,
        crm: DealReader,
        hubspot: CrmWriter,
        links: Links,
        documents: DealDocumentStore,
        audit: AuditStore,
        numbers: DocNumbers,
        config: DocumentConfig,
        clock: Clock | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.books = books
        self.crm = crm
        self.hubspot = hubspot
        self.links = links
        self.documents = documents
        self.audit = audit
        self.numbers = numbers
        self.config = config
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
        self.customers = CustomerResolver(
            qbo=books, links=links, hubspot=hubspot, realm_id=config.realm_id, connection=config.connection
        )
        self._company_cache: _Company | None = None

    # ---- the batch

    def sync(self, events: Sequence[DealChanged], remaining_ms: int | None = None) -> dict[str, Outcome]:
        """An :class:`Outcome` per SQS message id. A failure every record shares (QBO or HubSpot down,
        throttled, the connection revoked) ends the batch: the deals not yet tried fail with it, untried."""
        self.metrics.count("EventsReceived", len(events))
        outcomes: dict[str, Outcome] = {}
        by_deal: dict[str, list[DealChanged]] = {}
        shared: Outcome | None = None
        if self.config.settings.ignore_own_writes:
            echoes = [event for event in events if event.own_write]
            if echoes:
                # The deal sync's writes (stages of deals the books made, their line items) come back as
                # webhooks: none can ask for a document, and reading their deals would spend HubSpot's budget.
                self.metrics.count("OwnWritesIgnored", len(echoes))
                for event in echoes:
                    outcomes[event.message_id] = Outcome(
                        OutcomeStatus.IGNORED, reason="an echo of LedgerLink's own HubSpot write"
                    )
                events = [event for event in events if not event.own_write]
        try:
            # One batch read for every line item's deal in the batch (a deal sync write makes many).
            line_deals = self.crm.deals_of_line_items(
                [event.object_id for event in events if event.object_type == "line_item"]
            )
        except Exception as error:  # noqa: BLE001 - classified: HubSpot down fails the batch
            outcome = Outcome.failure(error)
            count_failure(self.metrics, outcome)
            outcomes.update({event.message_id: outcome for event in events})
            return outcomes
        for event in events:
            deal_ids = (
                line_deals.get(event.object_id, [])
                if event.object_type == "line_item"
                else [event.deal_id or event.object_id]
            )
            if not deal_ids:
                outcomes[event.message_id] = Outcome(
                    OutcomeStatus.IGNORED, reason=f"{event.object_type} {event.object_id} belongs to no deal"
                )
                continue
            for deal_id in deal_ids:
                by_deal.setdefault(deal_id, []).append(event)
        for deal_id, deal_events in by_deal.items():
            outcome = shared if shared is not None else self._sync_deal_safely(deal_id, deal_events)
            if outcome.scope is FailureScope.SHARED:
                shared = outcome
            for event in deal_events:
                held = outcomes.get(event.message_id)
                if held is None or (held.ok and not outcome.ok):
                    outcomes[event.message_id] = outcome
        return outcomes

    def _sync_deal_safely(self, deal_id: str, events: list[DealChanged]) -> Outcome:
        trigger = max(events, key=lambda event: (event.occurred_at_ms, event.event_id))
        for _ in range(MAX_RACES):
            try:
                return self._sync_deal(deal_id, trigger)
            except LostRace:
                continue
            except Exception as error:  # noqa: BLE001 - classified, audited and counted in one place
                return self._failed(deal_id, trigger, error)
        return self._failed(
            deal_id,
            trigger,
            DocumentWriteConflict(f"deal {deal_id}: other workers kept writing its documents; retry later"),
        )

    def _failed(self, deal_id: str, trigger: DealChanged, error: BaseException) -> Outcome:
        outcome = Outcome.failure(error)
        count_failure(self.metrics, outcome)
        fields = {
            **trigger.log_fields(),
            "deal_id": deal_id,
            "reason": outcome.reason,
            "retryable": outcome.retryable,
        }
        if outcome.unexpected:
            logger.exception("unexpected error writing a deal's QBO document", extra=fields)
        else:
            logger.warning("deal's QBO document not written", extra=fields)
        try:
            documents = self.documents.get(self.config.connection, deal_id)
            self._record(Decision.FAILED, outcome.reason or "", trigger, deal_id, documents)
        except Exception:  # noqa: BLE001 - the audit must not hide the failure it reports
            logger.warning("failure not audited", extra=fields)
        return outcome

    # ---- one deal

    def _sync_deal(self, deal_id: str, trigger: DealChanged) -> Outcome:
        documents = self.documents.get(self.config.connection, deal_id)
        if trigger.object_type == "line_item" and not documents.estimate_id:
            # Most line-item events come from the deal sync's own writes to deals the books made: without
            # an estimate LedgerLink made for the deal, there is nothing to update, and nothing to read.
            return self._skipped(
                "a line item changed, but the deal has no estimate yet", trigger, deal_id, documents
            )
        head = self.crm.head(deal_id)
        if head is None:
            merged = f" (merged into deal {trigger.deal_id})" if trigger.change == "merged" else ""
            return self._skipped(
                f"deal {deal_id} no longer exists in HubSpot{merged}; its QBO documents are kept as they are",
                trigger,
                deal_id,
                documents,
            )
        deal = head.deal
        for merged_id in trigger.merged_object_ids if trigger.change == "merged" else ():
            if merged_id != deal.id:
                self._record(
                    Decision.SKIPPED,
                    f"deal {merged_id} was merged into deal {deal.id}; its QBO documents stay as they are",
                    trigger,
                    merged_id,
                    self.documents.get(self.config.connection, merged_id),
                )
        claimed = trigger.claimed_stage if (trigger.deal_id or trigger.object_id) == deal.id else None
        decided = decide(
            deal,
            self.config.stages,
            own_keys=documents.own_keys(self.config.realm_id),
            claimed_stage=claimed,
        )
        if decided.action is Action.NONE:
            return self._skipped(decided.reason, trigger, deal_id, documents, deal)
        # Only a deal that asks for a document costs the reads of its line items, company and contacts.
        deal = self.crm.complete(head)
        if decided.action is Action.ESTIMATE:
            return self._estimate(deal, documents, trigger, decided.reason)
        return self._invoice(deal, documents, trigger, decided.reason)

    # ---- estimate

    def _estimate(self, deal: CrmDeal, documents: DealDocuments, trigger: DealChanged, why: str) -> Outcome:
        if documents.invoice_id:
            return self._skipped(
                f"{why}, but the deal is already invoiced (invoice {documents.invoice_number or documents.invoice_id}); "
                "the estimate is not changed after its invoice",
                trigger,
                deal.id,
                documents,
                deal,
            )
        company = self._company()
        currency = self._currency(deal, company)
        customer = self._customer(deal, company, currency)
        lines = sales_lines(deal, company.catalog, company.tax, self.config.settings, currency=currency)
        today = company_today(datetime.fromtimestamp(self.clock.now(), UTC), self.config.time_zone)

        def body(number: str | None) -> dict[str, Any]:
            return estimate_body(
                customer_id=customer.id,
                lines=lines,
                txn_date=today,
                marker=origin_marker(deal.id, self.config.portal_id),
                currency=currency if company.multicurrency else None,
                doc_number=number,
                expiration_days=self.config.settings.estimate_expiration_days,
            )

        wanted = fingerprint(body(None))
        note = ""
        if documents.estimate_id:
            current = self.books.read(self.config.realm_id, "Estimate", documents.estimate_id)
            label = f"estimate {documents.estimate_number or documents.estimate_id}"
            if current is None:
                note = f"; {label} was deleted in QBO, so a new one is made"
                documents = documents.but(
                    estimate_id=None,
                    estimate_number=None,
                    estimate_generation=documents.estimate_generation + 1,
                    estimate_attempt=0,
                    estimate_pending_number=None,
                    estimate_fingerprint=None,
                )
            else:
                status = str(current.get("TxnStatus") or "Pending")
                if status != "Pending":
                    return self._skipped(
                        f"{why}; {label} is {status} in QBO: only a Pending estimate follows its deal",
                        trigger,
                        deal.id,
                        documents,
                        deal,
                        document="Estimate",
                    )
                if wanted == documents.estimate_fingerprint:
                    self._reclaim(deal, "Estimate", current["Id"], deal.estimate_key, prop.QBO_ESTIMATE_ID)
                    return self._unchanged(
                        f"{why}; {label} already matches the deal", trigger, deal, documents, "Estimate"
                    )
                updated = self._update_estimate(deal, current, body(None))
                if updated is None:
                    return self._skipped(
                        f"{why}; {label} stopped being Pending in QBO while it was updated",
                        trigger,
                        deal.id,
                        documents,
                        deal,
                        document="Estimate",
                    )
                documents = self.documents.save(
                    documents.but(estimate_fingerprint=wanted, customer_id=customer.id)
                )
                self.metrics.count("EstimatesUpdated")
                self._record(
                    Decision.UPDATED,
                    f"{why}: {label} updated to the deal's {len(lines)} line(s), total {_total(updated)}",
                    trigger,
                    deal.id,
                    documents,
                    deal,
                    document="Estimate",
                    detail={"customer_id": customer.id, "sync_token": str(updated.get("SyncToken", ""))},
                )
                return Outcome(OutcomeStatus.SYNCED, reason="estimate updated", detail=_ids(documents))
        if documents.estimate_generation == 0:
            documents = documents.but(estimate_generation=1)
        documents, created = self._create("estimate", "Estimate", documents, deal, company, body)
        documents = self.documents.save(
            documents.but(
                estimate_id=str(created["Id"]),
                estimate_number=_doc_number(created),
                estimate_pending_number=None,
                estimate_fingerprint=wanted,
                customer_id=customer.id,
            )
        )
        self._claim(deal, "Estimate", str(created["Id"]), prop.QBO_ESTIMATE_ID)
        self.metrics.count("EstimatesCreated")
        self._record(
            Decision.CREATED,
            f"{why}: estimate {documents.estimate_number or documents.estimate_id} created for "
            f"{customer.display_name} ({_customer_how(customer)}), {len(lines)} line(s) "
            f"({_matches(lines)}), total {_total(created)}{note}",
            trigger,
            deal.id,
            documents,
            deal,
            document="Estimate",
            detail={"customer_id": customer.id, "request_id": self._request_id("estimate", documents)},
        )
        return Outcome(OutcomeStatus.SYNCED, reason="estimate created", detail=_ids(documents))

    def _update_estimate(
        self, deal: CrmDeal, current: Mapping[str, Any], body: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The sparse update of the fields the flow owns, on the estimate's current SyncToken; on Fault
        5010 (someone saved it meanwhile) read it again and apply again. None when it stopped being Pending."""
        for _ in range(MAX_STALE_UPDATES):
            sparse = {
                "Id": current["Id"],
                "SyncToken": current["SyncToken"],
                "sparse": True,
                **{key: body[key] for key in OWNED_FIELDS if key in body and key != "CurrencyRef"},
            }
            update_id = request_id(
                self.config.connection,
                deal.id,
                f"estimate-update-{current['Id']}",
                int(current["SyncToken"]),
                0,
            )
            try:
                return self.books.update(self.config.realm_id, "Estimate", sparse, request_id=update_id)
            except QboFault as fault:
                if not fault.is_stale_object:
                    raise
            logger.info("estimate changed in QBO meanwhile; reading it again", extra={"deal_id": deal.id})
            reread = self.books.read(self.config.realm_id, "Estimate", str(current["Id"]))
            if reread is None or str(reread.get("TxnStatus") or "Pending") != "Pending":
                return None
            current = reread
        raise DocumentWriteConflict(
            f"deal {deal.id}: estimate {current['Id']} kept changing in QBO (Fault 5010 {MAX_STALE_UPDATES} times)"
        )

    # ---- invoice

    def _invoice(self, deal: CrmDeal, documents: DealDocuments, trigger: DealChanged, why: str) -> Outcome:
        if documents.invoice_id:
            label = f"invoice {documents.invoice_number or documents.invoice_id}"
            if self.books.read(self.config.realm_id, "Invoice", documents.invoice_id) is not None:
                self._reclaim(deal, "Invoice", documents.invoice_id, deal.invoice_key, prop.QBO_INVOICE_ID)
                return self._unchanged(
                    f"{why}; already invoiced: {label}", trigger, deal, documents, "Invoice"
                )
            return self._skipped(
                f"{why}; {label} was deleted in QBO, and LedgerLink does not make it again",
                trigger,
                deal.id,
                documents,
                deal,
                document="Invoice",
            )
        company = self._company()
        today = company_today(datetime.fromtimestamp(self.clock.now(), UTC), self.config.time_zone)
        marker = origin_marker(deal.id, self.config.portal_id)
        estimate = (
            self.books.read(self.config.realm_id, "Estimate", documents.estimate_id)
            if documents.estimate_id
            else None
        )
        customer_id: str
        build: Callable[[str | None], dict[str, Any]]
        if estimate is not None:
            label = f"estimate {documents.estimate_number or documents.estimate_id}"
            status = str(estimate.get("TxnStatus") or "Pending")
            if status not in LINKABLE_STATUSES:
                raise EstimateNotLinkable(
                    deal.id,
                    f"{label} is {status} in QBO: QBO links only a Pending or Accepted estimate and would "
                    "silently make an invoice that stands alone. Set the estimate back to Pending or Accepted "
                    "in QBO (or delete it to invoice straight from the deal), then replay this record",
                )
            customer_id = str((estimate.get("CustomerRef") or {}).get("value"))

            def build(number: str | None) -> dict[str, Any]:
                assert estimate is not None
                return invoice_from_estimate(estimate, txn_date=today, marker=marker, doc_number=number)

            how = f"linked to {label}, its lines copied"
        else:
            currency = self._currency(deal, company)
            customer = self._customer(deal, company, currency)
            customer_id = customer.id
            lines = sales_lines(deal, company.catalog, company.tax, self.config.settings, currency=currency)

            def build(number: str | None) -> dict[str, Any]:
                return invoice_from_deal(
                    customer_id=customer.id,
                    lines=lines,
                    txn_date=today,
                    marker=marker,
                    currency=currency if company.multicurrency else None,
                    doc_number=number,
                )

            deleted = (
                f" (estimate {documents.estimate_number or documents.estimate_id} was deleted in QBO)"
                if documents.estimate_id
                else ""
            )
            how = (
                f"no estimate{deleted}: invoice made straight from the deal for {customer.display_name} "
                f"({_customer_how(customer)}), {len(lines)} line(s) ({_matches(lines)})"
            )
        if documents.invoice_generation == 0:
            documents = documents.but(invoice_generation=1)
        documents, created = self._create("invoice", "Invoice", documents, deal, company, build)
        documents = self.documents.save(
            documents.but(
                invoice_id=str(created["Id"]),
                invoice_number=_doc_number(created),
                invoice_pending_number=None,
                customer_id=customer_id,
            )
        )
        self._claim(deal, "Invoice", str(created["Id"]), prop.QBO_INVOICE_ID)
        self.metrics.count("InvoicesCreated")
        label = f"invoice {documents.invoice_number or documents.invoice_id}"
        if estimate is not None and not links_estimate(created, str(estimate["Id"])):
            raise EstimateNotLinkable(
                deal.id,
                f"{label} was created, but QBO did not keep its link to estimate "
                f"{documents.estimate_number or documents.estimate_id} (QBO ignores a link to a Closed or "
                "Rejected estimate): link them in QBO by hand",
            )
        self._record(
            Decision.CREATED,
            f"{why}: {label} created, {how}, total {_total(created)}",
            trigger,
            deal.id,
            documents,
            deal,
            document="Invoice",
            detail={"customer_id": customer_id, "request_id": self._request_id("invoice", documents)},
        )
        return Outcome(OutcomeStatus.SYNCED, reason="invoice created", detail=_ids(documents))

    # ---- writes shared by both kinds

    def _create(
        self,
        kind: str,
        entity: str,
        documents: DealDocuments,
        deal: CrmDeal,
        company: _Company,
        build: Callable[[str | None], dict[str, Any]],
    ) -> tuple[DealDocuments, dict[str, Any]]:
        """Create the document under its ``requestid``; with custom numbering, draw a number first (saved
        before the write, so a retry reuses it) and draw again on Fault 6140, bounded."""
        attempts = self.config.settings.numbering.attempts if company.custom_numbers else 1
        number: str | None = getattr(documents, f"{kind}_pending_number") if company.custom_numbers else None
        if company.custom_numbers and number is None:
            number = self.numbers.next(kind)
            documents = self.documents.save(documents.but(**{f"{kind}_pending_number": number}))
        tried: list[str] = []
        while True:
            try:
                created = self.books.create(
                    self.config.realm_id, entity, build(number), request_id=self._request_id(kind, documents)
                )
                return documents, created
            except QboFault as fault:
                if not (company.custom_numbers and fault.is_duplicate_doc_number):
                    raise
                tried.append(str(number))
                attempt = getattr(documents, f"{kind}_attempt") + 1
                if attempt >= attempts:
                    raise DocNumbersExhausted(
                        deal.id,
                        f"QBO refused every DocNumber tried for the {kind} ({', '.join(tried)}: Fault 6140, "
                        "already used); move qbo_documents.numbering.first past the numbers in use",
                    ) from None
                number = self.numbers.next(kind)
                logger.info(
                    "DocNumber taken in QBO; trying the next", extra={"deal_id": deal.id, "kind": kind}
                )
                documents = self.documents.save(
                    documents.but(**{f"{kind}_attempt": attempt, f"{kind}_pending_number": number})
                )

    def _request_id(self, kind: str, documents: DealDocuments) -> str:
        return request_id(
            self.config.connection,
            documents.deal_id,
            kind,
            getattr(documents, f"{kind}_generation"),
            getattr(documents, f"{kind}_attempt"),
        )

    def _claim(self, deal: CrmDeal, entity: str, entity_id: str, key_property: str) -> None:
        """The crosswalk link (origin hubspot) and the deal's ``qbo_*_id``: how the deal sync knows the
        document is this deal's when QBO's webhook about it arrives."""
        self.links.claim_for_deal(EntityKey(self.config.realm_id, entity, entity_id), deal.id)
        key = f"{self.config.realm_id}:{entity_id}"
        outcome = self.hubspot.batch_update("deals", [Update(deal.id, {key_property: key})])
        failed = getattr(outcome, "failed", {}) or {}
        if failed:
            logger.warning(
                "deal not marked with its QBO document",
                extra={
                    "deal_id": deal.id,
                    "property": key_property,
                    "detail": str(next(iter(failed.values()))),
                },
            )

    def _reclaim(self, deal: CrmDeal, entity: str, entity_id: Any, shown: str, key_property: str) -> None:
        """A retry after the deal's marking failed: mark it now (nothing is written when it already is)."""
        if shown != f"{self.config.realm_id}:{entity_id}":
            self._claim(deal, entity, str(entity_id), key_property)

    # ---- company facts

    def _company(self) -> _Company:
        now = self.clock.now()
        cached = self._company_cache
        if cached is not None and cached.until > now:
            return cached
        realm = self.config.realm_id
        preferences = self.books.preferences(realm)
        sales = preferences.get("SalesFormsPrefs") or {}
        currency_prefs = preferences.get("CurrencyPrefs") or {}
        country = self.config.country or str(self.books.company_info(realm).get("Country") or "US")
        us = country.upper() in ("US", "USA", "UNITED STATES")
        items = self.books.query(realm, "select * from Item where Active = true")
        codes: dict[str, str] = {}
        if not us:
            codes = {
                str(row["Id"]): str(row.get("Name") or "")
                for row in self.books.query(realm, "select * from TaxCode")
            }
        company = _Company(
            custom_numbers=bool(sales.get("CustomTxnNumbers", False)),
            multicurrency=bool(currency_prefs.get("MultiCurrencyEnabled", False)),
            home_currency=str((currency_prefs.get("HomeCurrency") or {}).get("value") or "USD").upper(),
            catalog=Catalog(QboItem.from_qbo(row) for row in items),
            tax=TaxRules(
                us=us,
                company_codes=codes,
                table=self.config.tax_table,
                default_code=self.config.settings.default_tax_code,
            ),
            until=now + self.config.cache_seconds,
        )
        self._company_cache = company
        return company

    def _currency(self, deal: CrmDeal, company: _Company) -> str:
        currency = deal.currency or company.home_currency
        if currency != company.home_currency and not company.multicurrency:
            raise CurrencyNotInCompany(
                deal.id,
                f"the deal is in {currency}, but the QBO company works in {company.home_currency} only "
                "(multicurrency is off); LedgerLink converts nothing",
            )
        return currency

    def _customer(self, deal: CrmDeal, company: _Company, currency: str) -> QboCustomer:
        customer = self.customers.resolve(deal, currency=currency if company.multicurrency else None)
        billed_in = customer.currency or company.home_currency
        if billed_in != currency:
            raise CurrencyNotInCompany(
                deal.id,
                f"the deal is in {currency}, but QBO customer {customer.display_name!r} is billed in "
                f"{billed_in}; LedgerLink converts nothing",
            )
        return customer

    # ---- audit

    def _skipped(
        self,
        reason: str,
        trigger: DealChanged,
        deal_id: str,
        documents: DealDocuments,
        deal: CrmDeal | None = None,
        *,
        document: str | None = None,
    ) -> Outcome:
        self.metrics.count("DealsSkipped")
        self._record(Decision.SKIPPED, reason, trigger, deal_id, documents, deal, document=document)
        return Outcome(OutcomeStatus.IGNORED, reason=reason)

    def _unchanged(
        self, reason: str, trigger: DealChanged, deal: CrmDeal, documents: DealDocuments, document: str
    ) -> Outcome:
        self._record(Decision.UNCHANGED, reason, trigger, deal.id, documents, deal, document=document)
        return Outcome(OutcomeStatus.UNCHANGED, reason=reason, detail=_ids(documents))

    def _record(
        self,
        decision: Decision,
        reason: str,
        trigger: DealChanged,
        deal_id: str,
        documents: DealDocuments,
        deal: CrmDeal | None = None,
        *,
        document: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        at = (
            datetime.fromtimestamp(self.clock.now(), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        self.audit.record(
            AuditRecord(
                connection=self.config.connection,
                deal_id=deal_id,
                at=at,
                event_id=trigger.event_id,
                correlation_id=trigger.correlation_id,
                config_version=self.config.config_version,
                decision=decision,
                reason=reason,
                document=document,
                deal_stage=deal.stage if deal else None,
                pipeline=deal.pipeline if deal else None,
                estimate_id=documents.estimate_id,
                estimate_number=documents.estimate_number,
                invoice_id=documents.invoice_id,
                invoice_number=documents.invoice_number,
                change=trigger.change,
                change_source=trigger.change_source,
                detail=dict(detail or {}),
            )
        )
        logger.info(
            "deal decision",
            extra={**trigger.log_fields(), "deal_id": deal_id, "decision": decision.value, "reason": reason},
        )


def _doc_number(document: Mapping[str, Any]) -> str | None:
    number = document.get("DocNumber")
    return str(number) if number else None


def _total(document: Mapping[str, Any]) -> str:
    currency = (document.get("CurrencyRef") or {}).get("value") or ""
    return f"{document.get('TotalAmt', '?')} {currency}".strip()


def _ids(documents: DealDocuments) -> dict[str, str]:
    return {
        key: value
        for key, value in (
            ("estimate_id", documents.estimate_id),
            ("estimate_number", documents.estimate_number),
            ("invoice_id", documents.invoice_id),
            ("invoice_number", documents.invoice_number),
        )
        if value
    }


def _customer_how(customer: QboCustomer) -> str:
    return {
        "crosswalk": "linked customer",
        "email": "matched by e-mail",
        "name": "matched by name",
        "created": "new customer",
    }.get(customer.matched_by, customer.matched_by)


def _matches(lines: Sequence[SalesLine]) -> str:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line.matched_by] = counts.get(line.matched_by, 0) + 1
    return ", ".join(f"{count} by {how}" for how, count in sorted(counts.items()))
