"""QBO Invoice / Estimate → HubSpot deal properties (docs/mapping.md#deal)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from ledgerlink.deal_sync.errors import UnsupportedCurrency
from ledgerlink.deal_sync.mapping import map_estimate, map_invoice
from ledgerlink.mapping.errors import MappingError
from ledgerlink.mapping.stages import (
    EstimateStatus,
    InvoiceStatus,
    StageMap,
    default_estimate_stages,
    default_invoice_stages,
)
from tests.unit.deal_sync.helpers import REALM, at, company, qbo_entity

MARCH_20 = at("2025-03-20T12:00:00-04:00")


def test_plain_invoice_becomes_a_deal_keyed_by_realm_and_id() -> None:
    # given a recorded USD invoice of a New York company
    invoice = qbo_entity("invoice_plain.json")

    # when it is mapped on 2025-03-20
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)

    # then the deal is upserted by the realm-scoped invoice key, with every property a string
    assert mapped.deal.id_property == "qbo_invoice_id"
    assert mapped.deal.id == f"{REALM}:130"
    assert mapped.deal.properties == {
        "dealname": "Invoice 1037 — Acme Corp",
        "amount": "312.50",
        "deal_currency_code": "USD",
        "closedate": "1742097600000",  # 2025-03-16T00:00:00-04:00, TxnDate's start in New York (EDT)
        "pipeline": "default",
        "dealstage": "contractsent",
        "qbo_invoice_id": f"{REALM}:130",
        "qbo_realm_id": REALM,
        "qbo_doc_number": "1037",
        "qbo_customer_id": f"{REALM}:58",
        "qbo_txn_date": "1742083200000",  # 2025-03-16T00:00:00Z: a date property is midnight UTC
        "qbo_due_date": "1744675200000",  # 2025-04-15T00:00:00Z
        "qbo_balance": "312.50",
        "qbo_status": "open",
        "qbo_tax_amount": "0.00",
        "qbo_discount_amount": "0.00",
        "qbo_last_updated": "1742144597000",  # 2025-03-16T10:03:17-07:00
    }
    assert mapped.status is InvoiceStatus.OPEN
    assert mapped.customer_key == f"{REALM}:58"


def test_eur_invoice_keeps_its_currency_and_amount() -> None:
    # given an invoice in EUR (the company's home currency is USD) and a portal with EUR enabled
    invoice = qbo_entity("invoice_eur.json")

    # when it is mapped
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=at("2025-06-10T09:00:00+02:00"))

    # then the deal carries the document amount in EUR, not the home-currency amount
    assert mapped.deal.properties["deal_currency_code"] == "EUR"
    assert mapped.deal.properties["amount"] == "1190.00"
    assert mapped.deal.properties["qbo_tax_amount"] == "190.00"
    assert mapped.deal.properties["dealname"] == "Invoice 1038 — Müller Maschinenbau GmbH"
    assert {item.properties["hs_line_item_currency_code"] for item in mapped.line_items} == {"EUR"}


def test_currency_the_portal_lacks_is_refused_not_converted() -> None:
    # given an EUR invoice and a portal that only has USD
    invoice = qbo_entity("invoice_eur.json")
    usd_only = company(portal_currencies=frozenset({"USD"}))

    # when it is mapped, then a specific error names the currency (the sync dead-letters it)
    with pytest.raises(UnsupportedCurrency) as raised:
        map_invoice(invoice, usd_only, default_invoice_stages(), now=MARCH_20)
    assert raised.value.currency == "EUR"
    assert str(raised.value) == (
        "Invoice 131 CurrencyRef: currency EUR is not enabled in the HubSpot portal (enabled: USD)"
    )


def test_missing_currency_means_the_company_home_currency() -> None:
    # given a GBP company whose invoice has no CurrencyRef
    invoice = qbo_entity("invoice_plain.json")
    del invoice["CurrencyRef"]

    # when it is mapped
    mapped = map_invoice(invoice, company(home_currency="GBP"), default_invoice_stages(), now=MARCH_20)

    # then the deal is in the home currency
    assert mapped.deal.properties["deal_currency_code"] == "GBP"


def test_jpy_amount_has_no_decimals() -> None:
    # given a JPY invoice (currency exponent 0)
    invoice = qbo_entity("invoice_plain.json")
    invoice["CurrencyRef"] = {"value": "JPY", "name": "Japanese Yen"}
    invoice["Line"] = [
        {
            "Id": "1",
            "Amount": Decimal(15000),
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": "5", "name": "Fountain"},
                "UnitPrice": 5000,
                "Qty": 3,
            },
        }
    ]
    invoice["TotalAmt"] = invoice["Balance"] = Decimal(15000)

    # when it is mapped for a portal with JPY
    mapped = map_invoice(
        invoice, company(portal_currencies=frozenset({"JPY"})), default_invoice_stages(), now=MARCH_20
    )

    # then amounts are whole yen
    assert mapped.deal.properties["amount"] == "15000"
    assert mapped.line_items[0].properties["amount"] == "15000"


def test_amount_finer_than_the_currency_is_refused() -> None:
    # given a total with a tenth of a cent, which QBO never produces
    invoice = qbo_entity("invoice_plain.json")
    invoice["TotalAmt"] = Decimal("312.505")

    # when it is mapped, then the error names the field rather than rounding silently
    with pytest.raises(
        MappingError, match=r"Invoice 130 TotalAmt: 312.505 has more decimals than USD allows"
    ):
        map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)


def test_partially_paid_invoice() -> None:
    # given an invoice with 200 of 500 still owed, due 2025-12-01
    invoice = qbo_entity("invoice_partially_paid.json")

    # when it is mapped in October
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=at("2025-10-20T10:00:00-04:00"))

    # then it is partially paid and the balance is carried
    assert mapped.status is InvoiceStatus.PARTIALLY_PAID
    assert mapped.deal.properties["qbo_status"] == "partially_paid"
    assert mapped.deal.properties["qbo_balance"] == "200.00"
    assert mapped.deal.properties["amount"] == "500.00"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 23:59 EDT on the due date (2025-11-01) is still on time
        ("2025-11-02T03:59:00+00:00", InvoiceStatus.OPEN),
        # 00:00 EDT on 2025-11-02 (the day clocks go back) is the first overdue minute
        ("2025-11-02T04:00:00+00:00", InvoiceStatus.OVERDUE),
        # 01:30 EST, after the change, still the 2nd in New York
        ("2025-11-02T06:30:00+00:00", InvoiceStatus.OVERDUE),
    ],
)
def test_overdue_starts_at_midnight_after_the_due_date_in_the_company_zone(
    now: str, expected: InvoiceStatus
) -> None:
    # given an unpaid invoice due 2025-11-01, for a New York company
    invoice = qbo_entity("invoice_overdue.json")

    # when it is mapped at an instant around the autumn DST change
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=at(now))

    # then "today" is the New York date at that instant
    assert mapped.status is expected


def test_same_instant_is_overdue_in_kolkata_but_not_in_new_york() -> None:
    # given an invoice due 2025-11-01 and the instant 2025-11-01T20:00Z (01:30 on the 2nd in Kolkata)
    invoice = qbo_entity("invoice_overdue.json")
    instant = at("2025-11-01T20:00:00+00:00")

    # when it is mapped for a company in each zone
    in_new_york = map_invoice(invoice, company(), default_invoice_stages(), now=instant)
    from zoneinfo import ZoneInfo

    in_kolkata = map_invoice(
        invoice, company(zone=ZoneInfo("Asia/Kolkata")), default_invoice_stages(), now=instant
    )

    # then only the Kolkata company is already past the due date
    assert in_new_york.status is InvoiceStatus.OPEN
    assert in_kolkata.status is InvoiceStatus.OVERDUE


def test_voided_invoice_goes_to_the_voided_stage_without_line_items() -> None:
    # given an invoice QBO voided (amounts zeroed, "Voided" in the private note)
    invoice = qbo_entity("invoice_voided.json")

    # when it is mapped
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)

    # then the deal keeps its key, shows amount 0 in the closed-lost stage, and has no line items
    assert mapped.status is InvoiceStatus.VOIDED
    assert mapped.deal.id == f"{REALM}:137"
    assert mapped.deal.properties["amount"] == "0.00"
    assert mapped.deal.properties["dealstage"] == "closedlost"
    assert mapped.deal.properties["qbo_status"] == "voided"
    assert mapped.line_items == ()


def test_voided_word_in_a_live_invoice_note_is_not_a_void() -> None:
    # given an open invoice whose private note mentions "voided"
    invoice = qbo_entity("invoice_plain.json")
    invoice["PrivateNote"] = "Replaces invoice 1001, which was voided"

    # when it is mapped, then the amounts decide: it is open
    assert (
        map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20).status is InvoiceStatus.OPEN
    )


def test_zero_invoice_without_void_evidence_is_paid() -> None:
    # given a zero-amount invoice with no "Voided" note
    invoice = qbo_entity("invoice_voided.json")
    del invoice["PrivateNote"]

    # when it is mapped with and without a Void operation seen for it
    plain = map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)
    after_void_event = map_invoice(
        invoice, company(), default_invoice_stages(), now=MARCH_20, void_operation_seen=True
    )

    # then only the Void operation makes it voided
    assert plain.status is InvoiceStatus.PAID
    assert after_void_event.status is InvoiceStatus.VOIDED


def test_paid_invoice() -> None:
    invoice = qbo_entity("invoice_overdue.json")
    invoice["Balance"] = Decimal("0")

    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=at("2025-12-01T10:00:00-05:00"))

    assert mapped.status is InvoiceStatus.PAID
    assert mapped.deal.properties["dealstage"] == "closedwon"


def test_configured_stage_map_puts_each_status_in_its_pipeline() -> None:
    # given a dedicated invoice pipeline, with paid invoices sent to another pipeline
    stages = StageMap.from_config(
        {
            "pipeline": "qbo-invoices",
            "stages": {
                "open": "inv-open",
                "overdue": "inv-overdue",
                "partially_paid": "inv-partial",
                "paid": {"pipeline": "archive", "stage": "inv-paid"},
                "voided": "inv-void",
            },
        },
        InvoiceStatus,
    )

    # when an overdue and a paid invoice are mapped
    overdue = map_invoice(
        qbo_entity("invoice_overdue.json"), company(), stages, now=at("2025-11-05T09:00:00-05:00")
    )
    paid_invoice = qbo_entity("invoice_overdue.json")
    paid_invoice["Balance"] = Decimal(0)
    paid = map_invoice(paid_invoice, company(), stages, now=at("2025-11-05T09:00:00-05:00"))

    # then each lands in its configured pipeline and stage
    assert (overdue.deal.properties["pipeline"], overdue.deal.properties["dealstage"]) == (
        "qbo-invoices",
        "inv-overdue",
    )
    assert (paid.deal.properties["pipeline"], paid.deal.properties["dealstage"]) == ("archive", "inv-paid")


def test_invoice_linked_to_an_estimate_reports_the_estimate_key() -> None:
    invoice = qbo_entity("invoice_plain.json")
    invoice["LinkedTxn"] = [{"TxnId": "100", "TxnType": "Estimate"}, {"TxnId": "201", "TxnType": "Payment"}]

    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)

    assert mapped.linked_estimate_keys == (f"{REALM}:100",)


@pytest.mark.parametrize(
    ("now", "expected_status", "expected_stage"),
    [
        ("2025-03-01T12:00:00-05:00", EstimateStatus.PENDING, "presentationscheduled"),
        # ExpirationDate 2025-03-22 is the last valid day; the 23rd in New York is past it
        ("2025-03-23T00:00:00-04:00", EstimateStatus.EXPIRED, "closedlost"),
    ],
)
def test_pending_estimate_becomes_a_deal_and_expires(
    now: str, expected_status: EstimateStatus, expected_stage: str
) -> None:
    # given a pending estimate that expires on 2025-03-22
    estimate = qbo_entity("estimate_pending.json")

    # when it is mapped
    mapped = map_estimate(estimate, company(), default_estimate_stages(), now=at(now))

    # then the deal is keyed by the estimate and expected to close when the estimate expires
    assert mapped.deal.id_property == "qbo_estimate_id"
    assert mapped.deal.id == f"{REALM}:100"
    assert "qbo_invoice_id" not in mapped.deal.properties
    assert mapped.deal.properties["dealname"] == "Estimate 1001 — Acme Corp"
    assert mapped.deal.properties["amount"] == "324.00"
    assert mapped.deal.properties["closedate"] == "1742616000000"  # 2025-03-22T00:00:00-04:00
    assert mapped.deal.properties["qbo_expiration_date"] == "1742601600000"  # 2025-03-22T00:00:00Z
    assert mapped.status is expected_status
    assert mapped.deal.properties["dealstage"] == expected_stage
    assert [item.id for item in mapped.line_items] == [
        f"{REALM}:estimate-100:1",
        f"{REALM}:estimate-100:2",
        f"{REALM}:estimate-100:tax",
    ]


def test_accepted_and_closed_estimates() -> None:
    estimate = qbo_entity("estimate_pending.json")
    statuses = {}
    for txn_status in ("Accepted", "Closed", "Rejected"):
        estimate["TxnStatus"] = txn_status
        statuses[txn_status] = map_estimate(
            estimate, company(), default_estimate_stages(), now=MARCH_20
        ).status

    assert statuses == {
        "Accepted": EstimateStatus.ACCEPTED,
        "Closed": EstimateStatus.CLOSED,
        "Rejected": EstimateStatus.REJECTED,
    }


def test_unknown_estimate_status_is_named() -> None:
    estimate = qbo_entity("estimate_pending.json")
    estimate["TxnStatus"] = "Signed"

    with pytest.raises(MappingError, match=r"Estimate 100 TxnStatus: unknown estimate status 'Signed'"):
        map_estimate(estimate, company(), default_estimate_stages(), now=MARCH_20)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda inv: inv.pop("Id"), r"^Invoice Id: is required$"),
        (lambda inv: inv.pop("TotalAmt"), r"^Invoice 130 TotalAmt: is required$"),
        (lambda inv: inv.pop("Balance"), r"^Invoice 130 Balance: is required$"),
        (lambda inv: inv.pop("CustomerRef"), r"^Invoice 130 CustomerRef.value: is required$"),
        (lambda inv: inv.update(TxnDate="16/03/2025"), r"^Invoice 130 TxnDate: must be a date YYYY-MM-DD"),
        (lambda inv: inv.update(TotalAmt="lots"), r"^Invoice 130 TotalAmt: must be a number, got 'lots'$"),
        (lambda inv: inv.update(Balance=Decimal("400")), r"^Invoice 130 Balance: 400 exceeds TotalAmt 312.5"),
        (lambda inv: inv.update(CurrencyRef={"value": "US"}), r"CurrencyRef.value: must be an ISO 4217 code"),
    ],
)
def test_bad_invoice_fields_are_named(mutate: object, message: str) -> None:
    # given a recorded invoice with one field broken
    invoice = copy.deepcopy(qbo_entity("invoice_plain.json"))
    mutate(invoice)  # type: ignore[operator]

    # when it is mapped, then the error names the entity and the field
    with pytest.raises(MappingError, match=message):
        map_invoice(invoice, company(), default_invoice_stages(), now=MARCH_20)


def test_naive_now_is_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="must carry a time-zone offset"):
        map_invoice(
            qbo_entity("invoice_plain.json"), company(), default_invoice_stages(), now=datetime(2025, 3, 20)
        )
