"""QBO sandbox: the demo company, demo activity, seeding, state, credentials and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import requests

from ledgerlink_local.sandboxes.core import SandboxClock, SandboxServer
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    THAMES_REALM_ID,
    DemoCredentials,
    QboSandbox,
)
from tests.conftest import REPO_ROOT
from tests.unit.sandboxes.qbo_support import QboApi, webhook_receiver

LOCAL_JSON_KEYS = (
    "base_url",
    "token_url",
    "realm_id",
    "client_id",
    "client_secret",
    "refresh_token",
    "verifier_token",
)


def test_demo_company_has_the_base_data_the_issue_asks_for(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    api.configure(rate_limits_enabled=False)
    info = api.get(f"companyinfo/{api.realm}").json()["CompanyInfo"]
    assert info["Country"] == "US" and info["FiscalYearStartMonth"] == "January"
    preferences = api.get("preferences").json()["Preferences"]
    assert preferences["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
    assert preferences["SalesFormsPrefs"]["CustomTxnNumbers"] is True
    customers = api.query_rows("select * from Customer", "Customer")
    assert len(customers) >= 6
    emails = [c["PrimaryEmailAddr"]["Address"] for c in customers]
    assert any(emails.count(email) == 2 for email in emails)  # two customers share one address
    foreign = [c for c in customers if c["BillAddr"].get("Country") != "USA"]
    assert [(c["BillAddr"]["Country"], c["CurrencyRef"]["value"]) for c in foreign] == [("Germany", "EUR")]
    items = api.query_rows("select * from Item", "Item")
    assert {"Service", "Inventory"} <= {item["Type"] for item in items}
    assert all(item["Sku"] and item["QtyOnHand"] > 0 for item in items if item["Type"] == "Inventory")
    assert {"TAX", "NON"} <= {code["Id"] for code in api.query_rows("select * from TaxCode", "TaxCode")}
    assert {"Net 30", "Due on receipt"} <= {t["Name"] for t in api.query_rows("select * from Term", "Term")}
    assert len(api.query_rows("select * from Employee", "Employee")) >= 2
    today = date.fromisoformat(api.get("invoice/1").json()["time"][:10])
    invoices = api.query_rows("select * from Invoice", "Invoice")
    states = {
        "open": any(
            i["Balance"] == i["TotalAmt"] and date.fromisoformat(i["DueDate"]) >= today for i in invoices
        ),
        "partially paid": any(0 < i["Balance"] < i["TotalAmt"] for i in invoices),
        "paid": any(i["Balance"] == 0 for i in invoices),
        "overdue": any(i["Balance"] > 0 and date.fromisoformat(i["DueDate"]) < today for i in invoices),
    }
    assert all(states.values()), states
    assert api.query_rows("select * from Estimate", "Estimate")


def test_demo_activity_makes_realistic_changes_and_announces_them(qbo_sandbox: SandboxServer) -> None:
    with webhook_receiver() as receiver:
        api = QboApi(qbo_sandbox)
        api.configure(webhook_url=receiver.url, webhook_time_factor=0.01)
        changes = api.admin("POST", "demo-activity", {"steps": 4}).json()["changes"]
        events = [event for delivery in receiver.wait_for(1) for event in json.loads(delivery.body)]
    assert [(c["entity"], c["operation"]) for c in changes] == [
        ("Invoice", "Create"),
        ("Payment", "Create"),
        ("Estimate", "Create"),
        ("Invoice", "Update"),
    ]
    assert f"qbo.invoice.created.v1:{changes[0]['id']}" in {
        f"{e['type']}:{e['intuitentityid']}" for e in events
    }
    payment = api.read("Payment", changes[1]["id"])
    assert Decimal(str(payment["TotalAmt"])) > 0 and payment["Line"]


def test_run_demo_activity_stops_when_asked(qbo_sandbox: SandboxServer) -> None:
    sandbox = qbo_sandbox.sandbox
    assert isinstance(sandbox, QboSandbox)
    stop = threading.Event()
    stop.set()
    sandbox.run_demo_activity(stop, steps=3, interval_seconds=30)
    assert sandbox.companies[DEMO_REALM_ID].changes == []  # stopped before its first step


def test_seed_adds_objects_and_companies_and_state_shows_them(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    seeded = api.admin("POST", "seed", {"entities": {"Customer": [{"DisplayName": "Seeded Shop"}]}}).json()
    assert seeded["created"]["Customer"] and seeded["companies"] == []
    added = api.admin("POST", "seed", {"companies": [{"realm_id": "123145", "refresh_token": "AB11-second"}]})
    assert added.json()["companies"] == [{"realm_id": "123145", "refresh_token": "AB11-second"}]
    state = api.admin("GET", "state").json()
    # the two demo companies the sandbox starts with, and the added one
    assert set(state["realms"]) == {api.realm, THAMES_REALM_ID, "123145"}
    names = [c["DisplayName"] for c in state["realms"][api.realm]["Customer"]]
    assert "Seeded Shop" in names
    assert "refresh_token" not in json.dumps(state["oauth"])  # the state dump shows no token values
    bad = api.admin("POST", "seed", {"entities": {"Customer": [{"DisplayName": "Acme Robotics Inc."}]}})
    assert bad.status_code == 400 and "6240" in bad.json()["error"]


def test_demo_credentials_cover_local_json_and_work(qbo_sandbox: SandboxServer) -> None:
    credentials = DemoCredentials.for_sandbox(qbo_sandbox.url + "/")
    values = credentials.as_dict()
    # local.json's keys, then the app's own grant (the local stack's secret; not in local.json)
    assert tuple(values) == (*LOCAL_JSON_KEYS, "app_refresh_token")
    assert values["refresh_token"] != values["app_refresh_token"]
    assert values["token_url"] == qbo_sandbox.url + "/oauth2/v1/tokens/bearer"
    answer = requests.post(
        values["token_url"],
        auth=(values["client_id"], values["client_secret"]),
        data={"grant_type": "refresh_token", "refresh_token": values["refresh_token"]},
    )
    assert answer.status_code == 200


def test_runs_on_its_own_from_the_command_line() -> None:
    command = [sys.executable, "-m", "ledgerlink_local.sandboxes.qbo", "--port", "0"]
    env = {"PYTHONPATH": f"{REPO_ROOT / 'local'}:{REPO_ROOT / 'functions'}", "PATH": ""}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)  # noqa: S603
    try:
        assert process.stdout is not None
        banner = json.loads(process.stdout.readline())
        assert banner["vendor"] == "qbo"
        health = requests.get(banner["admin"] + "/health", timeout=5).json()
        assert health == {"status": "ok", "vendor": "qbo"}
        token = requests.post(
            banner["url"] + "/oauth2/v1/tokens/bearer",
            auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            data={"grant_type": "refresh_token", "refresh_token": DEMO_REFRESH_TOKEN},
            timeout=5,
        )
        assert token.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_injected_clock_drives_token_expiry() -> None:
    # given a QBO sandbox built on a clock its embedder controls, as the HubSpot and Graph ones accept
    clock = SandboxClock()
    with SandboxServer(QboSandbox(clock=clock)) as server:
        api = QboApi(server)
        assert api.get("companyinfo/" + api.realm).status_code == 200
        # when that clock, not the admin API, moves past the access token's hour
        clock.advance(3601)
        answer = api.get("companyinfo/" + api.realm)
    # then the sandbox judged the token by the injected time: it has expired
    assert answer.status_code == 401
    assert "expired" in answer.json()["fault"]["error"][0]["detail"].lower()


def test_error_bodies_carry_the_sandbox_time_not_the_wall_clock() -> None:
    # given a sandbox whose clock runs 400 days ahead of the wall clock
    clock = SandboxClock()
    sandbox = QboSandbox(clock=clock)
    clock.advance(400 * 86_400)
    try:
        # when it answers an error for the demo company, and one while it holds no company at all
        with_company = json.loads(sandbox.error_response(503, "injected fault").encode())
        sandbox.companies.clear()
        without_company = json.loads(sandbox.error_response(503, "injected fault").encode())
    finally:
        sandbox.close()
    # then both Fault bodies are dated by the sandbox clock
    for body in (with_company, without_company):
        stamped = datetime.fromisoformat(body["time"])
        assert abs(stamped - clock.now()) < timedelta(minutes=1)
        assert stamped - datetime.now(UTC) > timedelta(days=399)
