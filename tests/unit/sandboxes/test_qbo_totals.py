"""QBO sandbox: totals, tax, discounts, balances, currencies, and the links between transactions."""

from __future__ import annotations

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.qbo_support import QboApi, fault, payload


def _lines(invoice: dict, detail_type: str) -> list[dict]:
    return [line for line in invoice["Line"] if line["DetailType"] == detail_type]


def test_invoice_totals_discount_and_tax_as_qbo_computes_them(qbo_sandbox: SandboxServer) -> None:
    # given 10 h of design (1,500.00, not taxable), 3 planters at 129 (taxable), 10 % discount, San Francisco tax
    api = QboApi(qbo_sandbox)
    # when the invoice is created (the planter line carries no Amount: QBO computes Qty x UnitPrice)
    invoice = api.created("Invoice", payload("invoice_create"))
    # then each figure is QBO's
    items = _lines(invoice, "SalesItemLineDetail")
    assert [line["Amount"] for line in items] == [1500, 387]
    assert [line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in items] == ["NON", "TAX"]
    assert [line["Id"] for line in items] == ["1", "2"] and [line["LineNum"] for line in items] == [1, 2]
    assert _lines(invoice, "SubTotalLineDetail")[0]["Amount"] == 1887
    discount = _lines(invoice, "DiscountLineDetail")[0]
    assert discount["Amount"] == 188.7 and discount["DiscountLineDetail"]["DiscountPercent"] == 10
    tax = invoice["TxnTaxDetail"]
    assert tax["TxnTaxCodeRef"]["value"] == "3"
    assert [(line["Amount"], line["TaxLineDetail"]["TaxPercent"]) for line in tax["TaxLine"]] == [
        (28.06, 7.25),
        (5.32, 1.375),
    ]
    assert all(line["TaxLineDetail"]["NetAmountTaxable"] == 387 for line in tax["TaxLine"])
    assert tax["TotalTax"] == 33.38
    assert invoice["TotalAmt"] == 1731.68 and invoice["Balance"] == 1731.68  # 1887 - 188.70 + 33.38
    assert invoice["DueDate"] == "2026-12-20"  # the customer's Net 30 from TxnDate


def test_tax_after_discount_and_amount_discount(qbo_sandbox: SandboxServer) -> None:
    # given the same invoice, tax applied after a fixed 100.00 discount
    api = QboApi(qbo_sandbox)
    body = payload("invoice_create")
    body["ApplyTaxAfterDiscount"] = True
    body["Line"][2] = {"DetailType": "DiscountLineDetail", "Amount": 100,
                       "DiscountLineDetail": {"PercentBased": False}}  # fmt: skip
    # when created
    invoice = api.created("Invoice", body)
    # then the taxable base shrinks by the discount's taxable share: 387 - 100 x 387/1887 = 366.49
    assert {line["TaxLineDetail"]["NetAmountTaxable"] for line in invoice["TxnTaxDetail"]["TaxLine"]} == {
        366.49
    }
    assert invoice["TxnTaxDetail"]["TotalTax"] == 31.61  # 26.57 + 5.04
    assert invoice["TotalAmt"] == 1818.61  # 1,887 - 100 + 31.61


def test_amount_must_equal_qty_times_unit_price(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    body = payload("invoice_create")
    body["Line"][0]["Amount"] = 1499.99
    answer = api.create("Invoice", body)
    assert answer.status_code == 400 and fault(answer)["code"] == "6070"


def test_non_taxable_customer_pays_no_tax(qbo_sandbox: SandboxServer) -> None:
    # given the tax-exempt community garden (customer 5)
    api = QboApi(qbo_sandbox)
    body = payload("invoice_create")
    body["CustomerRef"] = {"value": "5"}
    invoice = api.created("Invoice", body)
    assert invoice["TxnTaxDetail"]["TotalTax"] == 0
    assert {
        line["SalesItemLineDetail"]["TaxCodeRef"]["value"] for line in _lines(invoice, "SalesItemLineDetail")
    } == {"NON"}
    assert invoice["TotalAmt"] == 1698.3


def test_foreign_currency_invoice_has_home_amounts(qbo_sandbox: SandboxServer) -> None:
    # given the German customer billed in EUR, at an exchange rate of 1.1
    api = QboApi(qbo_sandbox)
    invoice = api.created("Invoice", payload("invoice_eur"))
    assert invoice["CurrencyRef"] == {"value": "EUR", "name": "Euro"}
    assert (invoice["TotalAmt"], invoice["ExchangeRate"], invoice["HomeTotalAmt"]) == (1200, 1.1, 1320)
    assert invoice["HomeBalance"] == 1320
    # and a USD invoice for that customer is refused
    body = payload("invoice_eur")
    body["CurrencyRef"] = {"value": "USD"}
    body["DocNumber"] = "INV-EU-8"
    assert fault(api.create("Invoice", body))["code"] == "6000"


def test_payment_reduces_invoice_and_customer_balances(qbo_sandbox: SandboxServer) -> None:
    # given the demo's open invoice 1 (2,810.51) for Acme
    api = QboApi(qbo_sandbox)
    assert api.read("Invoice", "1")["Balance"] == 2810.51
    # when 1,000.00 is applied to it
    payment = api.created("Payment", payload("payment_create"))
    # then the invoice's balance drops, it links the payment, and so does the customer's balance
    invoice = api.read("Invoice", "1")
    assert payment["UnappliedAmt"] == 0
    assert invoice["Balance"] == 1810.51
    assert {"TxnId": payment["Id"], "TxnType": "Payment"} in invoice["LinkedTxn"]
    assert invoice["SyncToken"] == "1"  # the invoice changed, so QBO gave it a new SyncToken
    assert api.read("Customer", "1")["Balance"] == 1810.51
    # when the payment is deleted, everything is back
    api.post("payment", {"Id": payment["Id"], "SyncToken": payment["SyncToken"]}, operation="delete")
    assert api.read("Invoice", "1")["Balance"] == 2810.51
    assert api.read("Customer", "1")["Balance"] == 2810.51


def test_overpaying_an_invoice_or_a_foreign_customer_is_refused(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    too_much = payload("payment_create")
    too_much["TotalAmt"] = too_much["Line"][0]["Amount"] = 5000
    lines_over_total = payload("payment_create")
    lines_over_total["TotalAmt"] = 10
    other_customer = payload("payment_create")
    other_customer["CustomerRef"] = {"value": "2"}
    for body in (too_much, lines_over_total, other_customer):
        assert fault(api.create("Payment", body))["code"] == "6000"


def test_unapplied_payment_is_credit(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    body = payload("payment_create")
    body["TotalAmt"] = 1200
    payment = api.created("Payment", body)
    assert payment["UnappliedAmt"] == 200
    assert api.read("Customer", "1")["Balance"] == 1610.51  # 2,810.51 owed - 1,000 applied - 200 credit


def test_estimate_to_invoice_links_both_and_closes_the_estimate(qbo_sandbox: SandboxServer) -> None:
    # given the demo's accepted estimate 1 for Priya Patel
    api = QboApi(qbo_sandbox)
    assert api.read("Estimate", "1")["TxnStatus"] == "Accepted"
    # when an invoice is created from it (LinkedTxn to the estimate)
    invoice = api.created("Invoice", payload("invoice_from_estimate"))
    # then the invoice references the estimate and the estimate is closed and links back
    assert invoice["LinkedTxn"] == [{"TxnId": "1", "TxnType": "Estimate"}]
    estimate = api.read("Estimate", "1")
    assert estimate["TxnStatus"] == "Closed"
    assert estimate["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    assert estimate["SyncToken"] == "1"
    # when the invoice is deleted, the estimate is open again as it was
    api.post("invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete")
    reopened = api.read("Estimate", "1")
    assert reopened["TxnStatus"] == "Accepted" and "LinkedTxn" not in reopened
    # and a link to a missing estimate is 610
    body = payload("invoice_from_estimate")
    body["LinkedTxn"] = [{"TxnId": "404", "TxnType": "Estimate"}]
    body["DocNumber"] = "INV-3002"
    assert fault(api.create("Invoice", body))["code"] == "610"


def test_estimate_has_status_and_no_balance(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    estimate = api.created("Estimate", payload("estimate_create"))
    assert estimate["TxnStatus"] == "Pending" and "Balance" not in estimate
    assert estimate["TotalAmt"] == 1401.27  # 1,290 + 93.53 (7.25 %) + 17.74 (1.375 %), each tax line rounded
    bad = payload("estimate_create")
    bad["TxnStatus"] = "Maybe"
    bad["DocNumber"] = "E-2002"
    assert fault(api.create("Estimate", bad))["code"] == "2010"


def test_inventory_quantity_follows_invoices(qbo_sandbox: SandboxServer) -> None:
    # given the planter box (item 7) with its stock
    api = QboApi(qbo_sandbox)
    stock = api.read("Item", "7")["QtyOnHand"]
    # when an invoice sells 3, then is voided
    invoice = api.created("Invoice", payload("invoice_create"))
    after_sale = api.read("Item", "7")["QtyOnHand"]
    api.post("invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="void")
    # then the stock went down by 3 and came back
    assert (after_sale, api.read("Item", "7")["QtyOnHand"]) == (stock - 3, stock)


def test_sparse_update_recomputes_totals_and_keeps_line_ids(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    invoice = api.created("Invoice", payload("invoice_create"))
    lines = [line for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    lines[1]["SalesItemLineDetail"]["Qty"] = 5
    lines[1]["Amount"] = 645
    lines.append({"Amount": 95, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": "5"}, "Qty": 1, "UnitPrice": 95}})  # fmt: skip
    answer = api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "Line": lines})
    updated = answer.json()["Invoice"]
    assert [line["Id"] for line in _lines(updated, "SalesItemLineDetail")] == ["1", "2", "3"]
    assert _lines(updated, "SubTotalLineDetail")[0]["Amount"] == 1500 + 645 + 95
    assert "DiscountLineDetail" not in {
        line["DetailType"] for line in updated["Line"]
    }  # lines replaced whole
    assert updated["TotalAmt"] == 2295.63  # 2,240 + 46.76 + 8.87
    assert updated["PrivateNote"] == "Spring planting phase 1"
