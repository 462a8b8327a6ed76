"""A queue-fed flow's history: one :class:`~ledgerlink.history.HistoryRow` per record it settles.

:func:`~ledgerlink.consumer.batch.process_batch` calls :meth:`BatchHistory.settled` once a batch is
routed, with each record's parsed event, the flow's :class:`Outcome` and what became of it
(:class:`Routed`); the flow's ``describe`` says what the record is about (:class:`Subject`). All rows
of a batch go in BatchWriteItem calls; a failure to write them is logged and counted, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.config import history_ttl_days_setting
from ledgerlink.consumer.deadletter import Disposition, Routed, receive_count_of
from ledgerlink.consumer.outcome import Counter, NoMetrics, Outcome, OutcomeStatus
from ledgerlink.history import (
    Category,
    Flow,
    HistoryRow,
    HistoryStore,
    RecordOutcome,
    Subject,
    categorize,
    history_time,
    with_subject,
)

logger = Logger(child=True)

_DONE: dict[OutcomeStatus, RecordOutcome] = {
    OutcomeStatus.SYNCED: RecordOutcome.WRITTEN,
    OutcomeStatus.STALE: RecordOutcome.UNCHANGED,
    OutcomeStatus.DUPLICATE: RecordOutcome.UNCHANGED,
    OutcomeStatus.UNCHANGED: RecordOutcome.UNCHANGED,
    OutcomeStatus.IGNORED: RecordOutcome.SKIPPED,
}


class _Event(Protocol):
    @property
    def message_id(self) -> str: ...

    @property
    def event_id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...


E = TypeVar("E", bound=_Event)

Describe = Callable[[E, Outcome], Subject | None]
"""A flow's parsed event and its outcome -> what the record is about (None: nothing to record)."""


@dataclass
class BatchHistory(Generic[E]):
    flow: Flow
    describe: Describe[E]
    store: HistoryStore
    clock: Clock = field(default_factory=SystemClock)
    metrics: Counter = field(default_factory=NoMetrics)

    def rows(
        self,
        records: list[Mapping[str, Any]],
        parsed: Mapping[str, E],
        outcomes: Mapping[str, Outcome],
        routed: Mapping[str, Routed],
    ) -> list[HistoryRow]:
        now = self.clock.now()
        rows = []
        for record in records:
            message_id = str(record.get("messageId") or "")
            event = parsed.get(message_id)
            outcome = outcomes.get(message_id)
            result = routed.get(message_id)
            if event is None or outcome is None or result is None:
                continue  # malformed: it names no connection or record (its dead letter says why)
            try:
                subject = self.describe(event, outcome)
            except Exception:  # a history gap, never a failed record
                logger.exception("history: record not described", extra={"message_id": message_id})
                continue
            if subject is None or not subject.connection or not subject.source_id:
                continue
            rows.append(with_subject(self._row(record, event, outcome, result, now), subject))
        return rows

    def settled(
        self,
        records: list[Mapping[str, Any]],
        parsed: Mapping[str, E],
        outcomes: Mapping[str, Outcome],
        routed: Mapping[str, Routed],
    ) -> None:
        rows = self.rows(records, parsed, outcomes, routed)
        if not rows:
            return
        try:
            self.store.write(rows)
        except Exception as error:  # noqa: BLE001 - history never fails a record
            self.metrics.count("HistoryWriteFailed", len(rows))
            logger.warning("history rows not written", extra={"rows": len(rows), "error": str(error)})

    def _row(
        self, record: Mapping[str, Any], event: E, outcome: Outcome, result: Routed, now: float
    ) -> HistoryRow:
        category = Category.NONE
        next_attempt = handle = queue = None
        if result.disposition is Disposition.DONE:
            status = _DONE.get(outcome.status, RecordOutcome.WRITTEN)
        else:
            status = (
                RecordOutcome.DEAD_LETTERED
                if result.disposition is Disposition.DEAD_LETTERED
                else RecordOutcome.FAILED
            )
            category = categorize(
                outcome.error_type, retryable=outcome.retryable, unexpected=outcome.unexpected
            )
            if result.disposition is Disposition.RETRY:
                handle = str(record.get("receiptHandle") or "") or None
                queue = str(record.get("eventSourceARN") or "") or None
                if result.delay_seconds is not None:
                    next_attempt = history_time(now + result.delay_seconds)
        return HistoryRow(
            connection="",
            flow=self.flow,
            at=history_time(now),
            message_id=event.message_id,
            receive_count=receive_count_of(record),
            outcome=status,
            category=category,
            reason=(result.reason or outcome.reason or "")
            if status is not RecordOutcome.WRITTEN
            else outcome.reason or "",
            correlation_id=event.correlation_id,
            event_id=event.event_id,
            source_entity="",
            source_id="",
            next_attempt_at=next_attempt,
            queue_arn=queue,
            receipt_handle=handle,
            queued_at=_sent_at(record),
        )


def _sent_at(record: Mapping[str, Any]) -> str | None:
    """When SQS received the message (``SentTimestamp``, epoch milliseconds), as a history time."""
    sent = (record.get("attributes") or {}).get("SentTimestamp")
    try:
        return history_time(int(sent) / 1000) if sent else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def batch_history(
    flow: Flow,
    describe: Describe[E],
    *,
    links_table_name: str,
    metrics: Counter | None = None,
    dynamodb: Any = None,
) -> BatchHistory[E]:
    """A flow's history writer on the links table, keeping rows ``LEDGERLINK_HISTORY_TTL_DAYS`` days."""
    store = HistoryStore(links_table_name, dynamodb, ttl_days=history_ttl_days_setting())
    return BatchHistory(flow, describe, store, metrics=metrics or NoMetrics())
