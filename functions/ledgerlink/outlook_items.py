"""The Outlook items LedgerLink wrote for an invoice (its due-date calendar event now; Teams follow-up
meetings next), kept in the links table beside the invoice's deal link.

One item per invoice and kind: pk ``<realm>#Invoice#<QBO Id>`` (the invoice link's pk, so everything
LedgerLink made of one invoice sits under one key), sk ``outlook#<kind>`` (``outlook#calendar``), with

- ``mailbox`` (and ``mailbox_source``: ``deal_owner`` or ``accounts_receivable``) whose calendar holds it,
  ``item_id`` (Graph's immutable id) and ``etag`` (its ``@odata.etag`` after LedgerLink's last write),
  ``transaction_id`` (Graph's idempotency key of the create) and ``generation`` (how many events this
  invoice has had: a re-opened invoice gets a new event, hence a new ``transactionId``);
- ``present``: whether the item is on the calendar as far as LedgerLink knows (False once removed);
- ``version_ms`` / ``sync_token`` / ``terminal``: the QBO version the calendar reflects (``terminal``: the
  invoice was deleted, which no later version can undo), and ``fingerprint``, a hash of what was
  written, so the same content is never written twice;
- ``due_date``, ``status``, ``balance``, ``currency``, ``deal_id``, and ``snapshot`` (the invoice as the last
  ``deal.synced`` described it, JSON): what the Teams flow reads; ``owed_connection`` (the connection,
  only while the invoice is owed) keys the sparse index ``owed-by-due-date``
  (:data:`ledgerlink.tables.LINKS_OWED_BY_DUE_DATE`) the follow-up sweep queries by due date;
- ``revision``: an optimistic lock. :meth:`OutlookItemStore.save` writes only when the revision is still
  the one that was read, so two workers handling the same invoice never both win: the loser retries and
  finds the newer state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from ledgerlink.crosswalk import PK, SK, links_table_error
from ledgerlink.tables import LINKS_OWED_BY_DUE_DATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

CALENDAR: Final = "calendar"


@dataclass(frozen=True)
class OutlookItem:
    pk: str
    kind: str
    connection: str
    mailbox: str | None = None
    mailbox_source: str | None = None
    item_id: str | None = None
    etag: str | None = None
    transaction_id: str | None = None
    generation: int = 0
    present: bool = False
    version_ms: int = 0
    sync_token: int = 0
    terminal: bool = False
    fingerprint: str | None = None
    due_date: str | None = None
    status: str | None = None
    balance: str | None = None
    currency: str | None = None
    deal_id: str | None = None
    owed: bool = False
    snapshot: str | None = None
    revision: int = 0

    @property
    def version(self) -> tuple[float, int]:
        return (float("inf"), 0) if self.terminal else (float(self.version_ms), self.sync_token)

    def but(self, **changes: Any) -> OutlookItem:
        return replace(self, **changes)


class OutlookItemStore:
    """Outlook items of one connection in the links table (module docstring)."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        connection: str,
        config_version: str | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("a links table name is required")
        self.table_name = table_name
        self.connection = connection
        self.config_version = config_version
        self._client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")

    def get(self, pk: str, kind: str) -> OutlookItem | None:
        try:
            found = self._client.get_item(
                TableName=self.table_name,
                Key={PK: {"S": pk}, SK: {"S": f"outlook#{kind}"}},
                ConsistentRead=True,
            )
        except ClientError as error:
            raise links_table_error(self.table_name, "GetItem", error) from None
        item = found.get("Item")
        return _item(item) if item else None

    def save(self, item: OutlookItem) -> OutlookItem | None:
        """Write ``item`` as revision ``item.revision + 1`` if the stored revision is still
        ``item.revision`` (0: not stored yet); the stored item, or None when another worker wrote first."""
        stored = item.but(revision=item.revision + 1)
        attributes: dict[str, Any] = {
            PK: {"S": item.pk},
            SK: {"S": f"outlook#{item.kind}"},
            "kind": {"S": item.kind},
            "connection": {"S": self.connection},
            "generation": {"N": str(stored.generation)},
            "present": {"BOOL": stored.present},
            "version_ms": {"N": str(stored.version_ms)},
            "sync_token": {"N": str(stored.sync_token)},
            "terminal": {"BOOL": stored.terminal},
            "revision": {"N": str(stored.revision)},
            "updated_at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
        }
        for name in (
            "mailbox",
            "mailbox_source",
            "item_id",
            "etag",
            "transaction_id",
            "fingerprint",
            "due_date",
            "status",
            "balance",
            "currency",
            "deal_id",
            "snapshot",
        ):
            value = getattr(stored, name)
            if value is not None:
                attributes[name] = {"S": str(value)}
        if self.config_version:
            attributes["config_version"] = {"S": self.config_version}
        if stored.owed and stored.due_date:
            attributes[LINKS_OWED_BY_DUE_DATE.partition_key] = {"S": self.connection}
        condition = "attribute_not_exists(#pk)" if item.revision == 0 else "#revision = :revision"
        options: dict[str, Any] = {
            "ExpressionAttributeNames": {"#pk": PK} if item.revision == 0 else {"#revision": "revision"},
        }
        if item.revision:
            options["ExpressionAttributeValues"] = {":revision": {"N": str(item.revision)}}
        try:
            self._client.put_item(
                TableName=self.table_name, Item=attributes, ConditionExpression=condition, **options
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise links_table_error(self.table_name, "PutItem", error) from None
        return stored


def owed_between(
    client: DynamoDBClient, table_name: str, connection: str, first_day: str, last_day: str
) -> list[OutlookItem]:
    """The calendar items of ``connection``'s owed invoices due from ``first_day`` to ``last_day``
    (ISO dates, both included), from the sparse due-date index; every page read."""
    index = LINKS_OWED_BY_DUE_DATE
    found: list[OutlookItem] = []
    options: dict[str, Any] = {}
    while True:
        try:
            page = client.query(
                TableName=table_name,
                IndexName=index.name,
                KeyConditionExpression="#owed = :connection AND #due BETWEEN :first AND :last",
                ExpressionAttributeNames={"#owed": index.partition_key, "#due": index.sort_key},
                ExpressionAttributeValues={
                    ":connection": {"S": connection},
                    ":first": {"S": first_day},
                    ":last": {"S": last_day},
                },
                **options,
            )
        except ClientError as error:
            raise links_table_error(table_name, "Query", error) from None
        found.extend(_item(raw) for raw in page.get("Items", []) if raw[SK]["S"] == f"outlook#{CALENDAR}")
        last = page.get("LastEvaluatedKey")
        if not last:
            return found
        options["ExclusiveStartKey"] = last


def _item(raw: dict[str, Any]) -> OutlookItem:
    def text(name: str) -> str | None:
        value = raw.get(name)
        return str(value["S"]) if value and "S" in value else None

    def number(name: str) -> int:
        value = raw.get(name)
        return int(value["N"]) if value and "N" in value else 0

    def flag(name: str) -> bool:
        return bool(raw.get(name, {}).get("BOOL", False))

    return OutlookItem(
        pk=raw[PK]["S"],
        kind=text("kind") or raw[SK]["S"].removeprefix("outlook#"),
        connection=text("connection") or "",
        mailbox=text("mailbox"),
        mailbox_source=text("mailbox_source"),
        item_id=text("item_id"),
        etag=text("etag"),
        transaction_id=text("transaction_id"),
        generation=number("generation"),
        present=flag("present"),
        version_ms=number("version_ms"),
        sync_token=number("sync_token"),
        terminal=flag("terminal"),
        fingerprint=text("fingerprint"),
        due_date=text("due_date"),
        status=text("status"),
        balance=text("balance"),
        currency=text("currency"),
        deal_id=text("deal_id"),
        owed=LINKS_OWED_BY_DUE_DATE.partition_key in raw,
        snapshot=text("snapshot"),
        revision=number("revision"),
    )
