"""The calendar sync's test world: moto (DynamoDB, EventBridge, SQS, Secrets Manager), the HubSpot and
Graph sandboxes, the service built by ``ledgerlink.calendar_sync.factory`` exactly as the Lambda builds
it, ``deal.synced`` events made from a recorded one (tests/fixtures/events/), and the calendars read
back through the Graph sandbox's own API. Shared by the calendar tests and the benchmark; no tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from ledgerlink.calendar_sync.factory import CalendarSyncParts, build_calendar_sync
from ledgerlink.calendar_sync.inbox import DealSynced, parse_record
from ledgerlink.clock import Clock
from ledgerlink.config import EnvVar, Settings
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.secrets import PowertoolsSecretStore
from ledgerlink.tables import LINKS, LINKS_OWED_BY_DUE_DATE, VENDOR_STATE
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_PORTAL_ID
from tests.aws_fixtures import capture_queue, create_tables
from tests.conftest import FIXTURES
from tests.integration.test_deal_sync_support import Capture, RecordingMetrics

REGION = "us-east-1"
STAGE = "test"
LINKS_TABLE = f"ledgerlink-{STAGE}-links"
VENDOR_STATE_TABLE = f"ledgerlink-{STAGE}-vendor-state"
BUS = f"ledgerlink-{STAGE}-events"
CONFIG_FILE = FIXTURES / "config" / "calendar-sync.toml"
CONNECTION = "demo"
HUBSPOT_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/hubspot/app"
GRAPH_SECRET = f"ledgerlink/{STAGE}/connections/{CONNECTION}/graph/app"
PUBLISHED_QUEUE = f"ledgerlink-{STAGE}-calendar-synced-capture"
RECORDED = FIXTURES / "events" / "deal-synced-open-invoice.json"
AR_MAILBOX = "finance@ledgerlinkdemo.onmicrosoft.com"
# The HubSpot sandbox's demo owners: Maria is a user of the Graph demo tenant, Priya is not.
OWNER_IN_TENANT = "41700101"
OWNER_NOT_IN_TENANT = "41700103"
# The User-Agent of the tests' own Graph calls (a person in Outlook, or the test reading a calendar), so
# they are never mistaken for the code's requests.
PERSON_AGENT = "Outlook (a person, in the tests)"


def environment(hubspot_url: str, graph_url: str, config_file: Path = CONFIG_FILE) -> dict[str, str]:
    return {
        EnvVar.STAGE: STAGE,
        EnvVar.EVENT_BUS_NAME: BUS,
        EnvVar.RAW_BUCKET_NAME: f"ledgerlink-{STAGE}-raw",
        EnvVar.IDEMPOTENCY_TABLE_NAME: f"ledgerlink-{STAGE}-idempotency",
        EnvVar.LINKS_TABLE_NAME: LINKS_TABLE,
        EnvVar.VENDOR_STATE_TABLE_NAME: VENDOR_STATE_TABLE,
        EnvVar.QBO_WEBHOOK_SECRET_NAME: f"ledgerlink/{STAGE}/qbo/webhook-verifier",
        EnvVar.HUBSPOT_BASE_URL: hubspot_url,
        EnvVar.GRAPH_BASE_URL: graph_url + "/v1.0",
        EnvVar.GRAPH_TOKEN_URL: graph_url + "/{tenant}/oauth2/v2.0/token",
        EnvVar.CONFIG_FILE: str(config_file),
    }


def create_aws_resources(region: str = REGION) -> dict[str, Any]:
    """The links and vendor-state tables, the bus with a rule copying calendar.synced to a capture
    queue, and the connection's HubSpot and Graph secrets."""
    dynamodb = boto3.client("dynamodb", region_name=region)
    create_tables(
        dynamodb,
        ((LINKS_TABLE, LINKS), (VENDOR_STATE_TABLE, VENDOR_STATE)),
        # As deployed: the links table's owed-by-due-date index, which the calendar items populate.
        indexes={LINKS_TABLE: (LINKS_OWED_BY_DUE_DATE,)},
    )
    events = boto3.client("events", region_name=region)
    sqs = boto3.client("sqs", region_name=region)
    events.create_event_bus(Name=BUS)
    queue_url = capture_queue(
        events, sqs, bus=BUS, detail_type="ledgerlink.calendar.synced", queue_name=PUBLISHED_QUEUE
    )
    secretsmanager = boto3.client("secretsmanager", region_name=region)
    secretsmanager.create_secret(
        Name=HUBSPOT_SECRET,
        SecretString=json.dumps({"access_token": DEMO_ACCESS_TOKEN, "portal_id": str(DEMO_PORTAL_ID)}),
    )
    secretsmanager.create_secret(
        Name=GRAPH_SECRET,
        SecretString=json.dumps(
            {"tenant_id": DEMO_TENANT_ID, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
        ),
    )
    return {
        "dynamodb": dynamodb,
        "events": events,
        "sqs": sqs,
        "secretsmanager": secretsmanager,
        "queue_url": queue_url,
    }


def build_world(
    hubspot: SandboxServer,
    graph: SandboxServer,
    monkeypatch: Any,
    config_file: Path = CONFIG_FILE,
    clock: Clock | None = None,
) -> CalendarWorld:
    """Inside ``mock_aws``: the resources, the environment and the service, as the Lambda builds it."""
    for name, value in environment(hubspot.url, graph.url, config_file).items():
        monkeypatch.setenv(name, value)
    aws = create_aws_resources()
    settings = Settings.from_env()
    capture = Capture()
    capture.install(monkeypatch)
    metrics = RecordingMetrics()
    parts = build_calendar_sync(
        settings,
        secrets=PowertoolsSecretStore(max_age_seconds=0),
        config=load_config(config_file),
        dynamodb=aws["dynamodb"],
        events=aws["events"],
        metrics=metrics,
        publisher_sleep=lambda _seconds: None,
        clock=clock,
    )
    return CalendarWorld(hubspot, graph, aws, settings, parts, capture, metrics)


@dataclass
class CalendarWorld:
    hubspot: SandboxServer
    graph: SandboxServer
    aws: dict[str, Any]
    settings: Settings
    parts: CalendarSyncParts
    capture: Capture
    metrics: RecordingMetrics
    _sequence: int = 0
    published_seen: list[dict[str, Any]] = field(default_factory=list)

    # ---- deal.synced events

    def record(self, receive_count: int = 1, **payload: Any) -> dict[str, Any]:
        """The SQS record of a deal.synced event: the recorded one with ``payload`` fields replaced
        (``customer_name=`` / ``customer_email=`` change the customer)."""
        body = json.loads(RECORDED.read_text())
        detail = body["detail"]
        customer = detail["payload"]["customer"]
        for key in ("name", "email"):
            if f"customer_{key}" in payload:
                customer[key] = payload.pop(f"customer_{key}")
        detail["payload"].update(payload)
        identity = json.dumps(detail["payload"], sort_keys=True)
        detail["event_id"] = hashlib.sha256(identity.encode()).hexdigest()
        self._sequence += 1
        return {
            "messageId": f"msg-{self._sequence}-{detail['event_id'][:8]}",
            "receiptHandle": f"rh-{self._sequence}",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": str(receive_count)},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "awsRegion": REGION,
        }

    def deal_synced(self, **payload: Any) -> DealSynced:
        return parse_record(self.record(**payload))

    def sync(self, events: Sequence[DealSynced]) -> dict[str, Outcome]:
        return self.parts.service.sync(list(events), remaining_ms=60_000)

    def sync_one(self, event: DealSynced) -> Outcome:
        return self.sync([event])[event.message_id]

    # ---- the calendars, read through the Graph sandbox's API

    def token(self) -> str:
        response = requests.post(
            f"{self.graph.url}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
            headers={"User-Agent": PERSON_AGENT},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def calendar(self, mailbox: str = AR_MAILBOX, *, time_zone: str | None = None) -> list[dict[str, Any]]:
        """Every event on the mailbox's calendar (times in ``time_zone`` when given, else UTC)."""
        headers = {"Authorization": f"Bearer {self.token()}", "User-Agent": PERSON_AGENT}
        if time_zone:
            headers["Prefer"] = f'outlook.timezone="{time_zone}"'
        url: str | None = f"{self.graph.url}/v1.0/users/{mailbox}/events?$top=100"
        found: list[dict[str, Any]] = []
        while url:
            response = requests.get(url, headers=headers, timeout=10)
            response.raise_for_status()
            page = response.json()
            found.extend(page["value"])
            url = page.get("@odata.nextLink")
        return found

    def as_person(self, method: str, path: str, body: Any = None) -> requests.Response:
        """A person's change in Outlook (``path`` under /v1.0), with the tenant's app token."""
        response = requests.request(
            method,
            f"{self.graph.url}/v1.0{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token()}", "User-Agent": PERSON_AGENT},
            timeout=10,
        )
        response.raise_for_status()
        return response

    def graph_admin(self, method: str, action: str, body: Any = None) -> Any:
        response = requests.request(method, f"{self.graph.url}/_admin/{action}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def graph_requests(self) -> list[Any]:
        """The requests the code sent to Graph (not the tests' own reads), as they left the process."""
        return [
            s
            for s in self.capture.to(self.graph.url)
            if "/oauth2/" not in s.path and s.headers.get("User-Agent") != PERSON_AGENT
        ]

    # ---- published events

    def published(self) -> list[dict[str, Any]]:
        """Every ledgerlink.calendar.synced detail published so far."""
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
