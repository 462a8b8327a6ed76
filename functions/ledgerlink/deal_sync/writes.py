"""The HubSpot writes of one realm's pass: deals (upsert by ``qbo_invoice_id`` / ``qbo_estimate_id``), their
line items (matched by ``qbo_line_id`` and written by HubSpot id, :mod:`~ledgerlink.deal_sync.line_items`:
line items have no unique properties to upsert by), v4 associations to companies and contacts only where
new, then the deals' owners (one batch read). A document QBO deleted
moves its deal to the voided (rejected) stage, marked ``qbo_status=deleted``: nothing is deleted in the CRM.

A CRM-born document (:mod:`~ledgerlink.deal_sync.crm_born`) is written by id to the HubSpot deal it was
created for, with the books' properties only: no deal is created, and the deal's name, amount, stage,
line items and associations stay the salesperson's. If that deal is gone from HubSpot, the document is
written like any other (a deal of its own), logged at WARNING.

A write HubSpot refuses fails the documents it names only (207 errors by ``objectWriteTraceId``, refused
association pairs by deal); a record a user deleted in HubSpot is kept on the document (``Doc.gone``) so
the pass can write it again once (docs/deal-sync.md#records-deleted-in-hubspot).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_lambda_powertools import Logger

from ledgerlink.deal_sync.crm_born import books_properties
from ledgerlink.deal_sync.customers import Resolved
from ledgerlink.deal_sync.documents import DELETED_STATUS, Doc
from ledgerlink.deal_sync.line_items import DealLines, Line, LineItemSync
from ledgerlink.deal_sync.ports import SyncServices
from ledgerlink.hubspot.client import (
    AssociationsFailed,
    BatchOutcome,
    HubSpotError,
    ObjectsNotFound,
    Update,
    Upsert,
)
from ledgerlink.mapping import properties as prop

logger = Logger(child=True)

# Invoice status whose stage a deleted invoice's deal moves to; for an estimate, "rejected".
DELETED_INVOICE_STAGE_OF: Final = "voided"
DELETED_ESTIMATE_STAGE_OF: Final = "rejected"
OWNER_PROPERTY: Final = "hubspot_owner_id"
# HubSpot calculates a line item's amount (price x quantity - discount x quantity) and refuses a
# written value; the mapping chooses price, quantity and discount so its calculation gives QBO's amount.
LINE_ITEM_CALCULATED: Final = frozenset({"amount"})


class DealWriter:
    """Writes one realm's documents to HubSpot and records on each what HubSpot now shows (or its failure)."""

    def __init__(self, service: SyncServices, realm_id: str) -> None:
        self.s = service
        self.realm_id = realm_id

    def write(self, docs: list[Doc], customers: Mapping[str, Resolved]) -> None:
        if not docs:
            return
        hubspot = self.s.hubspot
        self._write_crm_born([d for d in docs if d.crm_deal is not None and d.mapping is not None])
        # QBO-born documents, and the CRM-born ones whose deal is gone (now written like QBO-born ones).
        upserts = [d for d in docs if d.mapping is not None and d.crm_deal is None and d.outcome is None]
        crm_written = [
            d for d in docs if d.crm_deal is not None and d.mapping is not None and d.outcome is None
        ]
        deletes = [d for d in docs if d.deleted]
        new_deals: set[str] = set()  # deals this upsert created: they have no line items yet
        # One batch per id property: an invoice and an estimate may share a QBO Id (hence the same
        # "<realm>:<Id>" value), and a batch's answers are keyed by that value.
        outcomes: dict[str, BatchOutcome] = {}
        for id_property in sorted({d.mapping.deal.id_property for d in upserts if d.mapping}):
            outcomes[id_property] = hubspot.batch_upsert(
                "deals",
                [
                    Upsert(d.mapping.deal.id_property, d.mapping.deal.id, d.mapping.deal.properties)
                    for d in upserts
                    if d.mapping and d.mapping.deal.id_property == id_property
                ],
            )
        for doc in upserts:
            assert doc.mapping is not None
            outcome = outcomes[doc.mapping.deal.id_property]
            written = outcome.written.get(doc.mapping.deal.id)
            if written is None:
                doc.fail(outcome.failed.get(doc.mapping.deal.id) or HubSpotError("deal not written"))
                continue
            doc.deal_id = written.id
            doc.status = doc.mapping.status.value
            if written.new:
                new_deals.add(written.id)
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
        self._write_line_items(written_docs, new_deals)
        pairs: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for doc in written_docs:
            if doc.outcome is not None:
                continue
            assert doc.mapping is not None and doc.deal_id is not None
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
        for doc in crm_written:
            # The salesperson's deal keeps its own associations; the customer is still resolved, for
            # the link and for ledgerlink.deal.synced.
            assert doc.mapping is not None
            resolved = customers.get(doc.mapping.customer_key.split(":", 1)[1])
            if resolved is not None:
                doc.company_id, doc.contact_id = resolved.company_id, resolved.contact_id
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
        crm_deals = any(d.crm_deal is not None for d in docs)
        owners = hubspot.batch_read(
            "deals",
            [d.deal_id for d in docs if d.deal_id and d.outcome is None],
            # A CRM-born document's deal is where the salesperson put it: ledgerlink.deal.synced says so.
            [OWNER_PROPERTY, *(("pipeline", "dealstage") if crm_deals else ())],
        )
        for doc in docs:
            if doc.deal_id and doc.deal_id in owners:
                doc.owner_id = owners[doc.deal_id].prop(OWNER_PROPERTY) or None
                if doc.crm_deal is not None:
                    doc.pipeline = owners[doc.deal_id].prop("pipeline") or None
                    doc.deal_stage = owners[doc.deal_id].prop("dealstage") or None
        self.s.metrics.count("DealsWritten", sum(1 for d in docs if d.outcome is None))

    def _write_crm_born(self, docs: list[Doc]) -> None:
        """The books' properties of each CRM-born document, by id on its deal (one update per deal).

        A deal named by an estimate and its invoice in the same batch gets one update, the invoice's
        values last so they win. A deal HubSpot no longer has sends its documents down the QBO-born
        path (an upsert: a deal of their own), logged at WARNING with HubSpot's reason."""
        if not docs:
            return
        by_deal: dict[str, dict[str, str]] = {}
        for doc in sorted(docs, key=lambda d: d.entity == "Invoice"):
            assert doc.crm_deal is not None and doc.mapping is not None and doc.raw is not None
            by_deal.setdefault(doc.crm_deal, {}).update(books_properties(doc.entity, doc.raw, doc.mapping))
        outcome = self.s.hubspot.batch_update(
            "deals", [Update(deal_id, properties) for deal_id, properties in by_deal.items()]
        )
        for doc in docs:
            assert doc.crm_deal is not None and doc.mapping is not None
            failure = outcome.failed.get(doc.crm_deal)
            if isinstance(failure, ObjectsNotFound):
                logger.warning(
                    "deal of a CRM-born document gone from HubSpot; writing the document to a deal of its own",
                    extra={
                        "realm_id": self.realm_id,
                        "entity": doc.entity,
                        "entity_id": doc.entity_id,
                        "deal_id": doc.crm_deal,
                        "reason": str(failure),
                    },
                )
                self.s.metrics.count("CrmBornDealsGone")
                doc.crm_deal = None
                doc.taken_over = True
                continue
            if failure is not None:
                doc.fail(failure)
                continue
            if doc.crm_deal not in outcome.written:
                doc.fail(HubSpotError("HubSpot's batch answer did not mention this deal"))
                continue
            doc.deal_id = doc.crm_deal
            doc.status = doc.mapping.status.value
            self.s.metrics.count("CrmBornDocumentsWritten")

    def _write_line_items(self, docs: list[Doc], new_deals: set[str]) -> None:
        """Each written deal's line items become its document's lines (:mod:`.line_items`); a deal
        whose line items HubSpot refused fails its document."""
        deals: list[tuple[Doc, DealLines]] = []
        for doc in docs:
            assert doc.mapping is not None and doc.deal_id is not None
            link = doc.link
            same_deal = link is not None and link.hubspot_id == doc.deal_id
            lines = [
                Line(item.id, {k: v for k, v in item.properties.items() if k not in LINE_ITEM_CALCULATED})
                for item in doc.mapping.line_items
            ]
            deals.append(
                (
                    doc,
                    DealLines(
                        deal_id=doc.deal_id,
                        prefix=doc.mapping.line_key_prefix,
                        lines=lines,
                        deal_is_new=doc.deal_id in new_deals,
                        linked_ids=link.line_item_ids if link is not None and same_deal else frozenset(),
                        link_in_doubt=link is not None and link.dirty,
                        previous_ids=link.line_item_ids
                        if link is not None and not same_deal
                        else frozenset(),
                    ),
                )
            )
        LineItemSync(self.s.hubspot, self.s.metrics, self.realm_id).run([deal for _, deal in deals])
        for doc, deal in deals:
            if deal.error is not None:
                doc.fail(deal.error)
            else:
                doc.line_item_ids = deal.line_item_ids

    def _mark_deleted(self, docs: list[Doc]) -> None:
        """QBO deleted the document: the deal moves to the voided (rejected) stage, marked deleted.

        A CRM-born document's deal is only marked ``qbo_status=deleted`` (its stage is the salesperson's),
        and not even that for an estimate whose deal carries an invoice: the invoice's status stays."""
        invoiced = self._deals_with_invoice(
            [d.crm_deal for d in docs if d.crm_deal is not None and d.entity == "Estimate"]
        )
        updates = []
        for doc in docs:
            assert doc.link is not None and doc.link.hubspot_id is not None
            if doc.crm_deal is not None:
                if doc.entity == "Invoice" or doc.crm_deal not in invoiced:
                    updates.append(Update(doc.crm_deal, {prop.QBO_STATUS: DELETED_STATUS}))
                continue
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
        outcome = self.s.hubspot.batch_update("deals", updates) if updates else BatchOutcome()
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
            if doc.crm_deal is not None and doc.crm_deal in invoiced:
                continue  # nothing written: the deal shows its invoice
            self.s.metrics.count("DealsMarkedDeleted")

    def _deals_with_invoice(self, deal_ids: list[str]) -> set[str]:
        """Which of these deals carry a ``qbo_invoice_id`` (one batch read; none asked, no call)."""
        if not deal_ids:
            return set()
        found = self.s.hubspot.batch_read("deals", deal_ids, [prop.QBO_INVOICE_ID])
        return {deal_id for deal_id, deal in found.items() if deal.prop(prop.QBO_INVOICE_ID)}
