"""Deal line items as QBO sales lines: item matching, discounts, tax codes."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from ledgerlink.configfile import QboDocumentSettings, TaxCode
from ledgerlink.document_sync.deal import CrmDeal, CrmLine
from ledgerlink.document_sync.errors import DocumentRefused, MissingTaxCode, UnmatchedItem
from ledgerlink.document_sync.lines import Catalog, QboItem, TaxRules, sales_lines

CATALOG = Catalog(
    [
        QboItem(id="1", name="Services", sku="", taxable=False),
        QboItem(id="11", name="Rocket skates", sku="RS-100", taxable=True),
        QboItem(id="12", name="Giant magnet", sku="gm-7", taxable=False),
    ]
)
US = TaxRules(us=True, company_codes={}, table={}, default_code=None)
LINE = CrmLine(
    id="81001",
    name="Rocket skates, pair",
    description="",
    quantity=Decimal(2),
    price=Decimal(400),
    unit_discount=Decimal(0),
    discount_percentage=Decimal(0),
    sku="RS-100",
    product_id=None,
    tax_code=None,
    position=0,
)
DEAL = CrmDeal(
    id="91001", name="Skates", stage="contractsent", pipeline="default", amount=Decimal(800), currency="USD",
    owner_id=None, estimate_key="", invoice_key="", lines=(LINE,), company=None, contacts=(),
)  # fmt: skip


def lines_of(*lines: CrmLine, settings: QboDocumentSettings | None = None, tax: TaxRules = US) -> list:  # type: ignore[type-arg]
    return sales_lines(
        replace(DEAL, lines=lines), CATALOG, tax, settings or QboDocumentSettings(), currency="USD"
    )


def test_an_item_is_found_by_exact_sku_then_exact_name_then_the_default() -> None:
    by_sku = LINE
    by_name = replace(LINE, id="2", name="Giant magnet", sku="GM-7")  # SKUs match case-sensitively: not gm-7
    by_default = replace(LINE, id="3", name="Paint", sku="")
    found = lines_of(by_sku, by_name, by_default, settings=QboDocumentSettings(default_item="Services"))
    assert [(line.item.id, line.matched_by) for line in found] == [
        ("11", "sku"),
        ("12", "name"),
        ("1", "default"),
    ]


def test_an_unmatched_line_without_a_default_fails_naming_every_such_line_and_its_sku() -> None:
    with pytest.raises(UnmatchedItem) as raised:
        lines_of(replace(LINE, name="Anvil", sku="ANV-1"), replace(LINE, id="9", name="Rope", sku=""))
    assert "ANV-1" in str(raised.value) and "Anvil" in str(raised.value) and "Rope" in str(raised.value)
    assert raised.value.retryable is False


def test_a_unit_discount_becomes_the_net_unit_price_and_the_description_keeps_the_list_price() -> None:
    [line] = lines_of(
        replace(LINE, quantity=Decimal(3), price=Decimal("19.99"), unit_discount=Decimal("2.50"))
    )
    assert line.unit_price == Decimal("17.49") and line.amount == Decimal("52.47")
    assert "list price 19.99" in line.description and "discount 2.5 per unit" in line.description
    body = line.body()
    assert body["Amount"] == body["SalesItemLineDetail"]["Qty"] * body["SalesItemLineDetail"]["UnitPrice"]


def test_a_discount_percentage_is_taken_off_the_unit_price() -> None:
    [line] = lines_of(replace(LINE, quantity=Decimal(1), price=Decimal(200), discount_percentage=Decimal(10)))
    assert line.unit_price == Decimal(180) and line.amount == Decimal("180.00")


def test_a_discount_larger_than_the_price_is_refused() -> None:
    with pytest.raises(DocumentRefused, match="more than the price"):
        lines_of(replace(LINE, unit_discount=Decimal(500)))


def test_us_lines_are_tax_or_non_from_the_item_unless_the_line_says() -> None:
    taxable, exempt, told = lines_of(
        LINE, replace(LINE, id="2", name="Giant magnet", sku=""), replace(LINE, id="3", tax_code="non")
    )
    assert (taxable.tax_code, exempt.tax_code, told.tax_code) == ("TAX", "NON", "NON")


def test_outside_the_us_each_line_needs_a_tax_code_from_the_line_the_table_or_the_default() -> None:
    gb = TaxRules(
        us=False,
        company_codes={"2": "20.0% S", "4": "0.0% Z"},
        table={"2": TaxCode(name="20.0% S", rate_percent=20)},
        default_code=None,
    )
    by_id, by_name = lines_of(replace(LINE, tax_code="4"), replace(LINE, id="2", tax_code="20.0% s"), tax=gb)
    assert (by_id.tax_code, by_name.tax_code) == ("4", "2")
    with pytest.raises(MissingTaxCode, match="no tax code"):
        lines_of(LINE, tax=gb)
    with pytest.raises(MissingTaxCode, match="is not a tax code"):
        lines_of(replace(LINE, tax_code="VAT99"), tax=gb)
    [defaulted] = lines_of(LINE, tax=replace(gb, default_code="2"))
    assert defaulted.tax_code == "2"


def test_a_deal_without_line_items_is_one_line_for_its_amount_on_the_default_item() -> None:
    [line] = sales_lines(
        replace(DEAL, lines=()), CATALOG, US, QboDocumentSettings(default_item="1"), currency="USD"
    )
    assert (line.item.id, line.amount, line.matched_by) == ("1", Decimal("800.00"), "default")
    with pytest.raises(UnmatchedItem, match="default_item"):
        sales_lines(replace(DEAL, lines=()), CATALOG, US, QboDocumentSettings(), currency="USD")
