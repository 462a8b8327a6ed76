"""CDC catch-up: find the QBO changes LedgerLink has not synced and publish them like the webhook ingest.

A webhook lost while LedgerLink was down (or never sent) is otherwise never recovered. On a schedule,
per connection, this reads QBO's change data capture (``GET .../cdc``) from a cursor kept in the
vendor-state table (pk ``catchup#<connection>``, sk ``cursor``) and publishes one ``qbo.entity.changed``
event (:func:`ledgerlink.qbo.changes.change_event`, ``source_format`` ``"cdc"``) for every changed
object whose version — ``MetaData.LastUpdatedTime`` (ms) and ``SyncToken`` — is newer than its
crosswalk link's, or that has no link. A deleted object (``status: "Deleted"``) becomes a ``Delete``.

Rules:

- CDC answers at most :data:`~ledgerlink.qbo.client.CDC_MAX_OBJECTS` objects and has no paging
  token. Each entity is read on its own; a full answer splits the window in halves until each part is
  known complete. A part ``[a, b)`` is complete when the answer from ``a`` is under the cap, or when it
  already holds an object updated at or after ``b``: that relies on CDC listing a type's objects oldest
  first (../shared/api-notes-flows.md §5.1 "by last update"; the order is **unverified**, the sandbox
  does so). More than the cap within one second cannot be split and is an error, never a skip.
- The cursor advances only after everything found was published, to the newest ``LastUpdatedTime``
  seen (or the time the read began, when that is later) minus :attr:`CatchupOptions.overlap`, and
  never backwards. The overlap (clock skew between QBO and us) re-reads a few changes; they dedupe.
- No cursor: the first run starts :attr:`CatchupOptions.look_back` ago. A cursor older than CDC's
  30 days (:attr:`CatchupOptions.max_age`) is a gap CDC cannot fill: the run reports it
  (:attr:`ConnectionReport.gap`, metric ``CatchupGapTooLong``, "run ledgerlink backfill") and
  continues from as far back as CDC allows.

Event ids: the same function as the ingest (:attr:`EntityChange.change_id`, realm, entity, id,
operation, last updated), so two catch-ups of one version publish one event id and the deal sync's
ledger drops the second. CDC carries no operation: ``Create`` when ``CreateTime`` equals
``LastUpdatedTime``, else ``Update``. A webhook of the same change may carry another timestamp
precision or verb (``Void``), hence another id; the deal sync then skips it on the crosswalk version
(:meth:`ledgerlink.crosswalk.Link.already_synced`), not on its ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.events import Envelope
from ledgerlink.observability import Service, get_logger
from ledgerlink.qbo.changes import change_event, row_change
from ledgerlink.qbo.client import CDC_MAX_OBJECTS
from ledgerlink.qbo.webhooks import EntityChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = get_logger(Service.QBO_CATCHUP)

DEFAULT_ENTITIES: Final = ("Invoice", "Estimate", "Payment", "Customer")
# The crosswalk status of an entity whose delete the deal sync has applied (Link.status).
DELETED_LINK_STATUS: Final = "deleted"
GAP_ADVICE: Final = "run ledgerlink backfill for this connection: CDC cannot reach back that far"
# How far inside CDC's limit a gap restarts, so the call is not refused as too old when it arrives.
GAP_MARGIN: Final = timedelta(minutes=10)


class CdcReader(Protocol):
    def cdc(
        self, realm_id: str, entities: Iterable[str], changed_since: datetime
    ) -> dict[str, list[dict[str, Any]]]: ...


class LinkReader(Protocol):
    def get_many(self, keys: Iterable[EntityKey]) -> dict[EntityKey, Link]: ...


class Publisher(Protocol):
    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


class CursorStore(Protocol):
    def get(self, connection: str) -> datetime | None: ...

    def advance(self, connection: str, changed_since: datetime) -> None: ...


class WindowTooDense(RuntimeError):
    """More objects than CDC answers at once changed within one second: no window split can page them."""

    retryable = False
    reason = "cdc_window_too_dense"


@dataclass(frozen=True)
class CatchupOptions:
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    look_back: timedelta = timedelta(days=1)
    """Where a connection's first run starts."""
    overlap: timedelta = timedelta(minutes=5)
    """Subtracted from the newest change seen when the cursor advances (clock skew; unverified size)."""
    max_age: timedelta = timedelta(days=30)
    """CDC's documented reach back."""
    max_objects: int = CDC_MAX_OBJECTS


DEFAULT_OPTIONS: Final = CatchupOptions()


@dataclass
class EntityCounts:
    seen: int = 0
    published: int = 0
    skipped: int = 0


@dataclass
class ConnectionReport:
    connection: str
    realm_id: str
    since: datetime
    cursor: datetime
    gap: timedelta | None = None
    """Set when the stored cursor was further back than CDC reaches: that stretch needs a backfill."""
    calls: int = 0
    entities: dict[str, EntityCounts] = field(default_factory=dict)

    @property
    def published(self) -> int:
        return sum(counts.published for counts in self.entities.values())

    def lines(self) -> list[str]:
        head = f"{self.connection} (realm {self.realm_id}): since {_iso(self.since)}, cursor now {_iso(self.cursor)}"
        if self.gap is not None:
            head += f"; GAP of {self.gap} beyond CDC's reach: {GAP_ADVICE}"
        rows = [
            f"  {entity}: {counts.seen} seen, {counts.published} published, {counts.skipped} skipped (already synced)"
            for entity, counts in self.entities.items()
        ]
        return [head, *rows]


class DynamoDBCursorStore:
    """The catch-up cursor per connection in the vendor-state table: pk ``catchup#<connection>``, sk ``cursor``."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client

    @staticmethod
    def _key(connection: str) -> dict[str, Any]:
        return {"pk": {"S": f"catchup#{connection}"}, "sk": {"S": "cursor"}}

    def get(self, connection: str) -> datetime | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=self._key(connection), ConsistentRead=True
        ).get("Item")
        if not item or "changed_since" not in item:
            return None
        return datetime.fromisoformat(item["changed_since"]["S"])

    def advance(self, connection: str, changed_since: datetime) -> None:
        """Record ``changed_since`` unless a later one already is (the cursor only moves forward)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(connection),
                UpdateExpression="SET changed_since = :since",
                # ISO 8601 in UTC with a fixed width compares like the times it names.
                ConditionExpression="attribute_not_exists(changed_since) OR changed_since < :since",
                ExpressionAttributeValues={":since": {"S": _iso(changed_since)}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


class MemoryCursorStore:
    """In-memory :class:`CursorStore` for tests."""

    def __init__(self, cursors: Mapping[str, datetime] | None = None) -> None:
        self.cursors: dict[str, datetime] = dict(cursors or {})

    def get(self, connection: str) -> datetime | None:
        return self.cursors.get(connection)

    def advance(self, connection: str, changed_since: datetime) -> None:
        current = self.cursors.get(connection)
        if current is None or current < changed_since:
            self.cursors[connection] = changed_since


def catch_up_connection(
    connection: str,
    realm_id: str,
    *,
    cdc: CdcReader,
    links: LinkReader,
    publisher: Publisher,
    cursors: CursorStore,
    now: datetime,
    options: CatchupOptions = DEFAULT_OPTIONS,
    config_version: str | None = None,
) -> ConnectionReport:
    """Publish every change of ``realm_id`` since the connection's cursor that is not synced at its version."""
    stored = cursors.get(connection)
    earliest = now - options.max_age + GAP_MARGIN
    gap: timedelta | None = None
    if stored is None:
        since = max(now - options.look_back, earliest)
    elif stored < earliest:
        gap = earliest - stored
        since = earliest
        logger.error(
            "catch-up gap beyond CDC's reach",
            extra={
                "connection": connection,
                "realm_id": realm_id,
                "cursor": _iso(stored),
                "gap_seconds": int(gap.total_seconds()),
                "advice": GAP_ADVICE,
            },
        )
    else:
        since = stored
    report = ConnectionReport(connection, realm_id, since=since, cursor=since, gap=gap)
    run_id = _run_id(connection, since, now)
    newest = now
    envelopes: list[Envelope] = []
    for entity in options.entities:
        reader = _WindowReader(cdc, realm_id, entity, options.max_objects, now)
        rows = _unique(reader.read(since, None))
        report.calls += reader.calls
        counts = report.entities.setdefault(entity, EntityCounts())
        counts.seen = len(rows)
        found = {EntityKey(realm_id, entity, str(row["Id"])): row for row in rows}
        synced = links.get_many(found)
        for key, row in found.items():
            ms, token = _version(row)
            link = synced.get(key)
            if _already_synced(link, row, ms, token):
                counts.skipped += 1
                continue
            change = _change(realm_id, entity, row)
            envelopes.append(
                change_event(change, run_id, None, connection=connection, config_version=config_version)
            )
            counts.published += 1
        for row in rows:
            newest = max(newest, _updated(row))
    if envelopes:
        publisher.publish(envelopes)
    cursor = max(since, newest - options.overlap)
    cursors.advance(connection, cursor)
    report.cursor = cursor
    logger.info(
        "catch-up done",
        extra={
            "connection": connection,
            "realm_id": realm_id,
            "since": _iso(since),
            "cursor": _iso(cursor),
            "published": report.published,
            "cdc_calls": report.calls,
        },
    )
    return report


class _WindowReader:
    """Reads one entity's changes in ``[a, b)`` (``b`` None: up to now), splitting full answers in halves."""

    def __init__(self, cdc: CdcReader, realm_id: str, entity: str, cap: int, now: datetime) -> None:
        self._cdc = cdc
        self._realm = realm_id
        self._entity = entity
        self._cap = cap
        self._now = now
        self.calls = 0

    def read(self, start: datetime, end: datetime | None) -> list[dict[str, Any]]:
        start = start.replace(microsecond=0)  # changedSince is sent to the second
        rows = self._cdc.cdc(self._realm, [self._entity], start).get(self._entity, [])
        self.calls += 1
        inside = [row for row in rows if end is None or _updated(row) < end]
        if len(rows) < self._cap:
            return inside
        if end is not None and any(_updated(row) >= end for row in rows):
            return inside  # oldest first (unverified): everything before ``end`` came before these
        stop = end if end is not None else self._now
        middle = (start + (stop - start) / 2).replace(microsecond=0)
        if middle <= start:
            raise WindowTooDense(
                f"more than {self._cap - 1} {self._entity} changes at {_iso(start)} in realm {self._realm}: "
                "CDC cannot page them; run ledgerlink backfill for this connection"
            )
        return self.read(start, middle) + self.read(middle, end)


def _unique(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest row per Id (windows overlap at their edges only by what a split re-reads)."""
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = str(row.get("Id"))
        if key not in newest or _version(row) > _version(newest[key]):
            newest[key] = row
    return list(newest.values())


def _already_synced(link: Link | None, row: Mapping[str, Any], ms: int, token: int) -> bool:
    """Whether HubSpot already shows this version. A tombstone has no SyncToken and often the same
    second as the last edit, so the version cannot order it: it is synced once the link records the
    delete (status ``deleted``, what the deal sync writes when it marks the deal deleted in QBO)."""
    if link is None:
        return False
    if _is_deleted(row):
        return link.status == DELETED_LINK_STATUS
    return link.already_synced(ms, token)


def _updated(row: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str((row.get("MetaData") or {})["LastUpdatedTime"]))


def _version(row: Mapping[str, Any]) -> tuple[int, int]:
    ms = int(_updated(row).timestamp() * 1000)
    token = row.get("SyncToken")
    return ms, int(token) if token not in (None, "") else 0


def _is_deleted(row: Mapping[str, Any]) -> bool:
    return str(row.get("status", "")).lower() == "deleted"


def _change(realm_id: str, entity: str, row: Mapping[str, Any]) -> EntityChange:
    return row_change(realm_id, entity, row, "cdc")


def _run_id(connection: str, since: datetime, now: datetime) -> str:
    digest = hashlib.sha256(f"{connection}|{_iso(since)}|{_iso(now)}".encode()).hexdigest()[:16]
    return f"cdc-{connection}-{digest}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
