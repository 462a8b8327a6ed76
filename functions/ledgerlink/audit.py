"""The audit trail of the HubSpot -> QBO flow: one record per decision it makes about a deal (created,
updated, unchanged, skipped and why, failed and why), read back by ``ledgerlink audit deal <id>``.

Records live in the links table (keys from :data:`ledgerlink.tables.LINKS`), beside the crosswalk:
pk ``deal#<connection>#<deal id>``, so each connection's history of a deal is one partition and two
connections whose portals share a deal id never see each other's records; sk ``audit#<at>#<event id>``,
where ``at`` is the UTC time of the decision to the millisecond (``2026-12-02T06:30:01.123Z``: fixed
width, so the sort key orders records by time). The same (connection, deal, time, event id) written
twice is the same row, overwritten: a redelivered event re-recording its decision adds nothing.

Every attribute is a string (``detail`` a map of strings) and a field without a value is left out.
Audit records are kept for ever by default: a store made without ``ttl_days`` writes no expiry. The
links table has a TTL attribute (``tables.LINKS.ttl_attribute``, for the sync history); a store given
``ttl_days`` writes it as epoch seconds (a Number: DynamoDB's TTL ignores any other type), counted from
the record's own time so a rewrite keeps it. Were the attribute ever removed, such a store refuses at
construction rather than write an expiry DynamoDB would never act on.

Finding which connections hold a deal would need a scan of the links table (no index has the deal id),
so there is no such helper: the caller names the connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.crosswalk import PK, SK, LinkStoreError
from ledgerlink.tables import LINKS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PK_PREFIX: Final = "deal#"
SK_PREFIX: Final = "audit#"
# The links table's TTL attribute (None: it has none); read when a store is made.
TTL_ATTRIBUTE: str | None = LINKS.ttl_attribute
SECONDS_PER_DAY: Final = 86_400
_AT: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
# The optional text fields of a record, stored under their own names when set.
_OPTIONAL: Final = (
    "document",
    "deal_stage",
    "pipeline",
    "estimate_id",
    "estimate_number",
    "invoice_id",
    "invoice_number",
    "change",
    "change_source",
)


class AuditStoreError(LinkStoreError):
    """The audit trail could not be written or read (the links table did not answer); retryable."""

    reason = "audit_trail_unavailable"


class Decision(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class AuditRecord:
    connection: str
    deal_id: str
    at: str
    """UTC, to the millisecond, ``Z``: ``2026-12-02T06:30:01.123Z`` (:func:`audit_time`)."""
    event_id: str
    correlation_id: str
    config_version: str
    decision: Decision
    reason: str
    """Why, as a sentence an operator reads (``deal is at quote stage contractsent (pipeline default)``)."""
    document: str | None = None
    """``Estimate`` or ``Invoice``; None when no document was concerned."""
    deal_stage: str | None = None
    pipeline: str | None = None
    estimate_id: str | None = None
    estimate_number: str | None = None
    invoice_id: str | None = None
    invoice_number: str | None = None
    change: str | None = None
    """What the webhook said happened (``stage_changed``); the deal as re-read may say otherwise."""
    change_source: str | None = None
    """HubSpot's ``changeSource`` (``CRM_UI``, ``API``, ...)."""
    detail: Mapping[str, str] = field(default_factory=dict)


def audit_time(epoch_seconds: float) -> str:
    """``epoch_seconds`` as an audit record's ``at``: UTC, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def deal_pk(connection: str, deal_id: str) -> str:
    return f"{PK_PREFIX}{connection}#{deal_id}"


class AuditStore:
    """Audit records in the links table (module docstring)."""

    def __init__(
        self,
        table_name: str,
        dynamodb: DynamoDBClient | None = None,
        *,
        ttl_days: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("a links table name is required")
        if ttl_days is not None:
            if ttl_days <= 0:
                raise ValueError(f"audit records' ttl_days must be positive, got {ttl_days}")
            if TTL_ATTRIBUTE is None:
                raise ValueError(
                    "the links table has no TTL attribute (ledgerlink.tables.LINKS): audit records are "
                    "kept for ever; pass no ttl_days"
                )
        self.table_name = table_name
        self.ttl_days = ttl_days
        self._ttl_attribute = TTL_ATTRIBUTE
        self._clock: Clock = clock or SystemClock()
        self._client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")

    def now(self) -> str:
        """The store's clock now, as a record's ``at``."""
        return audit_time(self._clock.now())

    def record(self, record: AuditRecord) -> None:
        """Write ``record`` (one PutItem; the same keys again overwrite it). :class:`AuditStoreError`
        (retryable) when the table does not take it; ValueError for a record whose keys would not sort
        or parse (a malformed ``at``, a ``#`` in the deal id or connection)."""
        item = _item(record)
        if self.ttl_days is not None and self._ttl_attribute:
            expires = _epoch(record.at) + self.ttl_days * SECONDS_PER_DAY
            item[self._ttl_attribute] = {"N": str(expires)}
        try:
            self._client.put_item(TableName=self.table_name, Item=item)
        except (ClientError, BotoCoreError) as error:
            raise _error(self.table_name, "PutItem", error) from None

    def history(self, connection: str, deal_id: str, *, limit: int | None = None) -> list[AuditRecord]:
        """The deal's records in ``connection``, oldest first; with ``limit``, the newest ``limit`` of
        them (still oldest first). Strongly consistent: a record just written is there."""
        if limit is not None and limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        newest_first = limit is not None
        options: dict[str, Any] = {}
        found: list[AuditRecord] = []
        while True:
            if limit is not None:
                options["Limit"] = limit - len(found)
            try:
                page = self._client.query(
                    TableName=self.table_name,
                    KeyConditionExpression="#pk = :pk AND begins_with(#sk, :audit)",
                    ExpressionAttributeNames={"#pk": PK, "#sk": SK},
                    ExpressionAttributeValues={
                        ":pk": {"S": deal_pk(connection, deal_id)},
                        ":audit": {"S": SK_PREFIX},
                    },
                    ConsistentRead=True,
                    ScanIndexForward=not newest_first,
                    **options,
                )
            except (ClientError, BotoCoreError) as error:
                raise _error(self.table_name, "Query", error) from None
            found.extend(_record(raw) for raw in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last or (limit is not None and len(found) >= limit):
                break
            options["ExclusiveStartKey"] = last
        return found[::-1] if newest_first else found


def _item(record: AuditRecord) -> dict[str, Any]:
    for name, value in (("connection", record.connection), ("deal_id", record.deal_id)):
        if not value or "#" in value:
            raise ValueError(f"an audit record's {name} is required and holds no '#': {value!r}")
    if not _AT.fullmatch(record.at):
        raise ValueError(
            f"an audit record's at is UTC to the millisecond (2026-12-02T06:30:01.123Z): {record.at!r}"
        )
    if not record.event_id:
        raise ValueError("an audit record names its event")
    item: dict[str, Any] = {
        PK: {"S": deal_pk(record.connection, record.deal_id)},
        SK: {"S": f"{SK_PREFIX}{record.at}#{record.event_id}"},
        "connection": {"S": record.connection},
        "deal_id": {"S": record.deal_id},
        "at": {"S": record.at},
        "event_id": {"S": record.event_id},
        "correlation_id": {"S": record.correlation_id},
        "config_version": {"S": record.config_version},
        "decision": {"S": Decision(record.decision).value},
        "reason": {"S": record.reason},
    }
    for name in _OPTIONAL:
        value = getattr(record, name)
        if value is not None:
            item[name] = {"S": value}
    if record.detail:
        item["detail"] = {"M": {key: {"S": str(value)} for key, value in record.detail.items()}}
    return item


def _record(raw: Mapping[str, Any]) -> AuditRecord:
    def text(name: str) -> str | None:
        value = raw.get(name)
        return str(value["S"]) if value and "S" in value else None

    try:
        decision = Decision(text("decision") or "")
    except ValueError:
        raise AuditStoreError(
            f"audit record {raw[PK]['S']} {raw[SK]['S']} has an unknown decision {text('decision')!r}"
        ) from None
    detail = raw.get("detail", {}).get("M", {})
    return AuditRecord(
        connection=text("connection") or "",
        deal_id=text("deal_id") or "",
        at=text("at") or "",
        event_id=text("event_id") or "",
        correlation_id=text("correlation_id") or "",
        config_version=text("config_version") or "",
        decision=decision,
        reason=text("reason") or "",
        document=text("document"),
        deal_stage=text("deal_stage"),
        pipeline=text("pipeline"),
        estimate_id=text("estimate_id"),
        estimate_number=text("estimate_number"),
        invoice_id=text("invoice_id"),
        invoice_number=text("invoice_number"),
        change=text("change"),
        change_source=text("change_source"),
        detail={key: str(value.get("S", "")) for key, value in detail.items()},
    )


def _epoch(at: str) -> int:
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())


def _error(table: str, operation: str, error: ClientError | BotoCoreError) -> AuditStoreError:
    """The failure named by its AWS error code, or botocore's error type (no connection, a timeout)."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
    else:
        code = type(error).__name__
    return AuditStoreError(f"links table {table}: audit {operation} failed ({code})")
