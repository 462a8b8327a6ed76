"""The ``ledgerlink`` command: lazy command groups, and ``dlq replay`` against SQS (moto)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink import cli
from tests.conftest import REPO_ROOT


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
    bodies = [json.dumps({"detail": {"correlation_id": f"c{index}"}}) for index in range(count)]
    for index, body in enumerate(bodies):
        sqs.send_message(
            QueueUrl=queues["dlq"],
            MessageBody=body,
            MessageAttributes={
                "origin": {"DataType": "String", "StringValue": "qbo"},
                "attempt": {"DataType": "Number", "StringValue": str(index)},
                "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
            },
        )
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
    assert _drain(sqs, queues["dlq"]) == []
    assert (
        "moved 12 messages from ledgerlink-local-deal-sync-dlq to ledgerlink-local-deal-sync; 0 failed"
        in (out.getvalue())
    )


def test_max_messages_and_dry_run_move_only_what_they_say(sqs, queues, tmp_path):
    _dead_letter(sqs, queues, 4)
    out = io.StringIO()
    assert cli.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, dry_run=True), out) == 0
    assert "would move about 4 messages" in out.getvalue()
    assert _drain(sqs, queues["source"]) == []
    assert cli.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, max_messages=3), out) == 0
    assert len(_drain(sqs, queues["source"])) == 3


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
