"""Rate-limit windows and circuit breakers in the vendor-state table, shared by every Lambda.

Item layout (keys from :data:`ledgerlink.tables.VENDOR_STATE`):

- rate-limit window: pk ``ratelimit#<vendor>#<group>#<scope>``, sk ``<limit name>#<window index>``;
  attributes ``count`` and ``expires_at`` (TTL).
- circuit breaker: pk ``breaker#<vendor>``, sk ``state``; attributes ``state``, ``failures``,
  ``opened_at``, ``probe_until``.

A window slot is one ``UpdateItem``: ``ADD count 1`` guarded by ``count < limit``. A probe claim is
one ``UpdateItem`` guarded by "OPEN and cooled down, or HALF_OPEN and lease expired". A failure is
counted with one ``ADD`` and, only when a transition is due, a second conditional write. DynamoDB
applies each conditional write atomically, so the budget and the single probe hold across any number
of concurrent Lambdas.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from ledgerlink.http.breaker import BreakerSnapshot, BreakerState
from ledgerlink.http.ratelimit import RateLimit
from ledgerlink.tables import VENDOR_STATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# A window item outlives its window by this much before TTL may remove it, so clocks that disagree
# by a few seconds still count into the same item. TTL deletion is lazy; correctness never needs it.
WINDOW_GRACE_SECONDS = 300

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
    """Fixed-window counters shared by every Lambda: one conditional ``UpdateItem`` per slot."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self._table = _Table(table_name, client)

    def try_acquire(self, bucket: str, rate_limit: RateLimit, now: float) -> bool:
        window = rate_limit.window_index(now)
        expires_at = int(rate_limit.window_end(now)) + WINDOW_GRACE_SECONDS
        try:
            self._table.client.update_item(
                TableName=self._table.table_name,
                Key={PK: {"S": f"ratelimit#{bucket}"}, SK: {"S": f"{rate_limit.name}#{window}"}},
                UpdateExpression="ADD #count :one SET #ttl = :expires_at",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": "count", "#ttl": TTL},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": _number(rate_limit.limit),
                    ":expires_at": _number(expires_at),
                },
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise self._table.failed("rate-limit UpdateItem", error) from None
        return True

    def count(self, bucket: str, rate_limit: RateLimit, now: float) -> int:
        """Slots taken in the window containing ``now`` (for tests and `local status`)."""
        window = rate_limit.window_index(now)
        item = self._table.client.get_item(
            TableName=self._table.table_name,
            Key={PK: {"S": f"ratelimit#{bucket}"}, SK: {"S": f"{rate_limit.name}#{window}"}},
            ConsistentRead=True,
        ).get("Item")
        return int(item["count"]["N"]) if item and "count" in item else 0


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
