"""Dead letters that say why: a record that cannot succeed goes to the dead-letter queue from the Lambda
itself, carrying its reason.

SQS's redrive policy moves a message to the dead-letter queue after ``maxReceiveCount`` receives, but the
message it moves says nothing about why, and a record that can never succeed first fails
``maxReceiveCount`` times, one visibility timeout apart (about an hour for the deal sync). So the
function decides per failed record (:func:`failure_kind`):

- a permanent failure (not retryable: a malformed event, a mapping error, a currency the portal lacks,
  a revoked QBO connection, ...) is dead-lettered at once, kind ``permanent``;
- a retryable failure on the queue's last allowed receive (``ApproximateReceiveCount >=
  maxReceiveCount``) is dead-lettered, kind ``exhausted``;
- any other retryable failure is reported in ``batchItemFailures``, and SQS delivers it again.

:class:`DeadLetterRouter` sends the dead letters with ``SendMessageBatch``: each message's body and
message attributes as received (and its X-Ray trace header), plus :data:`FAILURE_ATTRIBUTES`
(reason, kind, source queue, receive count, time). A record it sent is reported as handled, so SQS
deletes it from its queue; a record it could not send is reported failed, so nothing is ever lost. The
queue's redrive policy stays as the backstop for what reports nothing (a crash, a timeout) and for a
send that keeps failing.

Operators read the reasons with :func:`peek` (messages stay in the queue) and :func:`describe`
(``ledgerlink dlq replay --dry-run``, ``ledgerlink local status``); ``ledgerlink dlq replay`` drops
every ``ledgerlink.*`` attribute (:func:`without_failure_attributes`) so a replayed message starts clean.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.consumer.redelivery import Delayed, Redelivery, RedeliverySchedule, Uniform

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

logger = Logger(child=True)

ATTRIBUTE_PREFIX: Final = "ledgerlink."
REASON_ATTRIBUTE: Final = "ledgerlink.failure_reason"
KIND_ATTRIBUTE: Final = "ledgerlink.failure_kind"
SOURCE_QUEUE_ATTRIBUTE: Final = "ledgerlink.source_queue"
RECEIVE_COUNT_ATTRIBUTE: Final = "ledgerlink.receive_count"
FAILED_AT_ATTRIBUTE: Final = "ledgerlink.failed_at"
FAILURE_ATTRIBUTES: Final = (
    REASON_ATTRIBUTE,
    KIND_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    FAILED_AT_ATTRIBUTE,
)
# SQS limits: 10 message attributes per message, 10 entries per batch call. A batch call's payload is
# kept under 256 KiB, the limit SQS enforced for years (it now accepts 1 MiB).
SQS_MAX_MESSAGE_ATTRIBUTES: Final = 10
SQS_BATCH_MAX: Final = 10
SQS_BATCH_MAX_BYTES: Final = 256 * 1024
# A reason is for a human reading a queue; the rest is in the logs.
MAX_REASON_CHARS: Final = 1000
# How long peek holds the messages it reads before making them visible again (it releases them at once
# when done; this only bounds what a crashed peek leaves hidden).
PEEK_HOLD_SECONDS: Final = 30
# EventBridge's attributes on an event it could not deliver to its target (its own DLQ feature).
EVENTBRIDGE_ERROR_CODE: Final = "ERROR_CODE"
EVENTBRIDGE_ERROR_MESSAGE: Final = "ERROR_MESSAGE"


class FailureKind(StrEnum):
    PERMANENT = "permanent"  # retrying cannot help
    EXHAUSTED = "exhausted"  # retryable, but this was the queue's last allowed receive
    UNEXPECTED = "unexpected"  # an exception nobody classified: a bug, dead-lettered at once (failures.py)


class Disposition(StrEnum):
    DONE = "done"  # processed (or nothing to do): SQS deletes it
    RETRY = "retry"  # reported in batchItemFailures: SQS delivers it again (or redrives it)
    DEAD_LETTERED = "dead_lettered"  # in the dead-letter queue with its reason: SQS deletes it here


def failure_kind(
    *, retryable: bool, receive_count: int, max_receive_count: int | None, unexpected: bool = False
) -> FailureKind | None:
    """Whether a failed record goes to the dead-letter queue now, and why; None: let SQS retry it.

    SQS delivers a message at most ``maxReceiveCount`` times: the receive with that count is the last,
    so a retryable failure there would be redriven anyway, without its reason.
    """
    if unexpected:
        return FailureKind.UNEXPECTED
    if not retryable:
        return FailureKind.PERMANENT
    if max_receive_count is not None and receive_count >= max_receive_count:
        return FailureKind.EXHAUSTED
    return None


# key=value, key: value and "key": "value" where the key names a credential; Basic/Bearer credentials.
_CREDENTIAL_PAIR: Final = re.compile(
    r"(?i)([\w.-]*(?:token|secret|password|passwd|authorization|signature|api[_-]?key|credential)[\w.-]*)"
    r"([\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]+)"
)
_AUTH_SCHEME: Final = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def _sqs_text_char(char: str) -> bool:
    """Characters SQS accepts in message attribute values (#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD ...)."""
    code = ord(char)
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


def safe_reason(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A reason fit for a message attribute: credentials masked (reasons are built without secrets;
    this guards against an unexpected error's text), one line, characters SQS accepts, at most
    ``limit`` characters."""
    masked = _AUTH_SCHEME.sub(lambda match: f"{match.group(1)} [redacted]", text)
    masked = _CREDENTIAL_PAIR.sub(lambda match: f"{match.group(1)}{match.group(2)}[redacted]", masked)
    line = "".join(char if _sqs_text_char(char) else "?" for char in " ".join(masked.split()))
    if not line:
        return "no reason given"
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class RecordFailure:
    """Why one SQS record failed; the reason never carries a secret."""

    reason: str
    retryable: bool
    error_type: str = ""
    event_id: str | None = None
    correlation_id: str | None = None
    unexpected: bool = False
    """Nobody classified the exception (a bug): dead-lettered at once as ``unexpected``."""
    retry_after: float | None = None
    """At least this many seconds before a retry can help (Retry-After, the breaker's probe)."""


@dataclass(frozen=True)
class DeadLetter:
    """One record on its way to the dead-letter queue: the ``SendMessageBatch`` entry (no ``Id``)."""

    message_id: str
    entry: Mapping[str, Any]
    failure: RecordFailure
    kind: FailureKind
    source_queue: str
    receive_count: int
    reason: str
    dropped_attributes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Bytes this entry adds to a batch call (body plus attribute names, types and values)."""
        total = len(str(self.entry.get("MessageBody", "")).encode("utf-8"))
        for name, value in (self.entry.get("MessageAttributes") or {}).items():
            payload = value.get("StringValue") if "StringValue" in value else value.get("BinaryValue", b"")
            raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
            total += len(name.encode("utf-8")) + len(str(value.get("DataType", ""))) + len(raw)
        return total


def receive_count_of(record: Mapping[str, Any]) -> int:
    """``ApproximateReceiveCount`` of a Lambda SQS record (1 when absent or unreadable)."""
    try:
        return max(1, int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1")))
    except (TypeError, ValueError):
        return 1


def source_queue_of(record: Mapping[str, Any]) -> str:
    """The name of the queue a Lambda SQS record came from (the last part of ``eventSourceARN``)."""
    return str(record.get("eventSourceARN") or "").rsplit(":", 1)[-1]


def _attribute(value: Mapping[str, Any]) -> dict[str, Any] | None:
    """A message attribute as SendMessage takes it, from Lambda's spelling (or SQS's own)."""
    data_type = value.get("dataType") or value.get("DataType")
    if not data_type:
        return None
    string = value.get("stringValue", value.get("StringValue"))
    binary = value.get("binaryValue", value.get("BinaryValue"))
    if string is not None:
        return {"DataType": str(data_type), "StringValue": str(string)}
    if binary is not None:
        # Lambda delivers binary values base64-encoded; boto3 hands bytes back as they are.
        decoded = base64.b64decode(binary) if isinstance(binary, str) else bytes(binary)
        return {"DataType": str(data_type), "BinaryValue": decoded}
    return None


def dead_letter(
    record: Mapping[str, Any], failure: RecordFailure, kind: FailureKind, failed_at: datetime
) -> DeadLetter:
    """The dead letter of one Lambda SQS record: its body, its attributes, its reason."""
    source_queue = source_queue_of(record)
    receive_count = receive_count_of(record)
    reason = safe_reason(failure.reason)
    failure_values = {
        REASON_ATTRIBUTE: reason,
        KIND_ATTRIBUTE: kind.value,
        SOURCE_QUEUE_ATTRIBUTE: source_queue or "unknown",
        RECEIVE_COUNT_ATTRIBUTE: str(receive_count),
        FAILED_AT_ATTRIBUTE: failed_at.astimezone(UTC).isoformat(timespec="milliseconds"),
    }
    attributes: dict[str, Any] = {
        name: {"DataType": "Number" if name == RECEIVE_COUNT_ATTRIBUTE else "String", "StringValue": value}
        for name, value in failure_values.items()
    }
    # The record's own attributes (an earlier failure's ledgerlink.* ones are replaced), as many as
    # SQS's 10 allow beside the failure's; the deal-sync queue's messages (EventBridge) carry none.
    originals = {
        name: converted
        for name, value in sorted((record.get("messageAttributes") or {}).items())
        if not name.startswith(ATTRIBUTE_PREFIX) and (converted := _attribute(value)) is not None
    }
    room = SQS_MAX_MESSAGE_ATTRIBUTES - len(attributes)
    kept = dict(list(originals.items())[:room])
    dropped = tuple(name for name in originals if name not in kept)
    entry: dict[str, Any] = {
        "MessageBody": record.get("body") or "",
        "MessageAttributes": {**kept, **attributes},
    }
    trace_header = (record.get("attributes") or {}).get("AWSTraceHeader")
    if trace_header:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": str(trace_header)}
        }
    return DeadLetter(
        message_id=str(record.get("messageId") or ""),
        entry=entry,
        failure=failure,
        kind=kind,
        source_queue=source_queue,
        receive_count=receive_count,
        reason=reason,
        dropped_attributes=dropped,
    )


@dataclass(frozen=True)
class SendResult:
    sent: frozenset[str]
    errors: Mapping[str, str]
    """Message id -> why it was not sent (an SQS error code, never message content)."""


class DeadLetterQueue(Protocol):
    name: str

    def send(self, letters: Sequence[DeadLetter]) -> SendResult: ...


class SqsDeadLetterQueue:
    """Sends dead letters to one SQS queue by name (its URL is looked up once per process)."""

    def __init__(self, name: str, client: SQSClient) -> None:
        if not name:
            raise ValueError("a dead-letter queue name is required")
        self.name = name
        self._client = client
        self._url: str | None = None

    def url(self) -> str:
        if self._url is None:
            self._url = self._client.get_queue_url(QueueName=self.name)["QueueUrl"]
        return self._url

    def send(self, letters: Sequence[DeadLetter]) -> SendResult:
        sent: set[str] = set()
        errors: dict[str, str] = {}
        for chunk in _chunks(letters):
            entries = [{"Id": str(index), **letter.entry} for index, letter in enumerate(chunk)]
            try:
                response = self._client.send_message_batch(QueueUrl=self.url(), Entries=entries)  # type: ignore[arg-type]
            except (ClientError, BotoCoreError) as error:
                code = (
                    error.response.get("Error", {}).get("Code", "Unknown")
                    if isinstance(error, ClientError)
                    else type(error).__name__
                )
                errors.update({letter.message_id: f"SendMessageBatch failed ({code})" for letter in chunk})
                continue
            for item in response.get("Successful", []):
                sent.add(chunk[int(item["Id"])].message_id)
            for refused in response.get("Failed", []):
                errors[chunk[int(refused["Id"])].message_id] = (
                    f"SendMessageBatch refused it ({refused.get('Code')})"
                )
        return SendResult(frozenset(sent), errors)


def _chunks(letters: Sequence[DeadLetter]) -> Iterator[list[DeadLetter]]:
    """Batches of at most 10 entries and :data:`SQS_BATCH_MAX_BYTES` (a bigger letter goes alone)."""
    chunk: list[DeadLetter] = []
    size = 0
    for letter in letters:
        if chunk and (len(chunk) == SQS_BATCH_MAX or size + letter.size > SQS_BATCH_MAX_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(letter)
        size += letter.size
    if chunk:
        yield chunk


class Counter(Protocol):
    def count(self, name: str, value: int = 1) -> None: ...


@dataclass(frozen=True)
class Routed:
    disposition: Disposition
    reason: str | None = None
    delay_seconds: int | None = None
    """RETRY: when SQS delivers it again (its visibility was changed), if it could be changed."""


class DeadLetterRouter:
    """Decides what becomes of each failed record of a batch and sends the dead letters (module docstring).

    Without a queue (no ``LEDGERLINK_DEAD_LETTER_QUEUE_NAME``) every failure is left to SQS's redrive.
    A record given back to SQS gets its own delay (:mod:`ledgerlink.consumer.redelivery`) when the router has a
    ``redelivery``; without one it returns after the queue's visibility timeout.
    Metrics: ``EventsDeadLettered`` per record sent, ``EventsRetriesExhausted`` for the ``exhausted``
    ones, ``DeadLetterSendFailed`` per record that could not be sent (then retried),
    ``RetriesScheduled`` per record given back with its own delay.
    """

    def __init__(
        self,
        queue: DeadLetterQueue | None,
        *,
        max_receive_count: int | None,
        metrics: Counter,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        redelivery: Redelivery | None = None,
        schedule: RedeliverySchedule | None = None,
        rng: Uniform | None = None,
    ) -> None:
        if max_receive_count is not None and max_receive_count < 1:
            raise ValueError(f"max receive count must be at least 1, got {max_receive_count}")
        self.queue = queue
        self.max_receive_count = max_receive_count
        self.metrics = metrics
        self._now = now
        self.redelivery = redelivery
        self.schedule = schedule or RedeliverySchedule()
        self._rng = rng

    def route(
        self, records: Sequence[Mapping[str, Any]], failures: Mapping[str, RecordFailure]
    ) -> dict[str, Routed]:
        """A :class:`Routed` per message id of ``records``; ``failures`` names the failed ones."""
        routed: dict[str, Routed] = {}
        letters: list[DeadLetter] = []
        failed_at = self._now()
        for record in records:
            message_id = str(record.get("messageId") or "")
            failure = failures.get(message_id)
            if failure is None:
                routed[message_id] = Routed(Disposition.DONE)
                continue
            kind = failure_kind(
                retryable=failure.retryable,
                receive_count=receive_count_of(record),
                max_receive_count=self.max_receive_count,
                unexpected=failure.unexpected,
            )
            if kind is None or self.queue is None:
                routed[message_id] = Routed(Disposition.RETRY, failure.reason)
            else:
                letters.append(dead_letter(record, failure, kind, failed_at))
        if letters and self.queue is not None:
            self._send(letters, routed)
        self._delay_retries(records, failures, routed)
        return routed

    def _delay_retries(
        self,
        records: Sequence[Mapping[str, Any]],
        failures: Mapping[str, RecordFailure],
        routed: dict[str, Routed],
    ) -> None:
        """Give each record to retry its own visibility (module ledgerlink.consumer.redelivery)."""
        if self.redelivery is None:
            return
        delayed: list[Delayed] = []
        receives: dict[str, int] = {}
        for record in records:
            message_id = str(record.get("messageId") or "")
            result = routed.get(message_id)
            handle = record.get("receiptHandle")
            if result is None or result.disposition is not Disposition.RETRY or not handle:
                continue
            failure = failures.get(message_id)
            receives[message_id] = receive_count_of(record)
            seconds = self.schedule.delay(
                receives[message_id],
                at_least=failure.retry_after if failure is not None else None,
                rng=self._rng,
            )
            delayed.append(Delayed(message_id, str(record.get("eventSourceARN") or ""), str(handle), seconds))
        if not delayed:
            return
        errors = self.redelivery.delay(delayed)
        for item in delayed:
            if item.message_id in errors:
                # Harmless: the record returns after the queue's visibility timeout instead.
                logger.warning(
                    "retry delay not set; the record returns after the queue's visibility timeout",
                    extra={"message_id": item.message_id, "error": errors[item.message_id]},
                )
                continue
            routed[item.message_id] = dataclasses.replace(routed[item.message_id], delay_seconds=item.seconds)
            self.metrics.count("RetriesScheduled")
            logger.info(
                "retry scheduled",
                extra={
                    "message_id": item.message_id,
                    "delay_seconds": item.seconds,
                    "receive_count": receives[item.message_id],
                },
            )

    def _send(self, letters: list[DeadLetter], routed: dict[str, Routed]) -> None:
        assert self.queue is not None
        result = self.queue.send(letters)
        for letter in letters:
            fields = {
                "message_id": letter.message_id,
                "event_id": letter.failure.event_id,
                "correlation_id": letter.failure.correlation_id,
                "reason": letter.reason,
                "kind": letter.kind.value,
                "error_type": letter.failure.error_type,
                "receive_count": letter.receive_count,
                "source_queue": letter.source_queue,
                "dead_letter_queue": self.queue.name,
            }
            if letter.message_id in result.sent:
                routed[letter.message_id] = Routed(Disposition.DEAD_LETTERED, letter.reason)
                self.metrics.count("EventsDeadLettered")
                if letter.kind is FailureKind.EXHAUSTED:
                    self.metrics.count("EventsRetriesExhausted")
                if letter.kind is FailureKind.UNEXPECTED:
                    self.metrics.count("UnexpectedErrorsDeadLettered")
                logger.error("event dead-lettered", extra=fields)
                if letter.dropped_attributes:
                    logger.warning(
                        "message attributes left out of the dead letter (SQS allows 10)",
                        extra={"message_id": letter.message_id, "dropped": list(letter.dropped_attributes)},
                    )
            else:
                error = result.errors.get(letter.message_id, "not sent")
                routed[letter.message_id] = Routed(
                    Disposition.RETRY, f"{letter.reason} (not dead-lettered: {error})"
                )
                self.metrics.count("DeadLetterSendFailed")
                logger.error(
                    "event could not be dead-lettered; SQS delivers it again",
                    extra={**fields, "send_error": error},
                )


# ---- reading dead letters (operators: ledgerlink dlq replay --dry-run, ledgerlink local status)


def without_failure_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The message attributes of a dead letter minus LedgerLink's own (``ledgerlink.*``)."""
    return {name: value for name, value in attributes.items() if not name.startswith(ATTRIBUTE_PREFIX)}


@dataclass(frozen=True)
class DeadLetterView:
    """What an operator needs to know about one message in a dead-letter queue."""

    message_id: str
    kind: str  # permanent | exhausted | unexpected | eventbridge (undeliverable event) | redrive (no reason attached)
    reason: str
    source_queue: str | None
    receive_count: int | None
    failed_at: str | None
    event_id: str | None
    correlation_id: str | None
    subject: str  # e.g. "Invoice/145 Update", or "?" when the body is not a LedgerLink event


def _string(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name) or {}
    text = value.get("StringValue", value.get("stringValue"))
    return str(text) if text is not None else None


def describe(message: Mapping[str, Any]) -> DeadLetterView:
    """A message as ``ReceiveMessage`` returns it (``MessageAttributeNames=["All"]``), explained."""
    attributes = message.get("MessageAttributes") or {}
    body = _event_fields(str(message.get("Body") or ""))
    kind = _string(attributes, KIND_ATTRIBUTE)
    reason = _string(attributes, REASON_ATTRIBUTE)
    if kind is None and _string(attributes, EVENTBRIDGE_ERROR_CODE) is not None:
        kind = "eventbridge"
        reason = (
            f"EventBridge could not deliver the event to the queue: {_string(attributes, EVENTBRIDGE_ERROR_CODE)}"
            f" {_string(attributes, EVENTBRIDGE_ERROR_MESSAGE) or ''}".rstrip()
        )
    if kind is None:
        kind = "redrive"
        reason = (
            "no reason attached: the queue's redrive policy moved it after maxReceiveCount receives "
            "(the function crashed, timed out or could not send it itself); see the function's logs"
        )
    count = _string(attributes, RECEIVE_COUNT_ATTRIBUTE)
    return DeadLetterView(
        message_id=str(message.get("MessageId") or ""),
        kind=kind,
        reason=reason or "no reason given",
        source_queue=_string(attributes, SOURCE_QUEUE_ATTRIBUTE),
        receive_count=int(count) if count and count.isdigit() else None,
        failed_at=_string(attributes, FAILED_AT_ATTRIBUTE),
        event_id=body.get("event_id"),
        correlation_id=body.get("correlation_id"),
        subject=body.get("subject") or "?",
    )


def _event_fields(body: str) -> dict[str, str]:
    """event id, correlation id and "Entity/Id Operation" of an EventBridge event body, when it is one."""
    try:
        event = json.loads(body)
    except ValueError:
        return {}
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return {}
    fields = {name: str(detail[name]) for name in ("event_id", "correlation_id") if detail.get(name)}
    payload = detail.get("payload")
    if isinstance(payload, dict) and payload.get("entity"):
        operation = f" {payload['operation']}" if payload.get("operation") else ""
        fields["subject"] = f"{payload['entity']}/{payload.get('entity_id', '?')}{operation}"
    elif event.get("detail-type"):
        fields["subject"] = str(event["detail-type"])
    return fields


def peek(sqs: Any, queue_url: str, limit: int = 100) -> list[dict[str, Any]]:
    """Up to ``limit`` messages of a queue, left in it: each received message is made visible again at
    once (``ChangeMessageVisibility`` 0). Reading counts as a receive (a dead-letter queue has no
    redrive, so that changes nothing)."""
    if limit < 1:
        return []
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    try:
        while len(found) < limit:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(SQS_BATCH_MAX, limit - len(found)),
                VisibilityTimeout=PEEK_HOLD_SECONDS,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            handles.extend(message["ReceiptHandle"] for message in messages)
            fresh = [message for message in messages if message["MessageId"] not in found]
            if not fresh:
                break
            found.update((message["MessageId"], message) for message in fresh)
    finally:
        for start in range(0, len(handles), SQS_BATCH_MAX):
            sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(handles[start : start + SQS_BATCH_MAX])
                ],
            )
    return list(found.values())
