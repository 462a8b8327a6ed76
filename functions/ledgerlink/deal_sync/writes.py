"""The HubSpot writes of one realm's pass: deals (upsert by ``qbo_invoice_id`` / ``qbo_estimate_id``), their
line items (matched by ``qbo_line_id`` and written by HubSpot id, :mod:`~ledgerlink.deal_sync.line_items`:
line items have no unique properties to upsert by), v4 associations to companies and contacts only where
new, then the deals' owners (one batch read). A document QBO deleted
moves its deal to the voided (rejected) stage, marked ``qbo_status=deleted``: nothing is deleted in the CRM.

A write HubSpot refuses fails the documents it names only (207 errors by ``objectWriteTraceId``, refused
association pairs by deal); a record a user deleted in HubSpot is kept on the document (``Doc.gone``) so
the pass can write it again once (docs/deal-sync.md#records-deleted-in-hubspot).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_lambda_powertools import Logger

from ledgerlink.deal_sync.customers import Resolved
from ledgerlink.deal_sync.documents import DELETED_STATUS, Doc
from ledgerlink.deal_sync.line_items import DealLines, Line, LineItemSync
from ledgerlink.deal_sync.ports import SyncServices
from ledgerlink.hubspot.client import (
    AssociationsFailed,
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
        upserts = [d for d in docs if d.mapping is not None]
        deletes = [d for d in docs if d.deleted]
        new_deals: set[str] = set()  # deals this upsert created: they have no line items yet
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
