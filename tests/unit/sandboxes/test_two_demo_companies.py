"""The local stack's second connection in the sandboxes: a second QBO company (UK, GBP, VAT) with grants
of its own, and a second HubSpot portal behind the same API host."""

from __future__ import annotations

from decimal import Decimal

import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import (
    DEMO_PORTAL,
    THAMES_PORTAL,
    HubSpotPortals,
)
from ledgerlink_local.sandboxes.hubspot import (
    DemoCredentials as HubSpotCredentials,
)
from ledgerlink_local.sandboxes.qbo import DEMO_COMPANY, THAMES_COMPANY, THAMES_REALM_ID
from tests.unit.sandboxes.qbo_support import QboApi


def test_the_second_company_keeps_its_books_in_gbp_with_uk_vat(qbo_sandbox: SandboxServer) -> None:
    # given the second demo company, read through its own grant
    api = QboApi(qbo_sandbox, company=THAMES_COMPANY)
    api.configure(rate_limits_enabled=False)
    # then its preferences and company info say UK and GBP
    preferences = api.get("preferences").json()["Preferences"]
    assert preferences["CurrencyPrefs"]["HomeCurrency"] == {"value": "GBP"}
    assert api.get(f"companyinfo/{THAMES_REALM_ID}").json()["CompanyInfo"]["Country"] == "GB"
    # and its tax codes are VAT codes (no US TAX/NON)
    codes = api.get("query", query="select * from TaxCode").json()["QueryResponse"]["TaxCode"]
    assert {code["Name"] for code in codes} == {"20.0% S", "0.0% Z", "Exempt", "5.0% R"}
    # and its seeded invoices are in GBP with 20% VAT (the EUR export carries none)
    invoices = api.get("query", query="select * from Invoice").json()["QueryResponse"]["Invoice"]
    by_number = {invoice["DocNumber"]: invoice for invoice in invoices}
    assert by_number["TVG-1001"]["CurrencyRef"]["value"] == "GBP"
    assert Decimal(str(by_number["TVG-1001"]["TxnTaxDetail"]["TotalTax"])) == Decimal("316.00")
    assert by_number["TVG-1005"]["CurrencyRef"]["value"] == "EUR"
    assert Decimal(str(by_number["TVG-1005"]["TxnTaxDetail"]["TotalTax"])) == 0
    # and none of the first company's customers are there
    customers = api.get("query", query="select * from Customer").json()["QueryResponse"]["Customer"]
    assert "Acme Robotics Inc." not in {customer["DisplayName"] for customer in customers}


def test_demo_activity_changes_the_company_it_names(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox, company=THAMES_COMPANY)
    answer = api.admin("POST", "demo-activity", {"realm_id": THAMES_REALM_ID})
    change = answer.json()["changes"][0]
    assert (change["realm_id"], change["entity"], change["operation"]) == (
        THAMES_REALM_ID,
        "Invoice",
        "Create",
    )
    invoice = api.get(f"invoice/{change['id']}").json()["Invoice"]
    assert invoice["CurrencyRef"]["value"] == "GBP"
    assert invoice["TxnTaxDetail"]["TxnTaxCodeRef"] == {"value": "2"}


def test_the_persons_grant_and_the_apps_grant_rotate_independently(qbo_sandbox: SandboxServer) -> None:
    for company in (DEMO_COMPANY, THAMES_COMPANY):
        # given the person's grant (local.json) and the app's (the stack's secret) to the same company
        person = QboApi(qbo_sandbox, company=company)
        assert person.credentials.refresh_token != company.app_refresh_token
        # when the person refreshes twice (each refresh rotates the token)
        assert person.refresh().status_code == 200
        assert person.refresh().status_code == 200
        # then the app's token still works, and rotating it leaves the person's newest one working
        app = person.refresh(company.app_refresh_token)
        assert app.status_code == 200, app.text
        assert person.refresh().status_code == 200
        # while within one grant, a rotated token is dead, as at Intuit
        assert person.refresh(company.app_refresh_token).json() == {"error": "invalid_grant"}


def test_each_portal_answers_for_its_own_token_behind_one_host() -> None:
    # given both demo portals served at one address
    with SandboxServer(HubSpotPortals((DEMO_PORTAL, THAMES_PORTAL), rate_limits_enabled=False)) as server:
        first = HubSpotCredentials.for_portal(server.url, DEMO_PORTAL)
        second = HubSpotCredentials.for_portal(server.url, THAMES_PORTAL)

        def get(credentials: HubSpotCredentials, path: str) -> requests.Response:
            return requests.get(
                server.url + path, headers={"Authorization": f"Bearer {credentials.access_token}"}, timeout=5
            )

        # when a deal is created with the second portal's token
        created = requests.post(
            server.url + "/crm/v3/objects/deals",
            json={"properties": {"dealname": "Only in the second portal", "amount": "100"}},
            headers={"Authorization": f"Bearer {second.access_token}"},
            timeout=5,
        )
        assert created.status_code == 201, created.text
        deal_id = created.json()["id"]
        # then it is there for that token only, in GBP
        assert get(second, f"/crm/v3/objects/deals/{deal_id}").status_code == 200
        assert get(first, f"/crm/v3/objects/deals/{deal_id}").status_code == 404
        assert get(second, "/settings/v3/currencies/company-currency").json()["id"] == "GBP"
        assert get(first, "/settings/v3/currencies/company-currency").json()["id"] == "USD"
        # and each portal has its own "Invoices" pipeline
        pipelines = get(second, "/crm/v3/pipelines/deals").json()["results"]
        assert THAMES_PORTAL.invoices_pipeline_id in {p["id"] for p in pipelines}
        assert DEMO_PORTAL.invoices_pipeline_id not in {p["id"] for p in pipelines}
        # and an unknown token is refused
        stranger = requests.get(
            server.url + "/crm/v3/objects/deals", headers={"Authorization": "Bearer nope"}, timeout=5
        )
        assert stranger.status_code == 401
