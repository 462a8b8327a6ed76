"""QBO sandbox: what the HubSpot -> QBO flow relies on: estimate links, DocNumber rules, unique names,
the customer and item filters, and demo items matching the HubSpot demo products by SKU."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot.demo import DEMO_PRODUCTS
from tests.unit.sandboxes.qbo_support import QboApi, fault, payload

PENDING_ESTIMATE = "2"  # the demo's pending estimate for Acme Robotics Inc. (customer 1)
ACCEPTED_ESTIMATE = "1"  # the demo's accepted estimate for Priya Patel (customer 6)


def invoice_for_pending_estimate(doc_number: str = "INV-4001") -> dict[str, Any]:
    body: dict[str, Any] = payload("invoice_from_estimate")
    body["CustomerRef"] = {"value": "1"}
    body["DocNumber"] = doc_number
    body["LinkedTxn"] = [{"TxnId": PENDING_ESTIMATE, "TxnType": "Estimate"}]
    return body


def set_estimate_status(api: QboApi, estimate_id: str, status: str) -> dict[str, Any]:
    estimate = api.read("Estimate", estimate_id)
    answer = api.post(
        "estimate",
        {"Id": estimate_id, "SyncToken": estimate["SyncToken"], "sparse": True, "TxnStatus": status},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["Estimate"]  # type: ignore[no-any-return]


def switch_custom_numbers(api: QboApi, on: bool) -> dict[str, Any]:
    preferences = api.get("preferences").json()["Preferences"]
    answer = api.post(
        "preferences",
        {"Id": preferences["Id"], "SyncToken": preferences["SyncToken"], "sparse": True,
         "SalesFormsPrefs": {"CustomTxnNumbers": on}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["Preferences"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- estimate links


def test_an_invoice_links_a_pending_estimate_which_closes_and_links_back(qbo_sandbox: SandboxServer) -> None:
    # given the demo's pending estimate
    api = QboApi(qbo_sandbox)
    assert api.read("Estimate", PENDING_ESTIMATE)["TxnStatus"] == "Pending"
    # when an invoice names it in LinkedTxn
    invoice = api.created("Invoice", invoice_for_pending_estimate())
    # then the invoice carries the link, and the estimate is closed and points at the invoice
    assert invoice["LinkedTxn"] == [{"TxnId": PENDING_ESTIMATE, "TxnType": "Estimate"}]
    estimate = api.read("Estimate", PENDING_ESTIMATE)
    assert estimate["TxnStatus"] == "Closed"
    assert estimate["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]


@pytest.mark.parametrize("status", ["Closed", "Rejected"])
def test_a_link_to_a_closed_or_rejected_estimate_is_dropped_without_an_error(
    qbo_sandbox: SandboxServer, status: str
) -> None:
    # given an estimate that is no longer open
    api = QboApi(qbo_sandbox)
    before = set_estimate_status(api, PENDING_ESTIMATE, status)
    # when an invoice names it
    answer = api.create("Invoice", invoice_for_pending_estimate())
    # then the invoice is created, without the link (QBO ignores it silently), and the estimate is untouched
    assert answer.status_code == 200, answer.text
    assert "LinkedTxn" not in answer.json()["Invoice"]
    after = api.read("Estimate", PENDING_ESTIMATE)
    assert (after["TxnStatus"], after["SyncToken"], "LinkedTxn" in after) == (
        status,
        before["SyncToken"],
        False,
    )


def test_an_estimate_is_linked_once_and_keeps_its_first_invoice(qbo_sandbox: SandboxServer) -> None:
    # given the accepted estimate invoiced once, then marked Accepted again by hand
    api = QboApi(qbo_sandbox)
    first = api.created("Invoice", payload("invoice_from_estimate"))
    set_estimate_status(api, ACCEPTED_ESTIMATE, "Accepted")
    # when a second invoice names it
    second_body = payload("invoice_from_estimate")
    second_body["DocNumber"] = "INV-3002"
    second = api.created("Invoice", second_body)
    # then the second invoice has no link; the estimate still links the first one only
    assert "LinkedTxn" not in second
    assert api.read("Estimate", ACCEPTED_ESTIMATE)["LinkedTxn"] == [
        {"TxnId": first["Id"], "TxnType": "Invoice"}
    ]
    # and the first invoice keeps its own link when it is updated
    updated = api.post(
        "invoice", {"Id": first["Id"], "SyncToken": first["SyncToken"], "sparse": True, "PrivateNote": "ok"}
    ).json()["Invoice"]
    assert updated["LinkedTxn"] == [{"TxnId": ACCEPTED_ESTIMATE, "TxnType": "Estimate"}]


# ---------------------------------------------------------------------------- DocNumber


def test_custom_txn_numbers_can_be_switched_through_the_admin_api(qbo_sandbox: SandboxServer) -> None:
    # given the demo company (custom transaction numbers on)
    api = QboApi(qbo_sandbox)
    before = api.get("preferences").json()["Preferences"]
    # when the admin API switches them off
    answer = api.admin("POST", "preferences", {"SalesFormsPrefs": {"CustomTxnNumbers": False}})
    # then Preferences say so (other SalesFormsPrefs kept, a new SyncToken), and QBO numbers a new estimate
    assert answer.status_code == 200, answer.text
    after = api.get("preferences").json()["Preferences"]
    assert after["SalesFormsPrefs"]["CustomTxnNumbers"] is False
    assert after["SalesFormsPrefs"]["AllowEstimates"] is True
    assert int(after["SyncToken"]) == int(before["SyncToken"]) + 1
    unnumbered = payload("estimate_create")
    del unnumbered["DocNumber"]
    assert api.created("Estimate", unnumbered)["DocNumber"].isdigit()
    # and input it cannot use is refused
    assert api.admin("POST", "preferences", {"realm_id": "1", "SalesFormsPrefs": {}}).status_code == 400
    assert api.admin("POST", "preferences", {"Bogus": {"x": 1}}).status_code == 400
    assert api.admin("POST", "preferences", {}).status_code == 400


def test_a_duplicate_estimate_number_is_fault_6140_when_custom_numbers_are_on(
    qbo_sandbox: SandboxServer,
) -> None:
    api = QboApi(qbo_sandbox)
    body = payload("estimate_create")
    body["DocNumber"] = "E-1001"  # the demo's accepted estimate
    error = fault(api.create("Estimate", body))
    assert (error["code"], error["Message"]) == ("6140", "Duplicate Document Number Error")


def test_a_number_sent_while_custom_numbers_are_off_is_kept_unchecked_by_default(
    qbo_sandbox: SandboxServer,
) -> None:
    # given custom transaction numbers off
    api = QboApi(qbo_sandbox)
    switch_custom_numbers(api, on=False)
    # when two invoices are sent with the same number
    first = api.created("Invoice", payload("invoice_create"))
    second = api.created("Invoice", payload("invoice_create"))
    # then both keep it: nothing checks it (Intuit: sending one "can lead to unwanted duplicates"; unverified)
    assert (first["DocNumber"], second["DocNumber"]) == ("INV-2001", "INV-2001")
    # and a number sent on an update replaces that invoice's number
    renumbered = api.post(
        "invoice",
        {"Id": first["Id"], "SyncToken": first["SyncToken"], "sparse": True, "DocNumber": "INV-2002"},
    ).json()["Invoice"]
    assert renumbered["DocNumber"] == "INV-2002"


def test_the_other_reading_has_qbo_replace_a_sent_number(qbo_sandbox: SandboxServer) -> None:
    # given custom transaction numbers off and the sandbox set to the other (unverified) behaviour
    api = QboApi(qbo_sandbox)
    api.configure(doc_number_when_auto_numbering="replaced")
    switch_custom_numbers(api, on=False)
    # when an invoice is sent with a number
    invoice = api.created("Invoice", payload("invoice_create"))
    # then QBO's own number wins
    assert invoice["DocNumber"] != "INV-2001" and invoice["DocNumber"].isdigit()
    assert api.admin("PATCH", "config", {"doc_number_when_auto_numbering": "maybe"}).status_code == 400


# ---------------------------------------------------------------------------- names


def test_display_names_compare_without_case_and_outer_spaces(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    # a demo customer's name in other case, with spaces around it, is taken
    for name in ("ACME ROBOTICS INC.", "  Acme Robotics Inc.  "):
        error = fault(api.create("Customer", {"DisplayName": name}))
        assert (error["code"], error["Message"]) == ("6240", "Duplicate Name Exists Error")
    # a new name is stored without its outer spaces, and then is taken in any case
    created = api.created("Customer", {"DisplayName": " Harbor Point Marina  "})
    assert created["DisplayName"] == "Harbor Point Marina"
    assert fault(api.create("Customer", {"DisplayName": "harbor point marina"}))["code"] == "6240"
    # an inner difference is another name
    assert api.create("Customer", {"DisplayName": "Harbor  Point Marina"}).status_code == 200


def test_case_sensitive_names_are_a_config_choice(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(display_names_case_sensitive=True)
    assert api.create("Customer", {"DisplayName": "acme robotics inc."}).status_code == 200
    assert fault(api.create("Customer", {"DisplayName": " Acme Robotics Inc. "}))["code"] == "6240"
    assert api.admin("PATCH", "config", {"display_names_case_sensitive": "yes"}).status_code == 400


def test_a_full_update_with_a_stale_sync_token_is_fault_5010(qbo_sandbox: SandboxServer) -> None:
    # given a customer changed since it was read
    api = QboApi(qbo_sandbox)
    read = api.read("Customer", "1")
    api.post("customer", {"Id": "1", "SyncToken": read["SyncToken"], "sparse": True, "Notes": "first"})
    # when a full update sends the SyncToken read before that change
    stale = {
        key: value for key, value in read.items() if key not in ("MetaData", "Balance", "BalanceWithJobs")
    }
    answer = api.post("customer", {**stale, "Notes": "second"})
    # then QBO's Stale Object Error, and the first change stands
    assert (answer.status_code, fault(answer)["code"]) == (400, "5010")
    assert api.read("Customer", "1")["Notes"] == "first"


# ---------------------------------------------------------------------------- queries


@pytest.mark.parametrize(
    ("statement", "entity", "ids"),
    [
        ("select * from Customer where DisplayName = 'Acme Robotics Inc.'", "Customer", ["1"]),
        ("select * from Customer where CompanyName = 'Bluebird Hospitality'", "Customer", ["2", "3"]),
        ("select * from Customer where PrimaryEmailAddr = 'ap@acmerobotics.example'", "Customer", ["1"]),
        ("select * from Customer where GivenName = 'Priya'", "Customer", ["6"]),
        ("select * from Item where Sku = 'ROCKFTN'", "Item", ["11"]),
        ("select * from Item where Name = 'Pump'", "Item", ["14"]),
        ("select * from Item where Sku = 'INSTALL' and Active = true", "Item", ["9"]),
    ],
)
def test_the_filters_the_hubspot_flow_uses(
    qbo_sandbox: SandboxServer, statement: str, entity: str, ids: list[str]
) -> None:
    api = QboApi(qbo_sandbox)
    assert [row["Id"] for row in api.query_rows(statement, entity)] == ids


def test_an_inactive_item_is_found_only_when_active_is_filtered(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    pump = api.read("Item", "14")
    api.post("item", {"Id": "14", "SyncToken": pump["SyncToken"], "sparse": True, "Active": False})
    assert api.query_rows("select * from Item where Sku = 'PUMP'", "Item") == []
    found = api.query_rows("select * from Item where Sku = 'PUMP' and Active = false", "Item")
    assert [row["Id"] for row in found] == ["14"]


@pytest.mark.parametrize(
    "statement",
    [
        "select * from Customer where Job = false",
        "select * from Customer where CurrencyRef = 'EUR'",
        "select * from Customer where ParentRef = '1'",
    ],
)
def test_customer_fields_intuit_does_not_mark_filterable_are_refused(
    qbo_sandbox: SandboxServer, statement: str
) -> None:
    answer = QboApi(qbo_sandbox).query(statement)
    assert (answer.status_code, fault(answer)["code"]) == (400, "4001")


# ---------------------------------------------------------------------------- items


def test_an_item_is_created_with_its_sku_and_a_long_sku_is_refused(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    created = api.created("Item", payload("item_create"))
    assert created["Sku"] == "IRR-DRIP-50"
    assert [row["Id"] for row in api.query_rows("select * from Item where Sku = 'IRR-DRIP-50'", "Item")] == [
        created["Id"]
    ]
    too_long = {**payload("item_create"), "Name": "Another kit", "Sku": "S" * 101}
    assert fault(api.create("Item", too_long))["code"] == "2050"


def test_demo_items_carry_skus_of_the_hubspot_demo_products(qbo_sandbox: SandboxServer) -> None:
    # given the QBO demo company's items and the HubSpot demo portal's products
    api = QboApi(qbo_sandbox)
    items = api.query_rows("select * from Item", "Item")
    hubspot_skus = {sku for _, sku, _ in DEMO_PRODUCTS}
    # then six products find exactly one item by SKU, and the "Hours" product one by name only
    by_sku = {item["Sku"]: item for item in items if item.get("Sku") in hubspot_skus}
    assert set(by_sku) == {"INSTALL", "GARDEN", "ROCKFTN", "SPRHEAD", "SPRPIPE", "PUMP"}
    assert {name for name, sku, _ in DEMO_PRODUCTS if sku in by_sku} == {
        item["Name"] for item in by_sku.values()
    }
    assert [item["Name"] for item in items if item["Name"] == "Hours" and not item.get("Sku")] == ["Hours"]
