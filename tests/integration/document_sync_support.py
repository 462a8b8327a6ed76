"""The document sync's test world: moto (DynamoDB, Secrets Manager), the QBO and HubSpot sandboxes, the
service built by ``ledgerlink.document_sync.factory`` exactly as the Lambda builds it, deals made in the
HubSpot sandbox (with products, line items, a company and contacts), ``hubspot.deal.changed`` events for
them, and the books read back through the QBO sandbox's own API. Shared by the document-sync tests; no
tests here.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from ledgerlink.audit import AuditRecord
from ledgerlink.config import EnvVar, Settings
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.document_sync.factory import DocumentSyncParts, build_document_sync
from ledgerlink.document_sync.inbox import DealChanged
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink.secrets import PowertoolsSecretStore
from ledgerlink.tables import LINKS, VENDOR_STATE
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_PORTAL_ID
from ledgerlink_local.sandboxes.qbo.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    TOKEN_PATH,
)
from tests.aws_fixtures import create_tables
from tests.conftest import FIXTURES
from tests.integration.test_deal_sync_support import Capture, RecordingMetrics

REGION = "us-east-1"
STAGE = "test"
LINKS_TABLE = f"ledgerlink-{STAGE}-links"
VENDOR_STATE_TABLE = f"ledgerlink-{STAGE}-vendor-state"
CONFIG_FILE = FIXTURES / "config" / "document-sync.toml"
CONNECTION = "demo"
QBO_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/qbo/oauth"
HUBSPOT_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/hubspot/app"
QUOTE_STAGE = "contractsent"
WON_STAGE = "closedwon"
# HubSpot's v4 association type ids (HUBSPOT_DEFINED): line item -> deal, deal -> company (primary), deal -> contact.
LINE_ITEM_TO_DEAL = 20
DEAL_TO_COMPANY_PRIMARY = 5
DEAL_TO_CONTACT = 3


def environment(qbo_url: str, hubspot_url: str, config_file: Path = CONFIG_FILE) -> dict[str, str]:
    return {
        EnvVar.STAGE: STAGE,
        EnvVar.EVENT_BUS_NAME: f"ledgerlink-{STAGE}-events",
        EnvVar.RAW_BUCKET_NAME: f"ledgerlink-{STAGE}-raw",
        EnvVar.IDEMPOTENCY_TABLE_NAME: f"ledgerlink-{STAGE}-idempotency",
        EnvVar.LINKS_TABLE_NAME: LINKS_TABLE,
        EnvVar.VENDOR_STATE_TABLE_NAME: VENDOR_STATE_TABLE,
        EnvVar.QBO_WEBHOOK_SECRET_NAME: f"ledgerlink/{STAGE}/qbo/webhook-verifier",
        EnvVar.QBO_BASE_URL: qbo_url,
        EnvVar.QBO_TOKEN_URL: qbo_url + TOKEN_PATH,
        EnvVar.HUBSPOT_BASE_URL: hubspot_url,
        EnvVar.CONFIG_FILE: str(config_file),
    }


def create_aws_resources(region: str = REGION) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb", region_name=region)
    create_tables(dynamodb, ((LINKS_TABLE, LINKS), (VENDOR_STATE_TABLE, VENDOR_STATE)))
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    secretsmanager.create_secret(
        Name=QBO_SECRET,
        SecretString=json.dumps(
            {
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "refresh_token": DEMO_REFRESH_TOKEN,
                "realm_id": DEMO_REALM_ID,
            }
        ),
    )
    secretsmanager.create_secret(
        Name=HUBSPOT_SECRET,
        SecretString=json.dumps({"access_token": DEMO_ACCESS_TOKEN, "portal_id": str(DEMO_PORTAL_ID)}),
    )
    return {"dynamodb": dynamodb, "secretsmanager": secretsmanager}


def build_world(
    qbo: SandboxServer,
    hubspot: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    config_file: Path = CONFIG_FILE,
) -> DocumentWorld:
    """Inside ``mock_aws``: the resources and the service, as the Lambda builds them."""
    aws = create_aws_resources()
    settings = Settings.from_env(environment(qbo.url, hubspot.url, config_file))
    capture = Capture()
    capture.install(monkeypatch)
    metrics = RecordingMetrics()
    parts = build_document_sync(
        settings,
        secrets=PowertoolsSecretStore(max_age_seconds=300, client=aws["secretsmanager"]),
        config=load_config(config_file),
        dynamodb=aws["dynamodb"],
        metrics=metrics,
    )
    setup_portal(parts.only.hubspot)
    capture.clear()
    return DocumentWorld(qbo, hubspot, aws, settings, parts, capture, metrics)


@dataclass(frozen=True)
class LineSpec:
    name: str
    quantity: str = "1"
    price: str = "100"
    sku: str | None = None
    discount: str | None = None
    tax_code: str | None = None


@dataclass
class DocumentWorld:
    qbo: SandboxServer
    hubspot: SandboxServer
    aws: dict[str, Any]
    settings: Settings
    parts: DocumentSyncParts
    capture: Capture
    metrics: RecordingMetrics
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---- HubSpot: deals as a salesperson makes them

    def hubspot_seed(self, body: Mapping[str, Any]) -> dict[str, list[str]]:
        response = requests.post(f"{self.hubspot.url}/_admin/seed", json=body, timeout=10)
        response.raise_for_status()
        created: dict[str, list[str]] = response.json()["created"]
        return created

    def make_deal(
        self,
        *,
        name: str = "Website redesign",
        stage: str = "appointmentscheduled",
        lines: Sequence[LineSpec] = (LineSpec("Services", "2", "150"),),
        company: Mapping[str, str] | None = None,
        contacts: Sequence[Mapping[str, str]] = (),
        currency: str | None = None,
    ) -> str:
        """A deal with its line items, company and contacts, as a person makes it in HubSpot; its id."""
        deal_properties = {"dealname": name, "pipeline": "default", "dealstage": stage}
        if currency:
            deal_properties["deal_currency_code"] = currency
        created = self.hubspot_seed(
            {
                "deals": [deal_properties],
                "companies": [dict(company)] if company else [],
                "contacts": [dict(contact) for contact in contacts],
                "line_items": [_line_item(line) for line in lines],
            }
        )
        deal_id = created["deals"][0]
        associations: list[dict[str, Any]] = [
            {"from_type": "line_items", "from_id": line_id, "to_type": "deals", "to_id": deal_id,
             "type_id": LINE_ITEM_TO_DEAL}
            for line_id in created.get("line_items", [])
        ]  # fmt: skip
        for company_id in created.get("companies", []):
            associations.append(
                {"from_type": "deals", "from_id": deal_id, "to_type": "companies", "to_id": company_id,
                 "type_id": DEAL_TO_COMPANY_PRIMARY}
            )  # fmt: skip
        for contact_id in created.get("contacts", []):
            associations.append(
                {"from_type": "deals", "from_id": deal_id, "to_type": "contacts", "to_id": contact_id,
                 "type_id": DEAL_TO_CONTACT}
            )  # fmt: skip
        if associations:
            self.hubspot_seed({"associations": associations})
        return deal_id

    def move_deal(self, deal_id: str, stage: str) -> None:
        """A salesperson drags the deal to ``stage`` in HubSpot."""
        self.ui_update("deals", deal_id, {"dealstage": stage})

    def ui_update(self, object_type: str, record_id: str, properties: Mapping[str, str]) -> None:
        response = requests.post(
            f"{self.hubspot.url}/_admin/ui_update",
            json={"objectType": object_type, "id": record_id, "properties": dict(properties)},
            timeout=10,
        )
        response.raise_for_status()

    def deal(self, deal_id: str) -> dict[str, Any]:
        return self.hubspot_object("deals", deal_id)

    def hubspot_object(self, object_type: str, record_id: str) -> dict[str, Any]:
        state = requests.get(f"{self.hubspot.url}/_admin/state", timeout=10).json()
        return next(o["properties"] for o in state["objects"][object_type] if o["id"] == record_id)

    def deals_named(self, name: str) -> list[dict[str, Any]]:
        state = requests.get(f"{self.hubspot.url}/_admin/state", timeout=10).json()
        return [
            o
            for o in state["objects"]["deals"]
            if o["properties"].get("dealname") == name and not o["archived"]
        ]

    def line_items_of(self, deal_id: str) -> list[str]:
        return self.parts.only.hubspot.associations("deals", "line_items", [deal_id]).get(deal_id, [])

    # ---- events

    def event(
        self,
        deal_id: str,
        *,
        change: str = "stage_changed",
        stage: str | None = None,
        object_type: str = "deal",
        object_id: str | None = None,
        occurred_at_ms: int | None = None,
        merged: Sequence[str] = (),
        source_id: str | None = None,
        app_id: str | None = "2910012",
    ) -> DealChanged:
        """What the HubSpot ingest publishes for one webhook event (``stage`` is what the webhook claims)."""
        sequence = next(self._sequence)
        return DealChanged(
            message_id=f"msg-{sequence}",
            receive_count=1,
            event_id=f"evt-{deal_id}-{sequence}",
            correlation_id=f"corr-{deal_id}-{sequence}",
            connection=CONNECTION,
            config_version="test",
            portal_id=str(DEMO_PORTAL_ID),
            change=change,
            object_type=object_type,
            object_id=object_id or deal_id,
            deal_id=None if object_type == "line_item" else deal_id,
            property_name="dealstage" if stage is not None else None,
            property_value=stage,
            change_source="CRM_UI",
            occurred_at_ms=occurred_at_ms or 1_764_650_000_000 + sequence,
            merged_object_ids=tuple(merged),
            source_id=source_id,
            app_id=app_id,
        )

    def sync(self, events: Sequence[DealChanged]) -> dict[str, Outcome]:
        return self.parts.service.sync(list(events), remaining_ms=60_000)

    def sync_one(self, event: DealChanged) -> Outcome:
        return self.sync([event])[event.message_id]

    # ---- the books, read through the QBO sandbox's API

    def qbo_query(self, statement: str) -> list[dict[str, Any]]:
        return self.parts.only.qbo.client.query(DEMO_REALM_ID, statement)

    def qbo_read(self, entity: str, entity_id: str) -> dict[str, Any] | None:
        return self.parts.only.qbo.client.read(DEMO_REALM_ID, entity, entity_id)

    def qbo_admin(self, method: str, action: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.qbo.url}/_admin/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def estimates_of(self, deal_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.qbo_query("select * from Estimate")
            if f"HubSpot deal {deal_id} " in str(e.get("PrivateNote") or "")
        ]

    def invoices_of(self, deal_id: str) -> list[dict[str, Any]]:
        return [
            i
            for i in self.qbo_query("select * from Invoice")
            if f"HubSpot deal {deal_id} " in str(i.get("PrivateNote") or "")
        ]

    def audit(self, deal_id: str) -> list[AuditRecord]:
        return self.parts.only.service.audit.history(CONNECTION, deal_id)

    def qbo_writes(self) -> list[Any]:
        """Every write LedgerLink sent to the Accounting API (queries and OAuth aside)."""
        return [
            sent
            for sent in self.capture.to(self.qbo.url)
            if sent.method == "POST" and "/v3/company/" in sent.url and "/query" not in sent.url
        ]


def _line_item(line: LineSpec) -> dict[str, str]:
    properties = {"name": line.name, "quantity": line.quantity, "price": line.price}
    if line.sku:
        properties["hs_sku"] = line.sku
    if line.discount:
        properties["discount"] = line.discount
    if line.tax_code:
        properties["qbo_tax_code"] = line.tax_code
    return properties


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))
