"""The HubSpot custom properties LedgerLink writes, one catalogue for the mapper and for setup.

Names are snake case without a vendor prefix and start with ``qbo_`` because they hold QBO
facts. ``hubspot setup`` creates them from :data:`CUSTOM_PROPERTIES` (each spec renders the
body of ``POST /crm/v3/properties/{objectType}``); the mapper only ever writes names listed
here or HubSpot's own default properties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Unique ids: the idProperty of batch upserts (docs/mapping.md#identifiers).
QBO_INVOICE_ID = "qbo_invoice_id"
QBO_ESTIMATE_ID = "qbo_estimate_id"
QBO_CUSTOMER_ID = "qbo_customer_id"
# The key of a line item, but not a unique property: HubSpot offers unique values on contacts,
# companies, deals, tickets and custom objects only, so the deal sync matches line items by it
# (ledgerlink.deal_sync.line_items).
QBO_LINE_ID = "qbo_line_id"

QBO_REALM_ID = "qbo_realm_id"
QBO_DOC_NUMBER = "qbo_doc_number"
QBO_TXN_DATE = "qbo_txn_date"
QBO_DUE_DATE = "qbo_due_date"
QBO_EXPIRATION_DATE = "qbo_expiration_date"
QBO_BALANCE = "qbo_balance"
QBO_STATUS = "qbo_status"
QBO_LAST_UPDATED = "qbo_last_updated"
QBO_TAX_AMOUNT = "qbo_tax_amount"
QBO_DISCOUNT_AMOUNT = "qbo_discount_amount"
QBO_TAX_CODE = "qbo_tax_code"
QBO_SERVICE_DATE = "qbo_service_date"
QBO_ITEM_ID = "qbo_item_id"
QBO_QUANTITY = "qbo_quantity"
QBO_UNIT_PRICE = "qbo_unit_price"

PROPERTY_GROUP = "ledgerlink"

# Every value qbo_status can take (invoice and estimate statuses share the property).
STATUS_OPTIONS: tuple[tuple[str, str], ...] = (
    ("open", "Open"),
    ("overdue", "Overdue"),
    ("partially_paid", "Partially paid"),
    ("paid", "Paid"),
    ("voided", "Voided"),
    ("pending", "Estimate pending"),
    ("accepted", "Estimate accepted"),
    ("closed", "Estimate closed (invoiced)"),
    ("rejected", "Estimate rejected"),
    ("expired", "Estimate expired"),
    # Set by the sync when QBO deleted the document: the deal stays, moved to the voided stage.
    ("deleted", "Deleted in QBO"),
)

_FIELD_TYPE = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "enumeration": "select",
}


@dataclass(frozen=True)
class PropertySpec:
    name: str
    label: str
    type: str  # HubSpot property type: string | number | date | datetime | enumeration
    description: str
    unique: bool = False
    options: tuple[tuple[str, str], ...] = ()

    def create_body(self) -> dict[str, Any]:
        """The PropertyCreate body for ``POST /crm/v3/properties/{objectType}``."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": _FIELD_TYPE[self.type],
            "groupName": PROPERTY_GROUP,
            "description": self.description,
            "hasUniqueValue": self.unique,
        }
        if self.options:
            body["options"] = [
                {"label": label, "value": value, "hidden": False, "displayOrder": order}
                for order, (value, label) in enumerate(self.options)
            ]
        return body


_REALM = PropertySpec(
    QBO_REALM_ID, "QBO company (realm) id", "string", "QuickBooks Online company this record came from."
)

CUSTOM_PROPERTIES: dict[str, tuple[PropertySpec, ...]] = {
    "deals": (
        PropertySpec(
            QBO_INVOICE_ID, "QBO invoice key", "string", "<realm>:<invoice Id>; unique.", unique=True
        ),
        PropertySpec(
            QBO_ESTIMATE_ID, "QBO estimate key", "string", "<realm>:<estimate Id>; unique.", unique=True
        ),
        _REALM,
        PropertySpec(
            QBO_DOC_NUMBER, "QBO document number", "string", "DocNumber of the invoice or estimate."
        ),
        PropertySpec(QBO_CUSTOMER_ID, "QBO customer key", "string", "<realm>:<customer Id> of the document."),
        PropertySpec(QBO_TXN_DATE, "QBO transaction date", "date", "TxnDate of the document."),
        PropertySpec(QBO_DUE_DATE, "QBO due date", "date", "DueDate of the invoice."),
        PropertySpec(QBO_EXPIRATION_DATE, "QBO expiration date", "date", "ExpirationDate of the estimate."),
        PropertySpec(QBO_BALANCE, "QBO open balance", "number", "Balance still owed, in the deal currency."),
        PropertySpec(QBO_TAX_AMOUNT, "QBO tax", "number", "TxnTaxDetail.TotalTax, in the deal currency."),
        PropertySpec(QBO_DISCOUNT_AMOUNT, "QBO discount", "number", "Sum of the discount lines."),
        PropertySpec(
            QBO_STATUS, "QBO status", "enumeration", "Derived document status.", options=STATUS_OPTIONS
        ),
        PropertySpec(QBO_LAST_UPDATED, "QBO last updated", "datetime", "MetaData.LastUpdatedTime in QBO."),
    ),
    "line_items": (
        PropertySpec(
            QBO_LINE_ID,
            "QBO line key",
            "string",
            "<realm>:<document>:<line Id> of the QBO line this line item mirrors.",
        ),
        _REALM,
        PropertySpec(QBO_ITEM_ID, "QBO item id", "string", "ItemRef.value of the line."),
        PropertySpec(QBO_TAX_CODE, "QBO tax code", "string", "TaxCodeRef.value of the line."),
        PropertySpec(QBO_SERVICE_DATE, "QBO service date", "date", "ServiceDate of the line."),
        PropertySpec(QBO_QUANTITY, "QBO quantity", "number", "Qty as entered in QBO."),
        PropertySpec(QBO_UNIT_PRICE, "QBO unit price", "number", "UnitPrice as entered in QBO."),
    ),
    "companies": (
        PropertySpec(
            QBO_CUSTOMER_ID, "QBO customer key", "string", "<realm>:<customer Id>; unique.", unique=True
        ),
        _REALM,
    ),
    "contacts": (
        PropertySpec(
            QBO_CUSTOMER_ID, "QBO customer key", "string", "<realm>:<customer Id> this contact is for."
        ),
        _REALM,
    ),
}


# HubSpot's own default properties the mapper writes (HubSpot knowledge base, "default properties").
HUBSPOT_DEFAULT_PROPERTIES: dict[str, frozenset[str]] = {
    "deals": frozenset({"dealname", "amount", "deal_currency_code", "closedate", "pipeline", "dealstage"}),
    "line_items": frozenset(
        {
            "name",
            "description",
            "quantity",
            "price",
            "discount",
            "amount",
            "hs_sku",
            "hs_line_item_currency_code",
            "hs_position_on_quote",
        }
    ),
    "companies": frozenset(
        {"name", "domain", "website", "phone", "address", "address2", "city", "state", "zip", "country"}
    ),
    "contacts": frozenset(
        {"email", "firstname", "lastname", "phone", "company", "address", "city", "state", "zip", "country"}
    ),
}


def custom_property_names(object_type: str) -> frozenset[str]:
    return frozenset(spec.name for spec in CUSTOM_PROPERTIES[object_type])
