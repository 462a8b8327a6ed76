"""One realm's share of a batch: links, stale checks, the QBO reads, the documents, then the writes.

:class:`RealmSync` runs steps 2 to 7 of the batch (:mod:`ledgerlink.deal_sync.service`) for the events of
one QBO company:

- **read links** (one BatchGetItem per 100) and skip out-of-order events, older than the version HubSpot
  already shows (stale);
- **fetch** from QBO with ``Id IN (...)`` queries: payments (→ the invoices they pay are re-synced),
  invoices, estimates; a document whose version is not newer than its link's is not written again
  (stale); the item SKUs the line items carry are cached by the service;
- **map** with the pure mapping (a :class:`~ledgerlink.mapping.errors.MappingError` fails that
  document's events only, for good; an unsupported currency first reads the portal's currencies again);
- tell the CRM-born documents (:mod:`~ledgerlink.deal_sync.crm_born`: created in QBO for a HubSpot
  deal) from the others, resolve the **customers** (:mod:`~ledgerlink.deal_sync.customer_links`),
  **write** the deals (:mod:`~ledgerlink.deal_sync.writes`), and write once more the documents HubSpot
  refused because a record they name was deleted there;
- **publish** ``ledgerlink.deal.synced`` (:mod:`~ledgerlink.deal_sync.published`), then **record** the
  links (conditional: versions only move forward).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import NO_ORIGIN, EntityKey, Link
from ledgerlink.deal_sync.crm_born import crm_deal
from ledgerlink.deal_sync.customer_links import RealmCustomers
from ledgerlink.deal_sync.customers import Resolved
from ledgerlink.deal_sync.documents import DELETED_STATUS, Doc, entity_version, lost_race
from ledgerlink.deal_sync.errors import UnsupportedCurrency
from ledgerlink.deal_sync.inbox import SYNCED_ENTITIES, ChangeEvent
from ledgerlink.deal_sync.mapping import (
    CompanyContext,
    DealMapping,
    invoice_ids_paid_by,
    map_estimate,
    map_invoice,
)
from ledgerlink.deal_sync.ports import SyncServices
from ledgerlink.deal_sync.published import publish_synced
from ledgerlink.deal_sync.writes import DealWriter
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.origin import ORIGIN_HUBSPOT

logger = Logger(child=True)


class RealmSync:
    """One realm's share of a batch (see the module docstring for the steps)."""

    def __init__(self, service: SyncServices, realm_id: str, events: list[ChangeEvent]) -> None:
        self.s = service
        self.realm_id = realm_id
        self.events = events
        self.outcomes: dict[str, Outcome] = {}
        self.now = datetime.fromtimestamp(service.clock.now(), UTC)
        self.customers = RealmCustomers(service, realm_id)
        self.writer = DealWriter(service, realm_id)

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
        docs: dict[EntityKey, Doc] = {}
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
        to_write: list[Doc] = []
        for doc in docs.values():
            doc.raw = (invoices if doc.entity == "Invoice" else estimates).get(doc.entity_id)
            doc.crm_deal = crm_deal(doc.link, doc.raw, s.config.portal_id)
            if doc.raw is None:
                if doc.link is None or not doc.link.hubspot_id:
                    doc.outcome = Outcome(OutcomeStatus.UNCHANGED)  # never synced and gone: nothing to do
                elif doc.link.status == DELETED_STATUS and not doc.link.dirty:
                    doc.outcome = Outcome(OutcomeStatus.STALE)
                else:
                    to_write.append(doc)
                continue
            doc.version = entity_version(doc.raw, context)
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
        customer_results, customer_outcomes = self.customers.resolve(
            live, [d for d in to_write if d.outcome is None], links, context
        )
        self.writer.write([d for d in to_write if d.outcome is None], customer_results)
        self._write_again_where_gone(to_write, links, context, customer_results, customer_outcomes)
        publish_synced(
            s.publisher,
            s.metrics,
            [d for d in to_write if d.outcome is None and d.entity == "Invoice"],
            context,
            connection=s.config.connection,
            config_version=s.config.config_version,
        )
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
        self, docs: dict[EntityKey, Doc], entity: str, entity_id: str, links: Mapping[EntityKey, Link]
    ) -> Doc:
        key = self.key(entity, entity_id)
        if key not in docs:
            docs[key] = Doc(entity, entity_id, key, links.get(key))
        return docs[key]

    def _fetch(self, entity: str, ids: set[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return self.s.qbo.read_many(self.realm_id, entity, ids)

    def _write_again_where_gone(
        self,
        docs: list[Doc],
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
        results, outcomes = self.customers.resolve([], again, links, context, gone=gone)
        customers.update(results)
        customer_outcomes.update(outcomes)
        self.writer.write(again, customers)

    # ---- mapping

    def _map(self, docs: list[Doc], context: CompanyContext) -> None:
        item_ids = {item_id for doc in docs if doc.raw is not None for item_id in document_item_ids(doc.raw)}
        skus = self.s.item_skus(self.realm_id, item_ids) if item_ids else {}
        currencies_refreshed = False

        def map_doc(doc: Doc, raw: Mapping[str, Any], context: CompanyContext) -> DealMapping:
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

    # ---- links

    def _save_doc_links(self, docs: list[Doc]) -> None:
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
                origin=_origin(doc),
            )
            pending.append((link, doc.causes[-1].event_id if doc.causes else "unknown"))
        for doc, saved in zip(docs, self.s.links.save_all(pending), strict=True):
            if not saved:
                doc.outcome = lost_race()

    def _save_payment_links(
        self,
        live: list[ChangeEvent],
        payments: Mapping[str, Mapping[str, Any]],
        payment_invoices: Mapping[str, set[str]],
        docs: Mapping[EntityKey, Doc],
        context: CompanyContext,
    ) -> None:
        for event in live:
            if event.entity != "Payment":
                continue
            outcome = self._payment_outcome(event, payment_invoices, docs)
            payment = payments.get(event.entity_id)
            if not outcome.ok or payment is None:
                continue
            ms, token = entity_version(payment, context)
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
        self, event: ChangeEvent, payment_invoices: Mapping[str, set[str]], docs: Mapping[EntityKey, Doc]
    ) -> Outcome:
        related = [doc for doc in docs.values() if event in doc.causes]
        failed = [doc.outcome for doc in related if doc.outcome is not None and not doc.outcome.ok]
        if failed:
            return failed[0]
        return Outcome(
            OutcomeStatus.SYNCED,
            detail={"invoices": ",".join(sorted(payment_invoices.get(event.entity_id, set())))},
        )


def _origin(doc: Doc) -> str | None:
    """The origin a document's link records: a CRM-born one's (from the note's marker too, so the link
    says it before the other flow does), none for a document taken over from its gone deal, else as is."""
    if doc.crm_deal is not None:
        return ORIGIN_HUBSPOT
    return NO_ORIGIN if doc.taken_over else None


def _doc_detail(doc: Doc) -> dict[str, str]:
    # doc_number and deal_stage name the record in its history row (ledgerlink.history).
    properties = doc.mapping.deal.properties if doc.mapping is not None else {}
    detail = {
        "deal_id": doc.deal_id or "",
        "status": doc.status or "",
        "doc_number": str((doc.raw or {}).get("DocNumber") or "").strip(),
        "deal_stage": doc.deal_stage if doc.crm_deal is not None else str(properties.get("dealstage") or ""),
    }
    return {k: v for k, v in detail.items() if v}


def document_item_ids(document: Mapping[str, Any]) -> set[str]:
    """The QBO Item ids a document's lines (and group lines) name."""
    found: set[str] = set()
    for line in document.get("Line") or ():
        lines = [line, *((line.get("GroupLineDetail") or {}).get("Line") or ())]
        for candidate in lines:
            item = (candidate.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
            if item.get("value") is not None:
                found.add(str(item["value"]))
    return found
