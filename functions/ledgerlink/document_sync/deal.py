"""The deal as HubSpot shows it now: stage, pipeline, amount, currency, line items with their products,
its company and contacts (:class:`DealReader`, a handful of HubSpot calls per deal).

The flow never trusts what a webhook claimed: it reads the deal again here and acts on that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Final

from ledgerlink.hubspot.client import HubSpotClient, HubSpotObject
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.identity import first_email

DEAL_PROPERTIES: Final = (
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "deal_currency_code",
    "hubspot_owner_id",
    prop.QBO_ESTIMATE_ID,
    prop.QBO_INVOICE_ID,
)
LINE_ITEM_PROPERTIES: Final = (
    "name",
    "description",
    "quantity",
    "price",
    "discount",
    "hs_discount_percentage",
    "hs_sku",
    "hs_product_id",
    "hs_position_on_quote",
    prop.QBO_TAX_CODE,
)
PRODUCT_PROPERTIES: Final = ("name", "hs_sku")
COMPANY_PROPERTIES: Final = (
    "name",
    "domain",
    "website",
    "phone",
    "address",
    "address2",
    "city",
    "state",
    "zip",
    "country",
    prop.QBO_CUSTOMER_ID,
)
CONTACT_PROPERTIES: Final = ("email", "firstname", "lastname", "phone")
# Keys under "associations" in HubSpot's v3 object read (line items' key has a space).
_LINE_ITEM_KEYS: Final = ("line items", "line_items")
# The v3 association type HubSpot gives a deal's primary company.
PRIMARY_COMPANY_TYPE: Final = "deal_to_company"


@dataclass(frozen=True)
class CrmLine:
    id: str
    name: str
    description: str
    quantity: Decimal
    price: Decimal
    unit_discount: Decimal
    discount_percentage: Decimal
    sku: str
    product_id: str | None
    tax_code: str | None
    position: int

    @property
    def label(self) -> str:
        """Names the line in every error: 'line item 81003 "Consulting hour" (SKU CONS-HR)'."""
        sku = f" (SKU {self.sku})" if self.sku else " (no SKU)"
        return f'line item {self.id} "{self.name}"{sku}'


@dataclass(frozen=True)
class CrmCompany:
    id: str
    name: str
    domain: str
    website: str
    phone: str
    address: Mapping[str, str]
    qbo_customer_key: str


@dataclass(frozen=True)
class CrmContact:
    id: str
    email: str | None
    first_name: str
    last_name: str
    phone: str

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


@dataclass(frozen=True)
class CrmDeal:
    id: str
    name: str
    stage: str
    pipeline: str
    amount: Decimal | None
    currency: str | None
    owner_id: str | None
    estimate_key: str
    invoice_key: str
    lines: tuple[CrmLine, ...]
    company: CrmCompany | None
    contacts: tuple[CrmContact, ...]


@dataclass(frozen=True)
class DealHead:
    """What one read of the deal says (its properties and whom it is associated with): enough to decide,
    before its line items, company and contacts are read."""

    deal: CrmDeal
    line_item_ids: tuple[str, ...]
    company_ids: tuple[str, ...]
    contact_ids: tuple[str, ...]


class DealReader:
    """Reads deals of one portal (``HubSpotClient``): :meth:`head` in one call, :meth:`complete` for the rest
    (line items, products, company, contacts) only when a document is to be written."""

    def __init__(self, hubspot: HubSpotClient) -> None:
        self.hubspot = hubspot

    def head(self, deal_id: str) -> DealHead | None:
        """The deal now, without its details; None when HubSpot has no such deal (deleted, merged away)."""
        found = self.hubspot.read_with_associations(
            "deals", deal_id, DEAL_PROPERTIES, ("line_items", "companies", "contacts")
        )
        if found is None:
            return None
        deal, associated = found
        return DealHead(
            deal=CrmDeal(
                id=deal.id,
                name=deal.prop("dealname"),
                stage=deal.prop("dealstage"),
                pipeline=deal.prop("pipeline") or "default",
                amount=_decimal(deal.prop("amount")),
                currency=deal.prop("deal_currency_code").upper() or None,
                owner_id=deal.prop("hubspot_owner_id") or None,
                estimate_key=deal.prop(prop.QBO_ESTIMATE_ID),
                invoice_key=deal.prop(prop.QBO_INVOICE_ID),
                lines=(),
                company=None,
                contacts=(),
            ),
            line_item_ids=tuple(line_id for key in _LINE_ITEM_KEYS for line_id, _ in associated.get(key, [])),
            company_ids=tuple(_primary_first(associated.get("companies", []))),
            contact_ids=tuple(contact_id for contact_id, _ in associated.get("contacts", [])),
        )

    def complete(self, head: DealHead) -> CrmDeal:
        """The deal with its line items (and their products' SKUs), primary company and contacts."""
        return replace(
            head.deal,
            lines=self._lines(head.line_item_ids),
            company=self._company(head.company_ids[0]) if head.company_ids else None,
            contacts=self._contacts(head.contact_ids),
        )

    def deals_of_line_items(self, line_item_ids: Sequence[str]) -> dict[str, list[str]]:
        """The deals each line item belongs to, in one batch call for all of them."""
        if not line_item_ids:
            return {}
        found = self.hubspot.associations("line_items", "deals", line_item_ids)
        return {line_id: sorted(set(found.get(line_id, []))) for line_id in line_item_ids}

    def _lines(self, ids: Sequence[str]) -> tuple[CrmLine, ...]:
        if not ids:
            return ()
        records = self.hubspot.batch_read("line_items", ids, LINE_ITEM_PROPERTIES)
        # A line item made from a product may carry the product's SKU only on the product.
        products_needed = {
            r.prop("hs_product_id")
            for r in records.values()
            if not r.prop("hs_sku") and r.prop("hs_product_id")
        }
        products = (
            self.hubspot.batch_read("products", products_needed, PRODUCT_PROPERTIES)
            if products_needed
            else {}
        )
        lines = [_line(record, products.get(record.prop("hs_product_id"))) for record in records.values()]
        # The order a person sees on the quote: HubSpot's position, then the id (creation order).
        return tuple(sorted(lines, key=lambda line: (line.position, len(line.id), line.id)))

    def _company(self, company_id: str) -> CrmCompany | None:
        record = self.hubspot.batch_read("companies", [company_id], COMPANY_PROPERTIES).get(company_id)
        if record is None:
            return None
        return CrmCompany(
            id=record.id,
            name=record.prop("name"),
            domain=record.prop("domain").lower(),
            website=record.prop("website"),
            phone=record.prop("phone"),
            address={
                key: record.prop(key)
                for key in ("address", "address2", "city", "state", "zip", "country")
                if record.prop(key)
            },
            qbo_customer_key=record.prop(prop.QBO_CUSTOMER_ID),
        )

    def _contacts(self, ids: Sequence[str]) -> tuple[CrmContact, ...]:
        if not ids:
            return ()
        records = self.hubspot.batch_read("contacts", ids, CONTACT_PROPERTIES)
        return tuple(
            CrmContact(
                id=records[contact_id].id,
                email=first_email(records[contact_id].prop("email")),
                first_name=records[contact_id].prop("firstname"),
                last_name=records[contact_id].prop("lastname"),
                phone=records[contact_id].prop("phone"),
            )
            for contact_id in ids
            if contact_id in records
        )


def _primary_first(pairs: Sequence[tuple[str, str]]) -> list[str]:
    primary = [company_id for company_id, kind in pairs if kind == PRIMARY_COMPANY_TYPE]
    others = [company_id for company_id, _ in pairs if company_id not in primary]
    return list(dict.fromkeys(primary + others))


def _line(record: HubSpotObject, product: HubSpotObject | None) -> CrmLine:
    position = _decimal(record.prop("hs_position_on_quote"))
    return CrmLine(
        id=record.id,
        name=record.prop("name") or (product.prop("name") if product else ""),
        description=record.prop("description"),
        quantity=_decimal(record.prop("quantity")) or Decimal(1),
        price=_decimal(record.prop("price")) or Decimal(0),
        unit_discount=_decimal(record.prop("discount")) or Decimal(0),
        discount_percentage=_decimal(record.prop("hs_discount_percentage")) or Decimal(0),
        sku=record.prop("hs_sku") or (product.prop("hs_sku") if product else ""),
        product_id=record.prop("hs_product_id") or None,
        tax_code=record.prop(prop.QBO_TAX_CODE) or None,
        position=int(position) if position is not None else 1_000_000,
    )


def _decimal(text: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None
