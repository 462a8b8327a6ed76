"""The sync history the deal-sync Lambda writes (moto + the QBO and HubSpot sandboxes): one row per
record it settles, with the document's number, the deal, the outcome and its category, the time, the
correlation id and the links table's TTL attribute; a record given back to SQS says when it runs
again, and ``ledgerlink retry`` makes it due now (docs/status.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import pytest

from ledgerlink.cli.retry import run_retry_command
from ledgerlink.deal_sync.inbox import parse_record
from ledgerlink.history import TTL_ATTRIBUTE, Category, Flow, HistoryStore, RecordOutcome, document_pk
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync as deal_sync_tests
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync import ACME, EUR, DealSyncQueues, FakeContext
from tests.integration.test_deal_sync_support import CONNECTION, TABLES, DealSyncWorld

# The deal-sync tests' fixtures: the sandboxes and moto, the handler as deployed, its queues.
world = support.world
handler = deal_sync_tests.handler
queues = deal_sync_tests.queues
dead_lettering = deal_sync_tests.dead_lettering

DAY = 86_400


def _receive_once(on: DealSyncQueues, function: Any) -> list[dict[str, Any]]:
    """One poll of Lambda's event source mapping: receive, invoke, delete what was not reported."""
    messages = on.sqs.receive_message(
        QueueUrl=on.url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
    ).get("Messages", [])
    event = {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": on.arn,
            }
            for m in messages
        ]
    }
    failed = {
        item["itemIdentifier"] for item in function.lambda_handler(event, FakeContext())["batchItemFailures"]
    }
    for message in messages:
        if message["MessageId"] not in failed:
            on.sqs.delete_message(QueueUrl=on.url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def _store(world: DealSyncWorld) -> HistoryStore:
    return HistoryStore(TABLES["links"], world.aws["dynamodb"])


def _epoch(at: str) -> int:
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())


def test_a_synced_and_a_dead_lettered_invoice_each_get_a_history_row(
    world: DealSyncWorld, dead_lettering: Any, queues: DealSyncQueues
) -> None:
    # given a portal without EUR, and an invoice in dollars and one in euros on the queue
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    good, euro = world.record("Invoice", ACME, "Create"), world.record("Invoice", EUR, "Create")
    queues.send(good["body"])
    queues.send(euro["body"])

    # when the Lambda takes them
    _receive_once(queues, dead_lettering)

    # then the dollar invoice's row says it was written to its deal, by its DocNumber
    number = str((world.qbo_entity("Invoice", ACME) or {})["DocNumber"])
    (written,) = _store(world).trace_invoice(CONNECTION, number)
    assert (written.flow, written.outcome, written.category) == (
        Flow.DEAL_SYNC,
        RecordOutcome.WRITTEN,
        Category.NONE,
    )
    assert written.source == f"Invoice {number}" and written.realm_id == DEMO_REALM_ID
    assert written.deal_id == world.deals()[f"{DEMO_REALM_ID}:{ACME}"]["id"]
    assert written.deal_stage
    assert written.correlation_id == parse_record(good).correlation_id
    # and the euro invoice's row (found by its Id) says it was dead-lettered, a mapping problem, and why
    (dead,) = _store(world).trace_invoice(CONNECTION, EUR)
    assert (dead.outcome, dead.category) == (RecordOutcome.DEAD_LETTERED, Category.MAPPING)
    assert "currency EUR is not enabled in the HubSpot portal" in dead.reason
    assert dead.next_attempt_at is None and dead.receipt_handle is None
    # and every row carries the links table's TTL attribute, 30 days (the default) after its time
    items = world.aws["dynamodb"].query(
        TableName=TABLES["links"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": document_pk(CONNECTION, "Invoice", EUR)}},
    )["Items"]
    assert [item[TTL_ATTRIBUTE] for item in items] == [{"N": str(_epoch(dead.at) + 30 * DAY)}]


def test_a_record_given_back_to_sqs_says_when_it_runs_again_and_retry_runs_it_now(
    world: DealSyncWorld,
    dead_lettering: Any,
    queues: DealSyncQueues,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # given an invoice change whose event another invocation holds, and history kept 7 days
    monkeypatch.setenv("LEDGERLINK_HISTORY_TTL_DAYS", "7")
    dead_lettering.reset_for_tests()
    record = world.record("Invoice", ACME, "Create")
    world.parts.service.ledger.claim(parse_record(record).event_id, remaining_ms=600_000)
    queues.send(record["body"])

    # when the Lambda takes it once
    _receive_once(queues, dead_lettering)

    # then its row says it failed (a conflict), when it runs again, and holds the receive's handle
    (waiting,) = _store(world).trace_invoice(CONNECTION, ACME)
    assert (waiting.outcome, waiting.category) == (RecordOutcome.FAILED, Category.CONFLICT)
    assert waiting.next_attempt_at is not None and waiting.next_attempt_at > waiting.at
    assert waiting.receipt_handle and waiting.queue_arn == queues.arn
    (item,) = world.aws["dynamodb"].query(
        TableName=TABLES["links"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": document_pk(CONNECTION, "Invoice", ACME)}},
    )["Items"]
    assert item[TTL_ATTRIBUTE] == {"N": str(_epoch(waiting.at) + 7 * DAY)}
    # and it is hidden until then
    assert not queues.sqs.receive_message(QueueUrl=queues.url).get("Messages")

    # when the operator runs `ledgerlink retry invoice <Id>`
    args = argparse.Namespace(
        kind="invoice",
        reference=ACME,
        connection=CONNECTION,
        endpoint_url=None,
        region="us-east-1",
        aws=True,
        state_dir=".ledgerlink-none",
    )
    code = run_retry_command(args)

    # then it is delivered again at once, the same message
    assert code == 0, capsys.readouterr()
    assert "runs now" in capsys.readouterr().out
    (again,) = queues.sqs.receive_message(QueueUrl=queues.url, AttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ]
    assert again["Body"] == record["body"] and again["Attributes"]["ApproximateReceiveCount"] == "2"
