"""The deal-sync Lambda's dead letters: what it reports to SQS and what lands in the dead-letter queue.

The handler runs on recorded SQS records (``tests/fixtures/sqs``, ``tests/fixtures/infra``) with a fake
sync (the outcomes are the test's given) and a real dead-letter queue in moto, so each test asserts the
partial batch response Lambda gets and the message that exists in the queue afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ledgerlink.consumer.deadletter import DeadLetterRouter, SqsDeadLetterQueue
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.deal_sync.inbox import ChangeEvent
from tests.unit.consumer.records import QUEUE, sqs_record

DLQ = "ledgerlink-test-deal-sync-dlq"
MAX_RECEIVES = 5
FAILED_AT = datetime(2026, 11, 25, 14, 5, 13, 250_000, tzinfo=UTC)
CURRENCY_REASON = (
    "Invoice CurrencyRef: currency EUR is not enabled in the HubSpot portal (enabled: USD); enable it, "
    "then replay"
)


@dataclass
class FakeSync:
    """The deal sync's outcome per message id, as the test decides it; records what it was given."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    received: list[ChangeEvent] = field(default_factory=list)

    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]:
        self.received.extend(events)
        return {
            event.message_id: self.outcomes.get(event.message_id, Outcome(OutcomeStatus.SYNCED))
            for event in events
        }


@dataclass
class Counts:
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


class Context:
    function_name = "ledgerlink-test-hubspot-deal-sync"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-hubspot-deal-sync"
    aws_request_id = "5b0f7e2a-0000-4000-8000-000000000002"

    def get_remaining_time_in_millis(self) -> int:
        return 100_000


@dataclass
class Lambda:
    handler: Any
    sync: FakeSync
    metrics: Counts
    sqs: Any
    dlq_url: str
    router: DeadLetterRouter

    def run(self, records: list[dict[str, Any]]) -> set[str]:
        """Invoke the handler; the message ids it reported in batchItemFailures."""
        response = self.handler.lambda_handler({"Records": records}, Context())
        return {item["itemIdentifier"] for item in response["batchItemFailures"]}

    def dead_letters(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["AWSTraceHeader"],
            ).get("Messages", [])
            if not messages:
                return found
            found.extend(messages)
            for message in messages:
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])


def _strings(message: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: value.get("StringValue", "") for name, value in message.get("MessageAttributes", {}).items()
    }


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _lambda(monkeypatch: pytest.MonkeyPatch, sqs: Any, queue_name: str = DLQ) -> Lambda:
    from hubspot_deal_sync import handler

    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    sync, metrics = FakeSync(), Counts()
    router = DeadLetterRouter(
        SqsDeadLetterQueue(queue_name, sqs),
        max_receive_count=MAX_RECEIVES,
        metrics=metrics,
        now=lambda: FAILED_AT,
    )
    parts = SimpleNamespace(service=sync, dead_letters=router)
    monkeypatch.setattr(handler, "_parts", lambda: parts)
    return Lambda(handler, sync, metrics, sqs, dlq_url, router)


@pytest.fixture
def lam(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Lambda:
    return _lambda(monkeypatch, aws)


def permanent(reason: str = CURRENCY_REASON) -> Outcome:
    return Outcome(OutcomeStatus.FAILED, reason=reason, retryable=False, error_type="UnsupportedCurrency")


def retryable() -> Outcome:
    return Outcome(
        OutcomeStatus.FAILED,
        reason="HubSpot answered 503 after 4 attempts",
        retryable=True,
        error_type="VendorHttpError",
    )


def test_a_permanent_failure_is_dead_lettered_at_once_with_its_reason_and_reported_handled(
    lam: Lambda,
) -> None:
    # given a batch where one invoice's currency is not enabled in the portal (first receive)
    failing, fine = sqs_record("m-eur"), sqs_record("m-usd")
    lam.sync.outcomes["m-eur"] = permanent()

    # when the Lambda runs
    to_retry = lam.run([failing, fine])

    # then neither record is given back to SQS (both are deleted from the queue) ...
    assert to_retry == set()
    # ... and the failing one is in the dead-letter queue: same body, own attributes, and why
    (letter,) = lam.dead_letters()
    assert letter["Body"] == failing["body"]
    attributes = letter["MessageAttributes"]
    assert attributes["origin"] == {"DataType": "String", "StringValue": "qbo"}
    assert _strings(letter) | {"origin": "qbo"} == {
        "origin": "qbo",
        "ledgerlink.failure_reason": CURRENCY_REASON,
        "ledgerlink.failure_kind": "permanent",
        "ledgerlink.source_queue": QUEUE,
        "ledgerlink.receive_count": "1",
        "ledgerlink.failed_at": "2026-11-25T14:05:13.250+00:00",
    }
    assert attributes["ledgerlink.receive_count"]["DataType"] == "Number"
    assert lam.metrics.counts == {"EventsDeadLettered": 1}


def test_a_retryable_failure_with_receives_left_is_given_back_to_sqs(lam: Lambda) -> None:
    # given a vendor outage on the record's second receive of five
    record = sqs_record("m-1", receive_count=2)
    lam.sync.outcomes["m-1"] = retryable()

    # when the Lambda runs
    to_retry = lam.run([record])

    # then SQS is asked to deliver it again, and nothing is dead-lettered
    assert to_retry == {"m-1"}
    assert lam.dead_letters() == []
    assert "EventsDeadLettered" not in lam.metrics.counts


def test_a_retryable_failure_on_the_last_receive_is_dead_lettered_as_exhausted(lam: Lambda) -> None:
    # given the same outage on the queue's last allowed receive (maxReceiveCount)
    record = sqs_record("m-1", receive_count=MAX_RECEIVES)
    lam.sync.outcomes["m-1"] = retryable()

    # when the Lambda runs
    to_retry = lam.run([record])

    # then the Lambda dead-letters it itself (the redrive would have, without a reason)
    assert to_retry == set()
    (letter,) = lam.dead_letters()
    assert _strings(letter)["ledgerlink.failure_kind"] == "exhausted"
    assert _strings(letter)["ledgerlink.receive_count"] == str(MAX_RECEIVES)
    assert _strings(letter)["ledgerlink.failure_reason"] == "HubSpot answered 503 after 4 attempts"
    assert lam.metrics.counts == {"EventsDeadLettered": 1, "EventsRetriesExhausted": 1}


def test_a_malformed_record_is_dead_lettered_with_the_field_at_fault(lam: Lambda) -> None:
    # given the recorded record as it was sent (its body is not an event at all)
    record = sqs_record("m-bad", body="test")

    # when the Lambda runs
    to_retry = lam.run([record])

    # then it is dead-lettered at once with the reason, and never reaches the sync
    assert to_retry == set()
    (letter,) = lam.dead_letters()
    assert letter["Body"] == "test"
    assert _strings(letter)["ledgerlink.failure_reason"] == "message m-bad: body is not JSON"
    assert _strings(letter)["ledgerlink.failure_kind"] == "permanent"
    assert lam.sync.received == []
    assert lam.metrics.counts == {
        "MalformedEvents": 1,
        "EventsFailed": 1,
        "EventsFailedPermanently": 1,
        "EventsDeadLettered": 1,
    }


def test_a_dead_letter_that_cannot_be_sent_is_given_back_to_sqs_never_lost(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a dead-letter queue name that does not resolve (a misconfigured stack)
    lam = _lambda(monkeypatch, aws, queue_name="ledgerlink-test-no-such-dlq")
    lam.sync.outcomes["m-eur"] = permanent()

    # when the Lambda runs
    to_retry = lam.run([sqs_record("m-eur"), sqs_record("m-usd")])

    # then the failing record goes back to SQS (its redrive is the backstop); the good one is done
    assert to_retry == {"m-eur"}
    assert lam.metrics.counts == {"DeadLetterSendFailed": 1}


def test_an_entry_sqs_refuses_in_a_batch_is_given_back_alone(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given two permanent failures, and SQS accepting only the first of the two entries
    lam = _lambda(monkeypatch, aws)
    lam.sync.outcomes.update({"m-1": permanent(), "m-2": permanent()})
    stubber = Stubber(aws)
    stubber.add_response("get_queue_url", {"QueueUrl": lam.dlq_url}, {"QueueName": DLQ})
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "dl-1", "MD5OfMessageBody": "x"}],
            "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
        },
    )

    # when the Lambda runs
    with stubber:
        to_retry = lam.run([sqs_record("m-1"), sqs_record("m-2")])

    # then only the refused one goes back to SQS
    assert to_retry == {"m-2"}
    assert lam.metrics.counts == {"EventsDeadLettered": 1, "DeadLetterSendFailed": 1}


def test_without_a_dead_letter_queue_configured_every_failure_is_left_to_the_redrive(lam: Lambda) -> None:
    # given a deployment that names no dead-letter queue for the function
    lam.router.queue = None
    lam.sync.outcomes["m-eur"] = permanent()

    # when the Lambda runs
    to_retry = lam.run([sqs_record("m-eur")])

    # then the record goes back to SQS as before; its redrive policy dead-letters it in the end
    assert to_retry == {"m-eur"}
    assert lam.dead_letters() == []
