"""SQS event source mappings, emulated: poll a queue, invoke a function with batches, delete what succeeded.

As Lambda's poller does, :class:`QueuePoller`

- gathers up to ``batch_size`` messages, waiting at most ``max_batching_window_seconds`` after the
  first one (with no window it invokes with what one long poll returned, up to 10);
- invokes the function synchronously with ``{"Records": [...]}`` in the SQS event format;
- on success deletes the batch, except, with ``report_batch_item_failures``, the messages listed in
  ``batchItemFailures`` (a response naming an id that is not in the batch, or without
  ``itemIdentifier``, fails the whole batch, as Lambda does);
- on a function error or timeout deletes nothing.

Messages not deleted become visible again after the queue's visibility timeout and are received
again; past the queue's ``maxReceiveCount`` SQS itself (moto here) moves them to the dead-letter
queue. Nothing here changes visibility or moves messages by hand, so what the tests see is SQS's
redrive, not the poller's.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ledgerlink_local.stack.hops import HopLog
    from ledgerlink_local.stack.runtime import InvocationResult

# One ReceiveMessage returns at most 10; a long poll waits at most 20 s. The poller waits at most
# this long per call so that it notices a stop request quickly.
RECEIVE_MAX: Final = 10
POLL_WAIT_SECONDS: Final = 1
# Lambda's invocation payload limit for an SQS batch.
MAX_BATCH_BYTES: Final = 6 * 1024 * 1024


@dataclass(frozen=True)
class PollerConfig:
    function: str
    queue_name: str
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int
    max_batching_window_seconds: float
    report_batch_item_failures: bool
    max_receive_count: int
    poll_wait_seconds: int = POLL_WAIT_SECONDS
    """Long-poll wait of one ReceiveMessage (tests use 0)."""


@dataclass(frozen=True)
class BatchOutcome:
    """What one invocation did to the batch: which message ids were deleted and which were kept."""

    deleted: tuple[str, ...]
    kept: tuple[str, ...]
    whole_batch_failed: bool


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, as Lambda builds it from a received message."""
    attributes = dict(message.get("Attributes") or {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda's spelling of a message attribute: camelCase, binary values in base64."""
    attribute: dict[str, Any] = {}
    if value.get("StringValue") is not None:
        attribute["stringValue"] = value["StringValue"]
    binary = value.get("BinaryValue")
    if binary is not None:
        attribute["binaryValue"] = (
            base64.b64encode(binary).decode("ascii") if isinstance(binary, bytes) else binary
        )
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [
        base64.b64encode(item).decode("ascii") if isinstance(item, bytes) else item
        for item in value.get("BinaryListValues") or []
    ]
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def settle(
    result: InvocationResult, message_ids: list[str], report_batch_item_failures: bool
) -> BatchOutcome:
    """Which messages of the batch to delete after ``result`` (see the module docstring)."""
    if not result.ok:
        return BatchOutcome((), tuple(message_ids), True)
    if not report_batch_item_failures:
        return BatchOutcome(tuple(message_ids), (), False)
    payload = result.payload
    failures = payload.get("batchItemFailures") if isinstance(payload, dict) else None
    if not failures:
        return BatchOutcome(tuple(message_ids), (), False)
    if not isinstance(failures, list):
        return BatchOutcome((), tuple(message_ids), True)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return BatchOutcome((), tuple(message_ids), True)
        failed.add(identifier)
    deleted = tuple(mid for mid in message_ids if mid not in failed)
    return BatchOutcome(deleted, tuple(mid for mid in message_ids if mid in failed), False)


def correlation_id_of(body: str) -> str | None:
    """The envelope's correlation id in an EventBridge event delivered to SQS, if the body is one."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    detail = event.get("detail")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return None
    return (
        str(detail.get("correlation_id"))
        if isinstance(detail, dict) and detail.get("correlation_id")
        else None
    )


def scheduled_event_id(body: str) -> str | None:
    """The id of an EventBridge "Scheduled Event" delivered to SQS (the scheduler's hop names it), if the
    body is one: it carries no LedgerLink correlation id."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if isinstance(event, dict) and event.get("source") == "aws.events" and event.get("id"):
        return str(event["id"])
    return None


Invoke = Callable[[dict[str, Any], str], "InvocationResult"]
"""(event, Lambda request id) -> result."""


class QueuePoller:
    """One poller of one event source mapping, in its own thread."""

    def __init__(
        self,
        config: PollerConfig,
        sqs: Any,
        invoke: Invoke,
        hops: HopLog | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._sqs = sqs
        self._invoke = invoke
        self._hops = hops
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.batches = 0

    def start(self) -> QueuePoller:
        """Start polling (again, after :meth:`stop`: tests pause a poller to look at a queue)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"the poller of {self.config.queue_name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{self.config.queue_name}", daemon=True
        )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the thread to stop after its current receive (see :meth:`stop`)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # noqa: BLE001 - a poller outlives a failed call, like Lambda's
                if self._hops is not None and not self._stop.is_set():
                    self._hops.note(f"poller {self.config.queue_name}: {type(error).__name__}: {error}")
                self._stop.wait(1.0)

    def gather(self) -> list[dict[str, Any]]:
        """One batch: up to ``batch_size`` messages, within the batching window after the first."""
        config = self.config
        messages: list[dict[str, Any]] = []
        size = 0
        window_ends: float | None = None
        while not self._stop.is_set() and len(messages) < config.batch_size:
            if window_ends is not None:
                remaining = window_ends - self._monotonic()
                if remaining <= 0:
                    break
                wait = min(config.poll_wait_seconds, max(0, int(remaining + 0.999)))
            else:
                wait = config.poll_wait_seconds
            received = self._sqs.receive_message(
                QueueUrl=config.queue_url,
                MaxNumberOfMessages=min(RECEIVE_MAX, config.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            for message in received:
                size += len(message.get("Body", "").encode("utf-8"))
                messages.append(message)
            if not messages:
                break  # an empty poll: the caller polls again (and can notice a stop meanwhile)
            if window_ends is None:
                if config.max_batching_window_seconds <= 0:
                    break  # no window: invoke with what this poll returned
                window_ends = self._monotonic() + config.max_batching_window_seconds
            if size >= MAX_BATCH_BYTES:
                break
        return messages

    def poll_once(self) -> BatchOutcome | None:
        messages = self.gather()
        if not messages or self._stop.is_set():
            return None  # on the way down: what was received returns to the queue after its timeout
        return self.process(messages)

    def process(self, messages: list[dict[str, Any]]) -> BatchOutcome:
        config = self.config
        records = [sqs_record(message, config.queue_arn, config.region) for message in messages]
        ids = [record["messageId"] for record in records]
        # A record's label on hop lines: its event's correlation id, a scheduled event's id (what the
        # schedule hop that sent it is labelled with), else its message id.
        labels = {
            record["messageId"]: correlation_id_of(record["body"])
            or scheduled_event_id(record["body"])
            or record["messageId"]
            for record in records
        }
        if self._hops is not None:
            for record in records:
                count = record["attributes"].get("ApproximateReceiveCount", "1")
                self._hops.record(
                    "queue",
                    f"{config.queue_name} -> {config.function} (receive {count}/{config.max_receive_count})",
                    labels[record["messageId"]],
                    message_id=record["messageId"],
                    queue=config.queue_name,
                    function=config.function,
                )
        request_id = str(uuid.uuid4())
        if self._hops is not None:
            self._hops.begin_invocation(request_id, [labels[mid] for mid in ids])
        result = self._invoke({"Records": records}, request_id)
        self.batches += 1
        outcome = settle(result, ids, config.report_batch_item_failures)
        self._delete([record for record in records if record["messageId"] in outcome.deleted])
        if self._hops is not None:
            per_record = [
                (
                    labels[mid],
                    "failed" if outcome.whole_batch_failed else "retry" if mid in outcome.kept else "ok",
                )
                for mid in ids
            ]
            exhausted = [
                labels[record["messageId"]]
                for record in records
                if record["messageId"] in outcome.kept
                and int(record["attributes"].get("ApproximateReceiveCount", "1")) >= config.max_receive_count
            ]
            self._hops.invocation(config.function, result, per_record, dead_lettered=exhausted)
            self._hops.end_invocation(request_id)
        return outcome

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), RECEIVE_MAX):
            chunk = records[start : start + RECEIVE_MAX]
            self._sqs.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                    for index, record in enumerate(chunk)
                ],
            )
