"""Building clients with the right state stores: shared (DynamoDB) in Lambda, in-process elsewhere."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledgerlink.clock import Clock
from ledgerlink.config import get_settings
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import AuthProvider, VendorHttpClient
from ledgerlink.http.concurrency import InMemoryConcurrencyStore
from ledgerlink.http.dynamodb import DynamoDBBreakerStore, DynamoDBConcurrencyStore, DynamoDBRateLimitStore
from ledgerlink.http.policy import VendorPolicy
from ledgerlink.http.ratelimit import InMemoryRateLimitStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


def shared_state_client(
    policy: VendorPolicy,
    auth: AuthProvider | None = None,
    *,
    table_name: str | None = None,
    dynamodb_client: DynamoDBClient | None = None,
    clock: Clock | None = None,
) -> VendorHttpClient:
    """A client whose rate limits, concurrency slots and breaker live in the vendor-state table (default:
    from Settings), so every concurrent Lambda draws on one budget, one set of slots and sees one breaker."""
    name = table_name if table_name is not None else get_settings().vendor_state_table_name
    return VendorHttpClient(
        policy,
        auth=auth,
        rate_limit_store=DynamoDBRateLimitStore(name, dynamodb_client),
        breaker_store=DynamoDBBreakerStore(name, dynamodb_client),
        concurrency_store=DynamoDBConcurrencyStore(name, dynamodb_client),
        clock=clock,
    )


def in_process_client(
    policy: VendorPolicy, auth: AuthProvider | None = None, *, clock: Clock | None = None
) -> VendorHttpClient:
    """A client whose limits, slots and breaker live in this process only (tests, one-process tools)."""
    return VendorHttpClient(
        policy,
        auth=auth,
        rate_limit_store=InMemoryRateLimitStore(),
        breaker_store=InMemoryBreakerStore(),
        concurrency_store=InMemoryConcurrencyStore(),
        clock=clock,
    )
