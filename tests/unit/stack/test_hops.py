"""The hop log of a record the deal sync dead-letters itself: from the AWS call the worker reports to the
lines ``make run`` prints and ``ledgerlink local status`` summarises."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from ledgerlink.consumer.deadletter import DeadLetterRouter, RecordFailure, SqsDeadLetterQueue
from ledgerlink_local.stack import worker
from ledgerlink_local.stack.hops import HopLog, read_hops
from ledgerlink_local.stack.runtime import FunctionRuntime, InvocationResult
from ledgerlink_local.stack.status import summarise
from tests.conftest import FIXTURES
from tests.unit.stack.conftest import Recorder

DLQ = "ledgerlink-local-deal-sync-dlq"
REQUEST_ID = "5a1b1fbd-8795-432d-8d8d-f42361ffe246"
RUNTIME = FunctionRuntime(
    key="hubspot_deal_sync",
    name="ledgerlink-local-hubspot-deal-sync",
    handler="hubspot_deal_sync.handler.lambda_handler",
    timeout_seconds=120,
    memory_mb=1024,
    environment={},
    code_root=Path("functions"),
)
REASON = "QBO refused the client id/secret in secret 'ledgerlink/local/qbo/oauth' (invalid_client)"


def _record(correlation_id: str) -> dict[str, Any]:
    event = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
    event["detail"]["correlation_id"] = correlation_id
    return {
        "messageId": f"m-{correlation_id}",
        "body": json.dumps(event),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ledgerlink-local-deal-sync",
    }


class Counts:
    def count(self, name: str, value: int = 1) -> None:
        return None


def test_a_record_the_function_dead_letters_shows_its_queue_kind_and_reason(
    reported: Recorder, tmp_path: Path
) -> None:
    # given the deal sync dead-lettering a record whose QBO credentials are refused
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        sqs.create_queue(QueueName=DLQ)
        router = DeadLetterRouter(
            SqsDeadLetterQueue(DLQ, sqs), max_receive_count=5, metrics=Counts(), now=lambda: datetime.now(UTC)
        )
        router.route([_record("corr-1")], {"m-corr-1": RecordFailure(reason=REASON, retryable=False)})

    # when the stack's hop log hears the function's AWS calls, then its outcome for the record
    console = io.StringIO()
    hops = HopLog(stream=console, path=tmp_path / "events.jsonl", dead_letter_queues=[DLQ])
    for message in reported.messages:
        hops.call(RUNTIME, REQUEST_ID, message)
    hops.invocation(
        "hubspot_deal_sync", InvocationResult(REQUEST_ID, True, {"batchItemFailures": []}), [("corr-1", "ok")]
    )

    # then the lines say where it went and why, and that SQS deletes it from the queue
    lines = console.getvalue().splitlines()
    assert any(
        "corr-1" in line
        and "dead-letter" in line
        and f"hubspot_deal_sync sent it to {DLQ} (permanent, receive 1): {REASON}" in line
        for line in lines
    ), lines
    assert "dead-lettered with its reason, so SQS deletes it here" in lines[-1]
    # and the status counts the event as dead-lettered
    _, events = summarise(read_hops(tmp_path / "events.jsonl"))
    assert [(event.correlation_id, event.outcome) for event in events] == [("corr-1", "dead-lettered")]


def test_a_dead_letter_sqs_refuses_is_shown_as_given_back(tmp_path: Path) -> None:
    # given the worker's report of a SendMessageBatch whose only entry SQS refused
    message = worker._aws_call_message(
        "sqs",
        "SendMessageBatch",
        {
            "QueueUrl": f"http://127.0.0.1:4566/123456789012/{DLQ}",
            "Entries": [
                {
                    "Id": "0",
                    "MessageBody": _record("corr-2")["body"],
                    "MessageAttributes": {
                        "ledgerlink.failure_reason": {"DataType": "String", "StringValue": REASON},
                        "ledgerlink.failure_kind": {"DataType": "String", "StringValue": "permanent"},
                    },
                }
            ],
        },
    )
    message.update(ok=True, failed_ids=["0"], phase="end")
    console = io.StringIO()
    hops = HopLog(stream=console, path=tmp_path / "events.jsonl", dead_letter_queues=[DLQ])

    # when the hop log hears it
    hops.call(RUNTIME, REQUEST_ID, message)

    # then the line says the record goes back to SQS, and the event does not count as dead-lettered
    assert f"could not send it to {DLQ} (refused by SQS); SQS delivers it again" in console.getvalue()
    (hop,) = read_hops(tmp_path / "events.jsonl")
    assert (hop.step, hop.outcome, hop.correlation_id) == ("dead-letter", "failed", "corr-2")


def test_a_hubspot_deal_event_is_named_by_its_object_and_change() -> None:
    from ledgerlink_local.stack.hops import event_subject

    payload = {"object_type": "deal", "object_id": "91027", "change": "stage_changed", "deal_id": "91027"}
    assert event_subject(payload) == " deal/91027 stage_changed"
    assert (
        event_subject({"entity": "Invoice", "entity_id": "130", "operation": "Update"})
        == " Invoice/130 Update"
    )
