"""Rate-limit windows and circuit breakers shared through the vendor-state table (moto DynamoDB).

Each "Lambda" here has its own boto3 client and its own store/breaker/client objects; all they share
is the table, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.clock import ManualClock
from ledgerlink.http.breaker import BreakerState, CircuitBreaker
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.dynamodb import (
    WINDOW_GRACE_SECONDS,
    DynamoDBBreakerStore,
    DynamoDBRateLimitStore,
    VendorStateStoreError,
)
from ledgerlink.http.errors import CircuitOpenError, VendorHttpError
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit, RateLimiter, bucket_key
from ledgerlink.tables import VENDOR_STATE
from tests.unit.http.support import Reply, ScriptedVendor, make_policy, start_server

TABLE = "ledgerlink-vendor-state"
T0 = 1_700_000_040.0  # the start of a minute
QBO_LIMITS = {DEFAULT_GROUP: (RateLimit(10, 1.0), RateLimit(500, 60.0))}


@pytest.fixture
def table() -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": VENDOR_STATE.partition_key, "KeyType": "HASH"},
                {"AttributeName": VENDOR_STATE.sort_key, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": VENDOR_STATE.partition_key, "AttributeType": "S"},
                {"AttributeName": VENDOR_STATE.sort_key, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


@pytest.fixture
def vendor() -> Iterator[ScriptedVendor]:
    scripted = ScriptedVendor()
    server = start_server(scripted)
    yield scripted
    server.shutdown()
    server.server_close()


def lambda_client() -> Any:
    """A fresh boto3 client, as a separate Lambda instance would have."""
    return boto3.client("dynamodb", region_name="us-east-1")


def test_two_lambdas_share_one_qbo_budget_per_realm(table: None) -> None:
    # given two Lambda instances limiting the same realm through the table
    clock = ManualClock(T0 + 0.2)
    first = RateLimiter("qbo", QBO_LIMITS, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 30.0)
    second = RateLimiter("qbo", QBO_LIMITS, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 30.0)

    # when they take 6 slots each in the same second
    waits = [limiter.acquire("9130357992") for limiter in [first, second] * 6]

    # then the first 10 went straight through and the last two had to wait for the next second
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.8)
    assert waits[11] == 0.0  # the second Lambda got the next second's second slot without waiting
    store = DynamoDBRateLimitStore(TABLE, lambda_client())
    assert (
        store.count(bucket_key("qbo", DEFAULT_GROUP, "9130357992"), RateLimit(500, 60.0), clock.now()) == 12
    )


def test_another_realm_is_not_held_back(table: None) -> None:
    clock = ManualClock(T0)
    first = RateLimiter("qbo", QBO_LIMITS, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 30.0)
    second = RateLimiter("qbo", QBO_LIMITS, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 30.0)
    for _ in range(10):
        first.acquire("realm-1")

    assert [second.acquire("realm-2") for _ in range(10)] == [0.0] * 10
    assert clock.sleeps == []


def test_the_minute_budget_is_shared_too(table: None) -> None:
    # given a realm limited to 2/s and 20/min, and 20 calls in the first 10 s by two Lambdas taking turns
    # (the real 10/s and 500/min boundaries are covered against the in-process store in tests/unit/http)
    limits = {DEFAULT_GROUP: (RateLimit(2, 1.0), RateLimit(20, 60.0))}
    clock = ManualClock(T0)
    limiters = [
        RateLimiter("qbo", limits, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 30.0)
        for _ in range(2)
    ]
    for second in range(10):
        clock.set(T0 + second)
        assert [limiters[0].acquire("realm-1"), limiters[1].acquire("realm-1")] == [0.0, 0.0]

    # when either asks again at 50.5 s
    clock.set(T0 + 50.5)

    # then it waits for the next minute, not the next second
    assert limiters[1].acquire("realm-1") == 9.5


def test_window_items_expire_through_ttl_after_their_window(table: None) -> None:
    store = DynamoDBRateLimitStore(TABLE, lambda_client())
    minute = RateLimit(500, 60.0)

    assert store.try_acquire("qbo#default#realm-1", minute, T0 + 12.5)

    (item,) = lambda_client().scan(TableName=TABLE)["Items"]
    assert item["pk"]["S"] == "ratelimit#qbo#default#realm-1"
    assert item["sk"]["S"] == f"500per60s#{int(T0 // 60)}"
    assert int(item["expires_at"]["N"]) == int(T0 + 60) + WINDOW_GRACE_SECONDS
    assert item["count"]["N"] == "1"


def test_a_full_window_refuses_without_counting(table: None) -> None:
    store = DynamoDBRateLimitStore(TABLE, lambda_client())
    limit = RateLimit(2, 1.0)

    outcomes = [store.try_acquire("graph#default#ap@example.com", limit, T0) for _ in range(4)]

    assert outcomes == [True, True, False, False]
    assert store.count("graph#default#ap@example.com", limit, T0) == 2


def breaker(clock: ManualClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(
        "hubspot",
        DynamoDBBreakerStore(TABLE, lambda_client()),
        clock,
        failure_threshold=threshold,
        cool_down_seconds=30.0,
        probe_lease_seconds=15.0,
        cache_seconds=0.0,
    )


def test_failures_from_two_lambdas_open_one_shared_breaker(table: None) -> None:
    clock = ManualClock(T0)
    first, second = breaker(clock), breaker(clock)

    first.on_failure()
    second.on_failure()
    first.on_failure()

    # both see it open and fail fast
    for instance in (first, second):
        with pytest.raises(CircuitOpenError) as raised:
            instance.before_call()
        assert raised.value.retry_after == 30.0
    snapshot = DynamoDBBreakerStore(TABLE, lambda_client()).load("hubspot")
    assert (snapshot.state, snapshot.consecutive_failures, snapshot.opened_at) == (BreakerState.OPEN, 3, T0)


def test_only_one_of_two_concurrent_half_open_probes_wins(table: None) -> None:
    # given an open breaker whose cool-down has passed
    clock = ManualClock(T0)
    first, second = breaker(clock), breaker(clock)
    for _ in range(3):
        first.on_failure()
    clock.advance(30)

    # when both Lambdas have read the same OPEN state and both try to claim the probe
    assert first.snapshot().state is second.snapshot().state is BreakerState.OPEN
    claims = [
        store.try_claim_probe("hubspot", clock.now(), 30.0, 15.0)
        for store in (
            DynamoDBBreakerStore(TABLE, lambda_client()),
            DynamoDBBreakerStore(TABLE, lambda_client()),
        )
    ]

    # then exactly one claim succeeded, and the breaker is half-open with that probe's lease
    assert claims == [True, False]
    snapshot = DynamoDBBreakerStore(TABLE, lambda_client()).load("hubspot")
    assert snapshot.state is BreakerState.HALF_OPEN
    assert snapshot.probe_until == T0 + 30 + 15


def test_probe_success_closes_and_probe_failure_reopens(table: None) -> None:
    clock = ManualClock(T0)
    first, second = breaker(clock), breaker(clock)
    for _ in range(3):
        first.on_failure()
    clock.advance(30)

    # a failed probe re-opens for a new cool-down
    assert first.before_call().probe is True
    with pytest.raises(CircuitOpenError):
        second.before_call()
    first.on_failure()
    reopened = DynamoDBBreakerStore(TABLE, lambda_client()).load("hubspot")
    assert (reopened.state, reopened.opened_at) == (BreakerState.OPEN, T0 + 30)

    # the next probe, after the new cool-down, succeeds and closes it for everyone
    clock.advance(30)
    assert second.before_call().probe is True
    second.on_success()
    assert first.before_call().probe is False
    closed = DynamoDBBreakerStore(TABLE, lambda_client()).load("hubspot")
    assert (closed.state, closed.consecutive_failures) == (BreakerState.CLOSED, 0)


def test_a_lost_probe_is_reclaimed_after_its_lease(table: None) -> None:
    clock = ManualClock(T0)
    lost, survivor = breaker(clock), breaker(clock)
    for _ in range(3):
        lost.on_failure()
    clock.advance(30)
    assert lost.before_call().probe is True

    clock.advance(14)
    with pytest.raises(CircuitOpenError):
        survivor.before_call()
    clock.advance(1)
    assert survivor.before_call().probe is True


def test_a_success_between_failures_resets_the_shared_count(table: None) -> None:
    clock = ManualClock(T0)
    first, second = breaker(clock), breaker(clock)
    first.on_failure()
    second.on_failure()

    first.on_success()
    second.on_failure()

    snapshot = DynamoDBBreakerStore(TABLE, lambda_client()).load("hubspot")
    assert (snapshot.state, snapshot.consecutive_failures) == (BreakerState.CLOSED, 1)


def test_a_missing_table_is_a_clear_error(table: None) -> None:
    store = DynamoDBRateLimitStore("no-such-table", lambda_client())

    with pytest.raises(VendorStateStoreError) as raised:
        store.try_acquire("qbo#default#1", RateLimit(10, 1.0), T0)

    assert str(raised.value) == (
        "vendor-state table no-such-table: rate-limit UpdateItem failed (ResourceNotFoundException)"
    )


def test_two_http_clients_share_budget_and_breaker_through_the_table(
    table: None, vendor: ScriptedVendor
) -> None:
    # given two Lambdas' clients for one vendor, limited to 3 calls/s per portal, opening after 2 failures
    clock = ManualClock(T0)
    policy = make_policy(
        vendor.url,
        rate_limits={DEFAULT_GROUP: (RateLimit(3, 1.0),)},
        max_attempts=1,
        breaker_failure_threshold=2,
        breaker_cache_seconds=0.0,
    )
    clients: list[VendorHttpClient] = [
        shared_state_client(policy, table_name=TABLE, dynamodb_client=lambda_client(), clock=clock)
        for _ in range(2)
    ]

    # when they make 4 calls in one second, alternating
    for call in range(4):
        clients[call % 2].get("/crm/v3/objects/deals", scope="portal-1")

    # then all were sent and the fourth waited for the next second
    assert len(vendor.received) == 4
    assert clock.sleeps == [1.0]

    # and when the vendor fails once for each of them, both stop calling
    vendor.will(Reply(503), Reply(503))
    for client in clients:
        with pytest.raises(VendorHttpError):
            client.get("/crm/v3/objects/deals", scope="portal-1")
    for client in clients:
        with pytest.raises(CircuitOpenError):
            client.get("/crm/v3/objects/deals", scope="portal-1")
    assert len(vendor.received) == 6
