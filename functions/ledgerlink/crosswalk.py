"""The crosswalk: which HubSpot record each QBO entity became, and which version of it was synced.

One item per QBO entity in the links table (keys from :data:`ledgerlink.tables.LINKS`):
pk ``<realm>#<Entity>#<QBO Id>``, sk ``link``, with

- ``hubspot_id``: the deal (Invoice, Estimate) or company (Customer); ``contact_id`` for a customer's
  contact; ``company_id`` / ``contact_id`` the deal is associated with; ``line_item_ids`` the HubSpot
  line items LedgerLink wrote for the deal (only these are ever archived); ``invoice_ids`` the
  invoices a Payment was applied to (so a deleted payment still re-syncs them);
- ``synced_ms`` and ``sync_token``: the version HubSpot now shows — the entity's
  ``MetaData.LastUpdatedTime`` (epoch ms) and its ``SyncToken``. QBO writes that timestamp to the
  second, so two edits within one second differ only by their SyncToken;
- ``dirty``: set when a write lost a race against a newer version (see :meth:`LinkStore.save`), so the
  next event re-writes even though the version is not newer;
- ``origin``: ``"hubspot"`` (:data:`ledgerlink.mapping.origin.ORIGIN_HUBSPOT`) when LedgerLink created
  the Estimate or Invoice in QBO for the HubSpot deal ``hubspot_id`` (a "CRM-born" document,
  docs/mapping.md#crm-born-documents); absent for what QBO users create. The HubSpot → QBO flow
  records it with :meth:`LinkStore.claim_for_deal`; :meth:`LinkStore.save` keeps it (the deal sync
  removes it, :data:`NO_ORIGIN`, only when it took the document over because its deal is gone).

:meth:`LinkStore.save` is a conditional write — ``synced_ms`` only moves forward — so a slow Lambda
holding an older version can never record it over a newer one. It reports when it lost, and marks the
link dirty, because its HubSpot write may have landed after the newer one: the next delivery of the
event then re-writes the newest version.

Failures: pk ``event#<event_id>``, sk ``failure`` holds the last failure of an event (reason, whether
retrying can help, the SQS message id and receive count) for ``ledgerlink local status`` and for the
fast path that fails a redelivered, permanently failing message without calling any vendor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from ledgerlink.mapping.origin import ORIGIN_HUBSPOT
from ledgerlink.tables import LINKS

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

PK: Final = LINKS.partition_key
SK: Final = LINKS.sort_key or "sk"
LINK_SK: Final = "link"
FAILURE_SK: Final = "failure"
BATCH_GET_MAX: Final = 100  # DynamoDB BatchGetItem limit
PARALLEL_WRITES: Final = 8
# Link.origin that removes the stored origin when saved (an absent one reads as None).
NO_ORIGIN: Final = ""


class LinkStoreError(RuntimeError):
    """The links table could not be read or written; retryable (the table may answer later)."""

    retryable = True
    reason = "links_table_unavailable"


@dataclass(frozen=True)
class EntityKey:
    realm_id: str
    entity: str
    entity_id: str

    @property
    def pk(self) -> str:
        return f"{self.realm_id}#{self.entity}#{self.entity_id}"

    def __str__(self) -> str:
        return f"{self.entity} {self.entity_id} (realm {self.realm_id})"


@dataclass(frozen=True)
class Link:
    key: EntityKey
    hubspot_id: str | None = None
    synced_ms: int | None = None
    sync_token: int = 0
    contact_id: str | None = None
    company_id: str | None = None
    line_item_ids: frozenset[str] = field(default_factory=frozenset)
    invoice_ids: frozenset[str] = field(default_factory=frozenset)
    status: str | None = None
    dirty: bool = False
    # Saved: None keeps the stored origin, NO_ORIGIN removes it (see LinkStore.save).
    origin: str | None = None

    def already_synced(self, last_updated_ms: int | None, sync_token: int = 0) -> bool:
        """True when HubSpot already shows this version (or a newer one) and nothing forces a re-write."""
        if self.dirty or last_updated_ms is None or self.synced_ms is None:
            return False
        return (self.synced_ms, self.sync_token) >= (last_updated_ms, sync_token)

    def newer_than(self, event_ms: int) -> bool:
        """True when what is synced is strictly newer than an event's timestamp: an out-of-order event."""
        return not self.dirty and self.synced_ms is not None and self.synced_ms > event_ms


@dataclass(frozen=True)
class Failure:
    event_id: str
    reason: str
    error_type: str
    retryable: bool
    message_id: str
    receive_count: int
    realm_id: str
    entity: str
    entity_id: str
    failed_at: str


class LinkStore:
    """Links and failures in the links table."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        connection: str | None = None,
        config_version: str | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("a links table name is required")
        self.table_name = table_name
        # Every row this store writes names its connection and the configuration version it was written
        # under (ledgerlink.configfile); keys are per realm.
        self.connection = connection
        self.config_version = config_version
        self._client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")

    # ---- links

    def get_many(self, keys: Iterable[EntityKey]) -> dict[EntityKey, Link]:
        """The links that exist for ``keys`` (strongly consistent), by key."""
        wanted = {key.pk: key for key in keys}
        found: dict[EntityKey, Link] = {}
        for item in self._read_batch([{PK: {"S": pk}, SK: {"S": LINK_SK}} for pk in sorted(wanted)]):
            key = wanted[item[PK]["S"]]
            found[key] = _link(key, item)
        return found

    def save(self, link: Link, *, event_id: str) -> bool:
        """Record that HubSpot shows ``link.synced_ms``; False (and the link marked dirty) when a newer
        version was recorded meanwhile by another worker.

        The stored ``origin`` is kept when ``link.origin`` is None, replaced when it names one, and
        removed when it is :data:`NO_ORIGIN` (the deal sync took over a CRM-born document whose deal is
        gone from HubSpot)."""
        if link.synced_ms is None:
            raise ValueError(f"{link.key}: a link records the synced LastUpdatedTime")
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":synced": {"N": str(link.synced_ms)},
            ":token": {"N": str(link.sync_token)},
            ":at": {"S": datetime.now(UTC).isoformat(timespec="milliseconds")},
            ":event": {"S": event_id},
            ":false": {"BOOL": False},
        }
        assignments = [
            "synced_ms = :synced",
            "sync_token = :token",
            "synced_at = :at",
            "event_id = :event",
            "dirty = :false",
        ]
        removals: list[str] = []
        optional = {
            "#connection": self.connection,  # a DynamoDB reserved word: by name placeholder
            "config_version": self.config_version,
            "hubspot_id": link.hubspot_id,
            "contact_id": link.contact_id,
            "company_id": link.company_id,
            "#status": link.status,
            "#origin": link.origin or None,
        }
        for attribute, value in optional.items():
            if value is None:
                continue
            placeholder = ":" + attribute.lstrip("#")
            if attribute.startswith("#"):
                names[attribute] = attribute[1:]
            values[placeholder] = {"S": value}
            assignments.append(f"{attribute} = {placeholder}")
        for attribute, ids in (("line_item_ids", link.line_item_ids), ("invoice_ids", link.invoice_ids)):
            if ids:
                values[":" + attribute] = {"SS": sorted(ids)}
                assignments.append(f"{attribute} = :{attribute}")
            else:
                removals.append(attribute)
        if link.origin == NO_ORIGIN:
            names["#origin"] = "origin"
            removals.append("#origin")
        expression = "SET " + ", ".join(assignments) + (" REMOVE " + ", ".join(removals) if removals else "")
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": link.key.pk}, SK: {"S": LINK_SK}},
                UpdateExpression=expression,
                # The version only moves forward; an equal version is the same data written again.
                ConditionExpression=(
                    "attribute_not_exists(synced_ms) OR synced_ms < :synced "
                    "OR (synced_ms = :synced AND (attribute_not_exists(sync_token) OR sync_token <= :token))"
                ),
                ExpressionAttributeValues=values,
                **({"ExpressionAttributeNames": names} if names else {}),  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise links_table_error(self.table_name, "UpdateItem", error) from None
            self.mark_dirty(link.key)
            return False
        return True

    def save_all(self, links: Sequence[tuple[Link, str]]) -> list[bool]:
        """:meth:`save` for each (link, event id), side by side (one conditional write each; DynamoDB has
        no conditional batch write short of an all-or-nothing transaction). Results in input order."""
        if len(links) <= 1:
            return [self.save(link, event_id=event_id) for link, event_id in links]
        with ThreadPoolExecutor(max_workers=PARALLEL_WRITES) as pool:
            return list(pool.map(lambda item: self.save(item[0], event_id=item[1]), links))

    def claim_for_deal(self, key: EntityKey, deal_id: str) -> None:
        """Record that the document ``key`` was created in QBO for HubSpot deal ``deal_id``: its link
        names the deal, with ``origin`` ``"hubspot"`` (created when absent).

        One unconditional UpdateItem that sets ``hubspot_id`` and ``origin`` only: the synced version
        (``synced_ms``, ``sync_token``), ``dirty`` and every other attribute the deal sync recorded stay,
        so the deal sync's version checks are unaffected. A link it creates also names this store's
        connection and configuration version, as every row does (an existing row keeps its own)."""
        if not deal_id:
            raise ValueError(f"{key}: a HubSpot deal id is required")
        names = {"#origin": "origin", "#hubspot_id": "hubspot_id"}
        values: dict[str, Any] = {":deal": {"S": deal_id}, ":origin": {"S": ORIGIN_HUBSPOT}}
        assignments = ["#hubspot_id = :deal", "#origin = :origin"]
        for attribute, value in (("connection", self.connection), ("config_version", self.config_version)):
            if value:
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = {"S": value}
                assignments.append(f"#{attribute} = if_not_exists(#{attribute}, :{attribute})")
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": key.pk}, SK: {"S": LINK_SK}},
                UpdateExpression="SET " + ", ".join(assignments),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            raise links_table_error(self.table_name, "UpdateItem", error) from None

    def forget(self, link: Link) -> bool:
        """Drop a link whose HubSpot records are gone (a user deleted them in HubSpot), so the entity is
        resolved again like a new one. Conditional: only while the link still names the same records,
        so a link another worker already repaired stays. True when this call dropped it."""
        names = {"#h": "hubspot_id", "#c": "contact_id"}
        values: dict[str, Any] = {}
        conditions = []
        for placeholder, value in (("#h", link.hubspot_id), ("#c", link.contact_id)):
            if value is None:
                conditions.append(f"attribute_not_exists({placeholder})")
            else:
                values[":" + placeholder[1:]] = {"S": value}
                conditions.append(f"{placeholder} = :{placeholder[1:]}")
        try:
            self._client.delete_item(
                TableName=self.table_name,
                Key={PK: {"S": link.key.pk}, SK: {"S": LINK_SK}},
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                **({"ExpressionAttributeValues": values} if values else {}),  # type: ignore[arg-type]
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise links_table_error(self.table_name, "DeleteItem", error) from None
            return False
        return True

    def mark_dirty(self, key: EntityKey) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={PK: {"S": key.pk}, SK: {"S": LINK_SK}},
                UpdateExpression="SET dirty = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        except ClientError as error:
            raise links_table_error(self.table_name, "UpdateItem", error) from None

    # ---- failures

    def record_failures(self, failures: Sequence[Failure]) -> None:
        items = [
            {
                **_failure_key(failure.event_id),
                "reason": {"S": failure.reason[:2000]},
                "error_type": {"S": failure.error_type},
                "retryable": {"BOOL": failure.retryable},
                "message_id": {"S": failure.message_id},
                "receive_count": {"N": str(failure.receive_count)},
                "realm_id": {"S": failure.realm_id},
                **({"connection": {"S": self.connection}} if self.connection else {}),
                **({"config_version": {"S": self.config_version}} if self.config_version else {}),
                "entity": {"S": failure.entity},
                "entity_id": {"S": failure.entity_id},
                "failed_at": {"S": failure.failed_at},
            }
            for failure in failures
        ]
        self._write_batch([{"PutRequest": {"Item": item}} for item in items])

    def clear_failures(self, event_ids: Iterable[str]) -> None:
        keys = sorted(set(event_ids))
        self._write_batch([{"DeleteRequest": {"Key": _failure_key(eid)}} for eid in keys])

    def failures(self, event_ids: Iterable[str]) -> dict[str, Failure]:
        """The recorded failures of these events, by event id."""
        found: dict[str, Failure] = {}
        for item in self._read_batch([_failure_key(eid) for eid in sorted(set(event_ids))]):
            failure = _failure(item)
            found[failure.event_id] = failure
        return found

    def recent_failures(self, limit: int = 20) -> list[Failure]:
        """The failures on record, newest first (a scan: for `ledgerlink local status`, not for Lambdas)."""
        paginator = self._client.get_paginator("scan")
        found: list[Failure] = []
        for page in paginator.paginate(
            TableName=self.table_name,
            FilterExpression="#sk = :failure",
            ExpressionAttributeNames={"#sk": SK},
            ExpressionAttributeValues={":failure": {"S": FAILURE_SK}},
        ):
            found.extend(_failure(item) for item in page.get("Items", []))
        return sorted(found, key=lambda failure: failure.failed_at, reverse=True)[:limit]

    def _read_batch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items of ``keys`` that exist (strongly consistent), BATCH_GET_MAX keys a request."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            request: dict[str, Any] = {
                self.table_name: {"Keys": keys[start : start + BATCH_GET_MAX], "ConsistentRead": True}
            }
            while request:
                try:
                    response = self._client.batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise links_table_error(self.table_name, "BatchGetItem", error) from None
                items.extend(response.get("Responses", {}).get(self.table_name, []))
                request = dict(response.get("UnprocessedKeys") or {})
        return items

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table_name: requests[start : start + 25]}
            while pending:
                try:
                    response = self._client.batch_write_item(RequestItems=pending)
                except ClientError as error:
                    raise links_table_error(self.table_name, "BatchWriteItem", error) from None
                pending = dict(response.get("UnprocessedItems") or {})


def _failure_key(event_id: str) -> dict[str, Any]:
    return {PK: {"S": f"event#{event_id}"}, SK: {"S": FAILURE_SK}}


def links_table_error(table: str, operation: str, error: ClientError) -> LinkStoreError:
    code = error.response.get("Error", {}).get("Code", "Unknown")
    return LinkStoreError(f"links table {table}: {operation} failed ({code})")


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if value and "S" in value else None


def _link(key: EntityKey, item: Mapping[str, Any]) -> Link:
    synced = item.get("synced_ms")
    return Link(
        key=key,
        hubspot_id=_text(item, "hubspot_id"),
        synced_ms=int(synced["N"]) if synced and "N" in synced else None,
        sync_token=int(item.get("sync_token", {}).get("N", "0")),
        contact_id=_text(item, "contact_id"),
        company_id=_text(item, "company_id"),
        line_item_ids=frozenset(item.get("line_item_ids", {}).get("SS", [])),
        invoice_ids=frozenset(item.get("invoice_ids", {}).get("SS", [])),
        status=_text(item, "status"),
        dirty=bool(item.get("dirty", {}).get("BOOL", False)),
        origin=_text(item, "origin"),
    )


def _failure(item: Mapping[str, Any]) -> Failure:
    return Failure(
        event_id=item[PK]["S"].removeprefix("event#"),
        reason=_text(item, "reason") or "",
        error_type=_text(item, "error_type") or "",
        retryable=bool(item.get("retryable", {}).get("BOOL", True)),
        message_id=_text(item, "message_id") or "",
        receive_count=int(item.get("receive_count", {}).get("N", "0")),
        realm_id=_text(item, "realm_id") or "",
        entity=_text(item, "entity") or "",
        entity_id=_text(item, "entity_id") or "",
        failed_at=_text(item, "failed_at") or "",
    )


class InMemoryLinksTable:
    """The links table's rows in this process: what several :class:`InMemoryLinkStore` share, as the
    Lambdas of one deployment share the table (tests, benchmarks, one-process tools)."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.failures: dict[str, Failure] = {}
        self.lock = threading.Lock()


class InMemoryLinkStore(LinkStore):
    """:class:`LinkStore` on an :class:`InMemoryLinksTable`, with the same conditions as the DynamoDB
    writes: versions only move forward (a lost save marks the link dirty), a ``None`` attribute keeps
    the stored one, empty id sets are removed, :data:`NO_ORIGIN` removes the origin, and ``forget`` only
    drops a link that still names the same records. No table, no AWS client."""

    def __init__(
        self,
        table: InMemoryLinksTable | None = None,
        *,
        connection: str | None = None,
        config_version: str | None = None,
    ) -> None:
        # The DynamoDB store's constructor is not called: it would build an AWS client.
        self.table_name = "in-memory"
        self.connection = connection
        self.config_version = config_version
        self.table = table if table is not None else InMemoryLinksTable()

    def get_many(self, keys: Iterable[EntityKey]) -> dict[EntityKey, Link]:
        with self.table.lock:
            return {
                key: replace(found, key=key)
                for key in keys
                if (found := self.table.links.get(key.pk)) is not None
            }

    def save(self, link: Link, *, event_id: str) -> bool:
        if link.synced_ms is None:
            raise ValueError(f"{link.key}: a link records the synced LastUpdatedTime")
        with self.table.lock:
            stored = self.table.links.get(link.key.pk)
            # The DynamoDB condition: the stored version only moves forward (an equal one is rewritten).
            if (
                stored is not None
                and stored.synced_ms is not None
                and (stored.synced_ms, stored.sync_token) > (link.synced_ms, link.sync_token)
            ):
                self.table.links[link.key.pk] = replace(stored, dirty=True)
                return False
            base = stored if stored is not None else Link(key=link.key)
            origin = base.origin if link.origin is None else (link.origin or None)
            self.table.links[link.key.pk] = replace(
                base,
                key=link.key,
                synced_ms=link.synced_ms,
                sync_token=link.sync_token,
                dirty=False,
                hubspot_id=link.hubspot_id if link.hubspot_id is not None else base.hubspot_id,
                contact_id=link.contact_id if link.contact_id is not None else base.contact_id,
                company_id=link.company_id if link.company_id is not None else base.company_id,
                status=link.status if link.status is not None else base.status,
                line_item_ids=link.line_item_ids,
                invoice_ids=link.invoice_ids,
                origin=origin,
            )
            return True

    def save_all(self, links: Sequence[tuple[Link, str]]) -> list[bool]:
        return [self.save(link, event_id=event_id) for link, event_id in links]

    def claim_for_deal(self, key: EntityKey, deal_id: str) -> None:
        if not deal_id:
            raise ValueError(f"{key}: a HubSpot deal id is required")
        with self.table.lock:
            base = self.table.links.get(key.pk) or Link(key=key)
            self.table.links[key.pk] = replace(base, hubspot_id=deal_id, origin=ORIGIN_HUBSPOT)

    def forget(self, link: Link) -> bool:
        with self.table.lock:
            stored = self.table.links.get(link.key.pk)
            if stored is None or (stored.hubspot_id, stored.contact_id) != (link.hubspot_id, link.contact_id):
                return False
            del self.table.links[link.key.pk]
            return True

    def mark_dirty(self, key: EntityKey) -> None:
        with self.table.lock:
            base = self.table.links.get(key.pk) or Link(key=key)
            self.table.links[key.pk] = replace(base, dirty=True)

    def record_failures(self, failures: Sequence[Failure]) -> None:
        with self.table.lock:
            for failure in failures:
                self.table.failures[failure.event_id] = replace(failure, reason=failure.reason[:2000])

    def clear_failures(self, event_ids: Iterable[str]) -> None:
        with self.table.lock:
            for event_id in set(event_ids):
                self.table.failures.pop(event_id, None)

    def failures(self, event_ids: Iterable[str]) -> dict[str, Failure]:
        with self.table.lock:
            return {
                eid: found for eid in set(event_ids) if (found := self.table.failures.get(eid)) is not None
            }

    def recent_failures(self, limit: int = 20) -> list[Failure]:
        with self.table.lock:
            found = list(self.table.failures.values())
        return sorted(found, key=lambda failure: failure.failed_at, reverse=True)[:limit]
