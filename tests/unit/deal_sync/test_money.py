"""Decimal money: parsing, currency exponents, exact allocation.

Also the line-item invariant (lines + tax = total), checked on random invoices.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from ledgerlink.deal_sync.mapping import map_invoice
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.stages import default_invoice_stages
from ledgerlink.money import (
    allocate,
    currency_exponent,
    format_amount,
    format_number,
    quantity_step,
    to_decimal,
)
from tests.unit.deal_sync.helpers import at, company, qbo_entity


def test_numbers_become_exact_decimals_and_never_floats() -> None:
    assert to_decimal(0.1, entity="Invoice 1", field="Amount") == Decimal("0.1")
    assert to_decimal(Decimal("27.40"), entity="Invoice 1", field="Amount") == Decimal("27.40")
    assert to_decimal("12.5", entity="Invoice 1", field="Amount") == Decimal("12.5")
    assert to_decimal(3, entity="Invoice 1", field="Amount") == Decimal(3)
    for bad in (True, None, "NaN", "Infinity", "12,50", [1]):
        with pytest.raises(MappingError, match="Invoice 1 Amount: must be a"):
            to_decimal(bad, entity="Invoice 1", field="Amount")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("362.07"), "USD", "362.07"),
        (Decimal("362.1"), "EUR", "362.10"),
        (Decimal("1500"), "JPY", "1500"),
        (Decimal("12.5"), "KWD", "12.500"),
        (Decimal("-0.00"), "USD", "0.00"),
    ],
)
def test_amounts_have_the_currency_exponent(amount: Decimal, currency: str, text: str) -> None:
    assert format_amount(amount, currency, entity="Invoice 1", field="TotalAmt") == text


def test_exponents() -> None:
    assert [currency_exponent(code) for code in ("USD", "EUR", "JPY", "KRW", "KWD", "BHD", "INR")] == [
        2,
        2,
        0,
        0,
        3,
        3,
        2,
    ]


def test_numbers_are_plain() -> None:
    assert [format_number(Decimal(text)) for text in ("1.50", "100", "1E+2", "0.000", "-2.50", "3.3333")] == [
        "1.5",
        "100",
        "100",
        "0",
        "-2.5",
        "3.3333",
    ]


def test_quantity_steps() -> None:
    assert [quantity_step(Decimal(q)) for q in ("1", "3", "2.5", "0.5", "1.25")] == [1, 3, 5, 1, 5]


def test_allocation_is_proportional_and_exact() -> None:
    assert allocate(2000, [12000, 8000], [3, 1], [12000, 8000]) == [1200, 800]
    assert allocate(100, [1, 1, 1], [1, 1, 1], [100, 100, 100]) == [34, 33, 33]
    assert allocate(0, [5, 5], [1, 1], [5, 5]) == [0, 0]
    # 500 over steps 3 and 2 leaves one cent nobody can take exactly
    assert allocate(500, [3000, 1500], [3, 2], [3000, 1500]) is None
    # more than the lines hold
    assert allocate(101, [50, 50], [1, 1], [50, 50]) is None


def test_allocation_properties_on_random_inputs() -> None:
    rng = random.Random(20250309)
    for _ in range(2000):
        count = rng.randint(1, 6)
        weights = [rng.randint(0, 50_000) for _ in range(count)]
        steps = [rng.choice([1, 1, 2, 3, 5, 12]) for _ in range(count)]
        caps = list(weights)
        total = rng.randint(0, max(sum(weights), 1))
        shares = allocate(total, weights, steps, caps)
        if shares is None:
            continue
        assert sum(shares) == total
        for share, step, cap in zip(shares, steps, caps, strict=True):
            assert share % step == 0
            assert 0 <= share <= cap


def _random_invoice(rng: random.Random) -> dict[str, Any]:
    """An invoice QBO could send: random sales lines, maybe a discount, maybe tax; totals as QBO does."""
    invoice = qbo_entity("invoice_plain.json")
    cent = Decimal("0.01")
    lines: list[dict[str, Any]] = []
    for number in range(1, rng.randint(1, 6) + 1):
        quantity = Decimal(rng.choice(["1", "2", "3", "0.5", "1.5", "7", "12", "0.25"]))
        unit_price = Decimal(rng.randint(1, 50_000)) / 100
        if rng.random() < 0.15:
            unit_price = Decimal(rng.randint(1, 5_000_000)) / 10_000  # finer than a cent
        amount = (quantity * unit_price).quantize(cent, rounding=ROUND_HALF_UP)
        lines.append(
            {
                "Id": str(number),
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": str(number), "name": f"Item {number}"},
                    "UnitPrice": unit_price,
                    "Qty": quantity,
                },
            }
        )
    subtotal = sum((line["Amount"] for line in lines), Decimal(0))
    discount = Decimal(0)
    if rng.random() < 0.7 and subtotal > 0:
        if rng.random() < 0.5:
            percent = Decimal(rng.randint(1, 50))
            discount = (subtotal * percent / 100).quantize(cent, rounding=ROUND_HALF_UP)
            detail: dict[str, Any] = {"PercentBased": True, "DiscountPercent": percent}
        else:
            discount = (Decimal(rng.randint(1, int(subtotal * 100))) / 100).quantize(cent)
            detail = {"PercentBased": False}
        lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        lines.append({"Amount": discount, "DetailType": "DiscountLineDetail", "DiscountLineDetail": detail})
    tax = (Decimal(rng.randint(0, 2000)) / 100) if rng.random() < 0.6 else Decimal(0)
    invoice["Line"] = lines
    invoice["TxnTaxDetail"] = {"TotalTax": tax}
    invoice["TotalAmt"] = invoice["Balance"] = subtotal - discount + tax
    return invoice


def test_line_items_plus_tax_equal_the_total_on_random_invoices() -> None:
    # given many random invoices (fixed seed, so a failure is reproducible)
    rng = random.Random(20251102)
    stages = default_invoice_stages()
    for _ in range(400):
        invoice = _random_invoice(rng)

        # when each is mapped
        result = map_invoice(invoice, company(), stages, now=at("2025-03-20T12:00:00-04:00"))

        # then the line items (tax line included) add up to the deal amount, as HubSpot computes them
        amounts = [Decimal(item.properties["amount"]) for item in result.line_items]
        assert sum(amounts, Decimal(0)) == Decimal(result.deal.properties["amount"]) == invoice["TotalAmt"]
        for item in result.line_items:
            props = item.properties
            quantity, price, discount = (Decimal(props[name]) for name in ("quantity", "price", "discount"))
            assert price * quantity - discount * quantity == Decimal(props["amount"])
            assert price >= 0 and discount >= 0
            assert discount == discount.quantize(Decimal("0.01")), "per-unit discounts are whole cents"
