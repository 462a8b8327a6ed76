"""The ``ledgerlink`` command: lazy command groups, and ``dlq replay`` against SQS (moto)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink import cli
from ledgerlink.sync import deadletter
from tests.conftest import REPO_ROOT

FAILED_AT = datetime(2026, 11, 25, 14, 5, 13, 250_000, tzinfo=UTC)


def test_the_dlq_group_never_imports_the_local_stack():
    # given a fresh interpreter running `ledgerlink dlq replay --help`
    probe = (
        "import sys\nfrom ledgerlink.cli import main\n"
        "try:\n    main(['dlq', 'replay', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('ledgerlink_local', 'moto'))))"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and a literal program
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True
    ).stdout
    # then neither the local stack nor moto was imported
    assert output.strip().splitlines()[-1] == "[]"


def test_a_new_group_is_one_module_and_one_registration_line(monkeypatch, capsys):
    # given a group registered by "<module>:<function>" (this test module plays the module)
    monkeypatch.setattr(
        cli,
        "COMMAND_GROUPS",
        (*cli.COMMAND_GROUPS, cli.CommandGroup("hello", f"{__name__}:register_hello", "hi")),
    )
    # when it runs
    code = cli.main(["hello", "greet", "--name", "Ada"])
    # then its command ran with its arguments
    assert code == 0
    assert capsys.readouterr().out == "hello Ada\n"


def register_hello(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", required=True)
    greet = commands.add_parser("greet")
    greet.add_argument("--name", required=True)
    greet.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)


def test_a_group_without_a_command_prints_its_help_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["dlq"])
    assert exit_info.value.code == 2


# --- dlq replay


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def queues(sqs: Any) -> dict[str, str]:
    dlq = sqs.create_queue(QueueName="ledgerlink-local-deal-sync-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName="ledgerlink-local-deal-sync",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
    )["QueueUrl"]
    sqs.create_queue(QueueName="lonely")
    return {"dlq": dlq, "source": source}


def _dead_letter(sqs: Any, queues: dict[str, str], count: int) -> list[str]:
    """``count`` messages dead-lettered as the deal sync does it (ledgerlink.sync.deadletter), each with
    attributes of its own (string, number, binary) beside the failure's."""
    bodies = [
        json.dumps(
            {
                "detail": {
                    "correlation_id": f"c{index}",
                    "payload": {"entity": "Invoice", "entity_id": str(index)},
                }
            }
        )
        for index in range(count)
    ]
    for index, body in enumerate(bodies):
        record = {
            "messageId": f"m{index}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {
                "origin": {"stringValue": "qbo", "dataType": "String"},
                "attempt": {"stringValue": str(index), "dataType": "Number"},
                "blob": {"binaryValue": "AAE=", "dataType": "Binary"},
            },
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ledgerlink-local-deal-sync",
        }
        failure = deadletter.RecordFailure(
            reason=f"currency EUR is not enabled (invoice {index})", retryable=False
        )
        letter = deadletter.dead_letter(record, failure, deadletter.FailureKind.PERMANENT, FAILED_AT)
        sqs.send_message(QueueUrl=queues["dlq"], **letter.entry)
    return bodies


def _args(queue: str, tmp_path: Path, **overrides: Any) -> argparse.Namespace:
    values = {
        "queue": queue,
        "endpoint_url": None,
        "region": None,
        "aws": False,
        "state_dir": str(tmp_path),
        "max_messages": None,
        "dry_run": False,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def _drain(sqs: Any, url: str) -> list[dict]:
    messages: list[dict] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not batch:
            return messages
        messages.extend(batch)


@pytest.mark.parametrize("named", ["ledgerlink-local-deal-sync-dlq", "ledgerlink-local-deal-sync"])
def test_replay_moves_every_dead_letter_back_with_its_body_and_attributes(sqs, queues, tmp_path, named):
    # given 12 dead-lettered messages (more than one batch)
    bodies = _dead_letter(sqs, queues, 12)
    out = io.StringIO()
    # when the dead-letter queue (or its source queue) is replayed
    code = cli.run_dlq_replay(_args(named, tmp_path), out)
    # then every message is back on the source queue, unchanged, and the DLQ is empty
    assert code == 0
    moved = _drain(sqs, queues["source"])
    assert sorted(message["Body"] for message in moved) == sorted(bodies)
    attributes = {message["Body"]: message["MessageAttributes"] for message in moved}
    assert attributes[bodies[3]]["origin"] == {"DataType": "String", "StringValue": "qbo"}
    assert attributes[bodies[3]]["attempt"] == {"DataType": "Number", "StringValue": "3"}
    assert attributes[bodies[3]]["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}
    # and none of LedgerLink's failure attributes: a replayed message starts clean
    assert all(
        not name.startswith("ledgerlink.") for message in moved for name in message["MessageAttributes"]
    )
    assert set(attributes[bodies[3]]) == {"origin", "attempt", "blob"}
    assert _drain(sqs, queues["dlq"]) == []
    assert (
        "moved 12 messages from ledgerlink-local-deal-sync-dlq to ledgerlink-local-deal-sync; 0 failed"
        in (out.getvalue())
    )


def test_dry_run_lists_each_message_with_its_reason_and_moves_nothing(sqs, queues, tmp_path):
    # given four dead-lettered messages
    _dead_letter(sqs, queues, 4)
    out = io.StringIO()

    # when an operator asks what a replay would move
    assert cli.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, dry_run=True), out) == 0

    # then each message is listed with what it is and why it failed
    text = out.getvalue()
    assert "would move 4 messages from ledgerlink-local-deal-sync-dlq to ledgerlink-local-deal-sync" in text
    for index in range(4):
        assert f"reason: currency EUR is not enabled (invoice {index})" in text
        assert f"permanent  Invoice/{index}" in text
    assert (
        "receive 1, from ledgerlink-local-deal-sync, 2026-11-25T14:05:13.250+00:00, correlation id c0" in text
    )
    # and nothing moved: the source is empty, every message is still (and at once) in the DLQ
    assert _drain(sqs, queues["source"]) == []
    assert len(_drain(sqs, queues["dlq"])) == 4


def test_max_messages_moves_only_that_many(sqs, queues, tmp_path):
    _dead_letter(sqs, queues, 4)
    out = io.StringIO()
    assert cli.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, max_messages=3), out) == 0
    assert len(_drain(sqs, queues["source"])) == 3
    assert len(_drain(sqs, queues["dlq"])) == 1


def test_dry_run_explains_messages_dead_lettered_without_a_reason(sqs, queues, tmp_path):
    # given a message the queue's redrive moved (no LedgerLink attributes) and one EventBridge could not deliver
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody=json.dumps({"detail": {}}))
    sqs.send_message(
        QueueUrl=queues["dlq"],
        MessageBody=json.dumps({"detail-type": "qbo.entity.changed", "detail": {}}),
        MessageAttributes={
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Unable to invoke the target"},
        },
    )
    out = io.StringIO()
    assert cli.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, dry_run=True), out) == 0
    text = out.getvalue()
    assert "redrive" in text and "no reason attached" in text
    assert "EventBridge could not deliver the event to the queue: SDK_CLIENT_ERROR Unable to invoke" in text


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ("lonely", "is not a dead-letter queue and has none"),
        ("no-such-queue", "no queue named 'no-such-queue'"),
    ],
)
def test_a_queue_without_dead_letters_is_refused_with_the_reason(
    sqs, queues, tmp_path, capsys, queue, message
):
    assert cli.run_dlq_replay(_args(queue, tmp_path), io.StringIO()) == 1
    assert message in capsys.readouterr().err


def test_the_endpoint_comes_from_the_flag_then_the_local_stack_then_aws(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    (tmp_path / "local.json").write_text(
        json.dumps({"aws": {"endpoint_url": "http://127.0.0.1:4566", "region": "us-east-1"}})
    )
    flag = cli.resolve_endpoint("http://127.0.0.1:9999", None, False, tmp_path)
    assert (flag.url, flag.source) == ("http://127.0.0.1:9999", "--endpoint-url")
    local = cli.resolve_endpoint(None, None, False, tmp_path)
    assert (local.url, local.region, local.local) == ("http://127.0.0.1:4566", "us-east-1", True)
    aws = cli.resolve_endpoint(None, None, True, tmp_path)
    assert (aws.url, aws.source) == (None, "AWS")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    configured = cli.resolve_endpoint(None, None, False, tmp_path)
    assert configured.url is None and "AWS_ENDPOINT_URL" in configured.source  # boto3 uses it itself
