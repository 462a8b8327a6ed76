"""``ledgerlink local status``: queue depths from SQS and recent webhooks/events from a recorded hop log."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ledgerlink_local.stack.hops import read_hops
from ledgerlink_local.stack.status import (
    dead_letters,
    links_table_name,
    print_dead_letters,
    print_failures,
    queue_depths,
    recorded_failures,
    run_status,
    summarise,
    table,
)
from tests.conftest import FIXTURES

# Recorded by a local stack: two demo webhooks (three events, synced; two of them in one batch) and,
# from another run, an event whose deal sync kept failing until it was dead-lettered.
EVENT_LOG = FIXTURES / "stack" / "events.jsonl"


def test_webhooks_and_events_are_summarised_from_the_hop_log():
    webhooks, events = summarise(read_hops(EVENT_LOG))
    assert [(w.request_id, w.status, w.events) for w in webhooks] == [
        ("czKWbcpE4dO+Qg==", "200", 1),
        ("Pt7yoeNyl+m9RQ==", "200", 2),
    ]
    by_id = {event.correlation_id: event for event in events}
    assert set(by_id) == {
        "5d637e50-2463-4bfb-a488-7929cf296c25",
        "ea8f335f-7cc2-4afe-b038-24e141ab1322",
        "13aaa0ad-d544-4506-8b1e-9976104ce119",
        "5f0c1e7a-8d2b-4c4e-9a13-2b7e4d9f0a61-Invoice-145",
    }
    synced = by_id["5d637e50-2463-4bfb-a488-7929cf296c25"]
    assert (synced.subject, synced.outcome, synced.receives) == ("Invoice/6 Create", "done", 1)
    assert synced.path == "published > rule > queue > handler"
    assert synced.vendor_calls == 17
    # the two events of one batch share the batch's vendor calls
    batch = [by_id["ea8f335f-7cc2-4afe-b038-24e141ab1322"], by_id["13aaa0ad-d544-4506-8b1e-9976104ce119"]]
    assert [event.vendor_calls for event in batch] == [15, 15]
    dead = by_id["5f0c1e7a-8d2b-4c4e-9a13-2b7e4d9f0a61-Invoice-145"]
    assert (dead.outcome, dead.receives) == ("dead-lettered", 5)
    assert dead.path.endswith("dead-letter")


def test_a_table_aligns_its_columns_and_cuts_long_cells():
    text = table(("a", "bee"), [("1", "x" * 10), ("22", "y")], max_width=5)
    assert text.splitlines() == ["a   bee", "--  -----", "1   xxxx…", "22  y"]


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_queue_depths_pair_each_queue_with_its_dead_letter_queue(sqs):
    dlq = sqs.create_queue(QueueName="deal-sync-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName="deal-sync",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})},
    )["QueueUrl"]
    for _ in range(3):
        sqs.send_message(QueueUrl=source, MessageBody="{}")
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=1, VisibilityTimeout=60)
    (depth,) = queue_depths(sqs)
    assert (depth.name, depth.visible, depth.in_flight, depth.max_receive_count) == ("deal-sync", 2, 1, 5)
    assert (depth.dlq_name, depth.dlq_visible) == ("deal-sync-dlq", 1)


def test_status_of_a_stopped_stack_says_so_and_still_shows_the_events(tmp_path):
    (tmp_path / "local.json").write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:9",
                "aws": {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1"},
            }
        )
    )
    shutil.copy(EVENT_LOG, tmp_path / "events.jsonl")
    out = io.StringIO()
    assert run_status(tmp_path, out) == 1
    text = out.getvalue()
    assert "no local stack answers at http://127.0.0.1:9" in text
    assert "5f0c1e7a-8d2b-4c4e-9a13-2b7e4d9f0a61-Invoice-145" in text and "dead-lettered" in text


def test_status_without_a_stack_description_points_to_make_run(tmp_path: Path):
    out = io.StringIO()
    assert run_status(tmp_path, out) == 1
    assert "start one with `make run`" in out.getvalue()


# Recorded by a local stack whose QBO OAuth secret the QBO sandbox refuses: the deal sync dead-lettered
# the event itself on its first receive.
FUNCTION_DEAD_LETTER_LOG = FIXTURES / "stack" / "events_dead_lettered_by_function.jsonl"


def test_an_event_the_function_dead_lettered_is_summarised_as_dead_lettered():
    _, events = summarise(read_hops(FUNCTION_DEAD_LETTER_LOG))
    (event,) = events
    assert (event.subject, event.outcome, event.receives) == ("Invoice/145 Create", "dead-lettered", 1)
    assert event.path == "published > rule > queue > dead-letter > handler"


def test_dead_letters_are_read_with_their_reasons_and_stay_in_the_queue(sqs):
    # given a dead-letter queue holding one message the deal sync dead-lettered, with its reason
    from datetime import UTC, datetime

    from ledgerlink.consumer.deadletter import FailureKind, RecordFailure, dead_letter

    dlq = sqs.create_queue(QueueName="deal-sync-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(
        QueueName="deal-sync",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5})},
    )
    body = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
    record = {
        "messageId": "m-1",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "5"},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deal-sync",
    }
    failure = RecordFailure(reason="HubSpot answered 503 after 4 attempts", retryable=True)
    letter = dead_letter(
        record, failure, FailureKind.EXHAUSTED, datetime(2026, 11, 25, 14, 5, 13, tzinfo=UTC)
    )
    sqs.send_message(QueueUrl=dlq, **letter.entry)

    # when the status reads the dead letters, then prints them
    letters = dead_letters(sqs, queue_depths(sqs), limit=15)
    out = io.StringIO()
    print_dead_letters(letters, out)

    # then each is explained, and it is still in the queue, visible
    ((queue, view),) = letters
    assert queue == "deal-sync-dlq"
    assert (view.kind, view.receive_count, view.subject) == ("exhausted", 5, "Invoice/1042 Update")
    assert view.correlation_id == body["detail"]["correlation_id"]
    assert "HubSpot answered 503 after 4 attempts" in out.getvalue() and "14:05:13" in out.getvalue()
    (depth,) = queue_depths(sqs)
    assert depth.dlq_visible == 1


def test_failures_on_record_in_the_local_links_table_are_listed_newest_first():
    # given the local stack's links table with two failures on record
    from ledgerlink.crosswalk import Failure, LinkStore
    from ledgerlink.tables import LINKS

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=links_table_name(),
            KeySchema=[
                {"AttributeName": LINKS.partition_key, "KeyType": "HASH"},
                {"AttributeName": str(LINKS.sort_key), "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": LINKS.partition_key, "AttributeType": "S"},
                {"AttributeName": str(LINKS.sort_key), "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        store = LinkStore(links_table_name(), dynamodb)
        common = {"error_type": "X", "message_id": "m", "realm_id": "9341453050117437", "entity": "Invoice"}
        store.record_failures(
            [
                Failure(
                    "e1",
                    "vendor down",
                    retryable=True,
                    receive_count=2,
                    entity_id="1",
                    failed_at="2026-11-25T14:00:00.000+00:00",
                    **common,
                ),
                Failure(
                    "e2",
                    "currency EUR is not enabled",
                    retryable=False,
                    receive_count=1,
                    entity_id="2",
                    failed_at="2026-11-25T14:05:00.000+00:00",
                    **common,
                ),
            ]
        )

        # when the status reads them
        failures = recorded_failures(dynamodb, limit=15)

    # then the newest comes first, and the printed table says which will be retried
    assert [failure.event_id for failure in failures] == ["e2", "e1"]
    out = io.StringIO()
    print_failures(failures, out)
    rows = out.getvalue().splitlines()[4:]  # a blank line, the title, the header, its rule
    assert "Invoice/2" in rows[0] and " no " in rows[0] and "currency EUR" in rows[0]
    assert "Invoice/1" in rows[1] and " yes " in rows[1]
