"""The deal's line items as QBO sales lines (pure): which QBO Item each is, its quantity, net unit price and
tax code (docs/document-sync.md#lines).

Item, first rule that finds one wins: the line's SKU (``hs_sku``, from its product when the line has
none) equals an active item's ``Sku`` exactly (case-sensitive, as marketplace integrations match); the
line's name equals an item's ``Name`` exactly; the connection's ``default_item`` (Id or Name). Otherwise
the record fails naming the line and its SKU — that deal only.

QBO has no per-unit discount on a sales line, so a HubSpot unit discount (``discount``) or discount
percentage becomes the net unit price, and the line's description keeps the list price and discount.
Tax: a US company takes ``TAX`` / ``NON`` (the line item's ``qbo_tax_code`` when it says one of them, else
the item's ``Taxable``); any other company needs a QBO TaxCode per line: the line item's ``qbo_tax_code``
(an Id, or a name in the connection's tax-code table or the company's codes), else the configured
``default_tax_code``, else the record fails with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ledgerlink.configfile import QboDocumentSettings, TaxCode
from ledgerlink.document_sync.deal import CrmDeal, CrmLine
from ledgerlink.document_sync.errors import DocumentRefused, MissingTaxCode, UnmatchedItem
from ledgerlink.money import format_number, quantum

US_TAX_CODES = ("TAX", "NON")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class QboItem:
    id: str
    name: str
    sku: str
    taxable: bool

    @classmethod
    def from_qbo(cls, raw: Mapping[str, Any]) -> QboItem:
        return cls(
            id=str(raw.get("Id") or ""),
            name=str(raw.get("Name") or "").strip(),
            sku=str(raw.get("Sku") or "").strip(),
            taxable=bool(raw.get("Taxable", False)),
        )


class Catalog:
    """The company's active items, looked up by SKU, by name and by Id."""

    def __init__(self, items: Iterable[QboItem]) -> None:
        self.items = tuple(items)
        self._by_sku: dict[str, QboItem] = {}
        self._by_name: dict[str, QboItem] = {}
        self._by_id = {item.id: item for item in self.items}
        for item in sorted(self.items, key=lambda i: (len(i.id), i.id)):
            if item.sku:
                self._by_sku.setdefault(item.sku, item)
            self._by_name.setdefault(item.name, item)

    def by_sku(self, sku: str) -> QboItem | None:
        return self._by_sku.get(sku) if sku else None

    def by_name(self, name: str) -> QboItem | None:
        return self._by_name.get(name.strip()) if name.strip() else None

    def by_id_or_name(self, value: str) -> QboItem | None:
        return self._by_id.get(value) or self.by_name(value)


@dataclass(frozen=True)
class TaxRules:
    """How this company taxes lines: US (``TAX``/``NON``) or by TaxCode Id."""

    us: bool
    # The company's tax codes (Id -> name) and the configuration's table (Id -> label), for names.
    company_codes: Mapping[str, str]
    table: Mapping[str, TaxCode]
    default_code: str | None

    def code_for(self, deal_id: str, line: CrmLine, item: QboItem) -> str:
        given = (line.tax_code or "").strip()
        if self.us:
            if given.upper() in US_TAX_CODES:
                return given.upper()
            return "TAX" if item.taxable else "NON"
        if given:
            resolved = self._resolve(given)
            if resolved is None:
                raise MissingTaxCode(
                    deal_id,
                    f"{line.label}: qbo_tax_code {given!r} is not a tax code of the QBO company "
                    f"(known: {', '.join(self._known()) or 'none'})",
                )
            return resolved
        if self.default_code:
            return self.default_code
        raise MissingTaxCode(
            deal_id,
            f"{line.label}: no tax code; outside the US every line needs one: set qbo_tax_code on the line "
            "item, or qbo_documents.default_tax_code in the configuration file",
        )

    def _resolve(self, value: str) -> str | None:
        if value in self.company_codes or value in self.table:
            return value
        lowered = value.casefold()
        for code_id, name in (*self.company_codes.items(), *((k, v.name) for k, v in self.table.items())):
            if name.casefold() == lowered:
                return code_id
        return None

    def _known(self) -> list[str]:
        return sorted({*self.company_codes, *self.table}, key=lambda v: (len(v), v))


@dataclass(frozen=True)
class SalesLine:
    """One QBO ``SalesItemLineDetail`` line and how its item was found."""

    item: QboItem
    matched_by: str  # "sku" | "name" | "default"
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tax_code: str
    description: str

    def body(self) -> dict[str, Any]:
        return {
            "DetailType": "SalesItemLineDetail",
            "Amount": self.amount,
            "Description": self.description,
            "SalesItemLineDetail": {
                "ItemRef": {"value": self.item.id, "name": self.item.name},
                "Qty": self.quantity,
                "UnitPrice": self.unit_price,
                "TaxCodeRef": {"value": self.tax_code},
            },
        }


def sales_lines(
    deal: CrmDeal,
    catalog: Catalog,
    tax: TaxRules,
    settings: QboDocumentSettings,
    *,
    currency: str,
) -> list[SalesLine]:
    """The QBO lines for the deal's line items (one line for the deal amount when it has none)."""
    if not deal.lines:
        return [_amount_line(deal, catalog, tax, settings, currency)]
    problems: list[str] = []
    lines: list[SalesLine] = []
    for line in deal.lines:
        try:
            lines.append(_line(deal.id, line, catalog, tax, settings, currency))
        except UnmatchedItem as error:
            problems.append(error.problem)
    if problems:
        raise UnmatchedItem(deal.id, "; ".join(problems))
    return lines


def _line(
    deal_id: str,
    line: CrmLine,
    catalog: Catalog,
    tax: TaxRules,
    settings: QboDocumentSettings,
    currency: str,
    *,
    only_default: bool = False,
) -> SalesLine:
    item, matched_by = _item(deal_id, line, catalog, settings, only_default=only_default)
    if line.quantity <= 0:
        raise DocumentRefused(deal_id, f"{line.label}: quantity {line.quantity} must be positive")
    if line.price < 0:
        raise DocumentRefused(deal_id, f"{line.label}: price {line.price} must not be negative")
    discount = line.unit_discount + (line.price * line.discount_percentage / HUNDRED)
    net = line.price - discount
    if net < 0:
        raise DocumentRefused(deal_id, f"{line.label}: the discount is more than the price")
    amount = (line.quantity * net).quantize(quantum(currency), rounding=ROUND_HALF_UP)
    description = line.description or line.name
    if discount:
        description = (
            f"{description} (list price {format_number(line.price)}, "
            f"discount {format_number(discount.normalize())} per unit)"
        )
    return SalesLine(
        item=item,
        matched_by=matched_by,
        quantity=line.quantity,
        unit_price=net.normalize() if net else Decimal(0),
        amount=amount,
        tax_code=tax.code_for(deal_id, line, item),
        description=description[:4000],
    )


def _item(
    deal_id: str, line: CrmLine, catalog: Catalog, settings: QboDocumentSettings, *, only_default: bool
) -> tuple[QboItem, str]:
    if not only_default:
        by_sku = catalog.by_sku(line.sku)
        if by_sku is not None:
            return by_sku, "sku"
        by_name = catalog.by_name(line.name)
        if by_name is not None:
            return by_name, "name"
    if settings.default_item:
        default = catalog.by_id_or_name(settings.default_item)
        if default is None:
            raise UnmatchedItem(
                deal_id,
                f"{line.label}: no QBO item matches, and the default item {settings.default_item!r} "
                "is not an active item of the company",
            )
        return default, "default"
    raise UnmatchedItem(
        deal_id,
        f"{line.label}: no active QBO item has SKU {line.sku!r} or name {line.name!r}, and no "
        "qbo_documents.default_item is configured"
        if line.sku
        else f"{line.label}: no active QBO item is named {line.name!r}, and no qbo_documents.default_item "
        "is configured",
    )


def _amount_line(
    deal: CrmDeal, catalog: Catalog, tax: TaxRules, settings: QboDocumentSettings, currency: str
) -> SalesLine:
    if deal.amount is None or deal.amount <= 0:
        raise DocumentRefused(deal.id, "the deal has no line items and no positive amount")
    pseudo = CrmLine(
        id=f"deal-{deal.id}",
        name=deal.name or f"Deal {deal.id}",
        description=deal.name or f"Deal {deal.id}",
        quantity=Decimal(1),
        price=deal.amount,
        unit_discount=Decimal(0),
        discount_percentage=Decimal(0),
        sku="",
        product_id=None,
        tax_code=None,
        position=0,
    )
    if not settings.default_item:
        raise UnmatchedItem(
            deal.id, "the deal has no line items; set qbo_documents.default_item to invoice its amount"
        )
    return _line(deal.id, pseudo, catalog, tax, settings, currency, only_default=True)


def lines_total(lines: Sequence[SalesLine]) -> Decimal:
    return sum((line.amount for line in lines), Decimal(0))
