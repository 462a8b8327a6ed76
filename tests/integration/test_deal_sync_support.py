"""The deal sync's test world: moto (DynamoDB, EventBridge, SQS, Secrets Manager), the QBO and HubSpot
sandboxes, the service built by ``ledgerlink.deal_sync.factory`` exactly as the Lambda builds it, and every
HTTP request the code sends captured at the transport (``HTTPAdapter.send``) so tests can validate the
bodies against the vendors' specs. Shared by the deal-sync tests and the benchmark; holds no tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto import mock_aws
from requests.adapters import HTTPAdapter

from ledgerlink.config import EnvVar, Settings
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.deal_sync.factory import DealSyncParts, build_deal_sync
from ledgerlink.deal_sync.inbox import ChangeEvent, parse_record
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink.secrets import PowertoolsSecretStore
from ledgerlink.tables import IDEMPOTENCY, LINKS, LINKS_OWED_BY_DUE_DATE, VENDOR_STATE
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_PORTAL_ID
from ledgerlink_local.sandboxes.hubspot.model import INVOICE_STAGE_IDS, INVOICES_PIPELINE_ID
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    TOKEN_PATH,
)
from tests.aws_fixtures import capture_queue, create_tables
from tests.conftest import FIXTURES
from tests.openapi import find_operation, validate_request_body
from tests.qbo_xsd import allowed_fields

REGION = "us-east-1"
STAGE = "test"
TABLES = {
    "idempotency": f"ledgerlink-{STAGE}-idempotency",
    "links": f"ledgerlink-{STAGE}-links",
    "vendor-state": f"ledgerlink-{STAGE}-vendor-state",
}
BUS = f"ledgerlink-{STAGE}-events"
# The one connection of the tests' configuration file, and its secrets.
CONFIG_FILE = FIXTURES / "config" / "deal-sync.toml"
CONNECTION = "demo"
QBO_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/qbo/oauth"
HUBSPOT_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/hubspot/app"
PUBLISHED_QUEUE = f"ledgerlink-{STAGE}-deal-synced-capture"

INVOICE_STAGE_MAP = {"pipeline": INVOICES_PIPELINE_ID, "stages": dict(INVOICE_STAGE_IDS)}


def environment(qbo_url: str, hubspot_url: str) -> dict[str, str]:
    """The Lambda's environment, pointed at the sandboxes."""
    return {
        EnvVar.STAGE: STAGE,
        EnvVar.EVENT_BUS_NAME: BUS,
        EnvVar.RAW_BUCKET_NAME: f"ledgerlink-{STAGE}-raw",
        EnvVar.IDEMPOTENCY_TABLE_NAME: TABLES["idempotency"],
        EnvVar.LINKS_TABLE_NAME: TABLES["links"],
        EnvVar.VENDOR_STATE_TABLE_NAME: TABLES["vendor-state"],
        EnvVar.QBO_WEBHOOK_SECRET_NAME: f"ledgerlink/{STAGE}/qbo/webhook-verifier",
        EnvVar.QBO_BASE_URL: qbo_url,
        EnvVar.QBO_TOKEN_URL: qbo_url + TOKEN_PATH,
        EnvVar.HUBSPOT_BASE_URL: hubspot_url,
        EnvVar.CONFIG_FILE: str(CONFIG_FILE),
    }


def create_aws_resources(region: str = REGION) -> dict[str, Any]:
    """Tables, bus + a rule copying deal.synced events to a capture queue, and the two secrets."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    create_tables(
        dynamodb,
        (
            (TABLES["idempotency"], IDEMPOTENCY),
            (TABLES["links"], LINKS),
            (TABLES["vendor-state"], VENDOR_STATE),
        ),
        # As deployed: the links table with its owed-by-due-date index.
        indexes={TABLES["links"]: (LINKS_OWED_BY_DUE_DATE,)},
    )
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    events.create_event_bus(Name=BUS)
    queue_url = capture_queue(
        events, sqs, bus=BUS, detail_type="ledgerlink.deal.synced", queue_name=PUBLISHED_QUEUE
    )
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
    return {
        "dynamodb": dynamodb,
        "events": events,
        "sqs": sqs,
        "secretsmanager": secretsmanager,
        "queue_url": queue_url,
    }


@dataclass(frozen=True)
class Sent:
    """One HTTP request as it left the process."""

    method: str
    url: str
    body: bytes | None
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Capture:
    """Records every request sent through any requests HTTPAdapter while installed."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._original = HTTPAdapter.send

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = self._original
        capture = self

        def send(adapter: HTTPAdapter, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
            body = request.body.encode() if isinstance(request.body, str) else request.body
            with capture._lock:
                capture.sent.append(
                    Sent(
                        str(request.method),
                        str(request.url),
                        body,
                        str(request.headers.get("Content-Type", "")),
                        dict(request.headers),
                    )
                )
            return original(adapter, request, *args, **kwargs)

        monkeypatch.setattr(HTTPAdapter, "send", send)

    def to(self, base_url: str) -> list[Sent]:
        with self._lock:
            # The tests' own admin calls are not the code's requests.
            return [s for s in self.sent if s.url.startswith(base_url) and not s.path.startswith("/_admin")]

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()


class RecordingMetrics:
    """The service's metrics sink, keeping the counts; also the OAuth alarm hook."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.alarms: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def count(self, name: str, value: int = 1) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + value

    def alarm(self, name: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            self.alarms.append((name, dict(fields)))


@dataclass
class DealSyncWorld:
    qbo: SandboxServer
    hubspot: SandboxServer
    aws: dict[str, Any]
    settings: Settings
    parts: DealSyncParts
    capture: Capture
    metrics: RecordingMetrics
    _sequence: int = 0
    published_seen: list[dict[str, Any]] = field(default_factory=list)

    # ---- events

    def change(
        self,
        entity: str,
        entity_id: str,
        operation: str = "Update",
        *,
        last_updated: str | None = None,
        receive_count: int = 1,
        message_id: str | None = None,
    ) -> ChangeEvent:
        """A qbo.entity.changed event as the ingest Lambda publishes it, parsed from an SQS record."""
        return parse_record(
            self.record(
                entity,
                entity_id,
                operation,
                last_updated=last_updated,
                receive_count=receive_count,
                message_id=message_id,
            )
        )

    def record(
        self,
        entity: str,
        entity_id: str,
        operation: str = "Update",
        *,
        last_updated: str | None = None,
        receive_count: int = 1,
        message_id: str | None = None,
        realm_id: str = DEMO_REALM_ID,
    ) -> dict[str, Any]:
        """The SQS record (Lambda's event shape) carrying one qbo.entity.changed event."""
        if last_updated is None:
            last_updated = self.last_updated(entity, entity_id, realm_id) or datetime.now(UTC).isoformat()
        identity = f"{realm_id}|{entity}|{entity_id}|{operation}|{last_updated}"
        event_id = hashlib.sha256(identity.encode()).hexdigest()
        self._sequence += 1
        detail = {
            "schema_version": "1",
            "event_id": event_id,
            "correlation_id": f"corr-{event_id[:12]}",
            "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "payload": {
                "realm_id": realm_id,
                "entity": entity,
                "entity_id": entity_id,
                "operation": operation,
                "last_updated": _utc(last_updated),
                "delivery_id": f"delivery-{self._sequence}",
                "source_format": "cloudevents",
            },
        }
        body = {
            "version": "0",
            "id": f"eb-{self._sequence}",
            "detail-type": "qbo.entity.changed",
            "source": "ledgerlink.qbo",
            "account": "123456789012",
            "time": detail["occurred_at"],
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
        return {
            "messageId": message_id or f"msg-{self._sequence}-{event_id[:8]}",
            "receiptHandle": f"rh-{self._sequence}",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:ledgerlink-{STAGE}-deal-sync",
            "awsRegion": REGION,
        }

    def sync(self, events: Sequence[ChangeEvent]) -> dict[str, Outcome]:
        return self.parts.service.sync(list(events), remaining_ms=60_000)

    # ---- QBO sandbox

    def qbo_entity(self, entity: str, entity_id: str, realm_id: str = DEMO_REALM_ID) -> dict[str, Any] | None:
        company = self.qbo.sandbox.companies[realm_id]  # type: ignore[attr-defined]
        with self.qbo.sandbox.lock:
            found = company.objects.get(entity, {}).get(entity_id)
            return json.loads(json.dumps(found, default=str)) if found is not None else None

    def last_updated(self, entity: str, entity_id: str, realm_id: str = DEMO_REALM_ID) -> str | None:
        found = self.qbo_entity(entity, entity_id, realm_id)
        return str(found["MetaData"]["LastUpdatedTime"]) if found else None

    def qbo_admin(self, method: str, action: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.qbo.url}/_admin/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def hubspot_admin(self, method: str, action: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.hubspot.url}/_admin/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def qbo_write(self, entity: str, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Change the QBO company as a user would (create, update, void, delete), through the sandbox's
        own model, and return the entity as QBO now has it. No webhook goes anywhere in these tests."""
        sandbox = self.qbo.sandbox
        with sandbox.lock:
            company = sandbox.companies[DEMO_REALM_ID]  # type: ignore[attr-defined]
            result = getattr(company, operation)(
                entity, json.loads(json.dumps(body, default=str), parse_float=Decimal)
            )
        return json.loads(json.dumps(result, default=str))

    # ---- HubSpot sandbox

    def hubspot_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.hubspot_admin("GET", "state")
        return state

    def deals(self) -> dict[str, dict[str, Any]]:
        """Live deals LedgerLink wrote, by qbo_invoice_id / qbo_estimate_id."""
        found = {}
        for deal in self.hubspot_state()["objects"]["deals"]:
            props = deal["properties"]
            key = props.get("qbo_invoice_id") or props.get("qbo_estimate_id")
            if key and not deal["archived"]:
                found[key] = deal
        return found

    def objects(self, object_type: str, *, archived: bool = False) -> dict[str, dict[str, Any]]:
        """HubSpot records of a type by id (live ones unless ``archived``), properties only."""
        return {
            record["id"]: record["properties"]
            for record in self.hubspot_state()["objects"][object_type]
            if bool(record["archived"]) == archived
        }

    def associated(self, from_type: str, from_id: str, to_type: str) -> set[str]:
        return {
            str(link["toObjectId"])
            for link in self.hubspot_state()["associations"]
            if link["fromObjectType"] == from_type
            and str(link["fromObjectId"]) == str(from_id)
            and link["toObjectType"] == to_type
        }

    def vendor_calls(self) -> tuple[int, int]:
        """(QBO calls, HubSpot calls) in the sandboxes' request logs so far."""
        return len(self.requests_to(self.qbo)), len(self.requests_to(self.hubspot))

    def requests_to(self, server: SandboxServer) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = requests.get(f"{server.url}/_admin/requests", timeout=10).json()[
            "requests"
        ]
        return log

    # ---- published events

    def published(self) -> list[dict[str, Any]]:
        """Every ledgerlink.deal.synced detail published so far (read from the capture queue)."""
        sqs = self.aws["sqs"]
        while True:
            messages = sqs.receive_message(QueueUrl=self.aws["queue_url"], MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return list(self.published_seen)
            for message in messages:
                self.published_seen.append(json.loads(message["Body"])["detail"])
                sqs.delete_message(QueueUrl=self.aws["queue_url"], ReceiptHandle=message["ReceiptHandle"])


HUBSPOT_SPEC_BY_OBJECT = {
    "deals": "deals.json",
    "line_items": "lineItems.json",
    "companies": "companies.json",
    "contacts": "contacts.json",
}
# The statements the code sends: reads by id (paged), and the backfill's count and ordered pages.
_QUERY = re.compile(
    r"^select (?:\*|count\(\*\)) from (?P<entity>[A-Za-z]+)(?: where (?P<where>.+?))?"
    r"(?: ORDERBY (?P<order>[A-Za-z.]+)(?: ASC| DESC)?)?(?: STARTPOSITION \d+ MAXRESULTS \d+)?$"
)


def assert_hubspot_request_conforms(sent: Sent) -> None:
    """The body of a request to HubSpot validates against HubSpot's own OpenAPI spec for the path."""
    parts = sent.path.strip("/").split("/")
    if parts[:3] == ["crm", "v3", "objects"]:
        spec = HUBSPOT_SPEC_BY_OBJECT[parts[3]]
    elif parts[:3] == ["crm", "v4", "associations"]:
        spec = "associations.v4.json"
    elif parts[:3] == ["crm", "v3", "properties"]:
        spec = "properties.json"
    elif parts[:3] == ["crm", "v3", "pipelines"]:
        spec = "pipelines.json"
    else:
        raise AssertionError(f"unexpected HubSpot path {sent.path}")
    if sent.method in ("POST", "PATCH", "PUT"):
        assert "application/json" in sent.content_type, sent
        validate_request_body(spec, sent.method, sent.path, sent.json())
    else:
        assert not sent.body, f"{sent.method} {sent.path} carries a body"
        find_operation(spec, sent.method, sent.path)


def assert_qbo_request_conforms(sent: Sent, token_path: str = TOKEN_PATH) -> None:
    """A QBO query names only fields Intuit's XSD defines for the entity; the token call is a refresh
    grant form; reads carry no body and pin minorversion."""
    if sent.path == token_path:
        assert sent.content_type == "application/x-www-form-urlencoded"
        form = parse_qs((sent.body or b"").decode())
        assert set(form) == {"grant_type", "refresh_token"} and form["grant_type"] == ["refresh_token"]
        return
    assert sent.query.get("minorversion"), f"{sent.path} does not pin minorversion"
    if sent.path.endswith("/query"):
        assert sent.method == "POST" and sent.content_type == "application/text"
        statement = (sent.body or b"").decode()
        match = _QUERY.match(statement)
        assert match, f"unexpected statement {statement!r}"
        allowed = allowed_fields(match["entity"])
        conditions = re.split(r" and ", match["where"]) if match["where"] else []
        for field_name in [condition.split(" ", 1)[0] for condition in conditions] + [match["order"]]:
            if field_name is not None:  # a nested field (MetaData.CreateTime) by its element
                assert field_name.split(".", 1)[0] in allowed, (
                    f"{match['entity']} has no field {field_name!r} in the XSD"
                )
        return
    assert sent.method == "GET" and not sent.body, sent


def assert_requests_conform(world: DealSyncWorld) -> None:
    """Every request the code sent to either vendor conforms to the vendor's spec (see above)."""
    hubspot = world.capture.to(world.hubspot.url)
    qbo = world.capture.to(world.qbo.url)
    for sent in hubspot:
        assert_hubspot_request_conforms(sent)
    for sent in qbo:
        assert_qbo_request_conforms(sent)


def _utc(text: str) -> str:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_world(
    qbo: SandboxServer,
    hubspot: SandboxServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    setup: bool = True,
    **build: Any,
) -> DealSyncWorld:
    aws = create_aws_resources()
    settings = Settings.from_env(environment(qbo.url, hubspot.url))
    capture = Capture()
    capture.install(monkeypatch)
    secrets = PowertoolsSecretStore(max_age_seconds=300, client=aws["secretsmanager"])
    metrics = RecordingMetrics()
    build.setdefault("metrics", metrics)
    build.setdefault("alarm", metrics.alarm)
    parts = build_deal_sync(
        settings,
        secrets=secrets,
        config=load_config(CONFIG_FILE),
        dynamodb=aws["dynamodb"],
        events=aws["events"],
        publisher_sleep=lambda s: None,
        **build,
    )
    if setup:
        setup_portal(parts.hubspot)
        capture.clear()
        requests.delete(f"{hubspot.url}/_admin/requests", timeout=10)
        requests.delete(f"{qbo.url}/_admin/requests", timeout=10)
    return DealSyncWorld(qbo, hubspot, aws, settings, parts, capture, metrics)


@pytest.fixture
def world(
    qbo_sandbox: SandboxServer, hubspot_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DealSyncWorld]:
    with mock_aws():
        built = build_world(qbo_sandbox, hubspot_sandbox, monkeypatch)
        try:
            yield built
            # Whatever the test did, every request body it made the code send must be on spec.
            assert_requests_conform(built)
        finally:
            built.parts.close()


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()
