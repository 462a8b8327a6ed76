"""``ledgerlink status`` / ``trace`` rendering and ``ledgerlink retry``'s choices, from history rows:
``--wide`` never truncates, failures are grouped by category with their fix, a waiting retry shows
when it runs again, and a handle whose receive is over is reported, not retried."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ledgerlink.cli import main
from ledgerlink.cli.retry import latest_attempts, make_due
from ledgerlink.cli.status import NARROW_MAX_WIDTH, failures_by_category, render_records
from ledgerlink.history import Category, Flow, HistoryRow, RecordOutcome, categorize, partitions
from tests.unit.history_rows import history_row

LONG_REASON = "QBO refused the invoice: " + "the customer's billing address is incomplete; " * 6 + "(end)"


def _row(**changes: Any) -> HistoryRow:
    """A row whose deal is known (deal 91013, stage Open), at a time with milliseconds."""
    return history_row(
        **{"at": "2026-12-02T06:30:01.123Z", "deal_id": "91013", "deal_stage": "Open", **changes}
    )


def test_wide_never_truncates_a_reason_and_the_default_does() -> None:
    # given a failed record with a reason far longer than a column
    row = _row(outcome=RecordOutcome.FAILED, category=Category.VALIDATION, reason=LONG_REASON)
    assert len(LONG_REASON) > NARROW_MAX_WIDTH
    # then --wide prints it whole, and the default cuts it with an ellipsis
    assert LONG_REASON in render_records([row], wide=True)
    narrow = render_records([row], wide=False)
    assert LONG_REASON not in narrow and LONG_REASON[: NARROW_MAX_WIDTH - 1] + "…" in narrow


def test_a_record_is_named_by_its_doc_number_with_its_deal_stage_event_and_meeting() -> None:
    rows = [
        _row(),
        _row(flow=Flow.CALENDAR_SYNC, at="2026-12-02T06:30:02.000Z", outlook_event_id="AAMkEvent"),
        _row(flow=Flow.FOLLOWUPS, at="2026-12-02T06:30:03.000Z", teams_meeting_id="AAMkMeeting"),
    ]
    text = render_records(rows, wide=True)
    assert text.count("Invoice 1006") == 3 and "91013 (Open)" in text
    assert "AAMkEvent" in text and "AAMkMeeting" in text
    # and without a DocNumber, QBO's Id says so
    assert "Invoice Id 130" in render_records([_row(source_number=None)], wide=True)


def test_a_waiting_retry_shows_when_it_runs_again() -> None:
    row = _row(
        outcome=RecordOutcome.FAILED,
        category=Category.RATE_LIMITED,
        next_attempt_at="2026-12-02T06:31:00.000Z",
    )
    assert "2026-12-02T06:31:00.000Z" in render_records([row], wide=False)
    assert "failed [rate_limited]" in render_records([row], wide=False)


def test_failures_are_grouped_by_category_most_first_with_their_fix() -> None:
    rows = [
        _row(message_id="a", outcome=RecordOutcome.DEAD_LETTERED, category=Category.MAPPING, reason="EUR"),
        _row(message_id="b", outcome=RecordOutcome.FAILED, category=Category.AUTH, reason="revoked"),
        _row(message_id="c", outcome=RecordOutcome.FAILED, category=Category.AUTH, reason="revoked again"),
        _row(message_id="d"),
    ]
    counts = failures_by_category(rows)
    assert [(c.category, c.records) for c in counts] == [("auth", 2), ("mapping", 1)]
    assert "reconnect" in counts[0].fix


@pytest.mark.parametrize(
    ("error_type", "retryable", "unexpected", "category"),
    [
        ("QboConnectionRevoked", False, False, Category.AUTH),
        ("GraphCredentialsRejected", False, False, Category.AUTH),
        ("RateLimited", True, False, Category.RATE_LIMITED),
        ("CircuitOpenError", True, False, Category.VENDOR_DOWN),
        ("VendorHttpError", True, False, Category.VENDOR_DOWN),
        ("UnsupportedCurrency", False, False, Category.MAPPING),
        ("DocumentRefused", False, False, Category.VALIDATION),
        ("MalformedRecord", False, False, Category.VALIDATION),
        ("InProgress", True, False, Category.CONFLICT),
        ("MailboxNotFound", False, False, Category.NOT_FOUND),
        ("KeyError", False, True, Category.BUG),
        ("LinkStoreError", True, False, Category.VENDOR_DOWN),
    ],
)
def test_each_failure_has_one_category(
    error_type: str, retryable: bool, unexpected: bool, category: Category
) -> None:
    assert categorize(error_type, retryable=retryable, unexpected=unexpected) is category


def test_a_row_is_found_by_its_document_number_and_deal() -> None:
    keys = partitions(_row())
    assert keys == [
        "history#demo",
        "history#demo#invoice#130",
        "history#demo#number#invoice#1006",
        "history#demo#deal#91013",
    ]


def test_retry_takes_each_flows_latest_attempt_of_each_message() -> None:
    first = _row(outcome=RecordOutcome.FAILED, receive_count=1)
    later = _row(outcome=RecordOutcome.WRITTEN, receive_count=2, at="2026-12-02T06:31:00.000Z")
    other = _row(flow=Flow.CALENDAR_SYNC, message_id="m-2", outcome=RecordOutcome.FAILED)
    assert latest_attempts([first, other, later]) == [other, later]


class _ExpiredHandleSqs:
    def get_queue_url(self, **_: Any) -> dict[str, str]:
        return {"QueueUrl": "https://sqs.example/123456789012/ledgerlink-dev-deal-sync"}

    def change_message_visibility(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "ReceiptHandleIsInvalid"}}, "ChangeMessageVisibility")


def test_a_handle_whose_receive_is_over_is_reported_not_waiting() -> None:
    row = _row(
        outcome=RecordOutcome.FAILED,
        receipt_handle="rh",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:ledgerlink-dev-deal-sync",
    )
    problem = make_due(_ExpiredHandleSqs(), row)
    assert problem is not None and "no longer waiting" in problem


@pytest.mark.parametrize(
    ("group", "shown"), [("status", "--wide"), ("trace", "invoice"), ("retry", "invoice")]
)
def test_the_commands_are_registered(group: str, shown: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([group, "--help"])
    assert shown in capsys.readouterr().out
