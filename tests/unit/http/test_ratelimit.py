"""Client-side rate limiter: per scope, per group, and the exact waits at window boundaries."""

from __future__ import annotations

import pytest

from ledgerlink.clock import ManualClock
from ledgerlink.config import Settings
from ledgerlink.http.errors import RateLimited
from ledgerlink.http.policy import HUBSPOT_SEARCH, hubspot_policy, qbo_policy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, RateLimit, RateLimiter
from tests.unit.http.support import Reply, ScriptedVendor, make_harness, make_policy

# A whole second, and the start of a minute, so window boundaries are easy to read.
T0 = 1_700_000_040.0
assert T0 % 60 == 0

REQUIRED_ENV = {
    "LEDGERLINK_EVENT_BUS_NAME": "bus",
    "LEDGERLINK_RAW_BUCKET_NAME": "raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "idem",
    "LEDGERLINK_LINKS_TABLE_NAME": "links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "qbo/webhook",
    "LEDGERLINK_QBO_OAUTH_SECRET_NAME": "qbo/oauth",
    "LEDGERLINK_HUBSPOT_SECRET_NAME": "hubspot",
    "LEDGERLINK_GRAPH_SECRET_NAME": "graph",
}


def qbo_limiter(clock: ManualClock, max_wait: float = 120.0) -> RateLimiter:
    settings = Settings.from_env(REQUIRED_ENV)
    return RateLimiter("qbo", qbo_policy(settings).rate_limits, InMemoryRateLimitStore(), clock, max_wait)


def test_qbo_defaults_come_from_settings() -> None:
    policy = qbo_policy(Settings.from_env(REQUIRED_ENV))

    assert policy.rate_limits[DEFAULT_GROUP] == (RateLimit(10, 1.0), RateLimit(500, 60.0))
    assert policy.default_429_wait_seconds == 60.0


def test_limits_are_configurable_through_settings() -> None:
    settings = Settings.from_env({**REQUIRED_ENV, "LEDGERLINK_HUBSPOT_REQUESTS_PER_10S": "190"})

    limits = hubspot_policy(settings).rate_limits

    assert limits[DEFAULT_GROUP] == (RateLimit(190, 10.0),)
    assert limits[HUBSPOT_SEARCH] == (RateLimit(4, 1.0),)


def test_eleventh_call_in_a_second_waits_for_the_next_second() -> None:
    # given 10 QBO calls for one realm at 0.25 s into a second
    clock = ManualClock(T0 + 0.25)
    limiter = qbo_limiter(clock)
    waits = [limiter.acquire("realm-1") for _ in range(10)]

    # when the 11th is asked for
    eleventh = limiter.acquire("realm-1")

    # then the first 10 went straight through and the 11th waited exactly to the next second
    assert waits == [0.0] * 10
    assert eleventh == 0.75
    assert clock.sleeps == [0.75]


def test_five_hundred_and_first_call_in_a_minute_waits_for_the_next_minute() -> None:
    # given 500 QBO calls for one realm spread over the first 50 seconds of a minute (10 per second)
    clock = ManualClock(T0)
    limiter = qbo_limiter(clock)
    for second in range(50):
        clock.set(T0 + second)
        for _ in range(10):
            assert limiter.acquire("realm-1") == 0.0

    # when another call comes at second 50.5
    clock.set(T0 + 50.5)
    waited = limiter.acquire("realm-1")

    # then it waits until the minute rolls over (9.5 s), not just to the next second
    assert waited == 9.5
    assert clock.now() == T0 + 60


def test_scopes_do_not_share_a_budget() -> None:
    clock = ManualClock(T0)
    limiter = qbo_limiter(clock)
    for _ in range(10):
        limiter.acquire("realm-1")

    # another company's calls are not held back by realm-1's full second
    assert [limiter.acquire("realm-2") for _ in range(10)] == [0.0] * 10
    assert clock.sleeps == []


def test_hubspot_search_has_its_own_budget_independent_of_the_ten_second_limit() -> None:
    clock = ManualClock(T0)
    limits = hubspot_policy(Settings.from_env(REQUIRED_ENV)).rate_limits
    limiter = RateLimiter("hubspot", limits, InMemoryRateLimitStore(), clock, 30.0)

    for _ in range(100):
        limiter.acquire("portal-1")
    searches = [limiter.acquire("portal-1", HUBSPOT_SEARCH) for _ in range(5)]

    # the 10-second budget is spent but search still runs, 4 per second
    assert searches == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert limiter.acquire("portal-1") == 9.0  # the default group waits for its own window


def test_a_wait_beyond_the_maximum_raises_rate_limited_and_takes_nothing() -> None:
    clock = ManualClock(T0 + 10)
    store = InMemoryRateLimitStore()
    minute = RateLimit(2, 60.0)
    limiter = RateLimiter("qbo", {DEFAULT_GROUP: (minute,)}, store, clock, max_wait_seconds=20.0)
    limiter.acquire("realm-1")
    limiter.acquire("realm-1")

    with pytest.raises(RateLimited) as raised:
        limiter.acquire("realm-1", method="POST", path="/v3/company/realm-1/invoice")

    assert raised.value.retry_after == 50.0
    assert raised.value.status is None
    assert raised.value.scope == "realm-1"
    assert str(raised.value) == (
        "qbo client-side rate limit reached for scope realm-1 (POST /v3/company/realm-1/invoice): "
        "retry after 50.000s"
    )
    assert clock.sleeps == []
    assert store.count("qbo#default#realm-1", minute, clock.now()) == 2


def test_unknown_group_and_empty_scope_are_named() -> None:
    limiter = qbo_limiter(ManualClock(T0))

    with pytest.raises(ValueError, match="unknown rate-limit group 'search'"):
        limiter.acquire("realm-1", "search")
    with pytest.raises(ValueError, match="scope"):
        limiter.acquire("")


def test_client_waits_for_a_slot_before_sending(vendor: ScriptedVendor) -> None:
    # given a client limited to 2 calls per second and a vendor that always answers 200
    vendor.will(Reply(200), Reply(200), Reply(200))
    harness = make_harness(make_policy(vendor.url, rate_limits={DEFAULT_GROUP: (RateLimit(2, 1.0),)}))
    harness.clock.set(T0 + 0.6)

    # when three calls are made in the same second
    for _ in range(3):
        harness.client.get("/v3/company/1/invoice/1", scope="1")

    # then all three were sent, the third after waiting 0.4 s for the next window
    assert len(vendor.received) == 3
    assert harness.clock.sleeps == pytest.approx([0.4])
