"""Retries with backoff, not the visibility timeout: each failed record's own delay (ledgerlink.consumer.redelivery).

The schedule is checked on its numbers; the router against a real queue in moto, whose visibility
timeout is 0 so that a record the function did not delay would be received again at once.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.consumer.deadletter import DeadLetterRouter, Disposition, RecordFailure
from ledgerlink.consumer.redelivery import SQS_MAX_VISIBILITY_SECONDS, RedeliverySchedule, SqsRedelivery
from tests.conftest import FIXTURES

QUEUE = "ledgerlink-test-deal-sync"


class Lowest:
    """A random source that always draws the lowest value (the guaranteed half of each step)."""

    def uniform(self, a: float, b: float) -> float:
        return a


class Highest:
    def uniform(self, a: float, b: float) -> float:
        return b


class Counts:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def test_delays_grow_by_a_quarter_a_receive_from_seconds_to_the_cap_with_equal_jitter() -> None:
    schedule = RedeliverySchedule(base_seconds=2, cap_seconds=120)
    steps = [schedule.step(n) for n in range(1, 40)]
    assert steps[:3] == [2.0, 2.5, 3.125]
    assert all(
        later == pytest.approx(min(120.0, earlier * 1.25)) for earlier, later in itertools.pairwise(steps)
    )
    assert steps[-1] == 120.0
    # whole seconds (SQS's unit), rounded up, between half the step and the step
    assert [schedule.delay(n, rng=Highest()) for n in (1, 2, 3, 13, 30)] == [2, 3, 4, 30, 120]
    assert [schedule.delay(n, rng=Lowest()) for n in (1, 2, 3, 13, 30)] == [1, 2, 2, 15, 60]
    drawn = [schedule.delay(20, rng=random.Random(seed)) for seed in range(200)]
    assert min(drawn) >= 60 and max(drawn) <= 120 and len(set(drawn)) > 20


def test_the_step_in_force_when_a_two_minute_outage_ends_is_about_half_a_minute() -> None:
    # given a record that first failed when the outage began, drawing the longest delays
    schedule = RedeliverySchedule(base_seconds=2, cap_seconds=120)
    failing_for, receive = 0.0, 1
    while failing_for + schedule.step(receive) <= 120:
        failing_for += schedule.step(receive)
        receive += 1
    # then the delay it waits out past the end is under 30 s (doubling would leave up to 64 s)
    assert schedule.step(receive) < 30


def test_a_delay_is_never_shorter_than_what_the_vendor_or_the_breaker_asked_for() -> None:
    schedule = RedeliverySchedule(base_seconds=2, cap_seconds=120)
    assert schedule.delay(1, at_least=29.2, rng=Highest()) == 30  # whole seconds, rounded up
    assert schedule.delay(1, at_least=0.4, rng=Highest()) == 2
    assert schedule.delay(1, at_least=10**9, rng=Highest()) == SQS_MAX_VISIBILITY_SECONDS


def test_the_receives_needed_to_outlast_an_hour_follow_from_the_guaranteed_half_of_each_step() -> None:
    schedule = RedeliverySchedule(base_seconds=2, cap_seconds=120)
    receives = schedule.receives_to_span(3600)
    # the lowest draws, from the first receive to the last, add up to at least an hour ...
    lowest = [schedule.delay(n, rng=Lowest()) for n in range(1, receives)]
    assert sum(lowest) >= 3600
    # ... and one receive fewer would not
    assert sum(lowest[:-1]) < 3600
    assert receives == 76


def test_a_schedule_sqs_cannot_honour_is_refused() -> None:
    for base, cap in ((0, 10), (20, 10), (1, 50_000)):
        with pytest.raises(ValueError, match="redelivery needs"):
            RedeliverySchedule(base_seconds=base, cap_seconds=cap)


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _received_records(sqs: Any, url: str, arn: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    return [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m["Attributes"],
            "messageAttributes": {},
            "eventSourceARN": arn,
        }
        for m in messages
    ]


def test_a_record_given_back_to_sqs_stays_hidden_for_its_own_delay_and_the_others_do_not(sqs: Any) -> None:
    # given a queue whose visibility timeout is 0 (anything not delayed comes back at once) ...
    url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    event = (FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text()
    for index in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({**json.loads(event), "id": f"e-{index}"}))
    records = _received_records(sqs, url, arn)
    assert len(records) == 3
    # ... and a batch where HubSpot's 429 (Retry-After 7.5 s) failed one record and another was permanent
    vendor_429, permanent = records[0]["messageId"], records[1]["messageId"]
    failures = {
        vendor_429: RecordFailure(reason="hubspot 429", retryable=True, retry_after=7.5),
        permanent: RecordFailure(reason="currency", retryable=False),
    }
    metrics = Counts()
    router = DeadLetterRouter(
        None, max_receive_count=66, metrics=metrics, redelivery=SqsRedelivery(sqs), rng=Highest()
    )

    # when the router settles the batch
    routed = router.route(records, failures)

    # then the 429 is given back with at least the vendor's Retry-After ...
    assert routed[vendor_429].disposition is Disposition.RETRY
    assert routed[vendor_429].delay_seconds == 8
    assert metrics.counts["RetriesScheduled"] == 2  # no dead-letter queue here: both go back to SQS
    # ... and the queue holds both back although its timeout is 0: only the record that succeeded (which
    # Lambda deletes after the invocation) is received again at once
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [message["MessageId"] for message in again] == [records[2]["messageId"]]
    assert routed[records[2]["messageId"]].disposition is Disposition.DONE


def test_a_visibility_that_cannot_be_changed_leaves_the_record_to_the_queue_timeout(sqs: Any) -> None:
    # given a record whose receipt handle SQS no longer accepts
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    record = {"messageId": "m-1", "receiptHandle": "not-a-handle", "attributes": {}, "eventSourceARN": arn}
    router = DeadLetterRouter(None, max_receive_count=5, metrics=Counts(), redelivery=SqsRedelivery(sqs))

    # when it is given back
    routed = router.route([record], {"m-1": RecordFailure(reason="503", retryable=True)})

    # then it is still given back to SQS (nothing lost), without a delay of its own
    assert routed["m-1"].disposition is Disposition.RETRY
    assert routed["m-1"].delay_seconds is None
