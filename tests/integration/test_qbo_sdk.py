"""Intuit's ecosystem clients against the QBO sandbox: ``python-quickbooks`` with ``intuit-oauth``.

Both can be pointed at a custom host without touching their internals:

- ``intuitlib.client.AuthClient`` takes, as ``environment``, either ``"sandbox"``/``"production"`` or the
  URL of an OpenID discovery document; the sandbox serves one, so the SDK's token and revoke endpoints
  become the sandbox's (``AuthClient(..., environment=<sandbox>/.well-known/openid_sandbox_configuration)``);
- ``quickbooks.QuickBooks`` builds every URL from its public ``api_url_v3`` attribute (a class constant
  that an instance may override), so ``client.api_url_v3 = <sandbox>/v3`` is all it takes;
- its ``requests-oauthlib`` session refuses plain HTTP unless ``OAUTHLIB_INSECURE_TRANSPORT`` is set,
  oauthlib's documented switch for local testing (the sandbox serves HTTP on 127.0.0.1).

The SDK then creates, queries, sparse-updates, batches and CDC-reads invoices exactly as it would
against Intuit, and its exception mapping sees QBO's own fault codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import AuthorizationException, ObjectNotFoundException, QuickbooksException
from quickbooks.objects.base import Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_REDIRECT_URI, DemoCredentials

MINOR_VERSION = 75


@pytest.fixture
def client(qbo_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[QuickBooks]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    credentials = DemoCredentials.for_sandbox(qbo_sandbox.url)
    auth_client = AuthClient(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        redirect_uri=DEMO_REDIRECT_URI,
        environment=f"{qbo_sandbox.url}/.well-known/openid_sandbox_configuration",
    )
    quickbooks = QuickBooks(
        auth_client=auth_client,
        refresh_token=credentials.refresh_token,
        company_id=credentials.realm_id,
        minorversion=MINOR_VERSION,
    )
    quickbooks.api_url_v3 = f"{qbo_sandbox.url}/v3"
    yield quickbooks
    auth_client.close()


def _ref(value: str) -> Ref:
    ref = Ref()
    ref.value = value
    return ref


def _line(item_id: str, qty: int, unit_price: str, description: str) -> SalesItemLine:
    line = SalesItemLine()
    line.Description = description
    line.Amount = Decimal(unit_price) * qty
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = _ref(item_id)
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = Decimal(unit_price)
    return line


def test_sdk_refreshed_through_the_sandbox_token_endpoint(
    client: QuickBooks, qbo_sandbox: SandboxServer
) -> None:
    # the SDK's AuthClient refreshed at start: it holds a new, rotated refresh token
    assert client.auth_client.token_endpoint == qbo_sandbox.url + "/oauth2/v1/tokens/bearer"
    assert client.auth_client.access_token
    assert client.refresh_token != DemoCredentials.for_sandbox(qbo_sandbox.url).refresh_token


def test_sdk_creates_queries_and_sparse_updates_an_invoice(client: QuickBooks) -> None:
    # given an invoice built with the SDK's objects
    invoice = Invoice()
    invoice.CustomerRef = _ref("1")
    invoice.DocNumber = "SDK-1001"
    invoice.TxnDate = "2026-11-20"
    invoice.Line.append(_line("4", 3, "150.00", "Design hours"))
    invoice.Line.append(_line("7", 2, "129.00", "Planter boxes"))
    # when the SDK saves it
    created = invoice.save(qb=client, request_id="sdk-create-0001")
    # then QBO's totals come back into the SDK's object (planters taxed at 8.625 %)
    assert created.Id and created.SyncToken == "0"
    assert Decimal(str(created.TotalAmt)) == Decimal("450") + Decimal("258") + Decimal("18.71") + Decimal(
        "3.55"
    )
    assert created.DueDate == "2026-12-20"
    # when the SDK queries by DocNumber (POST /query, application/text)
    found = Invoice.filter(DocNumber="SDK-1001", qb=client)
    by_customer = Invoice.where("CustomerRef = '1'", order_by="Id DESC", qb=client)
    # then it finds the invoice
    assert [inv.Id for inv in found] == [created.Id]
    assert by_customer[0].Id == created.Id
    # when the SDK sparse-updates the due date and the note
    fetched = Invoice.get(created.Id, qb=client)
    fetched.sparse = True
    fetched.DueDate = "2027-01-15"
    fetched.PrivateNote = "Extended by agreement"
    updated = fetched.save(qb=client)
    # then the change is stored, the SyncToken moved on, and the totals are untouched
    again = Invoice.get(created.Id, qb=client)
    assert (again.DueDate, again.PrivateNote, again.SyncToken) == ("2027-01-15", "Extended by agreement", "1")
    assert updated.Id == created.Id
    assert Decimal(str(again.TotalAmt)) == Decimal(str(created.TotalAmt))


def test_sdk_sees_qbo_fault_codes(client: QuickBooks) -> None:
    with pytest.raises(ObjectNotFoundException) as missing:
        Invoice.get("424242", qb=client)
    assert missing.value.error_code == 610
    stale = Invoice.get("1", qb=client)
    stale.SyncToken = "41"
    stale.sparse = True
    with pytest.raises(QuickbooksException) as conflict:
        stale.save(qb=client)
    assert conflict.value.error_code == 5010


def test_sdk_batch_and_cdc(client: QuickBooks) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    customers = []
    for name in ("Presidio Tea House", "Acme Robotics Inc."):
        customer = Customer()
        customer.DisplayName = name
        customers.append(customer)
    result = batch_create(customers, qb=client)
    assert [c.DisplayName for c in result.successes] == ["Presidio Tea House"]
    assert [fault.Error[0].code for fault in result.faults] == ["6240"]
    changes = change_data_capture([Customer, Invoice], since.strftime("%Y-%m-%dT%H:%M:%S%z"), qb=client)
    assert [c.DisplayName for c in changes.Customer] == ["Presidio Tea House"]


def test_sdk_reports_an_expired_access_token(client: QuickBooks, qbo_sandbox: SandboxServer) -> None:
    qbo_sandbox.sandbox.clock.advance(3601)
    with pytest.raises(AuthorizationException) as expired:
        Invoice.get("1", qb=client)
    assert expired.value.error_code == 401
    assert "AuthenticationFailed" in expired.value.detail
