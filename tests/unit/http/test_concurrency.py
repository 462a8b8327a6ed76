"""The concurrency limit: at most N requests in flight per vendor and scope (Outlook: 4 per app + mailbox).

In-process store here; the DynamoDB store is tested against moto in
tests/integration/test_concurrency_dynamodb.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ledgerlink.clock import ManualClock, SystemClock
from ledgerlink.config import Settings
from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.concurrency import (
    ConcurrencyLimiter,
    InMemoryConcurrencyStore,
    concurrency_key,
)
from ledgerlink.http.errors import ConcurrencyLimited, RateLimited, VendorConnectionError
from ledgerlink.http.policy import graph_policy, hubspot_policy, qbo_policy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, RateLimit
from tests.unit.http.support import (
    GatedVendor,
    Reply,
    ScriptedVendor,
    make_policy,
    start_gated_server,
    unused_port,
)
from tests.unit.http.test_ratelimit import REQUIRED_ENV

SCOPE = "app-1/finance@example.com"


@pytest.fixture
def gated() -> Iterator[GatedVendor]:
    vendor = GatedVendor()
    server = start_gated_server(vendor)
    yield vendor
    vendor.open()
    server.shutdown()
    server.server_close()


def client_for(
    base_url: str,
    *,
    limit: int | None,
    clock: Any = None,
    store: InMemoryConcurrencyStore | None = None,
    **policy: object,
) -> VendorHttpClient:
    return VendorHttpClient(
        make_policy(base_url, max_concurrent_per_scope=limit, read_timeout_seconds=30.0, **policy),
        rate_limit_store=InMemoryRateLimitStore(),
        breaker_store=InMemoryBreakerStore(),
        concurrency_store=store,
        clock=clock,
    )


# ----------------------------------------------------------------------------- the store


def test_a_scope_has_limit_slots_and_a_release_frees_one() -> None:
    store = InMemoryConcurrencyStore()
    # given four calls holding the four slots of a scope
    held = [store.try_acquire("graph#a", 4, f"owner-{n}", 100.0, 10.0) for n in range(4)]
    assert all(slot is not None for slot in held)
    assert sorted(slot.number for slot in held if slot is not None) == [0, 1, 2, 3]
    # when a fifth asks, then it gets none (and another scope is not affected)
    assert store.try_acquire("graph#a", 4, "owner-5", 100.0, 10.0) is None
    assert store.try_acquire("graph#b", 4, "owner-6", 100.0, 10.0) is not None
    # when one holder gives its slot back, then the fifth gets that slot
    first = held[0]
    assert first is not None and store.release(first)
    again = store.try_acquire("graph#a", 4, "owner-5", 100.0, 10.0)
    assert again is not None and again.number == first.number


def test_a_dead_holders_slot_frees_when_its_lease_ends_and_its_late_release_frees_nothing() -> None:
    store = InMemoryConcurrencyStore()
    # given a holder that crashed mid-call, its lease ending at t=110
    dead = store.try_acquire("graph#a", 1, "crashed", 100.0, 10.0)
    assert dead is not None
    assert store.try_acquire("graph#a", 1, "live", 109.9, 10.0) is None
    # when its lease has ended, then another caller takes the slot
    live = store.try_acquire("graph#a", 1, "live", 110.0, 10.0)
    assert live is not None and live.number == dead.number
    # and when the first holder wakes up and releases, then it does not free its successor's slot
    assert store.release(dead) is False
    assert [holder.owner for holder in store.holders("graph#a", 110.0)] == ["live"]


def test_a_waiting_caller_polls_on_the_clock_until_a_dead_holders_lease_ends() -> None:
    # given the only slot held by a crashed caller whose lease ends in 1 s
    clock = ManualClock(100.0)
    store = InMemoryConcurrencyStore()
    store.try_acquire(concurrency_key("graph", SCOPE), 1, "crashed", 100.0, 1.0)
    limiter = ConcurrencyLimiter("graph", 1, store, clock, lease_seconds=18.0, poll_seconds=0.05)
    # when a caller asks for a slot with a 20 s budget
    slot, waited = limiter.acquire(SCOPE, max_wait=20.0)
    # then it waits on the clock (polls doubling from 50 ms) and gets the slot once the lease ended
    assert clock.sleeps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.5])
    assert waited == pytest.approx(1.25)
    assert slot.lease_until == pytest.approx(101.25 + 18.0)


# ----------------------------------------------------------------------------- the client


def test_never_more_than_the_limit_in_flight_with_eight_threads(gated: GatedVendor) -> None:
    # given a client limited to 4 requests in flight per scope, and a vendor that holds every request
    client = client_for(gated.url, limit=4, clock=SystemClock())
    with ThreadPoolExecutor(max_workers=8) as pool:
        # when 8 threads call the same scope at once
        calls = [pool.submit(client.get, "/x", scope=SCOPE) for _ in range(8)]
        # then 4 reach the vendor and the other 4 wait in the client, holding nothing
        assert gated.wait_in_flight(4)
        assert client.concurrency is not None and len(client.concurrency.holders(SCOPE)) == 4
        assert gated.peak == 4
        # and once the vendor answers, every call completes, never more than 4 at once
        gated.open()
        statuses = [call.result(timeout=30).status_code for call in calls]
    assert statuses == [200] * 8
    assert gated.peak == 4 and gated.served == 8
    assert client.concurrency.holders(SCOPE) == []


def test_without_a_limit_all_eight_are_in_flight_at_once(gated: GatedVendor) -> None:
    # the control for the test above: the harness does see more than 4 when nothing limits them
    client = client_for(gated.url, limit=None, clock=SystemClock())
    assert client.concurrency is None
    with ThreadPoolExecutor(max_workers=8) as pool:
        calls = [pool.submit(client.get, "/x", scope=SCOPE) for _ in range(8)]
        assert gated.wait_in_flight(8)
        gated.open()
        assert [call.result(timeout=30).status_code for call in calls] == [200] * 8
    assert gated.peak == 8


def test_other_scopes_are_not_limited_by_a_full_one(gated: GatedVendor) -> None:
    # given one mailbox's 4 slots all in flight
    client = client_for(gated.url, limit=4, clock=SystemClock())
    with ThreadPoolExecutor(max_workers=6) as pool:
        busy = [pool.submit(client.get, "/x", scope=SCOPE) for _ in range(4)]
        assert gated.wait_in_flight(4)
        # when two calls for other mailboxes come, then they reach the vendor at once
        others = [pool.submit(client.get, "/x", scope=f"app-1/other{n}@example.com") for n in range(2)]
        assert gated.wait_in_flight(6)
        gated.open()
        assert all(call.result(timeout=30).status_code == 200 for call in busy + others)


def test_a_call_that_finds_no_slot_in_time_gives_the_work_back_unsent(vendor: ScriptedVendor) -> None:
    # given the only slot held (by a caller whose lease lasts a minute)
    clock = ManualClock(100.0)
    store = InMemoryConcurrencyStore()
    store.try_acquire(concurrency_key("testvendor", SCOPE), 1, "slow-caller", 100.0, 60.0)
    client = client_for(vendor.url, limit=1, clock=clock, store=store, max_wait_seconds=2.0)
    # when a call comes, then it waits at most its budget and raises a retryable rate limit
    with pytest.raises(ConcurrencyLimited) as raised:
        client.get("/x", scope=SCOPE)
    error = raised.value
    assert isinstance(error, RateLimited) and error.retryable and error.status is None
    assert error.scope == SCOPE and error.limit == 1
    assert "concurrency limit (1 requests in flight)" in str(error)
    assert sum(clock.sleeps) <= 2.0
    # and nothing was sent; the consumer retries it later, with every record of that mailbox
    assert vendor.received == []
    assert classify(error).retryable and classify(error).scope is FailureScope.SHARED


def test_a_call_waiting_for_the_rolling_window_holds_no_slot(vendor: ScriptedVendor) -> None:
    # given 1 call per second and 1 in flight for the scope, and a clock that notes who holds slots
    # whenever a caller sleeps
    store = InMemoryConcurrencyStore()
    bucket = concurrency_key("testvendor", SCOPE)
    held_while_sleeping: list[int] = []

    class WatchingClock(ManualClock):
        def sleep(self, seconds: float) -> None:
            held_while_sleeping.append(len(store.holders(bucket, self.now())))
            super().sleep(seconds)

    clock = WatchingClock(100.0)
    client = client_for(
        vendor.url,
        limit=1,
        clock=clock,
        store=store,
        rate_limits={DEFAULT_GROUP: (RateLimit(1, 1.0),)},
        rate_limit_headroom_seconds=0.2,
    )
    # when two calls come one after the other
    client.get("/x", scope=SCOPE)
    client.get("/x", scope=SCOPE)
    # then the second slept 1.2 s for the window, holding no slot while it slept, and both were sent
    assert clock.sleeps == pytest.approx([1.2])
    assert held_while_sleeping == [0]
    assert len(vendor.received) == 2
    assert store.holders(bucket, clock.now()) == []


def test_slots_are_given_back_after_retries_and_transport_failures(vendor: ScriptedVendor) -> None:
    store = InMemoryConcurrencyStore()
    bucket = concurrency_key("testvendor", SCOPE)
    client = client_for(vendor.url, limit=1, clock=ManualClock(), store=store)
    # given a vendor that answers 503 once, then 200: the retry gets the slot again and gives it back
    vendor.will(Reply(503, headers={"Retry-After": "1"}), Reply(200))
    assert client.get("/x", scope=SCOPE).status_code == 200
    assert len(vendor.received) == 2
    assert store.holders(bucket, 0.0) == []
    # and a vendor nobody listens for: the connection failures give the slot back each time
    dead = client_for(f"http://127.0.0.1:{unused_port()}", limit=1, clock=ManualClock(), store=store)
    with pytest.raises(VendorConnectionError):
        dead.get("/x", scope=SCOPE)
    assert store.holders(bucket, 0.0) == []


def test_graph_has_outlooks_limit_of_four_and_the_others_none() -> None:
    settings = Settings.from_env(REQUIRED_ENV)
    assert graph_policy(settings).max_concurrent_per_scope == 4
    assert qbo_policy(settings).max_concurrent_per_scope is None
    assert hubspot_policy(settings).max_concurrent_per_scope is None
    # and the lease outlasts a healthy call: connect, then a full read timeout
    policy = graph_policy(settings)
    assert policy.concurrency_lease_seconds > policy.connect_timeout_seconds + policy.read_timeout_seconds


@pytest.mark.parametrize("bad", [0, -1])
def test_a_limit_below_one_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match="max_concurrent_per_scope must be at least 1"):
        make_policy("http://127.0.0.1:1", max_concurrent_per_scope=bad)
