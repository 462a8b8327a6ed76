"""End to end on the local stack as `make run` wires it: a salesperson's deal becomes a QBO estimate, then its
invoice, and the two flows never ping-pong.

A deal with line items and a company is made through the HubSpot sandbox's API; moving it to "Contract sent"
sends the sandbox's signed webhook through the gateway and the HubSpot ingest to the document sync, which makes
the QBO estimate; moving it to "Closed won" makes the invoice linked to it. QBO's own webhooks about those
writes reach the deal sync, which puts them on the same deal. Then both flows run on for a minute while every
write to either vendor is counted: after the last expected write, nobody writes anything.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from ledgerlink_local.stack.up import LocalEnvironment
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import wait_for

# HubSpot's v4 association type ids (HUBSPOT_DEFINED): line item -> deal, deal -> company (primary), deal -> contact.
LINE_ITEM_TO_DEAL = 20
DEAL_TO_COMPANY_PRIMARY = 5
DEAL_TO_CONTACT = 3
# How long both flows are watched for writes nobody asked for (the minute).
QUIET_WINDOW_SECONDS = 60.0
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class Vendors:
    """The demo connection's HubSpot portal and QBO company as a person (or the test) sees them."""

    def __init__(self, environment: LocalEnvironment) -> None:
        (demo,) = [c for c in environment.description["connections"] if c["name"] == "demo"]
        self.hubspot = demo["hubspot"]
        self.realm_id = demo["qbo"]["realm_id"]
        self.qbo = environment.sandboxes.sandbox("qbo")
        self.portal = environment.sandboxes.sandbox("hubspot").portal_sandbox(self.hubspot["portal_id"])

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = requests.request(
            method,
            self.hubspot["base_url"] + path,
            json=body,
            headers={"Authorization": f"Bearer {self.hubspot['access_token']}"},
            timeout=10,
        )
        assert reply.status_code < 300, reply.text
        return dict(reply.json()) if reply.content else {}

    def move(self, deal_id: str, stage: str) -> None:
        """The salesperson drags the deal in HubSpot's UI (``changeSource`` CRM_UI). A move through the API
        with LedgerLink's own app token would be LedgerLink's own write, which the flow ignores."""
        reply = requests.post(
            f"{self.hubspot['base_url']}/_admin/ui_update",
            params={"portal_id": self.hubspot["portal_id"]},
            json={"objectType": "deals", "id": deal_id, "properties": {"dealstage": stage}},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text

    def deal(self, deal_id: str) -> dict[str, str]:
        properties = (
            "dealname,dealstage,pipeline,amount,qbo_estimate_id,qbo_invoice_id,qbo_status,qbo_balance"
        )
        return dict(self.api("GET", f"/crm/v3/objects/deals/{deal_id}?properties={properties}")["properties"])

    def deals_named(self, name: str) -> list[dict[str, Any]]:
        found = self.api(
            "POST",
            "/crm/v3/objects/deals/search",
            {"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "EQ", "value": name}]}]},
        )
        return list(found.get("results", []))

    def documents(self, entity: str, deal_id: str) -> list[dict[str, Any]]:
        objects = self.qbo.companies[self.realm_id].objects[entity].values()
        return [o for o in objects if f"HubSpot deal {deal_id} " in str(o.get("PrivateNote") or "")]

    def write_log(self) -> dict[str, list[str]]:
        """Every write each vendor has answered so far, as "METHOD path" (reads, searches, queries aside)."""
        qbo = [
            f"{entry.method} {entry.path}"
            for entry in list(self.qbo.request_log)
            if entry.method == "POST"
            and "/v3/company/" in entry.path
            and not entry.path.endswith(("/query", "/batch"))
        ]
        hubspot = [
            f"{entry.method} {re.sub(r'/[0-9]+(?=/|$)', '/{id}', entry.path)}"
            for entry in list(self.portal.request_log)
            if entry.method in WRITE_METHODS
            and not entry.path.endswith(("/batch/read", "/search"))
            and not entry.path.startswith("/_admin")
        ]
        return {"qbo": qbo, "hubspot": hubspot}

    def writes(self) -> dict[str, int]:
        return {vendor: len(log) for vendor, log in self.write_log().items()}


def make_deal(vendors: Vendors, name: str) -> str:
    """What a salesperson does in HubSpot: a company, its contact, a deal with two line items."""
    company = vendors.api(
        "POST",
        "/crm/v3/objects/companies",
        {"properties": {"name": f"{name} Inc", "domain": f"{name.lower()}.example"}},
    )
    contact = vendors.api(
        "POST",
        "/crm/v3/objects/contacts",
        {"properties": {"email": f"buyer@{name.lower()}.example", "firstname": "Bea", "lastname": "Buyer"}},
    )
    deal = vendors.api(
        "POST",
        "/crm/v3/objects/deals",
        {
            "properties": {"dealname": name, "pipeline": "default", "dealstage": "qualifiedtobuy"},
            "associations": [
                {"to": {"id": company["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_COMPANY_PRIMARY}]},
                {"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": DEAL_TO_CONTACT}]},
            ],
        },
    )  # fmt: skip
    for line in (
        {"name": "Pump", "hs_sku": "PUMP", "quantity": "2", "price": "15"},
        {"name": "Garden design consultation", "quantity": "3", "price": "75"},
    ):
        vendors.api(
            "POST",
            "/crm/v3/objects/line_items",
            {
                "properties": line,
                "associations": [
                    {"to": {"id": deal["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": LINE_ITEM_TO_DEAL}]}
                ],
            },
        )  # fmt: skip
    return str(deal["id"])


def test_a_deal_becomes_its_estimate_then_its_linked_invoice_on_the_same_deal_and_nothing_ping_pongs(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    vendors = Vendors(environment)
    before = vendors.write_log()
    name = f"Orchard{uuid.uuid4().hex[:6]}"
    deal_id = make_deal(vendors, name)

    # When the salesperson moves the deal to "Contract sent"
    vendors.move(deal_id, "contractsent")

    # Then QBO has its estimate: the deal's two lines (one by SKU, one on the default item), for a new customer
    (estimate,) = wait_for(lambda: vendors.documents("Estimate", deal_id) or None, "the deal's QBO estimate")
    lines = [line for line in estimate["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert [(line["SalesItemLineDetail"]["ItemRef"]["name"], str(line["Amount"])) for line in lines] == [
        ("Pump", "30.00"),
        ("Services", "225.00"),
    ]
    customer = vendors.qbo.companies[vendors.realm_id].objects["Customer"][estimate["CustomerRef"]["value"]]
    assert customer["DisplayName"] == f"{name} Inc"
    wait_for(lambda: vendors.deal(deal_id).get("qbo_estimate_id") or None, "the deal naming its estimate")

    # When the deal is won
    vendors.move(deal_id, "closedwon")

    # Then its invoice is linked to the estimate, and the deal sync put QBO's echo on the same deal
    (invoice,) = wait_for(lambda: vendors.documents("Invoice", deal_id) or None, "the deal's QBO invoice")
    assert {"TxnId": estimate["Id"], "TxnType": "Estimate"} in invoice["LinkedTxn"]
    assert str(invoice["TotalAmt"]) == str(estimate["TotalAmt"])
    key = f"{vendors.realm_id}:{invoice['Id']}"

    def carries_the_invoice() -> dict[str, str] | None:
        now = vendors.deal(deal_id)
        return now if now.get("qbo_invoice_id") == key and now.get("qbo_status") else None

    deal = wait_for(carries_the_invoice, "the deal carrying the invoice's QBO properties")
    assert deal["qbo_status"] == "open" and deal["dealstage"] == "closedwon" and deal["dealname"] == name
    assert len(vendors.deals_named(name)) == 1

    # And for a minute after the last expected write, neither flow writes anything
    def settled() -> dict[str, int] | None:
        so_far = vendors.writes()
        time.sleep(3)  # a poll interval, not an assertion: the probe returns once nothing moved in it
        return so_far if vendors.writes() == so_far else None

    start = wait_for(settled, "both flows to go quiet")
    deadline = time.monotonic() + QUIET_WINDOW_SECONDS
    while time.monotonic() < deadline:
        time.sleep(5)
        assert vendors.writes() == start, f"writes after the flows settled: {start} -> {vendors.writes()}"
    after = vendors.write_log()
    counts = {
        "quiet_seconds": QUIET_WINDOW_SECONDS,
        # Every write of the scenario, the salesperson's own (the test's) included, by vendor and endpoint.
        **{
            vendor: dict(Counter(after[vendor][len(before[vendor]) :]).most_common())
            for vendor in ("qbo", "hubspot")
        },
    }
    (state_dir / "loop-counts.json").write_text(json.dumps(counts, indent=1))
    print("loop test:", json.dumps(counts, indent=1))
    assert (
        len(vendors.documents("Estimate", deal_id)) == 1 and len(vendors.documents("Invoice", deal_id)) == 1
    )

    # And `ledgerlink audit deal` tells the story
    audit = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "ledgerlink.cli", "audit", "deal", deal_id, "--connection", "demo",
         "--state-dir", str(state_dir), "--format", "json"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True,
    )  # fmt: skip
    records = json.loads(audit.stdout)["records"]
    created = [(r["document"], r["deal_stage"]) for r in records if r["decision"] == "created"]
    assert created == [("Estimate", "contractsent"), ("Invoice", "closedwon")]
