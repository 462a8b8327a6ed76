"""The QBO client against the QBO sandbox: reads by ``Id IN`` queries, Decimal money, faults."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from ledgerlink.qbo import client as qbo_client_module
from ledgerlink.qbo.client import QboClient, QboFault
from ledgerlink.qbo.ids import InvalidEntityId
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration.test_deal_sync_support import Capture, assert_qbo_request_conforms
from tests.unit.qbo.conftest import company


def test_many_entities_are_read_with_one_query_and_money_stays_decimal(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture
) -> None:
    # given the demo company's invoices, and an id that does not exist
    wanted = ["1", "2", "3", "4", "5", "999"]

    # when they are read
    found = client.read_many(DEMO_REALM_ID, "Invoice", wanted)

    # then one query call returned every invoice that exists, amounts exact (never a float)
    assert sorted(found) == ["1", "2", "3", "4", "5"]
    assert all(isinstance(invoice["TotalAmt"], Decimal | int) for invoice in found.values())
    assert isinstance(found["1"]["TotalAmt"], Decimal)
    assert found["1"]["TotalAmt"] == Decimal(str(company(qbo_sandbox).objects["Invoice"]["1"]["TotalAmt"]))
    (sent,) = capture.to(qbo_sandbox.url)
    assert sent.body == (
        b"select * from Invoice where Id in ('1', '2', '3', '4', '5', '999') STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert_qbo_request_conforms(sent)


def test_an_inactive_customer_named_by_an_invoice_is_still_read(
    client: QboClient, qbo_sandbox: SandboxServer
) -> None:
    # given a customer made inactive after it was invoiced
    with qbo_sandbox.sandbox.lock:
        customer = company(qbo_sandbox).read("Customer", "5")
        company(qbo_sandbox).update(
            "Customer", {"Id": "5", "SyncToken": customer["SyncToken"], "sparse": True, "Active": False}
        )

    # when it is read by id
    found = client.read_many(DEMO_REALM_ID, "Customer", ["5", "1"])

    # then it is there (QBO's name lists hide inactive objects unless the query asks for them)
    assert found["5"]["Active"] is False
    assert set(found) == {"1", "5"}


def test_results_beyond_one_page_are_followed(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given pages of two rows
    monkeypatch.setattr(qbo_client_module, "MAX_RESULTS", 2)

    # when five invoices are read
    found = client.read_many(DEMO_REALM_ID, "Invoice", ["1", "2", "3", "4", "5"])

    # then every row arrived, over three pages (2 + 2 + 1); ids are chunked by the page size too
    assert sorted(found) == ["1", "2", "3", "4", "5"]
    assert len(capture.to(qbo_sandbox.url)) >= 3


def test_a_query_fault_names_the_code_and_is_not_retried(
    client: QboClient, qbo_sandbox: SandboxServer
) -> None:
    # given a statement filtering on a field QBO does not know
    # when it is run
    with pytest.raises(QboFault) as raised:
        client.query(DEMO_REALM_ID, "select * from Invoice where Colour = 'blue'")

    # then the fault says which code and is not retryable (retrying the same query fails the same way)
    assert raised.value.code == "4001"
    assert raised.value.retryable is False
    assert (
        len(
            [
                r
                for r in requests.get(f"{qbo_sandbox.url}/_admin/requests", timeout=10).json()["requests"]
                if r["path"].endswith("/query")
            ]
        )
        == 1
    )


@pytest.mark.parametrize("bad_id", ["1') or ('1'='1", "1 2", "", "x" * 65, "1;2", "1\n2", "INV-0001/A"])
def test_an_id_that_could_change_the_statement_is_refused_before_any_call(
    client: QboClient, qbo_sandbox: SandboxServer, capture: Capture, bad_id: str
) -> None:
    with pytest.raises(InvalidEntityId, match="QBO entity id") as caught:
        client.read_many(DEMO_REALM_ID, "Invoice", ["1", bad_id])
    # the sync dead-letters it at once: no retry can make the id valid
    assert caught.value.retryable is False
    assert capture.to(qbo_sandbox.url) == []


def test_the_home_currency_comes_from_preferences(client: QboClient) -> None:
    assert client.home_currency(DEMO_REALM_ID) == "USD"
