"""The backfill checkpoint: stored and read back whole, advanced only from the revision read, and the
engine's decisions on it (continue, refuse other arguments, restart, finish) with in-memory fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.deal_sync.backfill import Backfill, BackfillError, BackfillOptions, statement
from ledgerlink.deal_sync.backfill_checkpoint import (
    Checkpoint,
    CheckpointConflict,
    DynamoDBCheckpointStore,
    EntityCounts,
    MemoryCheckpointStore,
)
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.tables import VENDOR_STATE
from tests.aws_fixtures import create_tables

TABLE = "ledgerlink-test-vendor-state"


def checkpoint(**changes: Any) -> Checkpoint:
    fields: dict[str, Any] = {
        "connection": "demo",
        "job_id": "job1",
        "since": "2024-01-01",
        "entities": ("Invoice", "Payment"),
        "entity": "Invoice",
        "started_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    fields.update(changes)
    return Checkpoint(**fields)


def row(
    entity_id: str, created: str = "2024-02-01T10:00:00-08:00", updated: str | None = None
) -> dict[str, Any]:
    return {
        "Id": entity_id,
        "SyncToken": "0",
        "MetaData": {"CreateTime": created, "LastUpdatedTime": updated or created},
    }


class FakeQbo:
    def __init__(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = rows
        self.statements: list[str] = []

    def query_page(
        self, realm_id: str, text: str, start: int, max_results: int = 1000
    ) -> list[dict[str, Any]]:
        self.statements.append(text)
        entity = text.split(" from ", 1)[1].split(" ", 1)[0]
        return self.rows.get(entity, [])[start - 1 : start - 1 + max_results]

    def count(self, realm_id: str, text: str) -> int:
        self.statements.append(text)
        return len(self.rows.get(text.split(" from ", 1)[1].split(" ", 1)[0], []))


class FakeSync:
    def __init__(self, answers: list[OutcomeStatus] | None = None) -> None:
        self.batches: list[list[ChangeEvent]] = []
        self.answers = answers or []

    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]:
        self.batches.append(list(events))
        status = self.answers.pop(0) if self.answers else OutcomeStatus.SYNCED
        if status is OutcomeStatus.FAILED:
            return {e.message_id: Outcome(status, reason="HubSpot 503", retryable=True) for e in events}
        return {e.message_id: Outcome(status) for e in events}


def test_a_checkpoint_is_stored_and_read_back_whole() -> None:
    # given a checkpoint with counts, failures and an overlap
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, ((TABLE, VENDOR_STATE),))
        store = DynamoDBCheckpointStore(TABLE, client)
        original = checkpoint(
            position=7,
            recent_ids=("5", "6"),
            counts={"Invoice": EntityCounts(seen=7, written=6, failed=1, total=9)},
        )
        # when it is saved and read
        saved = store.save(original)
        found = store.get("demo")
    # then it comes back as saved, at revision 1
    assert found == saved and saved.revision == 1
    assert found.counts["Invoice"].total == 9 and found.recent_ids == ("5", "6")


def test_two_workers_holding_one_revision_cannot_both_advance_it() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, ((TABLE, VENDOR_STATE),))
        store = DynamoDBCheckpointStore(TABLE, client)
        first = store.save(checkpoint())
        # given both workers read revision 1; when the first advances it
        store.save(checkpoint(position=3, revision=first.revision))
        # then the second's save is refused, and a new job cannot be created over an existing one blindly
        with pytest.raises(CheckpointConflict):
            store.save(checkpoint(position=6, revision=first.revision))
        with pytest.raises(CheckpointConflict):
            store.save(checkpoint(job_id="job2"))
        stored = store.get("demo")
    assert stored is not None and stored.position == 3


def test_pages_are_settled_in_chunks_and_the_checkpoint_moves_after_each_page() -> None:
    # given seven invoices, pages of three with an overlap of one, chunks of two
    qbo = FakeQbo({"Invoice": [row(str(n)) for n in range(1, 8)]})
    sync = FakeSync()
    store = MemoryCheckpointStore()
    seen: list[tuple[str, int]] = []
    job = Backfill(
        connection="demo",
        realm_id="123",
        qbo=qbo,
        sync=sync,
        store=store,
        options=BackfillOptions(entities=("Invoice",), page_size=3, overlap=1, chunk_size=2),
        progress=lambda c: seen.append((c.entity, c.position)),
    )
    # when it runs
    done = job.run()
    # then every invoice went to the deal sync once, in chunks of at most two
    ids = [e.entity_id for batch in sync.batches for e in batch]
    assert ids == [str(n) for n in range(1, 8)]
    assert max(len(batch) for batch in sync.batches) == 2
    # and each event is the change the webhook ingest would name for that version
    assert {e.operation for batch in sync.batches for e in batch} == {"Create"}
    assert done.finished and done.counts["Invoice"].written == 7 and done.counts["Invoice"].total == 7
    # (a full last page needs one more read to know it was the last)
    assert seen == [("Invoice", 3), ("Invoice", 5), ("Invoice", 7), ("Invoice", 7)]
    assert "ORDERBY MetaData.CreateTime" in qbo.statements[1]


def test_retryable_failures_are_retried_then_counted_failed() -> None:
    # given a deal sync that fails retryably every time
    sync = FakeSync([OutcomeStatus.FAILED] * 10)
    delays: list[float] = []
    job = Backfill(
        connection="demo",
        realm_id="123",
        qbo=FakeQbo({"Invoice": [row("1")]}),
        sync=sync,
        store=MemoryCheckpointStore(),
        options=BackfillOptions(entities=("Invoice",), retries=2, backoff_seconds=1),
        sleep=delays.append,
    )
    done = job.run()
    # then it tried three times with growing delays, and lists the invoice as failed
    assert len(sync.batches) == 3 and delays == [1, 2]
    assert done.counts["Invoice"].failed == 1
    assert [(f.entity_id, f.retryable) for f in done.failures] == [("1", True)]


def test_an_unfinished_job_with_other_arguments_is_refused_and_a_finished_one_starts_anew() -> None:
    store = MemoryCheckpointStore()
    store.save(checkpoint())

    def job(**options: Any) -> Backfill:
        return Backfill(
            connection="demo",
            realm_id="123",
            qbo=FakeQbo({}),
            sync=FakeSync(),
            store=store,
            options=BackfillOptions(**options),
        )

    with pytest.raises(BackfillError, match="--restart"):
        job(since="2025-01-01", entities=("Invoice", "Payment")).begin()
    # the same arguments continue it (named in any order)
    assert job(since="2024-01-01", entities=("Payment", "Invoice")).begin().job_id == "job1"
    done = job(since="2024-01-01", entities=("Invoice", "Payment")).run()
    assert done.finished and done.job_id == "job1"
    assert job(entities=("Invoice",)).begin().job_id != "job1"


def test_the_statements_filter_on_last_update_and_order_by_creation() -> None:
    assert statement("Invoice", None) == "select * from Invoice ORDERBY MetaData.CreateTime"
    assert statement("Invoice", "2024-01-31", count=True) == (
        "select count(*) from Invoice where MetaData.LastUpdatedTime >= '2024-01-31'"
    )
    with pytest.raises(BackfillError):
        BackfillOptions(since="last week").checked()
    with pytest.raises(BackfillError):
        BackfillOptions(entities=("Bill",)).checked()
