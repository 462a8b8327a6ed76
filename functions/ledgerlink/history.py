"""Sync history: one durable row per record a flow settles, per attempt (docs/status.md).

Every queue-fed flow (deal sync, calendar sync, Teams follow-ups, HubSpot -> QBO documents) hands each
settled SQS record to :class:`BatchHistory` (from :func:`ledgerlink.consumer.batch.process_batch`), which
writes a :class:`HistoryRow`: the connection, the source document and number, the target records (deal
and stage, Outlook event, Teams meeting, QBO estimate / invoice), the outcome, a reason category from
a small fixed set (:class:`Category`), the time, the correlation id and, for a record waiting for
its redelivery, when it runs again and the receipt handle ``ledgerlink retry`` uses to run it now.

One row per record per attempt (never updated): a trace needs every hop and every attempt, in order,
and a put of a new row is as cheap as an update. Rows live in the links table beside the crosswalk,
under ``history#`` partitions, each row written whole to every partition it is found by:

- ``history#<connection>`` — the connection's feed (``ledgerlink status``'s recent records);
- ``history#<connection>#<entity>#<id>`` — a QBO document by Id (``invoice#1006``-style keys use the
  entity in lower case: ``invoice``, ``estimate``, ``payment``, ``customer``);
- ``history#<connection>#deal#<id>`` — a HubSpot deal;
- ``history#<connection>#number#<entity>#<DocNumber>`` — a QBO document by its DocNumber.

The sort key is ``<at>#<flow>#<message id>#<receive count>`` (``at`` UTC to the millisecond, fixed
width), so a partition reads in time order and a redelivered attempt is a row of its own while the
same attempt written twice is the same row. Writes are BatchWriteItem calls of 25 items.

Every row carries ``expires_at`` (epoch seconds, a Number: DynamoDB's TTL attribute of the links table,
:data:`ledgerlink.tables.LINKS`): ``LEDGERLINK_HISTORY_TTL_DAYS`` days (default 30) after the row's time.
Writing history never fails a record: a table that does not take the rows is logged and counted
(``HistoryWriteFailed``), and the record's own outcome stands.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.crosswalk import PK, SK, LinkStoreError
from ledgerlink.tables import LINKS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = Logger(child=True)

PK_PREFIX: Final = "history#"
TTL_ATTRIBUTE: Final = LINKS.ttl_attribute or "expires_at"
DEFAULT_TTL_DAYS: Final = 30
SECONDS_PER_DAY: Final = 86_400
BATCH_WRITE_MAX: Final = 25
_UNPROCESSED_ROUNDS: Final = 5
_AT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class HistoryStoreError(LinkStoreError):
    """History could not be written or read (the links table did not answer)."""

    reason = "history_unavailable"


class Flow(StrEnum):
    INGEST = "ingest"
    DEAL_SYNC = "deal_sync"  # QBO -> HubSpot deal
    CALENDAR_SYNC = "calendar_sync"  # invoice -> Outlook event
    FOLLOWUPS = "followups"  # invoice -> Teams follow-up meeting
    DOCUMENT_SYNC = "document_sync"  # HubSpot deal -> QBO estimate / invoice


class RecordOutcome(StrEnum):
    WRITTEN = "written"  # the target now shows the change
    UNCHANGED = "unchanged"  # the target already showed it (stale, duplicate, nothing depends on it)
    SKIPPED = "skipped"  # not this flow's business (an entity or connection it does not sync)
    FAILED = "failed"  # failed; retried (next_attempt_at) or left to SQS's redrive
    DEAD_LETTERED = "dead_lettered"  # sent to the dead-letter queue with its reason


class Category(StrEnum):
    """Why a record failed, in a few words an operator can act on (docs/status.md has the fix of each)."""

    NONE = ""
    AUTH = "auth"  # a token revoked or rejected, a connection not connected: reconnect
    RATE_LIMITED = "rate_limited"  # a vendor's 429 or LedgerLink's own limiter: waits, then runs
    VENDOR_DOWN = "vendor_down"  # 5xx, timeouts, an open breaker, AWS not answering: waits, then runs
    MAPPING = "mapping"  # the document cannot be mapped (currency, totals, stage map): fix config/data
    VALIDATION = "validation"  # the input or the vendor refused it as invalid: fix the record
    CONFLICT = "conflict"  # a concurrent change or write: retried
    NOT_FOUND = "not_found"  # a record, mailbox or object is gone
    BUG = "bug"  # nobody classified the error: a LedgerLink bug, replay after the fix


# Error type (exception class name) fragments -> category, first match wins.
_BY_TYPE: Final = (
    (Category.AUTH, ("Auth", "Credentials", "Revoked", "NotConnected", "Unserved", "AccessDenied", "Tenant")),
    (Category.RATE_LIMITED, ("RateLimit", "Throttl", "TooMany", "WindowTooDense")),
    (Category.VENDOR_DOWN, ("Timeout", "CircuitOpen", "VendorConnection", "Unavailable", "Fault", "Busy")),
    (Category.MAPPING, ("Mapping", "Currency", "TotalMismatch", "StageMap")),
    (Category.CONFLICT, ("Conflict", "InProgress", "Concurrent", "LostRace", "EventChanged", "Isolation")),
    (Category.NOT_FOUND, ("NotFound", "Gone", "NoMailbox", "NoOrganizer", "NoFreeSlot")),
    (
        Category.VALIDATION,
        ("Malformed", "Invalid", "Refused", "Rejected", "BadRequest", "NotAllowed", "NotOnline", "Envelope"),
    ),
)
_SHARED_INFRASTRUCTURE: Final = (
    "StoreError",
    "SecretError",
    "PublishError",
    "IdempotencyError",
    "ClientError",
)


def categorize(error_type: str | None, *, retryable: bool, unexpected: bool = False) -> Category:
    """The :class:`Category` of a failure from its error type (the exception's class name)."""
    if unexpected:
        return Category.BUG
    name = error_type or ""
    for category, fragments in _BY_TYPE:
        if any(fragment in name for fragment in fragments):
            return category
    if any(fragment in name for fragment in _SHARED_INFRASTRUCTURE) or retryable:
        return Category.VENDOR_DOWN
    return Category.VALIDATION if name else Category.BUG


@dataclass(frozen=True)
class Subject:
    """What a record is about, as its flow knows it (each flow's ``history_subject``)."""

    connection: str
    source_entity: str
    """``Invoice``, ``Estimate``, ``Payment``, ``Customer`` (QBO) or ``deal`` (HubSpot)."""
    source_id: str
    realm_id: str | None = None
    source_number: str | None = None
    """The QBO DocNumber, when the flow knows it."""
    deal_id: str | None = None
    deal_stage: str | None = None
    outlook_event_id: str | None = None
    teams_meeting_id: str | None = None
    estimate_id: str | None = None
    estimate_number: str | None = None
    invoice_id: str | None = None
    invoice_number: str | None = None


@dataclass(frozen=True)
class HistoryRow:
    connection: str
    flow: Flow
    at: str
    """UTC to the millisecond, ``Z`` (:func:`history_time`)."""
    message_id: str
    receive_count: int
    outcome: RecordOutcome
    category: Category
    reason: str
    correlation_id: str
    event_id: str
    source_entity: str
    source_id: str
    realm_id: str | None = None
    source_number: str | None = None
    deal_id: str | None = None
    deal_stage: str | None = None
    outlook_event_id: str | None = None
    teams_meeting_id: str | None = None
    estimate_id: str | None = None
    estimate_number: str | None = None
    invoice_id: str | None = None
    invoice_number: str | None = None
    next_attempt_at: str | None = None
    """A failure given back to SQS: when it is delivered again (now + the delay the consumer set)."""
    queue_arn: str | None = None
    receipt_handle: str | None = None
    """The receive's handle while the record waits (``ledgerlink retry`` sets its visibility to 0)."""
    queued_at: str | None = None
    """When the message was sent to the flow's queue (SQS ``SentTimestamp``, same format as ``at``): ``at``
    minus this is the record's latency, retries' delays included (``ledgerlink ui`` plots it)."""

    @property
    def row_id(self) -> str:
        return f"{self.at}#{self.flow.value}#{self.message_id}#{self.receive_count}"

    @property
    def source(self) -> str:
        """``Invoice 1006`` (its DocNumber) or ``Invoice Id 130`` or ``deal 91013``."""
        if self.source_number:
            return f"{self.source_entity} {self.source_number}"
        if self.source_entity == "deal":
            return f"deal {self.source_id}"
        return f"{self.source_entity} Id {self.source_id}"

    def to_json(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(self).items() if value not in (None, "")}
        data.pop("receipt_handle", None)  # operational, long, and of no use to a reader
        data["flow"] = self.flow.value
        data["outcome"] = self.outcome.value
        data["category"] = self.category.value
        data["source"] = self.source
        data["row_id"] = self.row_id
        return data


def history_time(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def feed_pk(connection: str) -> str:
    return f"{PK_PREFIX}{connection}"


def document_pk(connection: str, entity: str, entity_id: str) -> str:
    return f"{PK_PREFIX}{connection}#{entity.lower()}#{entity_id}"


def deal_pk(connection: str, deal_id: str) -> str:
    return f"{PK_PREFIX}{connection}#deal#{deal_id}"


def number_pk(connection: str, entity: str, number: str) -> str:
    return f"{PK_PREFIX}{connection}#number#{entity.lower()}#{number}"


def partitions(row: HistoryRow) -> list[str]:
    """Every partition ``row`` is written to (module docstring)."""
    keys = [feed_pk(row.connection)]
    if row.source_entity == "deal":
        keys.append(deal_pk(row.connection, row.source_id))
    else:
        keys.append(document_pk(row.connection, row.source_entity, row.source_id))
        if row.source_number:
            keys.append(number_pk(row.connection, row.source_entity, row.source_number))
    if row.deal_id and row.source_entity != "deal":
        keys.append(deal_pk(row.connection, row.deal_id))
    for entity, entity_id, number in (
        ("Estimate", row.estimate_id, row.estimate_number),
        ("Invoice", row.invoice_id, row.invoice_number),
    ):
        if entity_id and not (entity == row.source_entity and entity_id == row.source_id):
            keys.append(document_pk(row.connection, entity, entity_id))
            if number:
                keys.append(number_pk(row.connection, entity, number))
    return list(dict.fromkeys(keys))


class HistoryStore:
    """History rows in the links table (module docstring)."""

    def __init__(
        self, table_name: str, dynamodb: DynamoDBClient | None = None, *, ttl_days: int = DEFAULT_TTL_DAYS
    ) -> None:
        if not table_name:
            raise ValueError("a links table name is required")
        if ttl_days <= 0:
            raise ValueError(f"history ttl_days must be positive, got {ttl_days}")
        self.table_name = table_name
        self.ttl_days = ttl_days
        self._client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")

    def write(self, rows: Sequence[HistoryRow]) -> None:
        """Put every row under each of its partitions, 25 items a call; :class:`HistoryStoreError`."""
        requests = [{"PutRequest": {"Item": item}} for row in rows for item in self._items(row)]
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            pending: dict[str, Any] = {self.table_name: requests[start : start + BATCH_WRITE_MAX]}
            for attempt in range(_UNPROCESSED_ROUNDS):
                try:
                    response = self._client.batch_write_item(RequestItems=pending)
                except (ClientError, BotoCoreError) as error:
                    raise _error(self.table_name, "BatchWriteItem", error) from None
                pending = dict(response.get("UnprocessedItems") or {})
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)  # DynamoDB asks for a backoff before resending these
            if pending:
                raise HistoryStoreError(f"links table {self.table_name}: history rows left unprocessed")

    def read(self, pk: str, *, limit: int | None = None) -> list[HistoryRow]:
        """A partition's rows, oldest first; with ``limit``, its newest ``limit`` (still oldest first)."""
        newest_first = limit is not None
        options: dict[str, Any] = {}
        found: list[HistoryRow] = []
        while True:
            if limit is not None:
                options["Limit"] = limit - len(found)
            try:
                page = self._client.query(
                    TableName=self.table_name,
                    KeyConditionExpression="#pk = :pk",
                    ExpressionAttributeNames={"#pk": PK},
                    ExpressionAttributeValues={":pk": {"S": pk}},
                    ScanIndexForward=not newest_first,
                    **options,
                )
            except (ClientError, BotoCoreError) as error:
                raise _error(self.table_name, "Query", error) from None
            found.extend(_row(raw) for raw in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last or (limit is not None and len(found) >= limit):
                break
            options["ExclusiveStartKey"] = last
        return found[::-1] if newest_first else found

    def recent(self, connection: str, limit: int = 50) -> list[HistoryRow]:
        return self.read(feed_pk(connection), limit=limit)

    def trace_invoice(self, connection: str, reference: str) -> list[HistoryRow]:
        """Every hop of an invoice named by DocNumber or Id (``realm:Id`` too), with the hops of its deal
        (the HubSpot -> QBO flow's), in time order."""
        return self._trace(connection, _document_partitions(connection, "Invoice", reference))

    def trace_deal(self, connection: str, deal_id: str) -> list[HistoryRow]:
        """Every hop of a deal and of the QBO documents its rows name, in time order."""
        return self._trace(connection, [deal_pk(connection, deal_id)])

    def _trace(self, connection: str, first: list[str]) -> list[HistoryRow]:
        rows: dict[str, HistoryRow] = {}
        seen: set[str] = set()
        todo = list(first)
        # Follow the links one step each way: the document's deal, the deal's documents.
        for _round in range(2):
            more: list[str] = []
            for pk in todo:
                if pk in seen:
                    continue
                seen.add(pk)
                for row in self.read(pk):
                    rows[row.row_id] = row
                    more.extend(key for key in partitions(row) if key != feed_pk(connection))
            todo = more
        return sorted(rows.values(), key=lambda row: row.row_id)

    def _items(self, row: HistoryRow) -> list[dict[str, Any]]:
        for name, value in (("connection", row.connection), ("source_id", row.source_id)):
            if not value or "#" in value:
                raise ValueError(f"a history row's {name} is required and holds no '#': {value!r}")
        if not _AT.fullmatch(row.at):
            raise ValueError(f"a history row's at is UTC to the millisecond: {row.at!r}")
        body: dict[str, Any] = {}
        for spec in fields(row):
            value = getattr(row, spec.name)
            if value is None or value == "":
                continue
            if spec.name == "receive_count":
                body[spec.name] = {"N": str(value)}
            else:
                body[spec.name] = {"S": str(value.value if isinstance(value, StrEnum) else value)}
        body[TTL_ATTRIBUTE] = {"N": str(_epoch(row.at) + self.ttl_days * SECONDS_PER_DAY)}
        return [{PK: {"S": pk}, SK: {"S": row.row_id}, **body} for pk in partitions(row)]


def _document_partitions(connection: str, entity: str, reference: str) -> list[str]:
    entity_id = reference.split(":", 1)[1] if ":" in reference else reference
    return [number_pk(connection, entity, reference), document_pk(connection, entity, entity_id)]


def _row(raw: Mapping[str, Any]) -> HistoryRow:
    def text(name: str) -> str | None:
        value = raw.get(name)
        return str(value["S"]) if value and "S" in value else None

    try:
        return HistoryRow(
            connection=text("connection") or "",
            flow=Flow(text("flow") or ""),
            at=text("at") or "",
            message_id=text("message_id") or "",
            receive_count=int((raw.get("receive_count") or {}).get("N") or 0),
            outcome=RecordOutcome(text("outcome") or ""),
            category=Category(text("category") or ""),
            reason=text("reason") or "",
            correlation_id=text("correlation_id") or "",
            event_id=text("event_id") or "",
            source_entity=text("source_entity") or "",
            source_id=text("source_id") or "",
            **{
                spec.name: text(spec.name)
                for spec in fields(HistoryRow)
                if spec.default is None and spec.name not in ("receive_count",)
            },
        )
    except ValueError:
        raise HistoryStoreError(f"history row {raw[PK]['S']} {raw[SK]['S']} cannot be read") from None


def _epoch(at: str) -> int:
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())


def _error(table: str, operation: str, error: ClientError | BotoCoreError) -> HistoryStoreError:
    code = (
        str(error.response.get("Error", {}).get("Code"))
        if isinstance(error, ClientError)
        else type(error).__name__
    )
    return HistoryStoreError(f"links table {table}: history {operation} failed ({code})")


def with_subject(row: HistoryRow, subject: Subject) -> HistoryRow:
    """``row`` with every field ``subject`` sets."""
    return replace(row, **{key: value for key, value in asdict(subject).items() if value is not None})


def rows_in(rows: Iterable[HistoryRow], *, outcome: RecordOutcome) -> list[HistoryRow]:
    return [row for row in rows if row.outcome is outcome]
