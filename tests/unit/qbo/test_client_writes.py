"""The QBO client's writes and single reads against the QBO sandbox: create and update with a
``requestid``, exact Decimal bodies, estimate -> invoice links, QBO's faults as QboFault helpers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from ledgerlink.clock import ManualClock
from ledgerlink.qbo.client import QboClient, QboFault, encode_body
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.conftest import FIXTURES
from tests.integration.test_deal_sync_support import Capture, Sent
from tests.qbo_xsd import assert_fields_conform
from tests.unit.qbo.conftest import company, make_client

REALM = DEMO_REALM_ID


def body(name: str) -> dict[str, Any]:
    """A write body from tests/fixtures/qbo_writes/, its numbers as Decimal (as the flow builds them)."""
    loaded: dict[str, Any] = json.loads(
        (FIXTURES / "qbo_writes" / f"{name}.json").read_text(encoding="utf-8"), parse_float=Decimal
    )
    return loaded


def writes(capture: Capture, server: SandboxServer) -> list[Sent]:
    return [
        sent for sent in capture.to(server.url) if sent.method == "POST" and not sent.path.endswith("/query")
    ]


def assert_write_conforms(sent: Sent, entity: str) -> None:
    """A write as Intuit documents it: JSON body of XSD fields, requestid and minorversion in the query."""
    assert sent.path == f"/v3/company/{REALM}/{entity.lower()}"
    assert sent.content_type == "application/json"
    assert sent.query["minorversion"] == ["75"] and len(sent.query["requestid"]) == 1
    assert_fields_conform(entity, sent.json())


def test_an_estimate_is_created_with_its_money_sent_exactly(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given an estimate body whose unit price has three decimals
    estimate_body = body("estimate_from_deal")
    # when it is created
    created = client.create(REALM, "Estimate", estimate_body, request_id="conn1-deal9001-estimate")
    # then QBO's object comes back (pending, totals computed, money still Decimal)
    assert created["Id"] and created["SyncToken"] == "0" and created["TxnStatus"] == "Pending"
    assert isinstance(created["TotalAmt"], Decimal)
    assert (
        company(qbo_sandbox).objects["Estimate"][created["Id"]]["PrivateNote"].startswith("HubSpot deal 9001")
    )
    # and one POST left, with the request id, the numbers exactly as written and only XSD fields
    (sent,) = writes(capture, qbo_sandbox)
    assert_write_conforms(sent, "Estimate")
    assert sent.query["requestid"] == ["conn1-deal9001-estimate"]
    assert b'"UnitPrice":49.995' in (sent.body or b"") and b'"Amount":275.00' in (sent.body or b"")


def test_an_invoice_linked_to_the_estimate_carries_the_link_and_closes_it(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given a pending estimate
    estimate = client.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9001-estimate")
    # when its invoice is created with a LinkedTxn to it
    invoice_body = {
        **body("invoice_from_deal"),
        "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}],
    }
    invoice = client.create(REALM, "Invoice", invoice_body, request_id="deal9001-invoice")
    # then the answer carries the link, and the estimate, read again, is closed and links back
    assert invoice["LinkedTxn"] == [{"TxnId": estimate["Id"], "TxnType": "Estimate"}]
    reread = client.read(REALM, "Estimate", estimate["Id"])
    assert reread is not None and reread["TxnStatus"] == "Closed"
    assert reread["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    for sent, entity in zip(writes(capture, qbo_sandbox), ("Estimate", "Invoice"), strict=True):
        assert_write_conforms(sent, entity)


def test_linking_a_closed_estimate_answers_an_invoice_without_the_link(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given an estimate already closed
    estimate = client.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9002-estimate")
    closed = client.update(
        REALM,
        "Estimate",
        {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"], "sparse": True, "TxnStatus": "Closed"},
        request_id="deal9002-estimate-close",
    )
    # when an invoice links it
    invoice_body = {
        **body("invoice_from_deal"),
        "LinkedTxn": [{"TxnId": estimate["Id"], "TxnType": "Estimate"}],
    }
    invoice = client.create(REALM, "Invoice", invoice_body, request_id="deal9002-invoice")
    # then QBO creates the invoice without the link and says nothing: the caller must look at LinkedTxn
    assert invoice["Id"] and not invoice.get("LinkedTxn")
    reread = client.read(REALM, "Estimate", estimate["Id"])
    assert reread is not None and reread["SyncToken"] == closed["SyncToken"] and "LinkedTxn" not in reread
    for sent, entity in zip(writes(capture, qbo_sandbox), ("Estimate", "Estimate", "Invoice"), strict=True):
        assert_write_conforms(sent, entity)


def test_the_same_request_id_twice_creates_one_object(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given an estimate created under a request id
    before = len(company(qbo_sandbox).objects["Estimate"])
    first = client.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9003-estimate")
    # when the same write is sent again under the same id (a retry after an answer that was lost)
    again = client.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9003-estimate")
    # then QBO answers with the first estimate and holds one more estimate, not two
    assert again["Id"] == first["Id"]
    assert len(company(qbo_sandbox).objects["Estimate"]) == before + 1
    for sent in writes(capture, qbo_sandbox):
        assert_write_conforms(sent, "Estimate")


def test_a_post_that_failed_with_a_5xx_is_resent_under_the_same_request_id(
    qbo_sandbox: SandboxServer,
) -> None:
    # given QBO failing the next estimate write with a 500, and a client whose waits are instant
    requests.post(
        f"{qbo_sandbox.url}/_admin/faults",
        json={"kind": "500", "count": 1, "path_prefix": f"/v3/company/{REALM}/estimate"},
        timeout=10,
    )
    retrying = make_client(qbo_sandbox, clock=ManualClock())
    before = len(company(qbo_sandbox).objects["Estimate"])
    # when an estimate is created
    created = retrying.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9004-estimate")
    # then the HTTP layer sent the POST twice (safe: the requestid), and one estimate exists
    log = requests.get(f"{qbo_sandbox.url}/_admin/requests", timeout=10).json()["requests"]
    posts = [entry for entry in log if entry["path"].endswith("/estimate")]
    assert [entry["status"] for entry in posts] == [500, 200]
    assert all("requestid=deal9004-estimate" in entry["query"] for entry in posts)
    assert len(company(qbo_sandbox).objects["Estimate"]) == before + 1 and created["Id"]


def test_a_stale_update_is_a_stale_object_fault_that_is_not_retried(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given an estimate updated since it was read
    estimate = client.create(REALM, "Estimate", body("estimate_from_deal"), request_id="deal9005-estimate")
    client.update(
        REALM,
        "Estimate",
        {"Id": estimate["Id"], "SyncToken": estimate["SyncToken"], "sparse": True, "PrivateNote": "first"},
        request_id="deal9005-update-1",
    )
    # when a full update is sent with the SyncToken read before
    stale = {**body("estimate_from_deal"), "Id": estimate["Id"], "SyncToken": estimate["SyncToken"]}
    with pytest.raises(QboFault) as raised:
        client.update(REALM, "Estimate", stale, request_id="deal9005-update-2")
    # then QboFault says stale object, naming the code and QBO's message, and the call was made once
    fault = raised.value
    assert fault.is_stale_object and fault.code == "5010" and fault.retryable is False
    assert "5010" in str(fault) and "Stale Object Error" in str(fault)
    assert not (fault.is_duplicate_doc_number or fault.is_duplicate_name)
    sent = writes(capture, qbo_sandbox)
    assert [s.query["requestid"] for s in sent][-1:] == [["deal9005-update-2"]] and len(sent) == 3
    for each in sent:
        assert_write_conforms(each, "Estimate")


def test_a_duplicate_doc_number_with_custom_numbers_on_is_a_duplicate_doc_number_fault(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given the demo company (custom transaction numbers on) and an estimate numbered Q-9006
    assert client.preferences(REALM)["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    numbered = {**body("estimate_from_deal"), "DocNumber": "Q-9006"}
    client.create(REALM, "Estimate", numbered, request_id="deal9006-estimate")
    # when another estimate is sent with the same number
    with pytest.raises(QboFault) as raised:
        client.create(REALM, "Estimate", numbered, request_id="deal9007-estimate")
    # then the fault says so, and its detail names the estimate holding the number
    assert raised.value.is_duplicate_doc_number and raised.value.retryable is False
    assert "DocNumber=Q-9006" in raised.value.detail
    for sent in writes(capture, qbo_sandbox):
        assert_write_conforms(sent, "Estimate")


def test_a_duplicate_display_name_is_a_duplicate_name_fault(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given a customer created from a HubSpot contact
    created = client.create(REALM, "Customer", body("customer_from_contact"), request_id="contact77-customer")
    assert created["DisplayName"] == "Northwind Traders"
    # when a second customer is sent with the same name in other case
    second = {**body("customer_from_contact"), "DisplayName": "NORTHWIND TRADERS"}
    with pytest.raises(QboFault) as raised:
        client.create(REALM, "Customer", second, request_id="contact78-customer")
    # then the fault says duplicate name
    assert raised.value.is_duplicate_name and raised.value.code == "6240" and not raised.value.retryable
    for sent in writes(capture, qbo_sandbox):
        assert_write_conforms(sent, "Customer")


def test_reading_a_missing_id_answers_none(client: QboClient) -> None:
    assert client.read(REALM, "Invoice", "424242") is None
    assert client.read(REALM, "Customer", "424242") is None
    found = client.read(REALM, "Item", "11")
    assert found is not None and found["Sku"] == "ROCKFTN"


def test_company_info_and_the_queries_the_flow_needs(client: QboClient) -> None:
    info = client.company_info(REALM)
    assert info["Country"] == "US" and info["CompanyName"]
    assert [row["Id"] for row in client.query(REALM, "select * from Item where Sku = 'PUMP'")] == ["14"]
    by_email = client.query(
        REALM, "select * from Customer where PrimaryEmailAddr = 'ap@acmerobotics.example'"
    )
    assert [row["DisplayName"] for row in by_email] == ["Acme Robotics Inc."]
    assert {row["Id"] for row in client.query(REALM, "select * from TaxCode")} >= {"TAX", "NON"}
    assert client.query(REALM, "select * from CompanyInfo")[0]["CompanyName"] == info["CompanyName"]
    assert client.query(REALM, "select * from Preferences")[0]["SalesFormsPrefs"]["AllowEstimates"] is True


@pytest.mark.parametrize("request_id", ["", "x" * 51, "has space", "tab\there", None])
def test_a_request_id_qbo_would_refuse_is_refused_before_any_call(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture, request_id: Any
) -> None:
    with pytest.raises(ValueError, match="requestid"):
        client.create(REALM, "Estimate", body("estimate_from_deal"), request_id=request_id)
    assert capture.to(qbo_sandbox.url) == []


def test_an_update_without_id_or_sync_token_and_an_unknown_entity_are_refused_before_any_call(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    with pytest.raises(ValueError, match="SyncToken"):
        client.update(REALM, "Estimate", {"Id": "1", "sparse": True}, request_id="r-1")
    with pytest.raises(ValueError, match="entity"):
        client.create(REALM, "Bill", {"VendorRef": {"value": "1"}}, request_id="r-2")
    with pytest.raises(ValueError, match="entity"):
        client.read(REALM, "estimate", "1")
    assert capture.to(qbo_sandbox.url) == []


def test_a_float_never_goes_out_and_decimals_are_written_as_written() -> None:
    assert encode_body({"A": Decimal("0.10"), "B": [Decimal("1E+2"), 3, True, None], "C": "é"}) == (
        '{"A":0.10,"B":[100,3,true,null],"C":"é"}'.encode()
    )
    with pytest.raises(TypeError, match=r"body\.Line\[0\]\.Amount is a float"):
        encode_body({"Line": [{"Amount": 99.99}]})
    with pytest.raises(ValueError, match="JSON cannot carry"):
        encode_body({"Amount": Decimal("NaN")})
