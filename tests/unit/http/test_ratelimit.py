"""Client-side rate limiter: rolling windows per scope and per group, exact waits, explicit headroom."""

from __future__ import annotations

import random

import pytest

from ledgerlink.clock import ManualClock
from ledgerlink.config import ConfigError, Settings
from ledgerlink.http.errors import RateLimited
from ledgerlink.http.policy import (
    DEFAULT_RATE_LIMIT_HEADROOM_SECONDS,
    HUBSPOT_SEARCH,
    hubspot_policy,
    qbo_policy,
)
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, RateLimit, RateLimiter
from tests.unit.http.support import (
    Reply,
    ScriptedVendor,
    busiest_window,
    earliest_admission,
    make_harness,
    make_policy,
)

# A whole second, and the start of a minute, so the old fixed-window edges are easy to read.
T0 = 1_700_000_040.0
assert T0 % 60 == 0

REQUIRED_ENV = {
    "LEDGERLINK_EVENT_BUS_NAME": "bus",
    "LEDGERLINK_RAW_BUCKET_NAME": "raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "idem",
    "LEDGERLINK_LINKS_TABLE_NAME": "links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "qbo/webhook",
}
QBO_BUCKET = "qbo#default#realm-1"


def qbo_limiter(
    clock: ManualClock, max_wait: float = 120.0, store: InMemoryRateLimitStore | None = None
) -> RateLimiter:
    """The QBO limits from Settings, with no headroom, so waits can be read off the vendor's windows."""
    settings = Settings.from_env(REQUIRED_ENV)
    store = store if store is not None else InMemoryRateLimitStore()
    return RateLimiter("qbo", qbo_policy(settings).rate_limits, store, clock, max_wait)


def admit(
    limiter: RateLimiter, clock: ManualClock, scope: str = "realm-1", group: str = DEFAULT_GROUP
) -> float:
    """Ask for a slot; return the time the call was admitted (the clock after any wait)."""
    limiter.acquire(scope, group)
    return clock.now()


def test_qbo_defaults_come_from_settings() -> None:
    policy = qbo_policy(Settings.from_env(REQUIRED_ENV))

    assert policy.rate_limits[DEFAULT_GROUP] == (RateLimit(10, 1.0), RateLimit(500, 60.0))
    assert policy.default_429_wait_seconds == 60.0
    assert policy.rate_limit_headroom_seconds == DEFAULT_RATE_LIMIT_HEADROOM_SECONDS


def test_limits_are_configurable_through_settings() -> None:
    settings = Settings.from_env({**REQUIRED_ENV, "LEDGERLINK_HUBSPOT_REQUESTS_PER_10S": "190"})

    limits = hubspot_policy(settings).rate_limits

    assert limits[DEFAULT_GROUP] == (RateLimit(190, 10.0),)
    assert limits[HUBSPOT_SEARCH] == (RateLimit(4, 1.0),)


def test_the_headroom_is_configurable_through_settings_and_may_be_zero() -> None:
    for raw, expected in (("0.5", 0.5), ("0", 0.0)):
        settings = Settings.from_env({**REQUIRED_ENV, "LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS": raw})
        assert qbo_policy(settings).rate_limit_headroom_seconds == expected
        assert hubspot_policy(settings).rate_limit_headroom_seconds == expected

    for raw in ("-0.1", "nan", "soon"):
        with pytest.raises(ConfigError, match="LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS"):
            Settings.from_env({**REQUIRED_ENV, "LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS": raw})


def test_a_burst_either_side_of_a_second_boundary_waits_for_the_rolling_window() -> None:
    # given 10 QBO calls for one realm at 0.9 s into a second
    clock = ManualClock(T0 + 0.9)
    limiter = qbo_limiter(clock)
    first_burst = [admit(limiter, clock) for _ in range(10)]

    # when 10 more are asked for at 1.1 s, just after the second boundary
    clock.set(T0 + 1.1)
    second_burst = [admit(limiter, clock) for _ in range(10)]

    # then the first burst went at once and the second waited until the first left the window (1.9 s):
    # a fixed-window counter would have let all 20 through within 0.2 s
    assert first_burst == [T0 + 0.9] * 10
    assert second_burst == pytest.approx([T0 + 1.9] * 10, abs=1e-6)
    assert clock.sleeps == pytest.approx([0.8], abs=1e-6)
    assert busiest_window(first_burst + second_burst, 1.0) == 10


def test_five_hundred_and_first_call_waits_until_the_oldest_call_leaves_the_minute() -> None:
    # given 500 QBO calls for one realm, 10 in each of the first 50 seconds
    clock = ManualClock(T0)
    limiter = qbo_limiter(clock)
    for second in range(50):
        clock.set(T0 + second)
        for _ in range(10):
            assert limiter.acquire("realm-1") == 0.0

    # when another call comes at second 50.5
    clock.set(T0 + 50.5)
    waited = limiter.acquire("realm-1")

    # then it waits until the calls of second 0 are a minute old (9.5 s), not just for the next second
    assert waited == pytest.approx(9.5)
    assert clock.now() == pytest.approx(T0 + 60, abs=1e-6)


def test_no_rolling_window_ever_admits_more_than_the_limit_and_every_wait_is_exact() -> None:
    # given small limits (3 per second and 7 per 5 seconds) and calls asked for at random moments
    limits = (RateLimit(3, 1.0), RateLimit(7, 5.0))
    clock = ManualClock(T0)
    limiter = RateLimiter("qbo", {DEFAULT_GROUP: limits}, InMemoryRateLimitStore(), clock, 60.0)
    rng = random.Random(20251125)
    asked = sorted(T0 + rng.uniform(0, 30) for _ in range(120))

    # when each call is asked for at its moment (or as soon as the previous one was admitted)
    admissions: list[float] = []
    for moment in asked:
        clock.set(max(moment, clock.now()))
        asked_at = clock.now()
        admitted_at = admit(limiter, clock)
        # then it went at the first instant every window had room: never earlier, never later
        assert admitted_at == pytest.approx(earliest_admission(admissions, limits, asked_at), abs=1e-6)
        admissions.append(admitted_at)

    # and no window of either length, wherever it starts, holds more than its limit
    assert busiest_window(admissions, 1.0) == 3
    assert busiest_window(admissions, 5.0) == 7


def test_a_full_long_window_takes_nothing_from_the_short_one() -> None:
    # given 2 per second and 3 per 10 seconds: two calls at 0 s and one at 1 s fill the 10-second window
    limits = (RateLimit(2, 1.0), RateLimit(3, 10.0))
    clock = ManualClock(T0)
    store = InMemoryRateLimitStore()
    limiter = RateLimiter("qbo", {DEFAULT_GROUP: limits}, store, clock, 60.0)
    admit(limiter, clock)
    admit(limiter, clock)
    clock.set(T0 + 1)
    admit(limiter, clock)

    # when a fourth call is asked for at 1 s, and a fifth right after it
    fourth = admit(limiter, clock)
    fifth = admit(limiter, clock)

    # then both wait for the calls of 0 s to leave the 10-second window and go together at 10 s: the
    # per-second budget of 10 s was not spent by the refused attempt at 1 s
    assert (fourth, fifth) == (T0 + 10, T0 + 10)
    assert store.admitted(QBO_BUCKET) == [T0 + 1, T0 + 10, T0 + 10]  # those still in the longest window


def test_headroom_extends_every_window_by_the_safety_margin() -> None:
    # given the QBO limits with 0.2 s of headroom and 10 calls at 0.9 s
    settings = Settings.from_env(REQUIRED_ENV)
    clock = ManualClock(T0 + 0.9)
    limiter = RateLimiter(
        "qbo", qbo_policy(settings).rate_limits, InMemoryRateLimitStore(), clock, 120.0, headroom_seconds=0.2
    )
    for _ in range(10):
        admit(limiter, clock)

    # when the 11th is asked for at 1.1 s
    clock.set(T0 + 1.1)
    eleventh = admit(limiter, clock)

    # then it goes 1.2 s after the burst, not 1.0 s
    assert eleventh == pytest.approx(T0 + 2.1, abs=1e-6)


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

    # the 10-second budget is spent but search still runs, 4 per rolling second
    assert searches == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert limiter.acquire("portal-1") == pytest.approx(9.0)  # the default group waits for its own window


def test_a_wait_beyond_the_maximum_raises_rate_limited_and_takes_nothing() -> None:
    clock = ManualClock(T0 + 10)
    store = InMemoryRateLimitStore()
    minute = RateLimit(2, 60.0)
    limiter = RateLimiter("qbo", {DEFAULT_GROUP: (minute,)}, store, clock, max_wait_seconds=20.0)
    limiter.acquire("realm-1")
    clock.set(T0 + 20)
    limiter.acquire("realm-1")

    with pytest.raises(RateLimited) as raised:
        limiter.acquire("realm-1", method="POST", path="/v3/company/realm-1/invoice")

    # room comes back when the call of T0+10 is a minute old: 50 s from now
    assert raised.value.retry_after == pytest.approx(50.0)
    assert raised.value.status is None
    assert raised.value.scope == "realm-1"
    assert str(raised.value) == (
        "qbo client-side rate limit reached for scope realm-1 (POST /v3/company/realm-1/invoice): "
        "retry after 50.000s"
    )
    assert clock.sleeps == []
    assert store.admitted(QBO_BUCKET) == [T0 + 10, T0 + 20]


def test_unknown_group_empty_scope_empty_group_and_negative_headroom_are_named() -> None:
    limiter = qbo_limiter(ManualClock(T0))

    with pytest.raises(ValueError, match="unknown rate-limit group 'search'"):
        limiter.acquire("realm-1", "search")
    with pytest.raises(ValueError, match="scope"):
        limiter.acquire("")
    with pytest.raises(ValueError, match="group\\(s\\) search have no limits"):
        RateLimiter(
            "hubspot",
            {DEFAULT_GROUP: (RateLimit(1, 1.0),), "search": ()},
            InMemoryRateLimitStore(),
            ManualClock(),
            1.0,
        )
    with pytest.raises(ValueError, match="headroom must not be negative"):
        RateLimiter(
            "qbo",
            {DEFAULT_GROUP: (RateLimit(1, 1.0),)},
            InMemoryRateLimitStore(),
            ManualClock(),
            1.0,
            headroom_seconds=-0.1,
        )
    with pytest.raises(ValueError, match="rate_limit_headroom_seconds must not be negative"):
        make_policy("https://vendor.example", rate_limit_headroom_seconds=-1.0)


def test_client_waits_for_a_slot_before_sending(vendor: ScriptedVendor) -> None:
    # given a client limited to 2 calls per rolling second (no headroom) and a vendor that answers 200
    vendor.will(Reply(200), Reply(200), Reply(200))
    harness = make_harness(
        make_policy(
            vendor.url, rate_limits={DEFAULT_GROUP: (RateLimit(2, 1.0),)}, rate_limit_headroom_seconds=0.0
        )
    )
    harness.clock.set(T0 + 0.6)

    # when three calls are made at once
    for _ in range(3):
        harness.client.get("/v3/company/1/invoice/1", scope="1")

    # then all three were sent, the third a full second after the first two
    assert len(vendor.received) == 3
    assert harness.clock.sleeps == pytest.approx([1.0])
    assert harness.rate_limits.admitted("testvendor#default#1") == pytest.approx([T0 + 1.6], abs=1e-6)


def test_a_slow_token_refresh_does_not_sit_between_admission_and_sending(vendor: ScriptedVendor) -> None:
    # given credentials whose refresh takes 0.5 s
    vendor.will(Reply(200))
    clock_holder: list[ManualClock] = []

    def slow_auth(*, force_refresh: bool = False) -> dict[str, str]:
        clock_holder[0].advance(0.5)
        return {"Authorization": "Bearer token"}

    harness = make_harness(make_policy(vendor.url), auth=slow_auth)
    clock_holder.append(harness.clock)
    harness.clock.set(T0)

    # when a call is made
    harness.client.get("/v3/company/1/invoice/1", scope="1")

    # then the slot was taken after the credentials were ready, at the moment the request went out
    assert vendor.received[0].headers["authorization"] == "Bearer token"
    assert harness.rate_limits.admitted("testvendor#default#1") == [T0 + 0.5]
