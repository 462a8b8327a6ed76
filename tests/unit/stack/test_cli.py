"""The ``ledgerlink`` command: lazy command groups, and ``dlq replay`` against SQS (moto)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ledgerlink import cli
from ledgerlink.cli import dlq
from ledgerlink.consumer import deadletter
from tests.conftest import FIXTURES, REPO_ROOT

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
    """``count`` messages dead-lettered as the deal sync does it (ledgerlink.consumer.deadletter), each with
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
    code = dlq.run_dlq_replay(_args(named, tmp_path), out)
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
        "replayed ledgerlink-local-deal-sync-dlq to ledgerlink-local-deal-sync: moved 12, skipped 0, failed 0"
        in (out.getvalue())
    )


def test_dry_run_lists_each_message_with_its_reason_and_moves_nothing(sqs, queues, tmp_path):
    # given four dead-lettered messages
    _dead_letter(sqs, queues, 4)
    out = io.StringIO()

    # when an operator asks what a replay would move
    assert dlq.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, dry_run=True), out) == 0

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
    assert dlq.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, max_messages=3), out) == 0
    assert "about 4 messages waiting; moving at most 3 (--max-messages)" in out.getvalue()
    assert "moved 3, skipped 0, failed 0" in out.getvalue()
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
    assert dlq.run_dlq_replay(_args("ledgerlink-local-deal-sync-dlq", tmp_path, dry_run=True), out) == 0
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
    assert dlq.run_dlq_replay(_args(queue, tmp_path), io.StringIO()) == 1
    assert message in capsys.readouterr().err


def test_the_endpoint_comes_from_the_flag_then_the_local_stack_then_aws(tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    (tmp_path / "local.json").write_text(
        json.dumps({"aws": {"endpoint_url": "http://127.0.0.1:4566", "region": "us-east-1"}})
    )
    flag = dlq.resolve_endpoint("http://127.0.0.1:9999", None, False, tmp_path)
    assert (flag.url, flag.source) == ("http://127.0.0.1:9999", "--endpoint-url")
    local = dlq.resolve_endpoint(None, None, False, tmp_path)
    assert (local.url, local.region, local.local) == ("http://127.0.0.1:4566", "us-east-1", True)
    aws = dlq.resolve_endpoint(None, None, True, tmp_path)
    assert (aws.url, aws.source) == (None, "AWS")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    configured = dlq.resolve_endpoint(None, None, False, tmp_path)
    assert configured.url is None and "AWS_ENDPOINT_URL" in configured.source  # boto3 uses it itself


# --- dlq replay while the function keeps dead-lettering: each message once, up to the starting depth

RECORDED_EVENT = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
DLQ_NAME = "ledgerlink-local-deal-sync-dlq"


def _event(index: int, eventbridge_id: str | None = None) -> str:
    """The recorded qbo.entity.changed event for invoice ``index``: its own event id (and EventBridge id)."""
    event = json.loads(json.dumps(RECORDED_EVENT))
    event["id"] = eventbridge_id or f"6f1c3a52-8a4e-4f0e-9d2b-{index:012d}"
    event["detail"]["event_id"] = f"b7e0a5d4-3c1f-4e7a-8f55-{index:012d}"
    event["detail"]["payload"]["entity_id"] = str(1000 + index)
    return json.dumps(event)


def _invoice_of(body: str) -> int:
    return int(json.loads(body)["detail"]["payload"]["entity_id"]) - 1000


def _dead_letter_bodies(sqs: Any, dlq_url: str, bodies: list[str]) -> list[str]:
    """Each body dead-lettered as the deal sync does it: a new message with the failure's attributes."""
    ids = []
    for body in bodies:
        record = {
            "messageId": "from-the-source-queue",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ledgerlink-local-deal-sync",
        }
        failure = deadletter.RecordFailure(reason="currency EUR is not enabled", retryable=False)
        letter = deadletter.dead_letter(record, failure, deadletter.FailureKind.PERMANENT, FAILED_AT)
        ids.append(sqs.send_message(QueueUrl=dlq_url, **letter.entry)["MessageId"])
    return ids


class FunctionBehindTheQueue:
    """The SQS client replay is given, with the deal sync behind the source queue: whatever replay sends
    there, the function has at once, and ``fails`` says which bodies it dead-letters anew (a new message
    id, same body, the failure's attributes), as a function failing permanently does.

    ``newest_first``: SQS's standard queues keep no order, a message sent a moment ago can come before
    older ones; moto returns the oldest first. The receive then takes every visible message, returns the
    newest and makes the others visible again at once.

    ``hold_expires_before``: the receives (1 is the first) before which the hold of everything replay
    received ran out (a run longer than the hold): what is still in the DLQ is visible again.

    At most ``cap`` dead letters, so that a replay that moves the function's new dead letters again (the
    code before the fix) ends.
    """

    def __init__(
        self,
        sqs: Any,
        queues: dict[str, str],
        fails: Any,
        *,
        newest_first: bool = False,
        hold_expires_before: frozenset[int] = frozenset(),
        cap: int = 100,
    ) -> None:
        self._sqs = sqs
        self._queues = queues
        self._fails = fails
        self._newest_first = newest_first
        self._hold_expires_before = hold_expires_before
        self._cap = cap
        self._handles: list[str] = []
        self._receives = 0
        self.dead_lettered: list[str] = []  # message ids of the function's new dead letters
        self.received: set[str] = set()  # every message id replay was given

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict:
        response = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        if QueueUrl == self._queues["source"]:
            sent = {item["Id"] for item in response.get("Successful", [])}
            bodies = [entry["MessageBody"] for entry in Entries if entry["Id"] in sent]
            room = self._cap - len(self.dead_lettered)
            failing = list(self._fails(bodies))[: max(room, 0)]
            self.dead_lettered.extend(_dead_letter_bodies(self._sqs, self._queues["dlq"], failing))
        return response

    def receive_message(self, **request: Any) -> dict:
        if request["QueueUrl"] == self._queues["dlq"]:
            self._receives += 1
            if self._receives in self._hold_expires_before:
                for handle in self._handles:
                    with contextlib.suppress(ClientError):  # deleted since: nothing to make visible
                        self._sqs.change_message_visibility(
                            QueueUrl=request["QueueUrl"], ReceiptHandle=handle, VisibilityTimeout=0
                        )
        if not self._newest_first or request["QueueUrl"] != self._queues["dlq"]:
            messages = self._sqs.receive_message(**request).get("Messages", [])
        else:
            visible: list[dict] = []
            while batch := self._sqs.receive_message(
                **{**request, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}
            ).get("Messages", []):
                visible.extend(batch)
            messages = visible[::-1][: request.get("MaxNumberOfMessages", 1)]
            others = visible[::-1][len(messages) :]
            for start in range(0, len(others), 10):
                self._sqs.change_message_visibility_batch(
                    QueueUrl=request["QueueUrl"],
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                        for index, message in enumerate(others[start : start + 10])
                    ],
                )
        self.received.update(message["MessageId"] for message in messages)
        self._handles.extend(message["ReceiptHandle"] for message in messages)
        return {"Messages": messages} if messages else {}


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_replay_moves_each_message_once_while_the_function_dead_letters_them_again(
    sqs, queues, tmp_path, monkeypatch, newest_first
):
    # given 25 dead-lettered events (three batches), and a deal sync that fails again on the odd invoices
    bodies = [_event(index) for index in range(25)]
    _dead_letter_bodies(sqs, queues["dlq"], bodies)
    function = FunctionBehindTheQueue(
        sqs, queues, lambda sent: [body for body in sent if _invoice_of(body) % 2], newest_first=newest_first
    )
    monkeypatch.setattr(dlq, "sqs_client", lambda endpoint: function)
    out = io.StringIO()

    # when the dead-letter queue is replayed while the function runs
    code = dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out)

    # then each of the 25 events went back to its queue exactly once, and the run stopped there
    assert code == 0
    assert sorted(message["Body"] for message in _drain(sqs, queues["source"])) == sorted(bodies)
    # and the new dead letters it met were skipped, not moved
    met = function.received & set(function.dead_lettered)
    assert (
        f"replayed {DLQ_NAME} to ledgerlink-local-deal-sync: moved 25, skipped {len(met)}, failed 0"
        in out.getvalue()
    )
    if newest_first:
        assert met  # the scenario happened: the run met the function's new dead letters mid-way
    # and the function's new dead letters (one per odd invoice) are in the DLQ, visible at once
    left = _drain(sqs, queues["dlq"])
    assert sorted(message["MessageId"] for message in left) == sorted(function.dead_lettered)
    assert sorted(_invoice_of(message["Body"]) for message in left) == list(range(1, 25, 2))


def test_replay_stops_at_the_depth_it_started_with(sqs, queues, tmp_path, monkeypatch):
    # given 12 dead-lettered events, and other events failing while the replay runs: one per batch sent
    _dead_letter_bodies(sqs, queues["dlq"], [_event(index) for index in range(12)])
    newcomers = iter(range(100, 200))
    function = FunctionBehindTheQueue(sqs, queues, lambda sent: [_event(next(newcomers))])
    monkeypatch.setattr(dlq, "sqs_client", lambda endpoint: function)
    out = io.StringIO()

    # when the dead-letter queue is replayed
    code = dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out)

    # then it moved the 12 it found at the start and left the newcomers in the DLQ
    assert code == 0
    text = out.getvalue()
    assert f"{DLQ_NAME}: about 12 messages waiting; moving at most 12" in text
    assert "moved 12, skipped 0, failed 0" in text
    assert sorted(_invoice_of(message["Body"]) for message in _drain(sqs, queues["source"])) == list(
        range(12)
    )
    assert sorted(_invoice_of(message["Body"]) for message in _drain(sqs, queues["dlq"])) == [100, 101]


def test_a_run_longer_than_the_hold_holds_what_comes_back_and_goes_on(sqs, queues, tmp_path, monkeypatch):
    # given an event dead-lettered 20 times (its copies first), then five other events, and a run whose
    # hold runs out before its third receive: the ten copies it skipped by then come back
    copies = [_event(0, eventbridge_id=f"delivery-{number}") for number in range(20)]
    others = [_event(index) for index in range(1, 6)]
    _dead_letter_bodies(sqs, queues["dlq"], copies + others)
    function = FunctionBehindTheQueue(sqs, queues, lambda sent: [], hold_expires_before=frozenset({3}))
    monkeypatch.setattr(dlq, "sqs_client", lambda endpoint: function)
    out = io.StringIO()

    # when the dead-letter queue is replayed
    assert dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out) == 0

    # then it held the returning copies again and went on to the other events: each event moved once
    assert "moved 6, skipped 19, failed 0" in out.getvalue()
    assert sorted(message["Body"] for message in _drain(sqs, queues["source"])) == sorted(
        [copies[0], *others]
    )
    assert sorted(message["Body"] for message in _drain(sqs, queues["dlq"])) == sorted(copies[1:])


def test_two_dead_letters_of_one_event_are_moved_once_and_the_copy_is_left(sqs, queues, tmp_path):
    # given an event dead-lettered twice (its archive replay: another EventBridge id, the same event id)
    # and another event
    first, again, other = _event(7), _event(7, eventbridge_id="0e5b7c1d-replayed-from-the-archive"), _event(8)
    _dead_letter_bodies(sqs, queues["dlq"], [first, again, other])
    out = io.StringIO()

    # when the dead-letter queue is replayed
    code = dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out)

    # then each event went back once, the copy stays in the DLQ (visible at once), and the output says so
    assert code == 0
    assert sorted(message["Body"] for message in _drain(sqs, queues["source"])) == sorted([first, other])
    assert [message["Body"] for message in _drain(sqs, queues["dlq"])] == [again]
    text = out.getvalue()
    assert "moved 2, skipped 1, failed 0" in text
    assert "skipped 1: another copy of an event this run moved" in text


def test_a_message_that_cannot_be_sent_stays_in_the_dlq_and_the_run_exits_1(
    sqs, queues, tmp_path, monkeypatch
):
    # given three dead-lettered events, and a source queue that refuses the second
    bodies = [_event(index) for index in range(3)]
    _dead_letter_bodies(sqs, queues["dlq"], bodies)

    class Refusing(FunctionBehindTheQueue):
        def send_message_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict:
            kept = [entry for entry in Entries if entry["MessageBody"] != bodies[1]]
            refused = [entry for entry in Entries if entry["MessageBody"] == bodies[1]]
            response = self._sqs.send_message_batch(QueueUrl=QueueUrl, Entries=kept)
            return {
                "Successful": response.get("Successful", []),
                "Failed": [
                    {"Id": entry["Id"], "Code": "InternalError", "SenderFault": False} for entry in refused
                ],
            }

    monkeypatch.setattr(dlq, "sqs_client", lambda endpoint: Refusing(sqs, queues, lambda sent: []))
    out = io.StringIO()

    # when the dead-letter queue is replayed
    code = dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out)

    # then the run says it failed, and the refused message is still in the DLQ, visible at once
    assert code == 1
    text = out.getvalue()
    assert "moved 2, skipped 0, failed 1" in text
    assert "failed 1: SendMessageBatch refused it (InternalError)" in text
    assert [message["Body"] for message in _drain(sqs, queues["dlq"])] == [bodies[1]]


def test_a_source_queue_that_refuses_every_send_stops_the_run_and_leaves_the_dlq_as_it_was(
    sqs, queues, tmp_path, monkeypatch
):
    # given 25 dead letters, and a source queue this caller may not send to
    bodies = [_event(index) for index in range(25)]
    _dead_letter_bodies(sqs, queues["dlq"], bodies)

    class Denied(FunctionBehindTheQueue):
        def send_message_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict:
            error = {
                "Error": {"Code": "AccessDenied", "Message": "not authorized to perform sqs:SendMessage"}
            }
            raise ClientError(error, "SendMessageBatch")

    monkeypatch.setattr(dlq, "sqs_client", lambda endpoint: Denied(sqs, queues, lambda sent: []))
    out = io.StringIO()

    # when the dead-letter queue is replayed
    code = dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out)

    # then the first batch failed, the run stopped there and says why, and every message is still in
    # the DLQ, visible at once
    assert code == 1
    text = out.getvalue()
    assert "moved 0, skipped 0, failed 10" in text
    assert "failed 10: SendMessageBatch failed (AccessDenied)" in text
    assert "stopped early: SendMessageBatch failed (AccessDenied)" in text
    assert sorted(message["Body"] for message in _drain(sqs, queues["dlq"])) == sorted(bodies)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_replay_prints_its_progress_as_plain_lines(sqs, queues, tmp_path, monkeypatch):
    # given 25 dead letters (three batches), progress every 10 messages, output to a file
    _dead_letter_bodies(sqs, queues["dlq"], [_event(index) for index in range(25)])
    monkeypatch.setattr(dlq, "PROGRESS_EVERY", 10)
    out = io.StringIO()

    # when replayed
    assert dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out) == 0

    # then it printed how far it was after the first and second batch, then the report
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("progress:")]
    assert progress == [
        "progress: moved 10, skipped 0, failed 0 (of at most 25)",
        "progress: moved 20, skipped 0, failed 0 (of at most 25)",
    ]
    assert lines[-1] == f"replayed {DLQ_NAME} to ledgerlink-local-deal-sync: moved 25, skipped 0, failed 0"
    assert "\r" not in out.getvalue()


def test_on_a_terminal_the_progress_is_one_line_rewritten(sqs, queues, tmp_path):
    # given 25 dead letters and a terminal
    _dead_letter_bodies(sqs, queues["dlq"], [_event(index) for index in range(25)])
    out = Terminal()

    # when replayed
    assert dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out) == 0

    # then the progress line was rewritten in place after each batch, and cleared before the report
    text = out.getvalue()
    assert "\rprogress: moved 10, skipped 0, failed 0 (of at most 25)" in text
    assert "\rprogress: moved 20, skipped 0, failed 0 (of at most 25)" in text
    last = text.rsplit("\r", 1)[-1]
    assert last == f"replayed {DLQ_NAME} to ledgerlink-local-deal-sync: moved 25, skipped 0, failed 0\n"


def test_a_replay_of_one_batch_prints_no_progress(sqs, queues, tmp_path):
    _dead_letter_bodies(sqs, queues["dlq"], [_event(index) for index in range(4)])
    out = Terminal()
    assert dlq.run_dlq_replay(_args(DLQ_NAME, tmp_path), out) == 0
    assert "progress" not in out.getvalue()
