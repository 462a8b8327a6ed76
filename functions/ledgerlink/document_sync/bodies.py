"""The QBO Estimate and Invoice bodies for a deal (pure), and the fingerprint that tells whether a Pending
estimate still matches its deal.

Every body LedgerLink creates carries the origin marker in ``PrivateNote`` (the internal memo; the customer
never sees it): ``LedgerLink: HubSpot deal <id> (portal <portal>)``
(:func:`ledgerlink.mapping.origin.origin_marker`), so the deal sync puts the document on the same deal even
when QBO's webhook arrives before the crosswalk records it. Dates are the company's calendar day.

An invoice made from an estimate copies the estimate's lines (QBO does not) and links it with
``LinkedTxn: [{TxnId, TxnType: "Estimate"}]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from ledgerlink.document_sync.lines import SalesLine

# The estimate fields this flow owns: what the fingerprint covers and what an update sends.
OWNED_FIELDS = ("CustomerRef", "CurrencyRef", "Line")
# Line fields copied from an estimate into its invoice.
_COPIED_LINE_DETAIL = ("ItemRef", "Qty", "UnitPrice", "TaxCodeRef", "ServiceDate", "ClassRef")


def estimate_body(
    *,
    customer_id: str,
    lines: Sequence[SalesLine],
    txn_date: date,
    marker: str,
    currency: str | None,
    doc_number: str | None,
    expiration_days: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "TxnDate": txn_date.isoformat(),
        "Line": [line.body() for line in lines],
        "PrivateNote": marker,
        "TxnStatus": "Pending",
    }
    if currency:
        body["CurrencyRef"] = {"value": currency}
    if doc_number:
        body["DocNumber"] = doc_number
    if expiration_days:
        body["ExpirationDate"] = (txn_date + timedelta(days=expiration_days)).isoformat()
    return body


def invoice_from_deal(
    *,
    customer_id: str,
    lines: Sequence[SalesLine],
    txn_date: date,
    marker: str,
    currency: str | None,
    doc_number: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "TxnDate": txn_date.isoformat(),
        "Line": [line.body() for line in lines],
        "PrivateNote": marker,
    }
    if currency:
        body["CurrencyRef"] = {"value": currency}
    if doc_number:
        body["DocNumber"] = doc_number
    return body


def invoice_from_estimate(
    estimate: Mapping[str, Any], *, txn_date: date, marker: str, doc_number: str | None
) -> dict[str, Any]:
    """The invoice of an estimate: its customer, currency, lines (item, quantity, price, tax code, discount),
    transaction tax code, and the link."""
    lines: list[dict[str, Any]] = []
    for line in estimate.get("Line") or ():
        detail_type = line.get("DetailType")
        if detail_type == "SalesItemLineDetail":
            detail = line.get("SalesItemLineDetail") or {}
            copied: dict[str, Any] = {
                "DetailType": detail_type,
                "Amount": line.get("Amount"),
                "SalesItemLineDetail": {key: detail[key] for key in _COPIED_LINE_DETAIL if key in detail},
            }
            if line.get("Description"):
                copied["Description"] = line["Description"]
            lines.append(copied)
        elif detail_type == "DiscountLineDetail":
            detail = line.get("DiscountLineDetail") or {}
            lines.append(
                {
                    "DetailType": detail_type,
                    "Amount": line.get("Amount"),
                    "DiscountLineDetail": {
                        key: detail[key]
                        for key in ("PercentBased", "DiscountPercent", "DiscountAccountRef")
                        if key in detail
                    },
                }
            )
        elif detail_type == "DescriptionOnly":
            lines.append({"DetailType": detail_type, "Description": line.get("Description", "")})
        # SubTotalLineDetail and tax lines are QBO's own: it computes them again.
    body: dict[str, Any] = {
        "CustomerRef": {"value": str((estimate.get("CustomerRef") or {}).get("value"))},
        "TxnDate": txn_date.isoformat(),
        "Line": lines,
        "LinkedTxn": [{"TxnId": str(estimate["Id"]), "TxnType": "Estimate"}],
        "PrivateNote": marker,
    }
    currency = (estimate.get("CurrencyRef") or {}).get("value")
    if currency:
        body["CurrencyRef"] = {"value": currency}
    tax_code = ((estimate.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {}).get("value")
    if tax_code:
        body["TxnTaxDetail"] = {"TxnTaxCodeRef": {"value": tax_code}}
    if doc_number:
        body["DocNumber"] = doc_number
    return body


def links_estimate(invoice: Mapping[str, Any], estimate_id: str) -> bool:
    """Whether QBO kept the invoice's link to the estimate (it drops a link to a Closed or Rejected one)."""
    return any(
        str(link.get("TxnId")) == estimate_id and link.get("TxnType") == "Estimate"
        for link in invoice.get("LinkedTxn") or ()
    )


def fingerprint(body: Mapping[str, Any]) -> str:
    """A digest of the fields this flow owns, as the deal asks for them: equal digests, nothing to update."""
    owned = {
        key: _owned_lines(body[key]) if key == "Line" else body[key] for key in OWNED_FIELDS if key in body
    }
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _owned_lines(lines: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    owned = []
    for line in lines:
        detail = line.get("SalesItemLineDetail") or {}
        owned.append(
            {
                "Amount": _plain(Decimal(str(line.get("Amount", 0)))),
                "Description": line.get("Description", ""),
                "ItemRef": (detail.get("ItemRef") or {}).get("value"),
                "Qty": _plain(Decimal(str(detail.get("Qty", 0)))),
                "UnitPrice": _plain(Decimal(str(detail.get("UnitPrice", 0)))),
                "TaxCodeRef": (detail.get("TaxCodeRef") or {}).get("value"),
            }
        )
    return owned


def _plain(value: Any) -> str:
    if isinstance(value, Decimal):
        normalized = value.normalize()
        return format(normalized, "f")
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
