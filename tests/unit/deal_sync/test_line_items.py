"""QBO invoice lines → HubSpot line items: discounts, tax, sub-totals, notes, groups.

Rules: docs/mapping.md#line-items.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from ledgerlink.deal_sync.errors import TotalMismatch
from ledgerlink.deal_sync.mapping import DealMapping, UpsertInput, map_invoice
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.stages import default_invoice_stages
from tests.unit.deal_sync.helpers import REALM, at, company, qbo_entity

NOW = at("2025-05-20T12:00:00-04:00")


def mapped(fixture: str, **kwargs: Any) -> DealMapping:
    return map_invoice(qbo_entity(fixture), company(), default_invoice_stages(), now=NOW, **kwargs)


def hubspot_amount(item: UpsertInput) -> Decimal:
    """What HubSpot computes for a line item: price * quantity - discount * quantity."""
    props = item.properties
    quantity = Decimal(props["quantity"])
    return Decimal(props["price"]) * quantity - Decimal(props["discount"]) * quantity


def summary(items: Sequence[UpsertInput]) -> list[tuple[str, str, str, str, str]]:
    return [
        (p["name"], p["quantity"], p["price"], p["discount"], p["amount"])
        for p in (item.properties for item in items)
    ]


def assert_adds_up(result: DealMapping) -> None:
    """The invariant: line item amounts (tax line included) sum to the deal amount, and HubSpot agrees."""
    total = sum((Decimal(item.properties["amount"]) for item in result.line_items), Decimal(0))
    assert total == Decimal(result.deal.properties["amount"])
    for item in result.line_items:
        assert hubspot_amount(item) == Decimal(item.properties["amount"]), item.properties["name"]
        assert Decimal(item.properties["price"]) >= 0, "HubSpot refuses a negative price"


def test_sales_lines_carry_item_quantity_price_tax_code_and_service_date() -> None:
    # given the plain invoice (two sales lines and a sub-total) and a known SKU for item 5
    # when it is mapped
    result = mapped("invoice_plain.json", item_skus={"5": "RF-4FT"})

    # then each sales line is one line item keyed by realm, invoice and line id; the sub-total is not
    assert [item.id for item in result.line_items] == [f"{REALM}:130:1", f"{REALM}:130:2"]
    first, second = (item.properties for item in result.line_items)
    assert first == {
        "name": "Rock Fountain",
        "description": "Rock Fountain, 4ft, installed",
        "quantity": "1",
        "price": "275",
        "discount": "0",
        "amount": "275.00",
        "hs_sku": "RF-4FT",
        "hs_line_item_currency_code": "USD",
        "hs_position_on_quote": "0",
        "qbo_line_id": f"{REALM}:130:1",
        "qbo_realm_id": REALM,
        "qbo_item_id": "5",
        "qbo_tax_code": "NON",
        "qbo_service_date": "",
        "qbo_quantity": "1",
        "qbo_unit_price": "275",
    }
    assert (second["name"], second["quantity"], second["price"], second["amount"]) == (
        "Pump",
        "3",
        "12.5",
        "37.50",
    )
    assert second["hs_sku"] == ""
    assert second["qbo_service_date"] == "1741910400000"  # 2025-03-14T00:00:00Z
    assert second["hs_position_on_quote"] == "1"
    assert_adds_up(result)


def test_tax_becomes_a_tax_line_item() -> None:
    # given an invoice with TxnTaxDetail.TotalTax 27.40 on two of three lines
    result = mapped("invoice_tax.json")

    # then a "Tax" line item carries the tax after the sales lines, so lines + tax = total
    assert summary(result.line_items) == [
        ("Rock Fountain", "1", "275", "0", "275.00"),
        ("Garden Rocks", "3", "22.5", "0", "67.50"),
        ("Pest Control", "1", "35", "0", "35.00"),
        ("Tax", "1", "27.4", "0", "27.40"),
    ]
    tax = result.line_items[-1]
    assert tax.id == f"{REALM}:134:tax"
    assert tax.properties["qbo_tax_code"] == "2"
    assert tax.properties["description"] == "California"
    assert [item.properties["qbo_tax_code"] for item in result.line_items[:3]] == ["TAX", "TAX", "NON"]
    assert result.deal.properties["qbo_tax_amount"] == "27.40"
    assert_adds_up(result)


def test_percent_discount_is_spread_over_the_lines_as_per_unit_discounts() -> None:
    # given 3 x 40.00 and 1 x 80.00 with a 10% discount (20.00) and tax after the discount
    result = mapped("invoice_discount_percent.json")

    # then each line carries its share as HubSpot's per-unit discount, and lines + tax = 194.40
    assert summary(result.line_items) == [
        ("Garden Lights", "3", "40", "4", "108.00"),
        ("Installation", "1", "80", "8", "72.00"),
        ("Tax", "1", "14.4", "0", "14.40"),
    ]
    assert result.deal.properties["qbo_discount_amount"] == "20.00"
    assert_adds_up(result)


def test_amount_discount_that_does_not_divide_re_expresses_the_largest_line() -> None:
    # given 3 x 10.00 and 2 x 7.50 with a 5.00 discount: 3.33/3.34 cannot be split per unit over 3 units
    result = mapped("invoice_discount_amount.json")

    # then the largest line goes as one unit of 30.00 (QBO's 3 x 10 kept in qbo_*), and the sums stay exact
    assert summary(result.line_items) == [
        ("Sprinkler Heads", "1", "30", "3.34", "26.66"),
        ("Hose Fittings", "2", "7.5", "0.83", "13.34"),
        ("Tax", "1", "2.81", "0", "2.81"),
    ]
    sprinklers = result.line_items[0].properties
    assert (sprinklers["qbo_quantity"], sprinklers["qbo_unit_price"]) == ("3", "10")
    assert result.deal.properties["qbo_discount_amount"] == "5.00"
    assert_adds_up(result)


def test_discount_without_amount_is_computed_from_its_percent() -> None:
    # given the percent discount line without its Amount (only PercentBased + DiscountPercent)
    invoice = qbo_entity("invoice_discount_percent.json")
    del invoice["Line"][3]["Amount"]

    result = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    assert result.deal.properties["qbo_discount_amount"] == "20.00"
    assert_adds_up(result)


def test_discount_covers_only_the_lines_above_it() -> None:
    # given a discount placed after the first line only, and a second line below it
    invoice = qbo_entity("invoice_discount_percent.json")
    lights, installation, subtotal, discount = invoice["Line"]
    discount["Amount"] = Decimal("12.00")
    invoice["Line"] = [lights, discount, installation, subtotal]
    invoice["TotalAmt"] = invoice["Balance"] = Decimal("202.40")

    result = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    # then only the first line is discounted
    assert [item.properties["discount"] for item in result.line_items] == ["4", "0", "0"]
    assert_adds_up(result)


def test_discount_larger_than_its_lines_is_refused() -> None:
    invoice = qbo_entity("invoice_discount_amount.json")
    invoice["Line"][3]["Amount"] = Decimal("50.00")

    with pytest.raises(MappingError, match=r"Invoice 133 Line\[3\].Amount: discount 50.00 exceeds the 45.00"):
        map_invoice(invoice, company(), default_invoice_stages(), now=NOW)


def test_subtotal_and_description_only_lines_are_not_line_items() -> None:
    # given notes and sub-totals between two sales lines
    result = mapped("invoice_subtotal_description.json")

    # then only the sales lines remain, positioned one after the other
    assert [(item.id, item.properties["hs_position_on_quote"]) for item in result.line_items] == [
        (f"{REALM}:135:2", "0"),
        (f"{REALM}:135:5", "1"),
    ]
    assert_adds_up(result)


def test_description_only_line_with_money_is_refused() -> None:
    invoice = qbo_entity("invoice_subtotal_description.json")
    invoice["Line"][0]["Amount"] = Decimal("5.00")

    with pytest.raises(MappingError, match=r"Line\[0\].Amount: a description-only line cannot carry money"):
        map_invoice(invoice, company(), default_invoice_stages(), now=NOW)


def test_group_line_is_expanded_into_its_components() -> None:
    # given a "Patio Kit" bundle of two chairs and a table, then a delivery line
    result = mapped("invoice_group.json")

    # then each component is its own line item, keyed under the group line
    assert [(item.id, item.properties["name"], item.properties["amount"]) for item in result.line_items] == [
        (f"{REALM}:136:1.2", "Patio Chair", "120.00"),
        (f"{REALM}:136:1.3", "Patio Table", "100.00"),
        (f"{REALM}:136:4", "Delivery", "25.00"),
    ]
    assert result.line_items[0].properties["description"] == "Teak chair"
    assert_adds_up(result)


def test_credit_line_keeps_its_sign_in_the_quantity() -> None:
    # given a goodwill credit of -50.00 (QBO allows negative sales lines)
    invoice = qbo_entity("invoice_plain.json")
    invoice["Line"].insert(
        2,
        {
            "Id": "3",
            "Amount": Decimal("-50.00"),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": "40", "name": "Goodwill"},
                "UnitPrice": -50,
                "Qty": 1,
            },
        },
    )
    invoice["TotalAmt"] = invoice["Balance"] = Decimal("262.50")

    result = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    # then HubSpot gets a non-negative price and a negative quantity
    assert summary(result.line_items)[-1] == ("Goodwill", "-1", "50", "0", "-50.00")
    assert_adds_up(result)


def test_unit_price_finer_than_a_cent_goes_as_one_unit() -> None:
    # given 3 x 3.3333 = 10.00 (QBO rounds the line amount; unit prices may have more decimals)
    invoice = qbo_entity("invoice_plain.json")
    invoice["Line"][1]["SalesItemLineDetail"]["UnitPrice"] = Decimal("3.3333")
    invoice["Line"][1]["Amount"] = Decimal("10.00")
    invoice["TotalAmt"] = invoice["Balance"] = Decimal("285.00")

    result = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    pump = result.line_items[1].properties
    assert (pump["quantity"], pump["price"], pump["amount"]) == ("1", "10", "10.00")
    assert (pump["qbo_quantity"], pump["qbo_unit_price"]) == ("3", "3.3333")
    assert_adds_up(result)


def test_lines_that_do_not_add_up_to_the_total_are_refused() -> None:
    # given an invoice whose TotalAmt disagrees with its lines
    invoice = qbo_entity("invoice_tax.json")
    invoice["TotalAmt"] = invoice["Balance"] = Decimal("410.00")

    with pytest.raises(
        TotalMismatch, match=r"line items \(377.50\) plus tax \(27.40\) make 404.90, not 410.00"
    ):
        map_invoice(invoice, company(), default_invoice_stages(), now=NOW)


def test_unknown_line_type_and_missing_line_id_are_named() -> None:
    unknown = qbo_entity("invoice_plain.json")
    unknown["Line"][0]["DetailType"] = "ItemReceiptLineDetail"
    without_id = qbo_entity("invoice_plain.json")
    del without_id["Line"][1]["Id"]

    with pytest.raises(
        MappingError, match=r"Line\[0\].DetailType: unsupported line type 'ItemReceiptLineDetail'"
    ):
        map_invoice(unknown, company(), default_invoice_stages(), now=NOW)
    with pytest.raises(MappingError, match=r"Line\[1\].Id: is required to key the HubSpot line item"):
        map_invoice(without_id, company(), default_invoice_stages(), now=NOW)


def test_float_amounts_are_read_as_their_decimal_text() -> None:
    # given the same invoice parsed without parse_float=Decimal (floats everywhere)
    import json

    from tests.conftest import FIXTURES

    invoice = json.loads((FIXTURES / "qbo" / "invoice_tax.json").read_text(encoding="utf-8"))["Invoice"]

    result = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    # then the amounts are still exact (27.4 is read as "27.4", not 27.399999...)
    assert result.deal.properties["amount"] == "404.90"
    assert result.line_items[-1].properties["amount"] == "27.40"
    assert_adds_up(result)


def test_mapping_twice_gives_identical_inputs() -> None:
    # idempotent by construction: a replay produces the same upserts, so HubSpot changes nothing
    assert mapped("invoice_discount_amount.json") == mapped("invoice_discount_amount.json")
