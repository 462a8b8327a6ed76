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
from ledgerlink_local.stack.status import queue_depths, run_status, summarise, table
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
