"""A circuit breaker per vendor, with its state behind a store so concurrent Lambdas share it.

CLOSED: calls flow; each failure (5xx, timeout, connection error) adds to a consecutive-failure
count and a success resets it. At ``failure_threshold`` the breaker OPENs: calls fail fast with
:class:`CircuitOpenError` and nothing is sent. After ``cool_down_seconds`` exactly one caller claims
the probe (HALF_OPEN, a conditional write in the DynamoDB store); everyone else keeps failing fast.
The probe's success CLOSEs the breaker, its failure re-OPENs it for another cool-down. A probe
claim is a lease: if the prober dies without reporting, another caller may claim after
``probe_lease_seconds``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock
from ledgerlink.http.errors import CircuitOpenError

logger = Logger(child=True)


class BreakerState(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True)
class BreakerSnapshot:
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    probe_until: float | None = None


class BreakerStore(Protocol):
    def load(self, name: str) -> BreakerSnapshot: ...

    def record_failure(self, name: str, threshold: int, now: float) -> BreakerSnapshot:
        """Count a failure; CLOSED with ``threshold`` failures, or a failed HALF_OPEN probe, becomes OPEN
        at ``now``. Returns the state afterwards."""
        ...

    def record_success(self, name: str) -> BreakerSnapshot:
        """The vendor answered: CLOSED with no failures. Returns the state afterwards."""
        ...

    def try_claim_probe(self, name: str, now: float, cool_down_seconds: float, lease_seconds: float) -> bool:
        """Atomically move OPEN (cooled down) or HALF_OPEN (lease expired) to HALF_OPEN with a lease
        until ``now + lease_seconds``. True for exactly one of any number of concurrent claimers."""
        ...


class InMemoryBreakerStore:
    """Breaker state in this process only: for tests and the single-process local stack."""

    def __init__(self) -> None:
        self._states: dict[str, BreakerSnapshot] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> BreakerSnapshot:
        with self._lock:
            return self._states.get(name, BreakerSnapshot())

    def record_failure(self, name: str, threshold: int, now: float) -> BreakerSnapshot:
        with self._lock:
            current = self._states.get(name, BreakerSnapshot())
            failures = current.consecutive_failures + 1
            if current.state is BreakerState.HALF_OPEN or (
                current.state is BreakerState.CLOSED and failures >= threshold
            ):
                updated = BreakerSnapshot(BreakerState.OPEN, failures, opened_at=now, probe_until=None)
            else:
                updated = replace(current, consecutive_failures=failures)
            self._states[name] = updated
            return updated

    def record_success(self, name: str) -> BreakerSnapshot:
        with self._lock:
            self._states[name] = BreakerSnapshot()
            return self._states[name]

    def try_claim_probe(self, name: str, now: float, cool_down_seconds: float, lease_seconds: float) -> bool:
        with self._lock:
            current = self._states.get(name, BreakerSnapshot())
            if not probe_claimable(current, now, cool_down_seconds):
                return False
            self._states[name] = replace(
                current, state=BreakerState.HALF_OPEN, probe_until=now + lease_seconds
            )
            return True


def probe_claimable(snapshot: BreakerSnapshot, now: float, cool_down_seconds: float) -> bool:
    if snapshot.state is BreakerState.OPEN:
        return snapshot.opened_at is not None and now >= snapshot.opened_at + cool_down_seconds
    if snapshot.state is BreakerState.HALF_OPEN:
        return snapshot.probe_until is not None and now >= snapshot.probe_until
    return False


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; ``probe`` is True when this call decides whether the breaker closes."""

    probe: bool


class CircuitBreaker:
    """One vendor's breaker: asks the store before a call, reports the outcome after.

    The last snapshot read or written is reused for ``cache_seconds`` so that a healthy vendor costs
    one store read per ``cache_seconds`` per process rather than one per call. An OPEN snapshot is
    trusted until its cool-down ends, because nothing can close the breaker before then.
    """

    def __init__(
        self,
        name: str,
        store: BreakerStore,
        clock: Clock,
        *,
        failure_threshold: int,
        cool_down_seconds: float,
        probe_lease_seconds: float,
        cache_seconds: float = 1.0,
    ) -> None:
        if failure_threshold <= 0:
            raise ValueError(f"breaker failure threshold must be positive, got {failure_threshold}")
        self.name = name
        self._store = store
        self._clock = clock
        self._threshold = failure_threshold
        self._cool_down = cool_down_seconds
        self._lease = probe_lease_seconds
        self._cache_seconds = cache_seconds
        self._cached: BreakerSnapshot | None = None
        self._cached_at = float("-inf")

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock.now()
        cached = self._cached
        if cached is not None:
            if now - self._cached_at < self._cache_seconds:
                return cached
            opened_at = cached.opened_at
            if (
                cached.state is BreakerState.OPEN
                and opened_at is not None
                and now < opened_at + self._cool_down
            ):
                return cached
        return self._remember(self._store.load(self.name))

    def before_call(self, *, method: str | None = None, path: str | None = None) -> Permit:
        """A permit to call, or :class:`CircuitOpenError` (nothing is sent)."""
        snapshot = self.snapshot()
        if snapshot.state is BreakerState.CLOSED:
            return Permit(probe=False)
        now = self._clock.now()
        if probe_claimable(snapshot, now, self._cool_down):
            if self._store.try_claim_probe(self.name, now, self._cool_down, self._lease):
                self._remember(replace(snapshot, state=BreakerState.HALF_OPEN, probe_until=now + self._lease))
                logger.info("circuit breaker half-open: probing", extra={"vendor": self.name})
                return Permit(probe=True)
            # Someone else holds the probe; their answer arrives within the lease.
            self._cached = None
            raise CircuitOpenError(vendor=self.name, retry_after=self._lease, method=method, path=path)
        raise CircuitOpenError(
            vendor=self.name, retry_after=self._retry_after(snapshot, now), method=method, path=path
        )

    def on_success(self) -> None:
        cached = self._cached
        if cached is not None and cached.state is BreakerState.CLOSED and cached.consecutive_failures == 0:
            return  # already known healthy: no write
        was = cached.state if cached is not None else None
        self._remember(self._store.record_success(self.name))
        if was is not BreakerState.CLOSED:
            logger.info("circuit breaker closed", extra={"vendor": self.name})

    def on_failure(self) -> None:
        was = self._cached.state if self._cached is not None else None
        after = self._remember(self._store.record_failure(self.name, self._threshold, self._clock.now()))
        if after.state is BreakerState.OPEN and was is not BreakerState.OPEN:
            logger.warning(
                "circuit breaker opened",
                extra={
                    "vendor": self.name,
                    "consecutive_failures": after.consecutive_failures,
                    "cool_down_seconds": self._cool_down,
                },
            )

    def _remember(self, snapshot: BreakerSnapshot) -> BreakerSnapshot:
        self._cached = snapshot
        self._cached_at = self._clock.now()
        return snapshot

    def _retry_after(self, snapshot: BreakerSnapshot, now: float) -> float:
        if snapshot.state is BreakerState.OPEN and snapshot.opened_at is not None:
            return max(0.0, snapshot.opened_at + self._cool_down - now)
        if snapshot.state is BreakerState.HALF_OPEN and snapshot.probe_until is not None:
            return max(0.0, snapshot.probe_until - now)
        return self._cool_down
