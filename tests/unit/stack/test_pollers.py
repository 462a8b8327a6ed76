"""The SQS event source emulation against moto's SQS: batches, partial batch responses, redrive to the DLQ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink_local.stack.hops import HopLog
from ledgerlink_local.stack.pollers import (
    PollerConfig,
    QueuePoller,
    correlation_id_of,
    settle,
    sqs_record,
)
from ledgerlink_local.stack.runtime import InvocationResult
from tests.conftest import FIXTURES

RECORDED_RECORD = json.loads((FIXTURES / "sqs" / "lambda-sqs-event-record.json").read_text())
MAX_RECEIVES = 3


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queues(sqs: Any) -> dict[str, str]:
    """A source queue with a dead-letter queue; visibility 0 so a kept message is visible again at once."""
    dlq = sqs.create_queue(QueueName="deal-sync-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName="deal-sync",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"source": source, "source_arn": arn, "dlq": dlq}


def _event_body(correlation_id: str) -> str:
    """An EventBridge event as delivered to SQS, carrying a LedgerLink envelope."""
    return json.dumps(
        {
            "version": "0",
            "id": "e-" + correlation_id,
            "detail-type": "qbo.entity.changed",
            "source": "ledgerlink.qbo",
            "detail": {"correlation_id": correlation_id, "payload": {"entity": "Invoice"}},
        }
    )


def _poller(sqs, queues, invoke, *, batch_size=10, window=0.0, hops=None, report=True) -> QueuePoller:
    config = PollerConfig(
        function="hubspot_deal_sync",
        queue_name="deal-sync",
        queue_url=queues["source"],
        queue_arn=queues["source_arn"],
        region="us-east-1",
        batch_size=batch_size,
        max_batching_window_seconds=window,
        report_batch_item_failures=report,
        max_receive_count=MAX_RECEIVES,
        poll_wait_seconds=0,
    )
    return QueuePoller(config, sqs, invoke, hops)


def _bodies(sqs, url) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )
    return sorted(message["Body"] for message in messages)


class FailFor:
    """A function that reports the records whose body is in ``failing`` as batch item failures."""

    def __init__(self, *failing: str, crash: bool = False) -> None:
        self.failing = set(failing)
        self.crash = crash
        self.batches: list[list[dict]] = []

    def __call__(self, event: dict, request_id: str = "r") -> InvocationResult:
        self.batches.append(event["Records"])
        if self.crash:
            return InvocationResult("r", False, error_type="RuntimeError", error_message="boom")
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in self.failing]
        return InvocationResult("r", True, {"batchItemFailures": failures})


def test_records_have_the_shape_lambda_gives_them(sqs, queues):
    # given a message with a string attribute
    sqs.send_message(
        QueueUrl=queues["source"],
        MessageBody="test",
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "qbo"}},
    )
    message = sqs.receive_message(
        QueueUrl=queues["source"], AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    # when it becomes a record
    record = sqs_record(message, queues["source_arn"], "us-east-1")
    # then it has exactly the recorded record's fields, attributes included
    assert set(record) == {key for key in RECORDED_RECORD if not key.startswith("_")}
    assert set(RECORDED_RECORD["attributes"]) <= set(record["attributes"])
    assert record["messageAttributes"] == RECORDED_RECORD["messageAttributes"]
    assert record["body"] == "test" and record["eventSource"] == "aws:sqs"
    assert record["md5OfBody"] == RECORDED_RECORD["md5OfBody"]  # md5("test"), as SQS computes it


def test_only_the_succeeded_records_of_a_partial_batch_are_deleted(sqs, queues):
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=queues["source"], MessageBody=body)
    function = FailFor("b")
    outcome = _poller(sqs, queues, function).poll_once()
    assert outcome is not None and len(outcome.deleted) == 2 and len(outcome.kept) == 1
    # the failed one is still in the queue (visible again after the visibility timeout), the others are gone
    assert _bodies(sqs, queues["source"]) == ["b"]


def test_a_function_error_keeps_the_whole_batch(sqs, queues):
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queues["source"], MessageBody=body)
    outcome = _poller(sqs, queues, FailFor(crash=True)).poll_once()
    assert outcome is not None and outcome.whole_batch_failed
    assert _bodies(sqs, queues["source"]) == ["a", "b"]


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue_after_max_receives(sqs, queues):
    # given a message the function always fails and one it processes
    sqs.send_message(QueueUrl=queues["source"], MessageBody=_event_body("poison"))
    sqs.send_message(QueueUrl=queues["source"], MessageBody=_event_body("fine"))
    function = FailFor(_event_body("poison"))
    hops = HopLog(stream=None, path=None)
    recorded: list[tuple[str, str | None]] = []
    hops.record = lambda step, text, correlation_id=None, **details: recorded.append((step, correlation_id))  # type: ignore[method-assign]
    poller = _poller(sqs, queues, function, hops=hops)
    # when the poller polls until nothing is left
    for _ in range(MAX_RECEIVES + 2):
        poller.poll_once()
    # then the function saw the poison message exactly maxReceiveCount times, and SQS moved it to the DLQ
    seen = [record["body"] for batch in function.batches for record in batch]
    assert seen.count(_event_body("poison")) == MAX_RECEIVES
    assert seen.count(_event_body("fine")) == 1
    assert _bodies(sqs, queues["source"]) == []
    assert _bodies(sqs, queues["dlq"]) == [_event_body("poison")]
    # and the hop log said so, with the event's correlation id
    assert ("dead-letter", "poison") in recorded


def test_an_unknown_item_identifier_fails_the_whole_batch(sqs, queues):
    sqs.send_message(QueueUrl=queues["source"], MessageBody="a")

    def invoke(event: dict, request_id: str = "r") -> InvocationResult:
        return InvocationResult("r", True, {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]})

    outcome = _poller(sqs, queues, invoke).poll_once()
    assert outcome is not None and outcome.whole_batch_failed
    assert _bodies(sqs, queues["source"]) == ["a"]


def test_without_partial_batch_responses_a_successful_invocation_deletes_all(sqs, queues):
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queues["source"], MessageBody=body)
    _poller(sqs, queues, FailFor("a"), report=False).poll_once()
    assert _bodies(sqs, queues["source"]) == []


def test_without_a_window_one_poll_is_one_batch_and_with_one_the_batch_fills_up(sqs, queues):
    for index in range(15):
        sqs.send_message(QueueUrl=queues["source"], MessageBody=str(index))
    function = FailFor()
    # no window: what one ReceiveMessage returns (at most 10)
    _poller(sqs, queues, function, batch_size=100).poll_once()
    assert len(function.batches[0]) <= 10
    # a window: keep receiving until the batch size is reached
    for index in range(15):
        sqs.send_message(QueueUrl=queues["source"], MessageBody=f"w{index}")
    _poller(sqs, queues, function, batch_size=12, window=30).poll_once()
    assert len(function.batches[1]) == 12


@pytest.mark.parametrize(
    ("payload", "deleted"),
    [
        (None, 2),
        ({}, 2),
        ({"batchItemFailures": []}, 2),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}]}, 1),
    ],
)
def test_settle_reads_the_partial_batch_response(payload, deleted):
    outcome = settle(InvocationResult("r", True, payload), ["m1", "m2"], report_batch_item_failures=True)
    assert len(outcome.deleted) == deleted


@pytest.mark.parametrize("failures", ["m1", [{"id": "m1"}], [{"itemIdentifier": ""}], [None]])
def test_settle_fails_the_batch_on_a_malformed_response(failures):
    outcome = settle(InvocationResult("r", True, {"batchItemFailures": failures}), ["m1"], True)
    assert outcome.whole_batch_failed and outcome.deleted == ()


def test_the_correlation_id_is_read_from_an_eventbridge_body():
    assert correlation_id_of(_event_body("abc")) == "abc"
    assert correlation_id_of("not json") is None
    assert correlation_id_of(json.dumps({"detail": json.dumps({"correlation_id": "x"})})) == "x"


def test_a_stopped_poller_starts_again_and_takes_what_arrived_meanwhile(sqs, queues):
    # given a poller that ran and was stopped (tests pause one to look at a queue)
    invoke = FailFor()
    poller = _poller(sqs, queues, invoke).start()
    with pytest.raises(RuntimeError, match="already running"):
        poller.start()
    poller.stop()
    sqs.send_message(QueueUrl=queues["source"], MessageBody="sent while paused")
    assert invoke.batches == []

    # when it is started again
    poller.start()
    try:
        deadline = time.monotonic() + 30  # bounds a hang only; not a timing assertion
        while not invoke.batches and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    # then it delivered the message that waited
    assert [record["body"] for batch in invoke.batches for record in batch] == ["sent while paused"]
