"""One SQS batch of a queue-fed flow: parse every record, sync them together, settle each one.

:func:`process_batch` is what a consumer Lambda's handler calls, with its flow's record parser (SQS record
→ the flow's event, or :class:`MalformedRecord`) and its sync (the parsed events → an
:class:`~ledgerlink.consumer.outcome.Outcome` per SQS message id). A record ends
:class:`~ledgerlink.consumer.deadletter.Disposition` ``DONE`` (synced, stale, duplicate, ...), ``RETRY``
(a retryable failure with receives left: the handler reports it in ``batchItemFailures``) or
``DEAD_LETTERED`` (sent to the dead-letter queue with its reason by
:class:`~ledgerlink.consumer.deadletter.DeadLetterRouter`; SQS deletes it from the queue). A malformed
record can never succeed: it is dead-lettered with the field at fault as its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger

from ledgerlink.consumer.deadletter import DeadLetterRouter, RecordFailure, Routed
from ledgerlink.consumer.history import BatchHistory
from ledgerlink.consumer.outcome import Outcome

logger = Logger(child=True)


class MalformedRecord(ValueError):
    """The SQS message is not an event the flow consumes; retrying cannot help."""

    retryable = False
    reason = "malformed_event"


class ConsumedEvent(Protocol):
    """What the batch needs of a flow's parsed event: the message it came in and the ids it carries."""

    @property
    def message_id(self) -> str: ...

    @property
    def event_id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...


E = TypeVar("E", bound=ConsumedEvent)

Parse = Callable[[Mapping[str, Any]], E]
"""One SQS record (Lambda's SQS event shape) -> the flow's event, or :class:`MalformedRecord`."""

Sync = Callable[[list[E]], Mapping[str, Outcome]]
"""The events of a batch -> an :class:`Outcome` per SQS message id (e.g. ``DealSyncService.sync``)."""


def process_batch(
    records: Sequence[Mapping[str, Any]],
    *,
    parse: Parse[E],
    sync: Sync[E],
    router: DeadLetterRouter,
    history: BatchHistory[E] | None = None,
) -> dict[str, Routed]:
    """A :class:`Routed` per message id of ``records`` (see the module docstring); counts go to the
    router's metrics sink. With ``history``, each settled record gets its history row
    (:mod:`ledgerlink.consumer.history`)."""
    metrics = router.metrics
    parsed: dict[str, E] = {}
    failures: dict[str, RecordFailure] = {}
    for record in records:
        try:
            change = parse(record)
        except MalformedRecord as error:
            message_id = str(record.get("messageId") or "")
            # Failed for good, like an event the sync cannot map (the operator alarm counts both).
            for name in ("MalformedEvents", "EventsFailed", "EventsFailedPermanently"):
                metrics.count(name)
            logger.error("malformed event", extra={"message_id": message_id, "reason": str(error)})
            failures[message_id] = RecordFailure(
                reason=str(error), retryable=False, error_type=type(error).__name__
            )
            continue
        parsed[change.message_id] = change
    outcomes: dict[str, Outcome] = {}
    if parsed:
        outcomes = dict(sync(list(parsed.values())))
        for message_id, outcome in outcomes.items():
            if outcome.ok:
                continue
            change = parsed[message_id]
            failures[message_id] = RecordFailure(
                reason=outcome.reason or "sync failed",
                retryable=outcome.retryable,
                error_type=outcome.error_type or "",
                event_id=change.event_id,
                correlation_id=change.correlation_id,
                unexpected=outcome.unexpected,
                retry_after=outcome.retry_after,
            )
    routed = router.route(records, failures)
    if history is not None:
        history.settled(list(records), parsed, outcomes, routed)
    return routed
