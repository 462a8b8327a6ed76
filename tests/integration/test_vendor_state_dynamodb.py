"""Rate-limit logs and circuit breakers shared through the vendor-state table (moto DynamoDB).

Each "Lambda" here has its own boto3 client and its own store/breaker/client objects; all they share
is the table, as in production.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.clock import ManualClock
from ledgerlink.http.breaker import BreakerState, CircuitBreaker
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.dynamodb import (
    SK,
    WINDOW_GRACE_SECONDS,
    DynamoDBBreakerStore,
    DynamoDBRateLimitStore,
    VendorStateStoreError,
)
from ledgerlink.http.errors import CircuitOpenError, VendorHttpError
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit, RateLimiter, bucket_key
from ledgerlink.tables import VENDOR_STATE
from tests.unit.http.support import (
    Reply,
    ScriptedVendor,
    busiest_window,
    earliest_admission,
    make_policy,
    start_server,
)

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
                {"AttributeName": SK, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": VENDOR_STATE.partition_key, "AttributeType": "S"},
                {"AttributeName": SK, "AttributeType": "S"},
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


def dynamodb_limiter(
    clock: ManualClock, limits: Mapping[str, Sequence[RateLimit]] = QBO_LIMITS
) -> RateLimiter:
    """One Lambda's limiter: its own boto3 client and store, no headroom (waits read off the windows)."""
    return RateLimiter("qbo", limits, DynamoDBRateLimitStore(TABLE, lambda_client()), clock, 90.0)


def admitted_on_record(bucket: str) -> list[float]:
    """The admission times in the table, read by a third party."""
    return DynamoDBRateLimitStore(TABLE, lambda_client()).admitted(bucket)


def test_two_lambdas_share_one_rolling_budget_across_the_old_window_edge(table: None) -> None:
    # given two Lambda instances limiting the same realm through the table, 5 calls each at 0.9 s
    clock = ManualClock(T0 + 0.9)
    first, second = dynamodb_limiter(clock), dynamodb_limiter(clock)
    for _ in range(5):
        first.acquire("9130357992")
        second.acquire("9130357992")

    # when each asks for another call at 1.1 s, just after the second boundary
    clock.set(T0 + 1.1)
    first_wait = first.acquire("9130357992")
    second_wait = second.acquire("9130357992")

    # then the first waited until the ten calls of 0.9 s left the window (1.9 s) and the second then went
    # without waiting: one budget of 10 per rolling second for both, not 10 each
    assert first_wait == pytest.approx(0.8, abs=1e-6)
    assert second_wait == 0.0
    assert clock.now() == pytest.approx(T0 + 1.9, abs=1e-6)
    on_record = admitted_on_record(bucket_key("qbo", DEFAULT_GROUP, "9130357992"))
    assert on_record == pytest.approx([T0 + 0.9] * 10 + [T0 + 1.9] * 2, abs=1e-6)
    assert busiest_window(on_record, 1.0) == 10


def test_random_calls_from_two_lambdas_never_exceed_a_rolling_window_and_wait_exactly(table: None) -> None:
    # given 3 per second and 7 per 5 seconds, and calls asked for at random milliseconds by two Lambdas
    limits = (RateLimit(3, 1.0), RateLimit(7, 5.0))
    clock = ManualClock(T0)
    lambdas = [dynamodb_limiter(clock, {DEFAULT_GROUP: limits}) for _ in range(2)]
    rng = random.Random(20251125)
    asked = sorted(T0 + rng.randint(0, 20_000) / 1000 for _ in range(60))

    # when each call is asked for at its moment by one Lambda or the other
    admissions: list[float] = []
    for moment in asked:
        clock.set(max(moment, clock.now()))
        asked_at = clock.now()
        rng.choice(lambdas).acquire("realm-1")
        # then it went at the first instant every window had room
        assert clock.now() == pytest.approx(earliest_admission(admissions, limits, asked_at), abs=1e-6)
        admissions.append(clock.now())

    # and no window of either length, wherever it starts, held more than its limit
    assert busiest_window(admissions, 1.0) == 3
    assert busiest_window(admissions, 5.0) == 7


def test_another_realm_is_not_held_back(table: None) -> None:
    clock = ManualClock(T0)
    first, second = dynamodb_limiter(clock), dynamodb_limiter(clock)
    for _ in range(10):
        first.acquire("realm-1")

    assert [second.acquire("realm-2") for _ in range(10)] == [0.0] * 10
    assert clock.sleeps == []


def test_the_minute_budget_is_shared_too(table: None) -> None:
    # given a realm limited to 2/s and 20/min, and 20 calls in the first 10 s by two Lambdas taking turns
    # (the real 10/s and 500/min figures are covered against the in-process store in tests/unit/http)
    limits = {DEFAULT_GROUP: (RateLimit(2, 1.0), RateLimit(20, 60.0))}
    clock = ManualClock(T0)
    lambdas = [dynamodb_limiter(clock, limits) for _ in range(2)]
    for second in range(10):
        clock.set(T0 + second)
        assert [lambdas[0].acquire("realm-1"), lambdas[1].acquire("realm-1")] == [0.0, 0.0]

    # when either asks again at 50.5 s
    clock.set(T0 + 50.5)

    # then it waits until the calls of 0 s are a minute old, not just for the next second
    assert lambdas[1].acquire("realm-1") == pytest.approx(9.5, abs=1e-6)


def test_the_log_item_layout_and_its_ttl(table: None) -> None:
    # given the QBO limits with 0.2 s of headroom
    store = DynamoDBRateLimitStore(TABLE, lambda_client())

    # when two calls are admitted at 12.5 s and 12.75 s
    assert store.try_acquire("qbo#default#realm-1", QBO_LIMITS[DEFAULT_GROUP], T0 + 12.5, 0.2) == 0.0
    assert store.try_acquire("qbo#default#realm-1", QBO_LIMITS[DEFAULT_GROUP], T0 + 12.75, 0.2) == 0.0

    # then one item holds both admission times, as millisecond offsets from the first, and expires once
    # the newest has left the longest counted window (60.2 s) plus the grace period
    (item,) = lambda_client().scan(TableName=TABLE)["Items"]
    assert item["pk"]["S"] == "ratelimit#qbo#default#realm-1"
    assert item["sk"]["S"] == "rolling"
    assert int(item["base_ms"]["N"]) == int((T0 + 12.5) * 1000)
    assert struct.unpack("<2I", item["log"]["B"]) == (0, 250)
    assert len(item["version"]["S"]) == 16
    assert int(item["expires_at"]["N"]) == math.ceil(T0 + 12.75 + 60.2) + WINDOW_GRACE_SECONDS


def test_a_full_log_refuses_with_the_exact_wait_and_records_nothing(table: None) -> None:
    store = DynamoDBRateLimitStore(TABLE, lambda_client())
    limit = (RateLimit(2, 1.0),)

    outcomes = [store.try_acquire("graph#default#ap@example.com", limit, T0 + 0.25, 0.0) for _ in range(4)]

    assert outcomes == [0.0, 0.0, 1.0, 1.0]
    assert admitted_on_record("graph#default#ap@example.com") == [T0 + 0.25, T0 + 0.25]


class CountingRequests:
    """Counts a client's rate-limit reads and writes, and the writes DynamoDB refused (lost races)."""

    def __init__(self, client: Any) -> None:
        self.reads = self.writes = self.lost = 0
        client.meta.events.register("after-call.dynamodb.GetItem", self._read)
        client.meta.events.register("after-call.dynamodb.PutItem", self._written)

    def _read(self, **_: Any) -> None:
        self.reads += 1

    def _written(self, parsed: dict[str, Any], **_: Any) -> None:
        self.writes += 1
        if parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            self.lost += 1


class SomethingHappensBeforeEachWrite:
    """A Lambda's DynamoDB client on which ``interfere`` runs just before each of the first ``times`` of
    its writes: another Lambda winning the race between this one's read and its write."""

    def __init__(self, interfere: Callable[[], object], times: int | None = None) -> None:
        self.client = lambda_client()
        self._interfere = interfere
        self._left = times

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if self._left is None or self._left > 0:
            self._left = None if self._left is None else self._left - 1
            self._interfere()
        return self.client.put_item(**kwargs)


def test_a_write_that_loses_the_race_is_decided_again_on_the_winners_log(table: None) -> None:
    # given 2 calls per second, one call at 0 s, and a rival Lambda that admits one at 0.1 s between this
    # Lambda's read and its write
    limits = (RateLimit(2, 1.0),)
    bucket = "qbo#default#realm-1"
    rival = DynamoDBRateLimitStore(TABLE, lambda_client())
    racing = SomethingHappensBeforeEachWrite(
        lambda: rival.try_acquire(bucket, limits, T0 + 0.1, 0.0), times=1
    )
    requests = CountingRequests(racing.client)
    store = DynamoDBRateLimitStore(TABLE, racing)  # type: ignore[arg-type]
    rival.try_acquire(bucket, limits, T0, 0.0)

    # when this Lambda asks for a slot at 0.2 s
    outcome = store.try_acquire(bucket, limits, T0 + 0.2, 0.0)

    # then its write lost, and on the log the failed write returned (no second read) the window is full:
    # it waits until the call of 0 s leaves it, and the table holds exactly the rival's two calls
    assert (requests.reads, requests.writes, requests.lost) == (1, 1, 1)
    assert outcome == pytest.approx(0.8, abs=1e-6)
    assert admitted_on_record(bucket) == [T0, T0 + 0.1]


def test_after_a_lost_race_the_call_is_appended_to_the_winners_log(table: None) -> None:
    # given 5 calls per second and a rival Lambda that admits a call between this one's read and write
    limits = (RateLimit(5, 1.0),)
    bucket = "qbo#default#realm-1"
    rival = DynamoDBRateLimitStore(TABLE, lambda_client())
    racing = SomethingHappensBeforeEachWrite(lambda: rival.try_acquire(bucket, limits, T0, 0.0), times=1)
    requests = CountingRequests(racing.client)
    store = DynamoDBRateLimitStore(TABLE, racing)  # type: ignore[arg-type]

    # when this Lambda asks for a slot at 0.5 s
    outcome = store.try_acquire(bucket, limits, T0 + 0.5, 0.0)

    # then it was admitted on its second write, and neither call was lost
    assert outcome == 0.0
    assert (requests.reads, requests.writes, requests.lost) == (1, 2, 1)
    assert admitted_on_record(bucket) == [T0, T0 + 0.5]


def test_a_log_recreated_after_ttl_is_not_mistaken_for_the_one_read(table: None) -> None:
    # given a log with one call, which TTL removes and another Lambda re-creates (with one call) between
    # this Lambda's read and its write: same number of writes, so a counter version would match again
    limits = (RateLimit(5, 1.0),)
    bucket = "qbo#default#realm-1"
    key = {"pk": {"S": f"ratelimit#{bucket}"}, "sk": {"S": "rolling"}}
    rival = DynamoDBRateLimitStore(TABLE, lambda_client())
    rival.try_acquire(bucket, limits, T0, 0.0)

    def expire_and_recreate() -> None:
        lambda_client().delete_item(TableName=TABLE, Key=key)
        rival.try_acquire(bucket, limits, T0 + 400, 0.0)

    store = DynamoDBRateLimitStore(TABLE, SomethingHappensBeforeEachWrite(expire_and_recreate, times=1))  # type: ignore[arg-type]

    # when this Lambda admits a call
    assert store.try_acquire(bucket, limits, T0 + 400.5, 0.0) == 0.0

    # then both calls are on record: its write did not replace the new item as if it were the old one
    assert admitted_on_record(bucket) == [T0 + 400, T0 + 400.5]


def test_losing_every_race_gives_up_with_a_clear_error_and_records_nothing(table: None) -> None:
    # given a store that may lose 2 races in a row, and a rival Lambda that wins every one
    limits = (RateLimit(100, 1.0),)
    bucket = "qbo#default#realm-1"
    rival = DynamoDBRateLimitStore(TABLE, lambda_client())
    always_first = SomethingHappensBeforeEachWrite(lambda: rival.try_acquire(bucket, limits, T0, 0.0))
    store = DynamoDBRateLimitStore(TABLE, always_first, max_conflicts=2)  # type: ignore[arg-type]

    # when it asks for a slot
    with pytest.raises(VendorStateStoreError) as raised:
        store.try_acquire(bucket, limits, T0, 0.0)

    # then it names the table and the log, and only the rival's three calls are on record
    assert str(raised.value) == (
        "vendor-state table ledgerlink-vendor-state: rate-limit log qbo#default#realm-1 changed under "
        "3 attempts in a row"
    )
    assert admitted_on_record(bucket) == [T0, T0, T0]


def test_an_admission_costs_one_read_and_one_write_when_no_one_races(table: None) -> None:
    # given one Lambda alone on a realm with the QBO limits
    client = lambda_client()
    requests = CountingRequests(client)
    limiter = RateLimiter("qbo", QBO_LIMITS, DynamoDBRateLimitStore(TABLE, client), ManualClock(T0), 30.0)

    # when it admits 10 calls and is refused the 11th (which then waits and goes)
    for _ in range(11):
        limiter.acquire("realm-1")

    # then each admission read the log once and wrote it once; the refusal cost one read and no write
    assert (requests.reads, requests.writes, requests.lost) == (12, 11, 0)


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
        store.try_acquire("qbo#default#1", (RateLimit(10, 1.0),), T0, 0.0)

    assert str(raised.value) == (
        "vendor-state table no-such-table: rate-limit GetItem failed (ResourceNotFoundException)"
    )


def test_two_http_clients_share_budget_and_breaker_through_the_table(
    table: None, vendor: ScriptedVendor
) -> None:
    # given two Lambdas' clients for one vendor, limited to 3 calls per rolling second per portal with
    # 0.25 s of headroom, opening after 2 failures
    clock = ManualClock(T0)
    policy = make_policy(
        vendor.url,
        rate_limits={DEFAULT_GROUP: (RateLimit(3, 1.0),)},
        rate_limit_headroom_seconds=0.25,
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

    # then all were sent and the fourth waited until the first had been out for a second and the headroom
    assert len(vendor.received) == 4
    assert clock.sleeps == [1.25]

    # and when the vendor fails once for each of them, both stop calling
    vendor.will(Reply(503), Reply(503))
    for client in clients:
        with pytest.raises(VendorHttpError):
            client.get("/crm/v3/objects/deals", scope="portal-1")
    for client in clients:
        with pytest.raises(CircuitOpenError):
            client.get("/crm/v3/objects/deals", scope="portal-1")
    assert len(vendor.received) == 6
