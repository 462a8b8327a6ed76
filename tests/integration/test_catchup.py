"""The CDC catch-up on moto and the QBO sandbox, feeding the real deal sync: webhooks held back, changes
made in QBO, and what the catch-up publishes (captured on the bus, as the deal-sync queue would get it)."""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledgerlink.catchup.run import CatchupReport, run_catchup
from ledgerlink.catchup.service import CatchupOptions, DynamoDBCursorStore
from ledgerlink.config import reset_settings_cache
from ledgerlink.configfile import load as load_config
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.deal_sync.inbox import ChangeEvent, parse_record
from ledgerlink.secrets import PowertoolsSecretStore, reset_default_secret_store
from tests.aws_fixtures import capture_queue
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import (
    BUS,
    CONFIG_FILE,
    CONNECTION,
    REGION,
    DealSyncWorld,
    environment,
)

world = support.world  # the fixture

CAPTURE_QUEUE = "ledgerlink-test-entity-changed-capture"
# No overlap: the tests count exactly what the second run re-reads (the overlap's re-reads dedupe anyway).
OPTIONS = CatchupOptions(overlap=timedelta(0))


def invoice_body(amount: str) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": "6"},
        "Line": [
            {
                "Amount": amount,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 1, "UnitPrice": amount},
            }
        ],
    }


class CatchupRunQueue:
    """The capture queue of qbo.entity.changed on the bus (created by :class:`CatchupRun`)."""

    def __init__(self, world: DealSyncWorld) -> None:
        self.world = world
        self.queue_url = str(world.aws["sqs"].get_queue_url(QueueName=CAPTURE_QUEUE)["QueueUrl"])

    def captured(self) -> list[dict[str, Any]]:
        """The EventBridge events published since the last call, as the deal-sync queue receives them."""
        sqs = self.world.aws["sqs"]
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class CatchupRun(CatchupRunQueue):
    def __init__(self, world: DealSyncWorld) -> None:
        aws = world.aws
        capture_queue(
            aws["events"], aws["sqs"], bus=BUS, detail_type="qbo.entity.changed", queue_name=CAPTURE_QUEUE
        )
        super().__init__(world)
        # Start the cursor now, so the demo company's own history is not part of what is counted.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        DynamoDBCursorStore(world.settings.vendor_state_table_name, aws["dynamodb"]).advance(
            CONNECTION, start
        )

    def run(self, alarms: list[str] | None = None) -> CatchupReport:
        aws = self.world.aws
        return run_catchup(
            self.world.settings,
            load_config(CONFIG_FILE),
            dynamodb=aws["dynamodb"],
            events=aws["events"],
            secrets=PowertoolsSecretStore(max_age_seconds=0, client=aws["secretsmanager"]),
            options=OPTIONS,
            alarm=None if alarms is None else lambda name, _fields: alarms.append(name),
        )


def as_records(events: list[dict[str, Any]]) -> list[ChangeEvent]:
    return [
        parse_record(
            {
                "messageId": f"catchup-{index}",
                "receiptHandle": f"rh-{index}",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1"},
            }
        )
        for index, event in enumerate(events)
    ]


def test_changes_whose_webhooks_were_held_back_are_published_once_and_synced(world: DealSyncWorld) -> None:
    # given the QBO sandbox holding back its webhooks, and three invoices created meanwhile
    catchup = CatchupRun(world)
    world.qbo_admin("PATCH", "config", {"webhooks_held": True})
    created = {world.qbo_write("Invoice", "create", invoice_body(f"{100 + n}.00"))["Id"] for n in range(3)}
    # when the catch-up runs
    first = catchup.run()
    events = catchup.captured()
    # then it publishes one qbo.entity.changed Create per invoice, marked as found by CDC
    payloads = [event["detail"]["payload"] for event in events]
    assert sorted(p["entity_id"] for p in payloads) == sorted(created)
    assert {(p["entity"], p["operation"], p["source_format"]) for p in payloads} == {
        ("Invoice", "Create", "cdc")
    }
    assert first.connections[0].entities["Invoice"].published == 3
    # and the deal sync, given those events, makes the three deals
    world.sync(as_records(events))
    deals = world.deals()
    assert all(any(key.endswith(invoice_id) for key in deals) for invoice_id in created)
    # when the catch-up runs again
    second = catchup.run()
    # then it publishes nothing: the versions it finds again are already synced
    assert catchup.captured() == []
    counts = second.connections[0].entities["Invoice"]
    assert counts.published == 0 and counts.skipped == counts.seen


def test_a_deleted_invoice_becomes_a_delete_event_that_marks_its_deal(world: DealSyncWorld) -> None:
    # given an invoice synced to a deal, then deleted in QBO while webhooks are held back
    catchup = CatchupRun(world)
    world.qbo_admin("PATCH", "config", {"webhooks_held": True})
    invoice = world.qbo_write("Invoice", "create", invoice_body("75.00"))
    catchup.run()
    world.sync(as_records(catchup.captured()))
    assert any(key.endswith(invoice["Id"]) for key in world.deals())
    current = world.qbo_entity("Invoice", invoice["Id"])
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": invoice["Id"], "SyncToken": current["SyncToken"]})
    # when the catch-up runs
    catchup.run()
    events = catchup.captured()
    # then the tombstone comes as a Delete, and the deal sync marks the deal deleted in QBO
    assert [(e["detail"]["payload"]["entity_id"], e["detail"]["payload"]["operation"]) for e in events] == [
        (invoice["Id"], "Delete")
    ]
    world.sync(as_records(events))
    deal = next(deal for key, deal in world.deals().items() if key.endswith(invoice["Id"]))
    assert deal["properties"]["qbo_status"] == "deleted"
    # and a later catch-up does not publish the delete again
    catchup.run()
    assert catchup.captured() == []


def test_the_command_prints_per_connection_and_entity_what_it_saw_published_and_skipped(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given one invoice created while webhooks are held, and the command pointed at "AWS" (moto here)
    from ledgerlink.cli import catchup as command
    from ledgerlink.cli.endpoints import Endpoint

    CatchupRun(world)
    world.qbo_admin("PATCH", "config", {"webhooks_held": True})
    created = world.qbo_write("Invoice", "create", invoice_body("12.00"))
    monkeypatch.setattr(
        command, "resolve_endpoint", lambda *args, **kwargs: Endpoint(None, REGION, "--aws", local=False)
    )
    monkeypatch.setattr(
        command,
        "catchup_settings",
        lambda endpoint, state_dir: (world.settings, load_config(CONFIG_FILE), "the test's settings"),
    )
    out = io.StringIO()
    # when `ledgerlink catchup --aws --connection demo` runs
    parser = argparse.ArgumentParser()
    command.register(parser)
    status = command.run_catchup_command(parser.parse_args(["--aws", "--connection", CONNECTION]), out)
    # then it ran, and says what it found per entity: the invoice published
    text = out.getvalue()
    assert status == 0, text
    assert f"{CONNECTION} (realm " in text
    assert "  Invoice: 1 seen, 1 published, 0 skipped (already synced)" in text
    assert "caught up: 1 qbo.entity.changed published" in text
    assert created["Id"] in {e["detail"]["payload"]["entity_id"] for e in CatchupRunQueue(world).captured()}


@dataclass
class FakeContext:
    function_name: str = "ledgerlink-test-qbo-catchup"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-qbo-catchup"
    aws_request_id: str = "5b0f7e2a-0000-4000-8000-00000000c0c0"

    def get_remaining_time_in_millis(self) -> int:
        return 100_000


def test_the_lambda_runs_every_connection_on_a_scheduled_tick_from_its_queue(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the Lambda configured by environment like the deployed function, and one unsynced invoice
    for name, value in environment(world.qbo.url, world.hubspot.url).items():
        monkeypatch.setenv(str(name), value)
    reset_settings_cache()
    reset_deployment_config()
    reset_default_secret_store()
    catchup = CatchupRun(world)
    world.qbo_admin("PATCH", "config", {"webhooks_held": True})
    created = world.qbo_write("Invoice", "create", invoice_body("33.00"))
    from qbo_catchup import handler

    tick = {
        "version": "0",
        "id": "sched-1",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ledgerlink-test-qbo-catchup"],
        "detail": {},
    }
    record = {"messageId": "m1", "receiptHandle": "rh", "body": json.dumps(tick), "attributes": {}}
    try:
        # when the schedule's tick arrives through the queue
        answer = handler.lambda_handler({"Records": [record]}, FakeContext())
    finally:
        reset_settings_cache()
        reset_deployment_config()
        reset_default_secret_store()
    # then the connection was caught up and the invoice published
    assert answer["connections"][CONNECTION]["published"] >= 1
    assert answer["connections"][CONNECTION]["gap_seconds"] == 0
    assert created["Id"] in {e["detail"]["payload"]["entity_id"] for e in catchup.captured()}


def test_a_connection_qbo_refuses_is_reported_and_its_cursor_stays(world: DealSyncWorld) -> None:
    # given the connection's QBO grant revoked at Intuit
    catchup = CatchupRun(world)
    cursors = DynamoDBCursorStore(world.settings.vendor_state_table_name, world.aws["dynamodb"])
    before = cursors.get(CONNECTION)
    world.qbo_admin("POST", "oauth/revoke", {})
    # when the catch-up runs
    alarms: list[str] = []
    report = catchup.run(alarms)
    # then the revoked grant is alarmed (the Lambda counts it as QboConnectionRevoked)
    assert alarms == ["QboConnectionRevoked"]
    # and the connection's failure is reported (not raised past the other connections), nothing is
    # published, and its cursor did not move: the next run reads the same window
    assert list(report.failures) == [CONNECTION]
    assert report.lines()[-1].startswith(f"{CONNECTION}: FAILED: ")
    assert catchup.captured() == []
    assert cursors.get(CONNECTION) == before
