"""The CDC catch-up: which changes it publishes, how it pages a full CDC answer, and its cursor."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledgerlink.catchup.service import (
    CatchupOptions,
    MemoryCursorStore,
    WindowTooDense,
    catch_up_connection,
)
from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.events import Envelope

REALM = "9130350000000001"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class FakeCdc:
    """CDC as documented: objects changed at or after changedSince, oldest first, at most ``cap``."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]], cap: int = 1000) -> None:
        self.rows = rows
        self.cap = cap
        self.calls: list[tuple[str, datetime]] = []

    def cdc(
        self, realm_id: str, entities: Iterable[str], changed_since: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        answer: dict[str, list[dict[str, Any]]] = {}
        for entity in entities:
            self.calls.append((entity, changed_since))
            found = [r for r in self.rows.get(entity, []) if _at(r) >= changed_since]
            found.sort(key=_at)
            answer[entity] = found[: self.cap]
        return answer


class FakeLinks:
    def __init__(self, links: Iterable[Link] = ()) -> None:
        self.links = {link.key: link for link in links}

    def get_many(self, keys: Iterable[EntityKey]) -> dict[EntityKey, Link]:
        return {key: self.links[key] for key in keys if key in self.links}


class CapturingPublisher:
    def __init__(self) -> None:
        self.published: list[Envelope] = []

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.published.extend(envelopes)


def _at(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["MetaData"]["LastUpdatedTime"])


def invoice(
    entity_id: str, at: datetime, token: int = 0, *, created: datetime | None = None
) -> dict[str, Any]:
    stamp = at.astimezone(UTC).isoformat(timespec="seconds")
    return {
        "Id": entity_id,
        "SyncToken": str(token),
        "MetaData": {"CreateTime": (created or at).isoformat(timespec="seconds"), "LastUpdatedTime": stamp},
    }


def run(
    cdc: FakeCdc,
    *,
    links: FakeLinks | None = None,
    cursors: MemoryCursorStore | None = None,
    options: CatchupOptions | None = None,
    now: datetime = NOW,
) -> tuple[Any, CapturingPublisher, MemoryCursorStore]:
    publisher = CapturingPublisher()
    store = cursors if cursors is not None else MemoryCursorStore()
    report = catch_up_connection(
        "acme",
        REALM,
        cdc=cdc,
        links=links or FakeLinks(),
        publisher=publisher,
        cursors=store,
        now=now,
        options=options or CatchupOptions(entities=("Invoice",)),
        config_version="v1",
    )
    return report, publisher, store


def test_unsynced_changes_are_published_as_the_ingest_publishes_them() -> None:
    # given two invoices changed an hour ago, neither synced
    cdc = FakeCdc(
        {
            "Invoice": [
                invoice("1", NOW - timedelta(hours=1)),
                invoice("2", NOW - timedelta(hours=1), 1, created=NOW - timedelta(days=3)),
            ]
        }
    )
    # when the catch-up runs
    report, publisher, _ = run(cdc)
    # then one valid qbo.entity.changed per invoice goes out: a Create and an Update
    operations = {e.payload["entity_id"]: e.payload["operation"] for e in publisher.published}
    assert operations == {"1": "Create", "2": "Update"}
    for envelope in publisher.published:
        envelope.to_put_events_entry("bus")  # validates the detail against its schema
        assert envelope.payload["source_format"] == "cdc"
        assert envelope.payload["connection"] == "acme"
    assert report.entities["Invoice"].published == 2


def test_the_same_version_found_twice_has_the_same_event_id() -> None:
    # given one invoice change, read by two catch-ups whose windows overlap
    rows = {"Invoice": [invoice("7", NOW - timedelta(minutes=2), 3, created=NOW - timedelta(days=1))]}
    _, first, cursors = run(FakeCdc(rows))
    _, second, _ = run(FakeCdc(rows), cursors=cursors, now=NOW + timedelta(minutes=1))
    # then both events carry one id, which the deal sync's ledger deduplicates
    assert [e.event_id for e in first.published] == [e.event_id for e in second.published]


def test_versions_already_synced_are_skipped() -> None:
    # given invoice 1 synced at its current version and invoice 2 synced at an older one
    at = NOW - timedelta(minutes=30)
    ms = int(at.timestamp() * 1000)
    links = FakeLinks(
        [
            Link(EntityKey(REALM, "Invoice", "1"), hubspot_id="d1", synced_ms=ms, sync_token=2),
            Link(EntityKey(REALM, "Invoice", "2"), hubspot_id="d2", synced_ms=ms, sync_token=1),
        ]
    )
    cdc = FakeCdc({"Invoice": [invoice("1", at, 2), invoice("2", at, 2)]})
    # when the catch-up runs
    report, publisher, _ = run(cdc, links=links)
    # then only the newer version of invoice 2 is published
    assert [e.payload["entity_id"] for e in publisher.published] == ["2"]
    assert (report.entities["Invoice"].seen, report.entities["Invoice"].skipped) == (2, 1)


def test_a_deleted_object_becomes_a_delete_event() -> None:
    # given a tombstone as CDC lists it
    at = (NOW - timedelta(minutes=5)).isoformat(timespec="seconds")
    tombstone = {"status": "Deleted", "domain": "QBO", "Id": "12", "MetaData": {"LastUpdatedTime": at}}
    _, publisher, _ = run(FakeCdc({"Invoice": [tombstone]}))
    assert [(e.payload["entity_id"], e.payload["operation"]) for e in publisher.published] == [
        ("12", "Delete")
    ]


def test_more_changes_than_one_answer_holds_are_all_published_by_splitting_the_window() -> None:
    # given 2,500 invoice changes over the last day, and CDC answering at most 1,000
    rows = [invoice(str(n), NOW - timedelta(hours=23) + timedelta(seconds=30 * n)) for n in range(1, 2501)]
    cdc = FakeCdc({"Invoice": rows}, cap=1000)
    # when the catch-up runs
    report, publisher, _ = run(cdc)
    # then every change is published once, none skipped, and every CDC answer read was under the cap
    # or reached past its window
    assert sorted(int(e.payload["entity_id"]) for e in publisher.published) == list(range(1, 2501))
    assert report.calls > 3


def test_more_changes_in_one_second_than_cdc_answers_is_an_error_not_a_skip() -> None:
    at = NOW - timedelta(hours=1)
    cdc = FakeCdc({"Invoice": [invoice(str(n), at) for n in range(1, 12)]}, cap=10)
    publisher = CapturingPublisher()
    cursors = MemoryCursorStore()
    with pytest.raises(WindowTooDense):
        catch_up_connection(
            "acme",
            REALM,
            cdc=cdc,
            links=FakeLinks(),
            publisher=publisher,
            cursors=cursors,
            now=NOW,
            options=CatchupOptions(entities=("Invoice",), max_objects=10),
        )
    # and the cursor did not move, so nothing is skipped on the next run
    assert cursors.get("acme") is None and publisher.published == []


def test_first_run_starts_at_the_look_back_and_the_cursor_advances_to_the_newest_change_minus_overlap() -> (
    None
):
    newest = NOW + timedelta(minutes=2)  # QBO's clock ahead of ours
    cdc = FakeCdc({"Invoice": [invoice("1", NOW - timedelta(hours=2)), invoice("2", newest)]})
    report, _, cursors = run(
        cdc,
        options=CatchupOptions(
            entities=("Invoice",), look_back=timedelta(hours=6), overlap=timedelta(minutes=1)
        ),
    )
    assert cdc.calls[0][1] == NOW - timedelta(hours=6)
    assert cursors.get("acme") == newest - timedelta(minutes=1)
    assert report.gap is None


def test_with_nothing_changed_the_cursor_still_moves_to_now_minus_overlap() -> None:
    _, _, cursors = run(
        FakeCdc({}), options=CatchupOptions(entities=("Invoice",), overlap=timedelta(minutes=5))
    )
    assert cursors.get("acme") == NOW - timedelta(minutes=5)


def test_a_cursor_older_than_cdc_reaches_is_a_gap_and_the_run_continues_within_the_limit() -> None:
    # given a cursor 40 days old
    cursors = MemoryCursorStore({"acme": NOW - timedelta(days=40)})
    cdc = FakeCdc({"Invoice": [invoice("1", NOW - timedelta(days=2))]})
    # when the catch-up runs
    report, publisher, _ = run(cdc, cursors=cursors)
    # then it reports a gap (about 10 days) and reads CDC no further back than 30 days
    assert report.gap is not None and report.gap > timedelta(days=9)
    assert min(since for _, since in cdc.calls) >= NOW - timedelta(days=30)
    assert "backfill" in report.lines()[0]
    assert [e.payload["entity_id"] for e in publisher.published] == ["1"]


def test_a_delete_is_published_until_the_link_records_it_even_within_the_same_second() -> None:
    # given an invoice synced at its last edit, then deleted within the same second
    at = NOW - timedelta(minutes=5)
    ms = int(at.timestamp() * 1000)
    tombstone = {"status": "Deleted", "Id": "3", "MetaData": {"LastUpdatedTime": at.isoformat()}}
    synced = Link(EntityKey(REALM, "Invoice", "3"), hubspot_id="d3", synced_ms=ms, sync_token=4)
    _, publisher, _ = run(FakeCdc({"Invoice": [tombstone]}), links=FakeLinks([synced]))
    assert [e.payload["operation"] for e in publisher.published] == ["Delete"]
    # and once the deal sync recorded the delete, it is skipped
    applied = Link(synced.key, hubspot_id="d3", synced_ms=ms, sync_token=4, status="deleted")
    _, again, _ = run(FakeCdc({"Invoice": [tombstone]}), links=FakeLinks([applied]))
    assert again.published == []
