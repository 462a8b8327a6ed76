"""QBO sandbox: every response it gives conforms, field by field, to Intuit's XSD (tests/qbo_xsd.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo.model import ENTITIES
from tests.qbo_xsd import allowed_fields, assert_fields_conform, field_violations
from tests.unit.sandboxes.qbo_support import QboApi, payload


def test_helper_follows_extension_bases_and_rejects_nested_typos() -> None:
    invoice_fields = allowed_fields("Invoice")
    assert {"Id", "SyncToken", "MetaData", "domain", "sparse"} <= invoice_fields  # IntuitEntity
    assert {"DocNumber", "TxnDate", "Line"} <= invoice_fields  # Transaction
    assert {"CustomerRef", "TotalAmt", "Balance"} <= invoice_fields  # SalesTransaction
    assert {"Deposit", "AllowOnlinePayment"} <= invoice_fields  # Invoice itself
    good = {
        "Line": [{"DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    }
    assert field_violations("Invoice", good) == []
    bad = {"Line": [{"SalesItemLineDetail": {"ItemRef": {"value": "1", "nmae": "x"}, "Qtty": 1}}], "Totl": 1}
    assert field_violations("Invoice", bad) == [
        "Invoice.Line[0].SalesItemLineDetail.ItemRef.nmae",
        "Invoice.Line[0].SalesItemLineDetail.Qtty",
        "Invoice.Totl",
    ]
    with pytest.raises(AssertionError, match=r"Invoice\.Totl"):
        assert_fields_conform("Invoice", bad)
    assert field_violations("Customer", {"DisplayName": {"value": "x"}}) == [
        "Customer.DisplayName (an object where the XSD has a simple value)"
    ]


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_field_the_sandbox_accepts_is_defined_by_the_xsd(entity: str) -> None:
    assert ENTITIES[entity].input_fields <= allowed_fields(entity)


@pytest.mark.parametrize("entity", sorted(name for name, spec in ENTITIES.items() if spec.operations))
def test_writable_entities_accept_every_field_intuit_defines(entity: str) -> None:
    # SDKs send fields the sandbox does not model (python-quickbooks sends Customer.IsProject): QBO takes them
    assert allowed_fields(entity) <= ENTITIES[entity].input_fields


@pytest.mark.parametrize("entity", sorted(name for name, spec in ENTITIES.items() if not spec.singleton))
def test_demo_company_objects_conform(qbo_sandbox: SandboxServer, entity: str) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(rate_limits_enabled=False)  # one read per object
    answer = api.query(f"select * from {entity} maxresults 1000")  # noqa: S608 - a QBO query, not SQL
    assert answer.status_code == 200
    rows = answer.json()["QueryResponse"].get(entity, [])
    assert rows, f"the demo company has no {entity}"
    assert_fields_conform("IntuitResponse", answer.json())
    for row in rows:
        assert_fields_conform(entity, api.read(entity, row["Id"]))


def test_singletons_and_faults_conform(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    for answer in (
        api.get(f"companyinfo/{api.realm}"),
        api.get("preferences"),
        api.get("invoice/404"),
        api.query("select * from Invoice where"),
        api.create("Customer", {"DisplayName": "Acme Robotics Inc."}),
    ):
        assert_fields_conform("IntuitResponse", answer.json())


def test_written_objects_and_side_effects_conform(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(rate_limits_enabled=False)  # more than QBO's 10 requests/second, on purpose
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    answers = [
        api.create("Invoice", payload("invoice_create")),
        api.create("Invoice", payload("invoice_eur")),
        api.create("Invoice", payload("invoice_from_estimate")),
        api.create("Payment", payload("payment_create")),
        api.create("Estimate", payload("estimate_create")),
        api.create("Customer", payload("customer_create")),
        api.create("Item", payload("item_create")),
        api.create("TimeActivity", payload("time_activity_create")),
    ]
    invoice = answers[0].json()["Invoice"]
    answers.append(api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="void"))
    answers.append(api.post("invoice", {"Id": "4", "SyncToken": "0"}, operation="delete"))
    answers.append(api.post("batch", payload("batch_mixed")))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert_fields_conform("IntuitResponse", answer.json())
    cdc = api.get("cdc", entities="Invoice,Estimate,Payment,Customer,Item,TimeActivity", changedSince=since)
    assert_fields_conform("IntuitResponse", cdc.json())
    assert_fields_conform("Estimate", api.read("Estimate", "1"))  # closed and linked by the invoice
