"""What a settled record's history row says (ledgerlink.consumer.history): the outcome each disposition
and status becomes, the category of a failure, when a retry runs again; and that history never fails
a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ledgerlink.clock import ManualClock
from ledgerlink.consumer.deadletter import Disposition, Routed
from ledgerlink.consumer.history import BatchHistory
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.history import Category, Flow, HistoryRow, HistoryStore, RecordOutcome, Subject

NOW = 1_796_193_001.5  # 2026-12-02T06:30:01.500Z
ARN = "arn:aws:sqs:us-east-1:123456789012:ledgerlink-dev-calendar-sync"


@dataclass(frozen=True)
class Event:
    message_id: str
    event_id: str
    correlation_id: str


class RecordingStore(HistoryStore):
    def __init__(self, fail: bool = False) -> None:
        super().__init__("links")  # never called: write is replaced
        self.rows: list[HistoryRow] = []
        self.fail = fail

    def write(self, rows: Any) -> None:
        if self.fail:
            raise RuntimeError("table down")
        self.rows.extend(rows)


class Counts:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def _subject(event: Event, outcome: Outcome) -> Subject:
    return Subject(
        connection="demo",
        source_entity="Invoice",
        source_id=event.message_id.upper(),
        source_number="1006",
        deal_id="91013",
        outlook_event_id=outcome.detail.get("calendar_event_id"),
    )


def _record(message_id: str, receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "eventSourceARN": ARN,
        "attributes": {"ApproximateReceiveCount": str(receives)},
    }


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_each_settled_record_becomes_its_row() -> None:
    store, clock = RecordingStore(), ManualClock(NOW)
    history = BatchHistory(Flow.CALENDAR_SYNC, _subject, store, clock=clock)
    events = {m: Event(m, f"e-{m}", f"c-{m}") for m in ("a", "b", "c", "d")}
    outcomes = {
        "a": Outcome(OutcomeStatus.SYNCED, detail={"calendar_event_id": "AAMk1"}),
        "b": Outcome(OutcomeStatus.STALE),
        "c": Outcome(OutcomeStatus.FAILED, reason="429 from Graph", retryable=True, error_type="RateLimited"),
        "d": Outcome(OutcomeStatus.FAILED, reason="no such mailbox", error_type="MailboxNotFound"),
    }
    routed = {
        "a": Routed(Disposition.DONE),
        "b": Routed(Disposition.DONE),
        "c": Routed(Disposition.RETRY, "429 from Graph", delay_seconds=30),
        "d": Routed(Disposition.DEAD_LETTERED, "no such mailbox"),
    }
    history.settled(
        [_record("a"), _record("b"), _record("c", receives=3), _record("d")], events, outcomes, routed
    )

    rows = {row.message_id: row for row in store.rows}
    assert rows["a"].outcome is RecordOutcome.WRITTEN and rows["a"].outlook_event_id == "AAMk1"
    assert rows["a"].at == "2026-12-02T06:30:01.500Z" and rows["a"].correlation_id == "c-a"
    assert (rows["a"].connection, rows["a"].source, rows["a"].deal_id) == ("demo", "Invoice 1006", "91013")
    assert rows["b"].outcome is RecordOutcome.UNCHANGED and rows["b"].category is Category.NONE
    # a retry given back to SQS: when it runs again, and the receive to make due now
    waiting = rows["c"]
    assert (waiting.outcome, waiting.category, waiting.receive_count) == (
        RecordOutcome.FAILED,
        Category.RATE_LIMITED,
        3,
    )
    assert waiting.next_attempt_at == "2026-12-02T06:30:31.500Z"
    assert (waiting.receipt_handle, waiting.queue_arn) == ("rh-c", ARN)
    assert "receipt_handle" not in waiting.to_json()
    dead = rows["d"]
    assert (dead.outcome, dead.category, dead.reason) == (
        RecordOutcome.DEAD_LETTERED,
        Category.NOT_FOUND,
        "no such mailbox",
    )
    assert dead.next_attempt_at is None and dead.receipt_handle is None


def test_history_that_cannot_be_written_is_counted_and_fails_no_record() -> None:
    counts = Counts()
    history = BatchHistory(Flow.FOLLOWUPS, _subject, RecordingStore(fail=True), metrics=counts)
    history.settled(
        [_record("a")],
        {"a": Event("a", "e", "c")},
        {"a": Outcome(OutcomeStatus.SYNCED)},
        {"a": Routed(Disposition.DONE)},
    )
    assert counts.counts == {"HistoryWriteFailed": 1}


def test_a_record_its_flow_cannot_describe_is_left_out() -> None:
    def broken(event: Event, outcome: Outcome) -> Subject:
        raise KeyError("deal_id")

    store = RecordingStore()
    BatchHistory(Flow.DEAL_SYNC, broken, store).settled(
        [_record("a")],
        {"a": Event("a", "e", "c")},
        {"a": Outcome(OutcomeStatus.SYNCED)},
        {"a": Routed(Disposition.DONE)},
    )
    assert store.rows == []


def test_a_row_says_when_its_message_was_queued_so_its_latency_can_be_plotted() -> None:
    # given a record SQS received 2.25 s before it settled (SentTimestamp, epoch milliseconds)
    store = RecordingStore()
    record = {
        **_record("a"),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796192999250"},
    }
    BatchHistory(Flow.DEAL_SYNC, _subject, store, clock=ManualClock(NOW)).settled(
        [record, _record("b")],
        {m: Event(m, "e", "c") for m in ("a", "b")},
        {m: Outcome(OutcomeStatus.SYNCED) for m in ("a", "b")},
        {m: Routed(Disposition.DONE) for m in ("a", "b")},
    )
    rows = {row.message_id: row for row in store.rows}
    assert rows["a"].queued_at == "2026-12-02T06:29:59.250Z" and rows["a"].at == "2026-12-02T06:30:01.500Z"
    # and a record without one (a test's, an old poller's) just has none
    assert rows["b"].queued_at is None
