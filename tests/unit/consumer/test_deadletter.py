"""Dead letters that say why (ledgerlink.consumer.deadletter): which failed record goes to the dead-letter
queue, with what reason, and what its message keeps of the record."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from ledgerlink.consumer import deadletter
from ledgerlink.consumer.deadletter import safe_reason
from tests.unit.consumer.records import sqs_record

MAX_RECEIVES = 5
FAILED_AT = datetime(2026, 11, 25, 14, 5, 13, 250_000, tzinfo=UTC)


def test_the_dead_letter_keeps_the_records_attributes_within_sqs_limits() -> None:
    # given a record with eight attributes of its own, one of them an earlier failure's reason
    record = sqs_record("m-1")
    record["messageAttributes"] = {
        f"attr{index}": {"stringValue": str(index), "dataType": "String"} for index in range(6)
    }
    record["messageAttributes"]["blob"] = {"binaryValue": "AAE=", "dataType": "Binary"}
    record["messageAttributes"]["ledgerlink.failure_reason"] = {"stringValue": "old", "dataType": "String"}
    failure = deadletter.RecordFailure(reason="new reason", retryable=False)

    # when its dead letter is built
    letter = deadletter.dead_letter(record, failure, deadletter.FailureKind.PERMANENT, FAILED_AT)

    # then it has SQS's 10 attributes at most: the five failure ones (the new reason), then the
    # record's own in name order, binary values as bytes; and its X-Ray trace header (moto drops
    # system attributes sent in a batch, so this is checked on the entry sent)
    assert letter.entry["MessageSystemAttributes"] == {
        "AWSTraceHeader": {"DataType": "String", "StringValue": record["attributes"]["AWSTraceHeader"]}
    }
    attributes = letter.entry["MessageAttributes"]
    assert len(attributes) == 10
    assert attributes["ledgerlink.failure_reason"]["StringValue"] == "new reason"
    assert sorted(name for name in attributes if not name.startswith("ledgerlink.")) == [
        "attr0",
        "attr1",
        "attr2",
        "attr3",
        "attr4",
    ]
    assert letter.dropped_attributes == ("attr5", "blob")
    blob_record = copy.deepcopy(record)
    blob_record["messageAttributes"] = {"blob": {"binaryValue": "AAE=", "dataType": "Binary"}}
    blob = deadletter.dead_letter(blob_record, failure, deadletter.FailureKind.PERMANENT, FAILED_AT)
    assert blob.entry["MessageAttributes"]["blob"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "unexpected HTTPError: 401 for Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
            "unexpected HTTPError: 401 for Authorization: [redacted] [redacted]",
        ),
        ('token endpoint said {"refresh_token": "AB11-secret-value", "error": "x"}', None),
        (
            "client_secret=s3cr3t&grant_type=refresh_token",
            "client_secret=[redacted]&grant_type=refresh_token",
        ),
        ("line one\nline\ttwo\x00", "line one line two?"),
    ],
)
def test_a_reason_is_one_line_and_never_carries_a_credential(text: str, expected: str | None) -> None:
    reason = safe_reason(text)
    assert "\n" not in reason
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "AB11-secret-value", "s3cr3t"):
        assert secret not in reason
    if expected is not None:
        assert reason == expected


def test_a_long_reason_is_cut_to_the_bound() -> None:
    reason = safe_reason("x" * 5000)
    assert len(reason) == deadletter.MAX_REASON_CHARS and reason.endswith("…")


@pytest.mark.parametrize(
    ("retryable", "receive_count", "expected"),
    [
        (False, 1, deadletter.FailureKind.PERMANENT),
        (True, 1, None),
        (True, MAX_RECEIVES - 1, None),
        (True, MAX_RECEIVES, deadletter.FailureKind.EXHAUSTED),
        (True, MAX_RECEIVES + 1, deadletter.FailureKind.EXHAUSTED),
    ],
)
def test_the_decision_per_failed_record(
    retryable: bool, receive_count: int, expected: deadletter.FailureKind | None
) -> None:
    assert (
        deadletter.failure_kind(
            retryable=retryable, receive_count=receive_count, max_receive_count=MAX_RECEIVES
        )
        is expected
    )
