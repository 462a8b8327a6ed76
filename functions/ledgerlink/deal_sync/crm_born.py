"""CRM-born documents: the QBO Estimates and Invoices LedgerLink created for a HubSpot deal.

The HubSpot → QBO flow creates them; the QBO webhooks its writes cause come back to this sync, which
must land each on that deal (docs/mapping.md#crm-born-documents). A document is CRM-born when its
crosswalk link says ``origin`` ``"hubspot"`` (the deal is the link's ``hubspot_id``) or, before that link
exists, when its ``PrivateNote`` carries the marker for this connection's portal
(:func:`ledgerlink.mapping.origin.origin_deal`).

On its deal the sync writes the books' properties only (:func:`books_properties`): the deal's name,
amount, currency, close date, pipeline, stage, line items and associations are the salesperson's. An
estimate QBO already turned into an invoice writes its key only, so the invoice's values win on the
deal whatever order the two webhooks arrive in.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ledgerlink.crosswalk import Link
from ledgerlink.deal_sync.mapping import DealMapping
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.origin import ORIGIN_HUBSPOT, origin_deal

# What a CRM-born document writes on its deal: the QBO facts (LedgerLink's custom deal properties).
BOOKS_PROPERTIES: Final = prop.custom_property_names("deals")
# The TxnStatus values QBO gives an estimate that became an invoice (see mapping.stages).
_INVOICED_TXN_STATUSES: Final = frozenset({"closed", "converted"})


def crm_deal(link: Link | None, document: Mapping[str, Any] | None, portal_id: str) -> str | None:
    """The HubSpot deal a QBO document was created for, or None for a document QBO users made.

    The link decides when it says so. Without it, the note's marker for ``portal_id`` does, unless the
    link names another deal: this sync wrote the document there before because the marked deal was
    gone from HubSpot (:meth:`~ledgerlink.deal_sync.writes.DealWriter.write`), and that deal is the
    document's from then on.
    """
    if link is not None and link.origin == ORIGIN_HUBSPOT and link.hubspot_id:
        return link.hubspot_id
    if document is None:
        return None
    marked = origin_deal(document.get("PrivateNote"), portal_id)
    if marked is None:
        return None
    if link is not None and link.hubspot_id and link.hubspot_id != marked:
        return None
    return marked


def estimate_invoiced(estimate: Mapping[str, Any]) -> bool:
    """Whether QBO already turned the estimate into an invoice: it links one (``LinkedTxn`` of
    ``TxnType`` Invoice) or says Closed/Converted."""
    if any(
        linked.get("TxnType") == "Invoice"
        for linked in estimate.get("LinkedTxn") or ()
        if isinstance(linked, Mapping)
    ):
        return True
    return str(estimate.get("TxnStatus") or "").strip().lower() in _INVOICED_TXN_STATUSES


def books_properties(entity: str, document: Mapping[str, Any], mapping: DealMapping) -> dict[str, str]:
    """The properties a CRM-born document writes on its deal (by id, never an upsert).

    An invoice, or an estimate not yet invoiced: the mapped books' properties (its key, realm, number,
    customer, dates, balance, tax, discount, status, last update). An invoiced estimate: its key only,
    so the deal keeps its invoice's status, balance and number.
    """
    if entity == "Estimate" and estimate_invoiced(document):
        return {mapping.deal.id_property: mapping.deal.id}
    return {name: value for name, value in mapping.deal.properties.items() if name in BOOKS_PROPERTIES}
