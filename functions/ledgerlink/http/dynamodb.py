"""Rate-limit logs and circuit breakers in the vendor-state table, shared by every Lambda.

Item layout (keys from :data:`ledgerlink.tables.VENDOR_STATE`):

- rate-limit log: pk ``ratelimit#<vendor>#<group>#<scope>``, sk ``rolling``; attributes ``base_ms``,
  ``log`` (the admission times, see :class:`_SlidingLog`), ``version`` and ``expires_at`` (TTL).
- circuit breaker: pk ``breaker#<vendor>``, sk ``state``; attributes ``state``, ``failures``,
  ``opened_at``, ``probe_until``.
- concurrency slot: pk ``concurrency#<vendor>#<scope>``, sk ``slot#<n>`` (n from 0 to the limit - 1);
  attributes ``owner``, ``lease_until`` and ``expires_at`` (TTL); present only while held (or until
  TTL removes the slot of a holder that crashed).

An admission is a ``PutItem`` of the whole log guarded by ``version = <the version read>``; a lost
race re-decides on the item the failed write returns. A probe claim is one ``UpdateItem`` guarded by
"OPEN and cooled down, or HALF_OPEN and lease expired". A failure is counted with one ``ADD`` and,
only when a transition is due, a second conditional write. DynamoDB applies each conditional write
atomically, so the budget and the single probe hold across any number of concurrent Lambdas. A slot is
taken with a ``PutItem`` guarded by "absent, or its lease ended" and given back with a ``DeleteItem``
guarded by "still mine".
"""

from __future__ import annotations

import bisect
import math
import random
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from ledgerlink.http.breaker import BreakerSnapshot, BreakerState
from ledgerlink.http.concurrency import Holder, Slot
from ledgerlink.http.ratelimit import EXPIRY_TOLERANCE_SECONDS, RateLimit, retention_seconds, rolling_wait
from ledgerlink.tables import VENDOR_STATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# A rate-limit log outlives its last entry's window by this much before TTL may remove it. TTL only
# tidies away idle scopes: by then every entry has expired, so removing the item changes no decision.
WINDOW_GRACE_SECONDS = 300

# The sort key of a scope's sliding log (the partition key names vendor, group and scope).
LOG_SORT_KEY = "rolling"

# How many times in a row one admission may lose the optimistic write to other Lambdas before it gives
# up. Each round has a winner, so this is only reached under far more contention than one scope sees.
MAX_LOG_CONFLICTS = 16

PK = VENDOR_STATE.partition_key
SK = VENDOR_STATE.sort_key or "sk"
TTL = VENDOR_STATE.ttl_attribute or "expires_at"


class VendorStateStoreError(RuntimeError):
    """The vendor-state table could not be read or written; names the table and the operation.

    Calls fail closed (nothing is sent without a rate-limit slot); the work is retryable once the
    table answers again.
    """

    retryable = True


def _number(value: float | int) -> dict[str, str]:
    # Through Decimal so the wire format is a plain decimal string, never "1e+09" scientific notation.
    return {"N": str(Decimal(repr(value)) if isinstance(value, float) else value)}


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class _Table:
    def __init__(self, table_name: str, client: DynamoDBClient | None) -> None:
        if not table_name:
            raise ValueError("a vendor-state table name is required")
        self.table_name = table_name
        self.client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")

    def failed(self, operation: str, error: ClientError) -> VendorStateStoreError:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        return VendorStateStoreError(f"vendor-state table {self.table_name}: {operation} failed ({code})")


class DynamoDBRateLimitStore:
    """Sliding logs shared by every Lambda: one item per (vendor, group, scope), optimistic writes.

    An admission is read → drop expired entries → if every limit has room, append ``now`` and write
    the item back with ``ConditionExpression: version = :seen`` (a fresh random token each write, so
    an item that TTL removed and another Lambda re-created can never be mistaken for the one read).
    When another Lambda wrote first, the failed write returns the current item
    (``ReturnValuesOnConditionCheckFailure``) and the admission is decided again on it, without
    another read.

    Every admission starts from a strongly consistent read, not from the item this process last
    wrote: with several Lambdas on one scope that copy is nearly always stale, and a write from a
    stale copy is a lost write, billed like a won one (measured in the deal-sync benchmark: 0.9 lost
    writes per call with 5 Lambdas; a read costs a fifth of a 1 KB write).
    """

    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, max_conflicts: int = MAX_LOG_CONFLICTS
    ) -> None:
        self._table = _Table(table_name, client)
        self._max_conflicts = max_conflicts

    def _key(self, bucket: str) -> dict[str, Any]:
        return {PK: {"S": f"ratelimit#{bucket}"}, SK: {"S": LOG_SORT_KEY}}

    def try_acquire(
        self, bucket: str, limits: Sequence[RateLimit], now: float, headroom_seconds: float
    ) -> float:
        keep_after_ms = _ceil_ms(now - retention_seconds(limits, headroom_seconds))
        state = self._read(bucket)
        for _ in range(self._max_conflicts + 1):
            entries = [ms for ms in state.entries_ms if ms > keep_after_ms]
            wait = rolling_wait([ms / 1000 for ms in entries], limits, now, headroom_seconds)
            if wait > 0:
                return wait
            # Recorded at the next whole millisecond: never earlier than the admission, so the entry
            # leaves the window no sooner than the call it stands for.
            bisect.insort(entries, _ceil_ms(now))
            written = _SlidingLog(version=secrets.token_hex(8), entries_ms=entries)
            expires_at = math.ceil(now + retention_seconds(limits, headroom_seconds)) + WINDOW_GRACE_SECONDS
            current = self._write(bucket, written, seen=state.version, expires_at=expires_at)
            if current is None:
                return 0.0
            state = current
        raise VendorStateStoreError(
            f"vendor-state table {self._table.table_name}: rate-limit log {bucket} changed under "
            f"{self._max_conflicts + 1} attempts in a row"
        )

    def admitted(self, bucket: str) -> list[float]:
        return [ms / 1000 for ms in self._read(bucket).entries_ms]

    def _read(self, bucket: str) -> _SlidingLog:
        try:
            item = self._table.client.get_item(
                TableName=self._table.table_name, Key=self._key(bucket), ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise self._table.failed("rate-limit GetItem", error) from None
        return _SlidingLog.from_item(item)

    def _write(
        self,
        bucket: str,
        log: _SlidingLog,
        *,
        seen: str | None,
        expires_at: int,
    ) -> _SlidingLog | None:
        """None when written; otherwise the item as another Lambda left it (nothing written)."""
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#version)"}
            if seen is None
            else {
                "ConditionExpression": "#version = :seen",
                "ExpressionAttributeValues": {":seen": {"S": seen}},
            }
        )
        try:
            self._table.client.put_item(
                TableName=self._table.table_name,
                Item={**self._key(bucket), **log.to_attributes(), TTL: _number(expires_at)},
                ExpressionAttributeNames={"#version": "version"},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except ClientError as error:
            if _conditional_failed(error):
                return _SlidingLog.from_item(error.response.get("Item"))  # type: ignore[arg-type]
            raise self._table.failed("rate-limit PutItem", error) from None
        return None


@dataclass(frozen=True)
class _SlidingLog:
    """A rate-limit log as stored: admission times in epoch milliseconds, oldest first.

    On the item: ``base_ms`` (N), the oldest entry; ``log`` (B), each entry as a little-endian uint32
    offset in milliseconds from ``base_ms`` (4 bytes a call: 500 calls in a minute are 2 KB);
    ``version`` (S), a random token replaced on every write.
    """

    version: str | None
    entries_ms: list[int]

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> _SlidingLog:
        if not item or "version" not in item:
            return cls(version=None, entries_ms=[])
        base = int(item["base_ms"]["N"])
        packed: bytes = item["log"]["B"]
        offsets = struct.unpack(f"<{len(packed) // 4}I", packed)
        return cls(version=item["version"]["S"], entries_ms=[base + offset for offset in offsets])

    def to_attributes(self) -> dict[str, Any]:
        base = self.entries_ms[0] if self.entries_ms else 0
        packed = struct.pack(f"<{len(self.entries_ms)}I", *(ms - base for ms in self.entries_ms))
        return {
            "version": {"S": self.version or ""},
            "base_ms": _number(base),
            "log": {"B": packed},
        }


def _ceil_ms(seconds: float) -> int:
    # The tolerance keeps an exact millisecond (1700000000.9 is 1700000000899.9999 in binary) on itself.
    return math.ceil(seconds * 1000 - EXPIRY_TOLERANCE_SECONDS * 1000)


class DynamoDBBreakerStore:
    """Circuit-breaker state shared by every Lambda; the probe is claimed with a conditional write."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = _Table(table_name, client)

    def _key(self, name: str) -> dict[str, Any]:
        return {PK: {"S": f"breaker#{name}"}, SK: {"S": "state"}}

    def load(self, name: str) -> BreakerSnapshot:
        try:
            item = self._table.client.get_item(TableName=self._table.table_name, Key=self._key(name)).get(
                "Item"
            )
        except ClientError as error:
            raise self._table.failed("breaker GetItem", error) from None
        return _snapshot(item)

    def record_failure(self, name: str, threshold: int, now: float) -> BreakerSnapshot:
        # Count first (one call); only when that shows a transition is due, make it with a second,
        # conditional call, so a success recorded in between by another Lambda is never overridden.
        try:
            response = self._table.client.update_item(
                TableName=self._table.table_name,
                Key=self._key(name),
                UpdateExpression="SET #state = if_not_exists(#state, :closed) ADD failures :one",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":closed": {"S": BreakerState.CLOSED.value}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            raise self._table.failed("breaker UpdateItem", error) from None
        counted = _snapshot(response.get("Attributes"))
        if counted.state is BreakerState.HALF_OPEN:
            condition = "#state = :half_open"
        elif counted.state is BreakerState.CLOSED and counted.consecutive_failures >= threshold:
            condition = "#state = :closed AND failures >= :threshold"
        else:
            return counted
        try:
            response = self._table.client.update_item(
                TableName=self._table.table_name,
                Key=self._key(name),
                UpdateExpression="SET #state = :open, opened_at = :now REMOVE probe_until",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":open": {"S": BreakerState.OPEN.value},
                    ":now": _number(now),
                    **(
                        {":half_open": {"S": BreakerState.HALF_OPEN.value}}
                        if counted.state is BreakerState.HALF_OPEN
                        else {":closed": {"S": BreakerState.CLOSED.value}, ":threshold": _number(threshold)}
                    ),
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failed(error):
                # Another Lambda moved the breaker first (opened it, or a success closed it).
                return self.load(name)
            raise self._table.failed("breaker UpdateItem", error) from None
        return _snapshot(response.get("Attributes"))

    def record_success(self, name: str) -> BreakerSnapshot:
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=self._key(name),
                UpdateExpression="SET #state = :closed, failures = :zero REMOVE opened_at, probe_until",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":closed": {"S": BreakerState.CLOSED.value}, ":zero": {"N": "0"}},
            )
        except ClientError as error:
            raise self._table.failed("breaker UpdateItem", error) from None
        return BreakerSnapshot()

    def try_claim_probe(self, name: str, now: float, cool_down_seconds: float, lease_seconds: float) -> bool:
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key=self._key(name),
                UpdateExpression="SET #state = :half_open, probe_until = :lease_end",
                ConditionExpression=(
                    "(#state = :open AND opened_at <= :cooled_if_opened_before) "
                    "OR (#state = :half_open AND probe_until <= :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":open": {"S": BreakerState.OPEN.value},
                    ":half_open": {"S": BreakerState.HALF_OPEN.value},
                    ":now": _number(now),
                    ":cooled_if_opened_before": _number(now - cool_down_seconds),
                    ":lease_end": _number(now + lease_seconds),
                },
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise self._table.failed("breaker probe claim", error) from None
        return True


def _snapshot(item: dict[str, Any] | None) -> BreakerSnapshot:
    if not item:
        return BreakerSnapshot()
    return BreakerSnapshot(
        state=BreakerState(item.get("state", {}).get("S", BreakerState.CLOSED.value)),
        consecutive_failures=int(item["failures"]["N"]) if "failures" in item else 0,
        opened_at=float(item["opened_at"]["N"]) if "opened_at" in item else None,
        probe_until=float(item["probe_until"]["N"]) if "probe_until" in item else None,
    )


# A slot item outlives its lease by this much before TTL may remove it. Only a crashed holder leaves one
# behind; by then its lease has ended, so removing it changes no decision.
SLOT_GRACE_SECONDS = 300


class DynamoDBConcurrencyStore:
    """Concurrency slots shared by every Lambda: one item per held slot, conditional writes.

    An acquisition is a strongly consistent ``Query`` of the scope's partition (at most ``limit`` small
    items), then a ``PutItem`` on a slot the query showed free or expired, guarded by
    ``attribute_not_exists(pk) OR lease_until <= :now``. When a rival took that slot between the query
    and the write, the next candidate is tried; no candidate left means "all held" (nothing written).
    Candidates are tried in random order, so Lambdas that queried the same free slots spread over them
    instead of all racing for slot 0. A release is a ``DeleteItem`` guarded by ``owner = :me``.
    """

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = _Table(table_name, client)
        self._random = random.Random()

    @staticmethod
    def _pk(bucket: str) -> str:
        return f"concurrency#{bucket}"

    def _key(self, bucket: str, number: int) -> dict[str, Any]:
        return {PK: {"S": self._pk(bucket)}, SK: {"S": f"slot#{number}"}}

    def try_acquire(
        self, bucket: str, limit: int, owner: str, now: float, lease_seconds: float
    ) -> Slot | None:
        held = {holder.number for holder in self.holders(bucket, now)}
        candidates = [number for number in range(limit) if number not in held]
        self._random.shuffle(candidates)
        lease_until = now + lease_seconds
        for number in candidates:
            try:
                self._table.client.put_item(
                    TableName=self._table.table_name,
                    Item={
                        **self._key(bucket, number),
                        "owner": {"S": owner},
                        "lease_until": _number(lease_until),
                        TTL: _number(math.ceil(lease_until) + SLOT_GRACE_SECONDS),
                    },
                    ConditionExpression="attribute_not_exists(#pk) OR lease_until <= :now",
                    ExpressionAttributeNames={"#pk": PK},
                    ExpressionAttributeValues={":now": _number(now)},
                )
            except ClientError as error:
                if _conditional_failed(error):
                    continue  # a rival took it since the query
                raise self._table.failed("concurrency slot PutItem", error) from None
            return Slot(bucket, number, owner, lease_until)
        return None

    def release(self, slot: Slot) -> bool:
        try:
            self._table.client.delete_item(
                TableName=self._table.table_name,
                Key=self._key(slot.bucket, slot.number),
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": slot.owner}},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise self._table.failed("concurrency slot DeleteItem", error) from None
        return True

    def holders(self, bucket: str, now: float) -> list[Holder]:
        try:
            response = self._table.client.query(
                TableName=self._table.table_name,
                KeyConditionExpression="#pk = :pk",
                ExpressionAttributeNames={"#pk": PK},
                ExpressionAttributeValues={":pk": {"S": self._pk(bucket)}},
                ConsistentRead=True,
            )
        except ClientError as error:
            raise self._table.failed("concurrency slot Query", error) from None
        holders = []
        for item in response.get("Items", []):
            sort_key = item.get(SK, {}).get("S", "")
            if not sort_key.startswith("slot#") or "lease_until" not in item:
                continue
            lease_until = float(item["lease_until"]["N"])
            if lease_until > now:
                holders.append(Holder(int(sort_key[len("slot#") :]), item["owner"]["S"], lease_until))
        return sorted(holders, key=lambda holder: holder.number)
