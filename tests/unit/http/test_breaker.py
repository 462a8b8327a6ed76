"""Circuit breaker: CLOSED → OPEN → HALF_OPEN (one probe) → CLOSED or OPEN again."""

from __future__ import annotations

import pytest

from ledgerlink.clock import ManualClock
from ledgerlink.http.breaker import BreakerState, CircuitBreaker, InMemoryBreakerStore
from ledgerlink.http.errors import CircuitOpenError, RateLimited, VendorHttpError, VendorTimeout
from tests.unit.http.support import Reply, ScriptedVendor, fixture_body, make_harness, make_policy

QBO_FAULT = fixture_body("qbo_fault_500.json")


def breaker(store: InMemoryBreakerStore, clock: ManualClock, **overrides: float) -> CircuitBreaker:
    options = {
        "failure_threshold": 3,
        "cool_down_seconds": 30.0,
        "probe_lease_seconds": 10.0,
        "cache_seconds": 0.0,
    }
    options.update(overrides)
    return CircuitBreaker(
        "qbo",
        store,
        clock,
        failure_threshold=int(options["failure_threshold"]),
        cool_down_seconds=options["cool_down_seconds"],
        probe_lease_seconds=options["probe_lease_seconds"],
        cache_seconds=options["cache_seconds"],
    )


def test_opens_after_threshold_consecutive_failures_and_fails_fast() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    qbo = breaker(store, clock)

    # given two failures: still closed
    for _ in range(2):
        qbo.before_call()
        qbo.on_failure()
    assert store.load("qbo").state is BreakerState.CLOSED

    # when the third consecutive failure arrives
    qbo.before_call()
    qbo.on_failure()

    # then the breaker is open and the next call fails fast, saying when to come back
    assert store.load("qbo").state is BreakerState.OPEN
    clock.advance(12)
    with pytest.raises(CircuitOpenError) as raised:
        qbo.before_call(method="GET", path="/v3/company/1/invoice/5")
    assert raised.value.retry_after == 18.0
    assert raised.value.retryable is True
    assert "qbo circuit breaker is open" in str(raised.value)
    assert "(GET /v3/company/1/invoice/5)" in str(raised.value)


def test_a_success_resets_the_consecutive_count() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    qbo = breaker(store, clock)

    for outcome in ["fail", "fail", "ok", "fail", "fail"]:
        qbo.before_call()
        qbo.on_failure() if outcome == "fail" else qbo.on_success()

    assert store.load("qbo").state is BreakerState.CLOSED
    assert store.load("qbo").consecutive_failures == 2


def test_after_cool_down_exactly_one_probe_goes_through_and_its_success_closes() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    first, second = breaker(store, clock), breaker(store, clock)  # two Lambdas sharing one store
    for _ in range(3):
        first.on_failure()

    # given the cool-down has passed
    clock.advance(30)

    # when both ask to call
    permit = first.before_call()
    with pytest.raises(CircuitOpenError) as raised:
        second.before_call()

    # then only the first holds the probe; the other is told to wait out the probe's lease
    assert permit.probe is True
    assert raised.value.retry_after == 10.0
    assert store.load("qbo").state is BreakerState.HALF_OPEN

    # and when the probe succeeds, both may call again
    first.on_success()
    assert store.load("qbo").state is BreakerState.CLOSED
    assert second.before_call().probe is False


def test_a_failed_probe_reopens_for_another_cool_down() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    qbo = breaker(store, clock)
    for _ in range(3):
        qbo.on_failure()
    clock.advance(31)

    assert qbo.before_call().probe is True
    qbo.on_failure()

    snapshot = store.load("qbo")
    assert snapshot.state is BreakerState.OPEN
    assert snapshot.opened_at == clock.now()
    clock.advance(29)
    with pytest.raises(CircuitOpenError):
        qbo.before_call()
    clock.advance(1)
    assert qbo.before_call().probe is True


def test_a_probe_that_never_reports_can_be_reclaimed_after_its_lease() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    lost, survivor = breaker(store, clock), breaker(store, clock)
    for _ in range(3):
        lost.on_failure()
    clock.advance(30)
    assert lost.before_call().probe is True  # ... and that Lambda is killed before reporting

    clock.advance(9.9)
    with pytest.raises(CircuitOpenError):
        survivor.before_call()
    clock.advance(0.1)
    assert survivor.before_call().probe is True


def test_cached_closed_state_saves_store_reads_but_an_open_breaker_is_seen_after_the_cache() -> None:
    clock, store = ManualClock(), InMemoryBreakerStore()
    reader = breaker(store, clock, cache_seconds=1.0)
    other = breaker(store, clock)
    assert reader.before_call().probe is False  # caches CLOSED

    for _ in range(3):
        other.on_failure()  # another Lambda opens it

    assert reader.before_call().probe is False  # within the cache window: not yet seen
    clock.advance(1.0)
    with pytest.raises(CircuitOpenError):
        reader.before_call()


# --- through the client, against a real HTTP server --------------------------------------------


def test_client_opens_the_breaker_after_5xx_and_then_sends_nothing(vendor: ScriptedVendor) -> None:
    # given a vendor failing with 500 and a breaker that opens after 3 failures
    vendor.will(*[Reply(500, QBO_FAULT)] * 3)
    harness = make_harness(
        make_policy(vendor.url, max_attempts=3, breaker_failure_threshold=3, breaker_cool_down_seconds=30.0)
    )

    # when one GET exhausts its attempts
    with pytest.raises(VendorHttpError):
        harness.client.get("/v3/company/1/invoice/1", scope="1")

    # then the breaker is open and the next call never reaches the vendor
    assert harness.breakers.load("testvendor").state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        harness.client.get("/v3/company/1/invoice/2", scope="1")
    assert len(vendor.received) == 3


def test_client_breaker_opens_mid_retry_loop_and_stops_retrying(vendor: ScriptedVendor) -> None:
    vendor.will(*[Reply(503)] * 5)
    harness = make_harness(make_policy(vendor.url, max_attempts=5, breaker_failure_threshold=2))

    with pytest.raises(CircuitOpenError):
        harness.client.get("/x", scope="s")

    assert len(vendor.received) == 2


def test_client_errors_do_not_count_against_the_breaker(vendor: ScriptedVendor) -> None:
    vendor.will(*[Reply(404)] * 4, Reply(429, headers={"Retry-After": "0"}))
    harness = make_harness(make_policy(vendor.url, breaker_failure_threshold=2, max_attempts=1))

    for _ in range(4):
        with pytest.raises(VendorHttpError):
            harness.client.get("/missing", scope="s")
    with pytest.raises(RateLimited):
        harness.client.get("/throttled", scope="s")

    assert harness.breakers.load("testvendor").state is BreakerState.CLOSED
    assert harness.breakers.load("testvendor").consecutive_failures == 0


def test_client_timeouts_count_as_failures(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(200, delay_seconds=0.3), Reply(200, delay_seconds=0.3))
    harness = make_harness(
        make_policy(vendor.url, read_timeout_seconds=0.05, max_attempts=2, breaker_failure_threshold=2)
    )

    with pytest.raises(VendorTimeout):
        harness.client.get("/slow", scope="s")

    assert harness.breakers.load("testvendor").state is BreakerState.OPEN


def test_client_half_open_probe_success_closes_the_breaker(vendor: ScriptedVendor) -> None:
    vendor.will(Reply(502), Reply(200, b'{"ok":true}'), Reply(200))
    harness = make_harness(
        make_policy(vendor.url, max_attempts=1, breaker_failure_threshold=1, breaker_cool_down_seconds=30.0)
    )
    with pytest.raises(VendorHttpError):
        harness.client.get("/x", scope="s")

    harness.clock.advance(30)
    probe = harness.client.get("/x", scope="s")

    assert probe.json() == {"ok": True}
    assert harness.breakers.load("testvendor").state is BreakerState.CLOSED
    assert harness.client.get("/x", scope="s").status_code == 200
    assert len(vendor.received) == 3
