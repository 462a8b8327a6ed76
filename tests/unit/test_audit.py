"""The audit trail (ledgerlink.audit) in the links table, against moto's DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ledgerlink import audit
from ledgerlink.audit import AuditRecord, AuditStore, AuditStoreError, Decision, audit_time
from ledgerlink.clock import ManualClock
from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.tables import LINKS, LINKS_OWED_BY_DUE_DATE
from tests.aws_fixtures import create_tables

TABLE = "ledgerlink-test-links"
DEAL = "18234567"

QUOTED = AuditRecord(
    connection="demo",
    deal_id=DEAL,
    at="2026-12-02T06:30:01.123Z",
    event_id="evt-1",
    correlation_id="corr-1",
    config_version="3f2a9c1b7d40",
    decision=Decision.CREATED,
    reason="deal is at quote stage contractsent (pipeline default)",
    document="Estimate",
    deal_stage="contractsent",
    pipeline="default",
    estimate_id="130",
    estimate_number="1001",
    change="stage_changed",
    change_source="CRM_UI",
    detail={"request_id": "demo-deal-18234567-estimate", "customer_id": "58"},
)
WON = replace(
    QUOTED,
    at="2026-12-02T09:15:44.007Z",
    event_id="evt-2",
    correlation_id="corr-2",
    reason="deal is at won stage closedwon (pipeline default); invoice linked to estimate 1001",
    document="Invoice",
    deal_stage="closedwon",
    invoice_id="131",
    invoice_number="1002",
    detail={},
)
REVERTED = AuditRecord(
    connection="demo",
    deal_id=DEAL,
    at="2026-12-02T07:00:00.000Z",
    event_id="evt-3",
    correlation_id="corr-3",
    config_version="3f2a9c1b7d40",
    decision=Decision.SKIPPED,
    reason="the webhook said closedwon but the deal is at appointmentscheduled now: nothing to write",
)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        # As deployed: the links table's keys and its owed-by-due-date index.
        create_tables(client, [(TABLE, LINKS)], indexes={TABLE: (LINKS_OWED_BY_DUE_DATE,)})
        yield client


def _rows(dynamodb: Any) -> list[dict[str, Any]]:
    return list(dynamodb.scan(TableName=TABLE)["Items"])


def test_records_come_back_oldest_first_whatever_order_they_were_written_in(dynamodb: Any) -> None:
    # given three decisions about a deal, written out of time order (a slow worker's arrives last)
    store = AuditStore(TABLE, dynamodb)
    for record in (WON, QUOTED, REVERTED):
        store.record(record)

    # when its history is read
    history = store.history("demo", DEAL)

    # then every record is there, whole, in the order the decisions were made
    assert history == [QUOTED, REVERTED, WON]


def test_a_limit_keeps_the_newest_records_still_oldest_first(dynamodb: Any) -> None:
    store = AuditStore(TABLE, dynamodb)
    for record in (QUOTED, REVERTED, WON):
        store.record(record)
    assert store.history("demo", DEAL, limit=2) == [REVERTED, WON]
    assert store.history("demo", DEAL, limit=10) == [QUOTED, REVERTED, WON]


def test_a_long_history_is_read_across_pages(dynamodb: Any) -> None:
    # given more records than one Query page holds (1 MB): 40 records with 30 kB reasons each
    store = AuditStore(TABLE, dynamodb)
    records = [
        replace(
            REVERTED, at=f"2026-12-02T07:{minute:02d}:00.000Z", event_id=f"e{minute}", reason="x" * 30_000
        )
        for minute in range(40)
    ]
    for record in records:
        store.record(record)
    # then all of them are read, in order, and a limit still gets the newest
    assert store.history("demo", DEAL) == records
    assert store.history("demo", DEAL, limit=35) == records[5:]


def test_the_row_is_keyed_by_connection_and_deal_and_sorted_by_time(dynamodb: Any) -> None:
    AuditStore(TABLE, dynamodb).record(QUOTED)
    (row,) = _rows(dynamodb)
    assert row["pk"] == {"S": f"deal#demo#{DEAL}"}
    assert row["sk"] == {"S": "audit#2026-12-02T06:30:01.123Z#evt-1"}
    # and every attribute is a string (the detail a map of strings)
    assert {kind for name, value in row.items() if name != "detail" for kind in value} == {"S"}
    assert row["detail"] == {
        "M": {"request_id": {"S": "demo-deal-18234567-estimate"}, "customer_id": {"S": "58"}}
    }
    # and it stays out of the follow-up sweep's owed-by-due-date index
    assert LINKS_OWED_BY_DUE_DATE.partition_key not in row


def test_the_same_decision_written_twice_is_one_row(dynamodb: Any) -> None:
    # given a redelivered event whose decision is recorded again, with a better-worded reason
    store = AuditStore(TABLE, dynamodb)
    store.record(QUOTED)
    store.record(replace(QUOTED, reason="deal is at quote stage contractsent of pipeline default"))
    # then the deal has one record, the last written
    assert len(_rows(dynamodb)) == 1
    assert [r.reason for r in store.history("demo", DEAL)] == [
        "deal is at quote stage contractsent of pipeline default"
    ]


def test_fields_without_a_value_are_left_out(dynamodb: Any) -> None:
    # given a skip that concerned no document
    store = AuditStore(TABLE, dynamodb)
    store.record(REVERTED)
    (row,) = _rows(dynamodb)
    # then the row holds only what the decision has
    assert set(row) == {
        "pk",
        "sk",
        "connection",
        "deal_id",
        "at",
        "event_id",
        "correlation_id",
        "config_version",
        "decision",
        "reason",
    }
    # and reads back with those fields None and no detail
    (read,) = store.history("demo", DEAL)
    assert read == REVERTED and read.document is None and read.detail == {}


def test_two_connections_with_the_same_deal_id_see_only_their_own(dynamodb: Any) -> None:
    # given the same deal id in two portals (HubSpot ids are per portal)
    store = AuditStore(TABLE, dynamodb)
    store.record(QUOTED)
    thames = replace(
        REVERTED, connection="thames", event_id="evt-t", reason="deal is at stage 1204512: no document"
    )
    store.record(thames)
    # then each connection's history is its own
    assert store.history("demo", DEAL) == [QUOTED]
    assert store.history("thames", DEAL) == [thames]
    # and a connection without records of the deal has none
    assert store.history("londn", DEAL) == []


def test_audit_records_do_not_disturb_the_links_and_failures_beside_them(dynamodb: Any) -> None:
    from ledgerlink.crosswalk import LinkStore

    AuditStore(TABLE, dynamodb).record(QUOTED)
    assert LinkStore(TABLE, dynamodb).recent_failures() == []


# --- expiry


def test_without_a_ttl_records_carry_no_expiry_and_are_kept(dynamodb: Any) -> None:
    AuditStore(TABLE, dynamodb).record(QUOTED)
    (row,) = _rows(dynamodb)
    assert "expires_at" not in row and "expiration" not in row


def test_a_ttl_is_refused_when_the_links_table_has_no_ttl_attribute(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a links table without a TTL attribute
    monkeypatch.setattr(audit, "TTL_ATTRIBUTE", None)
    # then a store asked to expire records refuses, rather than write an expiry DynamoDB ignores
    with pytest.raises(ValueError, match="no TTL attribute"):
        AuditStore(TABLE, dynamodb, ttl_days=400)


def test_with_a_ttl_attribute_records_expire_ttl_days_after_their_own_time(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a links table whose TTL attribute is expires_at
    monkeypatch.setattr(audit, "TTL_ATTRIBUTE", "expires_at")
    dynamodb.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    store = AuditStore(TABLE, dynamodb, ttl_days=30)
    # when a record is written twice (a redelivery, later)
    store.record(QUOTED)
    store.record(QUOTED)
    # then its expiry is a Number (what DynamoDB's TTL reads), 30 days after the decision, both times
    (row,) = _rows(dynamodb)
    decided = 1_796_193_001  # 2026-12-02T06:30:01Z
    assert row["expires_at"] == {"N": str(decided + 30 * 86_400)}
    assert store.history("demo", DEAL) == [QUOTED]


# --- what a record must be


def test_the_time_is_utc_to_the_millisecond() -> None:
    assert audit_time(1_796_193_001.1234) == "2026-12-02T06:30:01.123Z"
    clock = ManualClock(start=1_796_193_001.0)
    assert AuditStore(TABLE, object(), clock=clock).now() == "2026-12-02T06:30:01.000Z"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"at": "2026-12-02T06:30:01Z"}, "at is UTC to the millisecond"),
        ({"at": "2026-12-02T06:30:01.123+00:00"}, "at is UTC to the millisecond"),
        ({"deal_id": "18#2"}, "deal_id"),
        ({"connection": ""}, "connection"),
        ({"event_id": ""}, "names its event"),
    ],
)
def test_a_record_whose_keys_would_not_sort_or_parse_is_refused(
    dynamodb: Any, change: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        AuditStore(TABLE, dynamodb).record(replace(QUOTED, **change))  # type: ignore[arg-type]
    assert _rows(dynamodb) == []


def test_a_table_that_does_not_answer_is_a_retryable_shared_failure(dynamodb: Any) -> None:
    # given a store on a table that is not there
    store = AuditStore("no-such-table", dynamodb)
    # then writing and reading fail with the table and operation named, retryable for the whole batch
    with pytest.raises(
        AuditStoreError, match=r"links table no-such-table: audit PutItem failed \(ResourceNotFound"
    ):
        store.record(QUOTED)
    with pytest.raises(AuditStoreError, match=r"audit Query failed") as raised:
        store.history("demo", DEAL)
    classified = classify(raised.value)
    assert (classified.retryable, classified.scope) == (True, FailureScope.SHARED)
    assert not isinstance(raised.value, ClientError)


def test_a_table_that_cannot_be_reached_is_the_same_retryable_failure() -> None:
    # given a DynamoDB endpoint nobody listens on (port 9, discard), asked once
    from botocore.config import Config

    unreachable = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    # then the failure names the table and botocore's error, as an AuditStoreError
    with pytest.raises(
        AuditStoreError, match=r"links table ledgerlink-test-links: audit PutItem failed \(Endpoint"
    ):
        AuditStore(TABLE, unreachable).record(QUOTED)
