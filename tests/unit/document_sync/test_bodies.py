"""The Estimate and Invoice bodies, and the fingerprint that says when a Pending estimate already matches."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from ledgerlink.document_sync.bodies import (
    estimate_body,
    fingerprint,
    invoice_from_estimate,
    links_estimate,
)
from ledgerlink.document_sync.lines import QboItem, SalesLine
from tests.conftest import FIXTURES
from tests.qbo_xsd import assert_fields_conform

SKATES = SalesLine(
    item=QboItem(id="11", name="Rocket skates", sku="RS-100", taxable=True),
    matched_by="sku",
    quantity=Decimal(2),
    unit_price=Decimal(400),
    amount=Decimal("800.00"),
    tax_code="TAX",
    description="Rocket skates, pair",
)
MARKER = "LedgerLink: HubSpot deal 91001 (portal 48213570)"


def estimate(**overrides: object) -> dict:  # type: ignore[type-arg]
    options: dict = {  # type: ignore[type-arg]
        "customer_id": "58",
        "lines": [SKATES],
        "txn_date": date(2026, 12, 2),
        "marker": MARKER,
        "currency": None,
        "doc_number": None,
        "expiration_days": 30,
    }
    options.update(overrides)
    return estimate_body(**options)


def test_an_estimate_body_is_one_intuit_allows_and_carries_the_origin_marker() -> None:
    body = estimate(doc_number="E-1001", currency="USD")
    assert_fields_conform("Estimate", body)
    assert body["PrivateNote"] == MARKER and body["TxnStatus"] == "Pending"
    assert body["ExpirationDate"] == "2027-01-01" and body["DocNumber"] == "E-1001"


def test_the_fingerprint_ignores_number_and_dates_but_not_lines_or_customer() -> None:
    assert fingerprint(estimate()) == fingerprint(estimate(doc_number="E-9", txn_date=date(2027, 1, 1)))
    assert fingerprint(estimate()) != fingerprint(estimate(customer_id="59"))
    three = SalesLine(**{**SKATES.__dict__, "quantity": Decimal(3), "amount": Decimal("1200.00")})
    assert fingerprint(estimate()) != fingerprint(estimate(lines=[three]))


def test_the_fingerprint_of_what_qbo_answers_equals_what_was_asked() -> None:
    # QBO answers numbers in its own form (800 vs 800.00): the digest compares values, not text.
    asked = estimate()
    answered = json.loads(json.dumps(asked, default=str), parse_float=Decimal)
    answered["Line"][0]["Amount"] = Decimal("800")
    assert fingerprint(asked) == fingerprint(answered)


def test_an_invoice_from_an_estimate_copies_its_lines_discount_and_links_it() -> None:
    recorded = json.loads(
        (FIXTURES / "qbo" / "estimate_pending_with_discount.json").read_text(), parse_float=Decimal
    )
    body = invoice_from_estimate(recorded, txn_date=date(2026, 12, 3), marker=MARKER, doc_number=None)
    assert_fields_conform("Invoice", body)
    assert body["LinkedTxn"] == [{"TxnId": recorded["Id"], "TxnType": "Estimate"}]
    assert body["CustomerRef"] == {"value": recorded["CustomerRef"]["value"]}
    kinds = [line["DetailType"] for line in body["Line"]]
    assert "SubTotalLineDetail" not in kinds and "DiscountLineDetail" in kinds
    copied = [line for line in body["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    originals = [line for line in recorded["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert [(c["SalesItemLineDetail"]["ItemRef"], c["Amount"]) for c in copied] == [
        (o["SalesItemLineDetail"]["ItemRef"], o["Amount"]) for o in originals
    ]


def test_an_invoice_without_its_link_is_told_apart() -> None:
    assert links_estimate({"LinkedTxn": [{"TxnId": "41", "TxnType": "Estimate"}]}, "41")
    assert not links_estimate({"LinkedTxn": [{"TxnId": "41", "TxnType": "Payment"}]}, "41")
    assert not links_estimate({}, "41")
