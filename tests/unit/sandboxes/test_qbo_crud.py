"""QBO sandbox: create, read, full and sparse update, SyncToken, delete, void, requestid, DocNumber, names."""

from __future__ import annotations

import re

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.qbo_support import QboApi, fault, payload

COMPANY_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-0[78]:00$")  # Pacific, second precision


def test_create_then_read_returns_qbo_wrapped_object(qbo_sandbox: SandboxServer) -> None:
    # given a customer to create
    api = QboApi(qbo_sandbox)
    # when it is created and read back
    answer = api.create("Customer", payload("customer_create"))
    created = answer.json()["Customer"]
    read = api.read("Customer", created["Id"])
    # then QBO's envelope, system fields and derived fields are there
    assert answer.status_code == 200 and re.match(
        r"^\d{4}-\d{2}-\d{2}T.*\.\d{3}-0[78]:00$", answer.json()["time"]
    )
    assert read == created
    assert created["SyncToken"] == "0" and created["domain"] == "QBO" and created["sparse"] is False
    assert COMPANY_TIME.match(created["MetaData"]["CreateTime"])
    assert created["MetaData"]["CreateTime"] == created["MetaData"]["LastUpdatedTime"]
    assert created["FullyQualifiedName"] == "Harbor Point Marina" and created["Active"] is True
    assert created["Balance"] == 0 and created["CurrencyRef"]["value"] == "USD"
    assert answer.headers["intuit_tid"]


def test_full_update_replaces_and_sparse_update_merges(qbo_sandbox: SandboxServer) -> None:
    # given a customer with notes and a phone
    api = QboApi(qbo_sandbox)
    created = api.created("Customer", payload("customer_create"))
    # when a sparse update changes only the e-mail
    sparse = api.post(
        "customer",
        {"Id": created["Id"], "SyncToken": created["SyncToken"], "sparse": True,
         "PrimaryEmailAddr": {"Address": "accounts@harborpoint.example"}},
    ).json()["Customer"]  # fmt: skip
    # then the other fields stay and the SyncToken moves on
    assert sparse["PrimaryEmailAddr"]["Address"] == "accounts@harborpoint.example"
    assert sparse["Notes"] == created["Notes"] and sparse["PrimaryPhone"] == created["PrimaryPhone"]
    assert sparse["SyncToken"] == "1"
    # when a full update sends only the name
    full = api.post("customer", {"Id": created["Id"], "SyncToken": "1", "DisplayName": "Harbor Point Marina"})
    # then omitted writable fields are cleared, as QBO does
    body = full.json()["Customer"]
    assert full.status_code == 200 and body["SyncToken"] == "2"
    assert "Notes" not in body and "PrimaryEmailAddr" not in body
    assert body["MetaData"]["CreateTime"] == created["MetaData"]["CreateTime"]


def test_stale_sync_token_is_fault_5010(qbo_sandbox: SandboxServer) -> None:
    # given two clients that read the same invoice
    api = QboApi(qbo_sandbox)
    invoice = api.read("Invoice", "1")
    first = api.post(
        "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "A"}
    )
    # when the second writes with the SyncToken it read
    second = api.post(
        "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "B"}
    )
    # then QBO's Stale Object Error, and the first write stands
    assert first.status_code == 200
    assert second.status_code == 400 and second.json()["Fault"]["type"] == "ValidationFault"
    error = fault(second)
    assert error["code"] == "5010" and error["Message"] == "Stale Object Error"
    assert "were working on this at the same time" in error["Detail"]
    assert api.read("Invoice", "1")["PrivateNote"] == "A"


def test_missing_objects_and_references_are_fault_610(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    missing = api.get("invoice/9999")
    update_missing = api.post("invoice", {"Id": "9999", "SyncToken": "0", "sparse": True, "PrivateNote": "x"})
    body = payload("invoice_create")
    body["CustomerRef"] = {"value": "9999"}
    bad_customer = api.create("Invoice", body)
    body = payload("invoice_create")
    body["Line"][0]["SalesItemLineDetail"]["ItemRef"] = {"value": "424242"}
    bad_item = api.create("Invoice", body)
    for answer in (missing, update_missing, bad_customer, bad_item):
        assert answer.status_code == 400 and fault(answer)["code"] == "610"
    assert fault(bad_customer)["element"] == "CustomerRef" and fault(bad_item)["element"] == "ItemRef"


def test_reference_to_an_inactive_customer_is_fault_610(qbo_sandbox: SandboxServer) -> None:
    # given a customer made inactive (QBO has no customer delete)
    api = QboApi(qbo_sandbox)
    customer = api.created("Customer", payload("customer_create"))
    api.post("customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    # when an invoice names it
    body = payload("invoice_create")
    body["CustomerRef"] = {"value": customer["Id"]}
    answer = api.create("Invoice", body)
    # then QBO's Object Not Found
    assert answer.status_code == 400 and fault(answer)["code"] == "610"
    assert (
        fault(api.post("customer?operation=delete", {"Id": customer["Id"], "SyncToken": "1"}))["code"]
        == "500"
    )


def test_duplicate_display_name_is_fault_6240(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    same_customer = api.create("Customer", {"DisplayName": "acme robotics inc."})
    same_as_employee = api.create("Customer", {"DisplayName": "Emily Carter"})
    item = api.create("Item", {"Name": "Site Survey", "IncomeAccountRef": {"value": "1"}})
    for answer in (same_customer, same_as_employee, item):
        assert answer.status_code == 400
        assert (fault(answer)["code"], fault(answer)["Message"]) == ("6240", "Duplicate Name Exists Error")


def test_duplicate_doc_number_is_fault_6140_when_custom_numbers_are_on(qbo_sandbox: SandboxServer) -> None:
    # given the demo company (custom transaction numbers on) and an invoice numbered INV-2001
    api = QboApi(qbo_sandbox)
    first = api.created("Invoice", payload("invoice_create"))
    # when a second invoice uses the same number
    answer = api.create("Invoice", payload("invoice_create"))
    # then QBO's Duplicate Document Number Error names the holder
    assert first["DocNumber"] == "INV-2001"
    assert answer.status_code == 400
    error = fault(answer)
    assert (error["code"], error["Message"]) == ("6140", "Duplicate Document Number Error")
    assert f"TxnId={first['Id']}" in error["Detail"]
    # and a number over 21 characters is refused
    body = payload("invoice_create")
    body["DocNumber"] = "X" * 22
    assert fault(api.create("Invoice", body))["code"] == "2050"


def test_doc_numbers_are_assigned_when_custom_numbers_are_off(qbo_sandbox: SandboxServer) -> None:
    # given custom transaction numbers switched off in Preferences
    api = QboApi(qbo_sandbox)
    preferences = api.get("preferences").json()["Preferences"]
    switched = api.post(
        "preferences",
        {"Id": preferences["Id"], "SyncToken": preferences["SyncToken"], "sparse": True,
         "SalesFormsPrefs": {"CustomTxnNumbers": False}},
    )  # fmt: skip
    assert switched.json()["Preferences"]["SalesFormsPrefs"]["AllowEstimates"] is True  # sections merge
    # when two invoices are created without a number (as Intuit advises when the preference is off)
    unnumbered = payload("invoice_create")
    del unnumbered["DocNumber"]
    first = api.created("Invoice", unnumbered)
    second = api.created("Invoice", unnumbered)
    # then QBO numbers them itself, in sequence after the highest existing number
    # (a number sent while the preference is off: tests/unit/sandboxes/test_qbo_sales_forms.py)
    assert (first["DocNumber"], second["DocNumber"]) == ("1006", "1007")


def test_requestid_makes_a_retried_write_harmless(qbo_sandbox: SandboxServer) -> None:
    # given a create sent with a requestid
    api = QboApi(qbo_sandbox)
    before = api.query("select count(*) from Invoice").json()["QueryResponse"]["totalCount"]
    first = api.create("Invoice", payload("invoice_create"), requestid="7c1d0c5e-retry-safe")
    # when the client retries with the same requestid (even after a timeout it could not see)
    again = api.create("Invoice", payload("invoice_create"), requestid="7c1d0c5e-retry-safe")
    # then the same answer comes back and no second invoice exists
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    after = api.query("select count(*) from Invoice").json()["QueryResponse"]["totalCount"]
    assert after == before + 1
    # while another requestid is a new write (here refused: the number is taken)
    assert fault(api.create("Invoice", payload("invoice_create"), requestid="another-one"))["code"] == "6140"
    too_long = api.create("Invoice", payload("invoice_create"), requestid="r" * 51)
    assert fault(too_long)["code"] == "6000"


def test_delete_removes_the_object(qbo_sandbox: SandboxServer) -> None:
    # given an invoice
    api = QboApi(qbo_sandbox)
    invoice = api.created("Invoice", payload("invoice_create"))
    # when it is deleted with a stale SyncToken, then with the right one
    stale = api.post("invoice", {"Id": invoice["Id"], "SyncToken": "7"}, operation="delete")
    deleted = api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    # then only the second works, answering QBO's deleted stub, and the invoice is gone
    assert fault(stale)["code"] == "5010"
    assert deleted.json()["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    assert fault(api.get(f"invoice/{invoice['Id']}"))["code"] == "610"
    # and the customer's balance no longer counts it
    assert api.read("Customer", "1")["Balance"] == 2810.51


def test_void_zeroes_the_invoice_and_marks_it(qbo_sandbox: SandboxServer) -> None:
    # given the demo's partially paid invoice (2) and its payment (1)
    api = QboApi(qbo_sandbox)
    invoice = api.read("Invoice", "2")
    assert invoice["Balance"] < invoice["TotalAmt"]
    # when it is voided as Intuit documents it
    answer = api.post("invoice", {"Id": "2", "SyncToken": invoice["SyncToken"]}, operation="void")
    voided = answer.json()["Invoice"]
    # then amounts are zero, the note says Voided, and the payment is released as unapplied credit
    assert answer.status_code == 200
    assert voided["TotalAmt"] == 0 and voided["Balance"] == 0
    assert voided["PrivateNote"].startswith("Voided")
    assert all(line["Amount"] == 0 for line in voided["Line"])
    assert voided["TxnTaxDetail"]["TotalTax"] == 0 and "LinkedTxn" not in voided
    payment = api.read("Payment", "1")
    assert payment["UnappliedAmt"] == 500 and "Line" not in payment
    assert api.read("Customer", "2")["Balance"] == -500  # credit on account
    # and a voided invoice cannot be edited
    edit = api.post(
        "invoice", {"Id": "2", "SyncToken": voided["SyncToken"], "sparse": True, "PrivateNote": "x"}
    )
    assert fault(edit)["code"] == "6000"


def test_void_payment_reopens_the_invoice(qbo_sandbox: SandboxServer) -> None:
    # given the demo's fully paid invoice (3) and its payment (2)
    api = QboApi(qbo_sandbox)
    payment = api.read("Payment", "2")
    # when the payment is voided the way python-quickbooks does it (operation=update&include=void)
    answer = api.post(
        "payment",
        {"Id": "2", "SyncToken": payment["SyncToken"], "sparse": True},
        operation="update",
        include="void",
    )
    # then the payment is zero and the invoice is open again
    assert answer.status_code == 200
    assert answer.json()["Payment"]["TotalAmt"] == 0
    assert answer.json()["Payment"]["PrivateNote"].startswith("Voided")
    invoice = api.read("Invoice", "3")
    assert invoice["Balance"] == invoice["TotalAmt"] == 760 and "LinkedTxn" not in invoice


def test_unknown_fields_and_malformed_bodies_are_rejected(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    body = payload("customer_create")
    body["DisplayNmae"] = "typo"
    misspelled = api.create("Customer", body)
    assert fault(misspelled)["code"] == "2010" and "DisplayNmae" in fault(misspelled)["Detail"]
    broken = api.post("customer", "{not json")
    assert broken.status_code == 400 and fault(broken)["code"] == "2010"
    no_lines = api.create("Invoice", {"CustomerRef": {"value": "1"}})
    assert (fault(no_lines)["code"], fault(no_lines)["element"]) == ("2020", "Line")
    no_sync_token = api.post("invoice", {"Id": "1", "sparse": True, "PrivateNote": "x"})
    assert fault(no_sync_token)["code"] == "2020"
    unknown_entity = api.get("widget/1")
    assert unknown_entity.status_code == 400 and fault(unknown_entity)["Message"] == "Unsupported Operation"
    read_only = api.create("TaxCode", {"Name": "New tax"})
    assert fault(read_only)["code"] == "500"


def test_minorversion_is_accepted(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox, minor_version="75")
    assert api.get("invoice/1").status_code == 200
    assert api.get("invoice/1", minorversion="4").status_code == 200


def test_item_time_activity_and_employee_writes(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    item = api.created("Item", payload("item_create"))
    assert (item["Type"], item["QtyOnHand"], item["TrackQtyOnHand"]) == ("Inventory", 25, True)
    assert item["IncomeAccountRef"] == {"value": "2", "name": "Sales of Product Income"}
    no_account = api.create("Item", {"Name": "Bare", "Type": "Service"})
    assert (fault(no_account)["code"], fault(no_account)["element"]) == ("2020", "IncomeAccountRef")
    entry = api.created("TimeActivity", payload("time_activity_create"))
    assert entry["EmployeeRef"] == {"value": "1", "name": "Emily Carter"}
    assert entry["BillableStatus"] == "Billable" and entry["HourlyRate"] == 150
    no_hours = payload("time_activity_create")
    del no_hours["StartTime"], no_hours["EndTime"]
    assert fault(api.create("TimeActivity", no_hours))["code"] == "2020"
    employee = api.created("Employee", {"GivenName": "Ana", "FamilyName": "Ruiz"})
    assert employee["DisplayName"] == "Ana Ruiz" and employee["Active"] is True
