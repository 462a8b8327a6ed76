"""``ledgerlink dlq replay <queue>``: dead-lettered messages back to the queue they came from.

It moves them without LedgerLink's failure attributes (``ledgerlink.*``: the reason, kind, ...), so a
replayed message starts clean, against AWS or the local stack (:mod:`ledgerlink.cli.endpoints`). It
moves each message once per run, at most as many as the dead-letter queue held at the start, skips
another copy of an event it moved (the function may dead-letter a replayed event again while the run
goes on), and reports moved / skipped / failed (see :func:`replay`); ``--dry-run`` lists each message
with its failure reason and moves nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK
from ledgerlink.cli.endpoints import (
    DEFAULT_STATE_DIR,
    Endpoint,
    EndpointError,
    resolve_endpoint,
    sqs_client,
)

__all__ = ["Endpoint", "ReplayError", "register", "replay", "resolve_endpoint", "run_dlq_replay"]

# How long a replay holds what it received: longer than a batch takes to move, so a message being
# moved is not received twice; what the run leaves in the queue is released when it ends.
REPLAY_VISIBILITY_SECONDS: Final = 60
BATCH: Final = 10
# Progress lines when the output is not a terminal: one per this many messages handled.
PROGRESS_EVERY: Final = 100
# EventBridge ``source`` of LedgerLink's events (ledgerlink.events.EventSource); their detail's
# ``event_id`` identifies an event across deliveries and dead letters.
LEDGERLINK_SOURCE_PREFIX: Final = "ledgerlink."
# How many messages --dry-run lists at most (unless --max-messages says otherwise).
DRY_RUN_LIMIT: Final = 100


class ReplayError(EndpointError):
    """The queue cannot be replayed (unknown, not a dead-letter queue, ambiguous); the message says why."""


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    replay = commands.add_parser(
        "replay",
        help="move dead-lettered messages back to their source queue",
        description=(
            "Move every message of a dead-letter queue back to the queue it came from, keeping its body "
            "and message attributes except LedgerLink's failure attributes (ledgerlink.*), so that it "
            "starts clean. QUEUE is the dead-letter queue or its source queue (name or URL). "
            "Endpoint: --endpoint-url, else AWS_ENDPOINT_URL / your AWS config, else the local stack "
            "of --state-dir (unless --aws), else AWS."
        ),
    )
    replay.add_argument("queue", help="dead-letter queue or source queue, by name or URL")
    replay.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local stack's moto)")
    replay.add_argument("--region", help="AWS region")
    replay.add_argument("--aws", action="store_true", help="use AWS even when a local stack is running")
    replay.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the local stack's state directory")
    replay.add_argument("--max-messages", type=int, default=None, help="move at most this many")
    replay.add_argument(
        "--dry-run", action="store_true", help="list each message with its failure reason; move nothing"
    )
    replay.set_defaults(func=run_dlq_replay)


@dataclass(frozen=True)
class QueuePair:
    dlq_url: str
    dlq_name: str
    source_url: str
    source_name: str


def _queue_url(sqs: Any, queue: str) -> str:
    if queue.startswith(("http://", "https://")):
        return queue
    try:
        url: str = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        raise ReplayError(f"no queue named {queue!r} at this endpoint") from None
    return url


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def find_pair(sqs: Any, queue: str) -> QueuePair:
    """The dead-letter queue and its source, given either of them."""
    url = _queue_url(sqs, queue)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get(
        "Attributes", {}
    )
    if "RedrivePolicy" in attributes:
        target_arn = str(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"])
        account, name = target_arn.split(":")[4], target_arn.split(":")[5]
        dlq_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return QueuePair(dlq_url, name, url, _name(url))
    sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    if not sources:
        raise ReplayError(f"{_name(url)} is not a dead-letter queue and has none: nothing to replay")
    if len(sources) > 1:
        names = ", ".join(sorted(_name(source) for source in sources))
        raise ReplayError(
            f"{_name(url)} is the dead-letter queue of several queues ({names}); name the source queue"
        )
    return QueuePair(url, _name(url), sources[0], _name(sources[0]))


@dataclass(frozen=True)
class QueueDepth:
    """A queue's depth as SQS tells it (approximate: SQS is distributed, the counts lag a little)."""

    waiting: int
    """``ApproximateNumberOfMessages``: visible, what a receive can get."""
    in_flight: int
    """``ApproximateNumberOfMessagesNotVisible``: received by someone and not yet deleted or released."""


def queue_depth(sqs: Any, queue_url: str) -> QueueDepth:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    ).get("Attributes", {})
    return QueueDepth(
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def message_identity(body: str) -> str:
    """What makes two dead letters the same message for a replay: the event id when the body is a
    LedgerLink event (the function's new dead letter of an event, or EventBridge's second delivery of it,
    keeps the event id and gets a new SQS message id), else a SHA-256 of the body."""
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if isinstance(event, dict) and str(event.get("source", "")).startswith(LEDGERLINK_SOURCE_PREFIX):
        detail = event.get("detail")
        event_id = detail.get("event_id") if isinstance(detail, dict) else None
        if isinstance(event_id, str) and event_id:
            return f"event {event_id}"
    return "sha256 " + hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ReplayReport:
    moved: int
    skipped: int
    """Another copy of an event this run moved: left in the dead-letter queue."""
    failed: int
    limit: int
    """The most this run would move or fail: the depth at the start, or ``--max-messages``."""
    failures: Mapping[str, int] = field(default_factory=dict)
    """Why messages failed (an SQS error code, never message content) -> how many."""
    still_held: int = 0
    """Messages left in the dead-letter queue that could not be made visible again at the end."""
    stopped: str | None = None
    """Why the run stopped before its end (a call failed as a whole), if it did."""


class Progress:
    """How far a replay is, printed on ``out`` after each batch while more is to come: on a terminal one
    line rewritten in place; elsewhere (a pipe, a log) a plain line once another :data:`PROGRESS_EVERY`
    messages were handled. A run of one batch prints none."""

    def __init__(self, out: TextIO, every: int | None = None) -> None:
        self.out = out
        self.every = PROGRESS_EVERY if every is None else every
        isatty = getattr(out, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._printed_at = 0
        self._width = 0

    def update(self, moved: int, skipped: int, failed: int, limit: int) -> None:
        line = f"progress: moved {moved}, skipped {skipped}, failed {failed} (of at most {limit})"
        handled = moved + skipped + failed
        if self.tty:
            self.out.write("\r" + line.ljust(self._width))
            self.out.flush()
            self._width = len(line)
        elif handled - self._printed_at >= self.every:
            print(line, file=self.out, flush=True)
            self._printed_at = handled

    def finish(self) -> None:
        """Clear the terminal's progress line, so the report starts on a clean line."""
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
            self._width = 0


def _send_entry(message: dict[str, Any], index: int, fifo: bool) -> dict[str, Any]:
    """The message as it was before it failed: body, its own attributes (not ``ledgerlink.*``), trace."""
    from ledgerlink.consumer.deadletter import without_failure_attributes

    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {}
    for name, value in without_failure_attributes(message.get("MessageAttributes") or {}).items():
        kept = {key: item for key, item in value.items() if key in ("DataType", "StringValue", "BinaryValue")}
        attributes[name] = kept
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes") or {}
    if system.get("AWSTraceHeader"):
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
        }
    if fifo:
        entry["MessageGroupId"] = system.get("MessageGroupId", "replay")
        if system.get("MessageDeduplicationId"):
            entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return entry


def _error_code(error: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


class _Run:
    """The state of one replay (see :func:`replay`)."""

    def __init__(self, sqs: Any, pair: QueuePair, limit: int) -> None:
        self.sqs = sqs
        self.pair = pair
        self.limit = limit
        self.fifo = pair.source_name.endswith(".fifo")
        self.moved = self.skipped = self.failed = 0
        self.failures: Counter[str] = Counter()
        self.seen: set[str] = set()  # message ids handled in this run
        self.claimed: set[str] = set()  # identities sent (or being sent) to the source queue
        self.left: dict[str, str] = {}  # message id -> receipt handle of what stays in the DLQ
        self.stopped: str | None = None  # a call failed as a whole: the next would fail the same way

    def receive(self) -> list[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            messages: list[dict[str, Any]] = self.sqs.receive_message(
                QueueUrl=self.pair.dlq_url,
                MaxNumberOfMessages=min(BATCH, self.limit - self.moved - self.failed),
                WaitTimeSeconds=1,
                VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
        except (ClientError, BotoCoreError) as error:
            self.stopped = f"ReceiveMessage failed ({_error_code(error)})"
            return []
        return messages

    def sort(self, messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """The messages to move, and how many of ``messages`` were new to this run."""
        to_move: list[dict[str, Any]] = []
        new = 0
        for message in messages:
            message_id = message["MessageId"]
            if message_id in self.seen:
                # Left in the DLQ earlier in this run, back after the replay hold: held again, and the
                # new receipt handle is the one that releases it.
                if message_id in self.left:
                    self.left[message_id] = message["ReceiptHandle"]
                continue
            self.seen.add(message_id)
            new += 1
            identity = message_identity(str(message.get("Body") or ""))
            if identity in self.claimed:
                self.skipped += 1
                self.left[message_id] = message["ReceiptHandle"]
                continue
            self.claimed.add(identity)
            to_move.append(message)
        return to_move, new

    def _fail(self, message: dict[str, Any], why: str) -> None:
        self.failed += 1
        self.failures[why] += 1
        self.left[message["MessageId"]] = message["ReceiptHandle"]

    def move(self, messages: list[dict[str, Any]]) -> None:
        """Send first, delete only what was sent."""
        from botocore.exceptions import BotoCoreError, ClientError

        entries = [_send_entry(message, index, self.fifo) for index, message in enumerate(messages)]
        try:
            result = self.sqs.send_message_batch(QueueUrl=self.pair.source_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            for message in messages:
                self.claimed.discard(message_identity(str(message.get("Body") or "")))
                self._fail(message, f"SendMessageBatch failed ({_error_code(error)})")
            self.stopped = f"SendMessageBatch failed ({_error_code(error)})"
            return
        sent = [messages[int(item["Id"])] for item in result.get("Successful", [])]
        for refused in result.get("Failed", []):
            message = messages[int(refused["Id"])]
            # Not on the source queue: another copy of its event met later in this run may go instead.
            self.claimed.discard(message_identity(str(message.get("Body") or "")))
            self._fail(message, f"SendMessageBatch refused it ({refused.get('Code', 'Unknown')})")
        if not sent:
            return
        # Sent but not deleted: on the source queue and still here, so a later replay sends it again.
        not_deleted = f"sent to {self.pair.source_name} but not deleted from {self.pair.dlq_name}"
        to_delete = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(sent)
        ]
        try:
            deleted = self.sqs.delete_message_batch(QueueUrl=self.pair.dlq_url, Entries=to_delete)
        except (ClientError, BotoCoreError) as error:
            for message in sent:
                self._fail(message, f"{not_deleted} ({_error_code(error)})")
            self.stopped = f"DeleteMessageBatch failed ({_error_code(error)})"
            return
        self.moved += len(deleted.get("Successful", []))
        for refused in deleted.get("Failed", []):
            self._fail(sent[int(refused["Id"])], f"{not_deleted} ({refused.get('Code', 'Unknown')})")

    def release(self) -> int:
        """Make what stays in the DLQ visible again at once; how many could not be."""
        from botocore.exceptions import BotoCoreError, ClientError

        handles = list(self.left.values())
        still_held = 0
        for start in range(0, len(handles), BATCH):
            chunk = handles[start : start + BATCH]
            try:
                result = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.pair.dlq_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                        for index, handle in enumerate(chunk)
                    ],
                )
            except (ClientError, BotoCoreError):
                still_held += len(chunk)
                continue
            still_held += len(result.get("Failed", []))
        return still_held


def replay(
    sqs: Any,
    pair: QueuePair,
    max_messages: int | None = None,
    *,
    depth: QueueDepth | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Move messages from ``pair.dlq_url`` to ``pair.source_url``, each once, at most as many as the
    dead-letter queue held at the start (``depth``, read here when not given) or ``max_messages``.

    The function behind the source queue may dead-letter a replayed message again while the run goes on,
    as a new message with a new message id; SQS can return it before older ones. So a message is known by
    :func:`message_identity`, and one whose identity this run already sent is skipped: left in the
    dead-letter queue. So is the second of two dead letters of one event found in the queue (moving both
    would replay the event twice; deleting one is not this command's call).

    What stays in the dead-letter queue (skipped, failed) keeps the replay hold while the run goes on:
    released at once, the next receive would return it again, and the run could not tell "the queue
    holds nothing new" from "SQS keeps returning what it skipped". At the end it is made visible again
    at once, so the queue looks as the run left it (``ledgerlink local status``, alarms, the next run).

    The run stops when it has moved or failed ``limit`` messages, when a receive returns nothing, or
    when a call fails as a whole (the next would fail the same way: ``ReplayReport.stopped``). A run
    longer than the hold gets back what it left in the queue; it holds those again and goes on, unless
    more of them came back in a row than it left (each came back twice: nothing else is visible, the
    run would only cycle).
    """
    start = depth if depth is not None else queue_depth(sqs, pair.dlq_url)
    limit = start.waiting if max_messages is None else min(start.waiting, max_messages)
    run = _Run(sqs, pair, limit)
    handled_before = 0  # messages in a row this run had handled already
    try:
        while not run.stopped and run.moved + run.failed < limit:
            messages = run.receive()
            if not messages:
                break
            to_move, new = run.sort(messages)
            handled_before = 0 if new else handled_before + len(messages)
            if handled_before > len(run.left):
                break
            if to_move:
                run.move(to_move)
            if progress is not None and run.moved + run.failed < limit:
                progress.update(run.moved, run.skipped, run.failed, limit)
    finally:
        still_held = run.release()
        if progress is not None:
            progress.finish()
    return ReplayReport(
        run.moved, run.skipped, run.failed, limit, dict(run.failures), still_held, run.stopped
    )


def print_dead_letters(sqs: Any, pair: QueuePair, limit: int, out: TextIO) -> None:
    """What ``--dry-run`` prints: each message (left in the queue) with why it is there."""
    from ledgerlink.consumer.deadletter import describe, peek

    messages = peek(sqs, pair.dlq_url, limit)
    waiting = sqs.get_queue_attributes(QueueUrl=pair.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ].get("ApproximateNumberOfMessages", "0")
    shown = f" (showing {len(messages)} of about {waiting})" if int(waiting) > len(messages) else ""
    plural = "s" if len(messages) != 1 else ""
    print(
        f"would move {len(messages)} message{plural} from {pair.dlq_name} to {pair.source_name}{shown}",
        file=out,
    )
    for message in messages:
        view = describe(message)
        where = ", ".join(
            part
            for part in (
                f"receive {view.receive_count}" if view.receive_count else "",
                f"from {view.source_queue}" if view.source_queue else "",
                view.failed_at or "",
                f"correlation id {view.correlation_id}" if view.correlation_id else "",
            )
            if part
        )
        print(
            f"  {view.message_id}  {view.kind}  {view.subject}" + (f"  ({where})" if where else ""), file=out
        )
        print(f"    reason: {view.reason}", file=out)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def print_start(pair: QueuePair, depth: QueueDepth, limit: int, out: TextIO) -> None:
    """What the run found: the dead-letter queue's depth, and how many it moves at most."""
    held = (
        f", {depth.in_flight} in flight (received by another reader and not released: moved only "
        "if they come back during the run)"
        if depth.in_flight
        else ""
    )
    bound = f"moving at most {limit}" if limit else "nothing to move"
    if limit < depth.waiting:
        bound += " (--max-messages)"
    print(f"{pair.dlq_name}: about {_plural(depth.waiting, 'message')} waiting{held}; {bound}", file=out)


def print_report(pair: QueuePair, report: ReplayReport, out: TextIO) -> None:
    print(
        f"replayed {pair.dlq_name} to {pair.source_name}: moved {report.moved}, skipped {report.skipped}, "
        f"failed {report.failed}",
        file=out,
    )
    if report.skipped:
        print(
            f"  skipped {report.skipped}: another copy of an event this run moved (dead-lettered again "
            f"while the run went on, or in the queue twice); left in {pair.dlq_name}",
            file=out,
        )
    for why, count in sorted(report.failures.items()):
        print(f"  failed {count}: {why}; left in {pair.dlq_name}", file=out)
    if report.stopped:
        print(f"  stopped early: {report.stopped}", file=out)
    if report.still_held:
        print(
            f"  {_plural(report.still_held, 'message')} left in {pair.dlq_name} could not be made visible "
            f"again at once; they will be within {REPLAY_VISIBILITY_SECONDS} s, when the replay hold ends",
            file=out,
        )


def run_dlq_replay(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.max_messages is not None and args.max_messages < 1:
            raise ReplayError("--max-messages must be at least 1")
        endpoint = resolve_endpoint(args.endpoint_url, args.region, args.aws, Path(args.state_dir))
        sqs = sqs_client(endpoint)
        print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
        pair = find_pair(sqs, args.queue)
        if args.dry_run:
            print_dead_letters(sqs, pair, args.max_messages or DRY_RUN_LIMIT, out)
            return EXIT_OK
        depth = queue_depth(sqs, pair.dlq_url)
        limit = depth.waiting if args.max_messages is None else min(depth.waiting, args.max_messages)
        print_start(pair, depth, limit, out)
        report = replay(sqs, pair, args.max_messages, depth=depth, progress=Progress(out))
    except EndpointError as error:  # ReplayError included
        print(f"ledgerlink dlq replay: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # the reader of the output has gone: ledgerlink.cli.main ends the command quietly
    except Exception as error:  # noqa: BLE001 - botocore errors: say what failed, never a traceback
        print(f"ledgerlink dlq replay: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print_report(pair, report, out)
    return EXIT_OK if report.failed == 0 and report.stopped is None else EXIT_FAILED
