"""Client-side concurrency limits: at most N requests in flight per vendor and scope, across every Lambda.

Some vendors limit how many requests may be *in flight* at once, not only how many arrive per window:
Outlook allows 4 concurrent requests per app and mailbox (../shared/api-notes.md §4 "Throttling and
errors") and answers the fifth with 429. A rolling-window limiter cannot see that (four slow calls
and one more fit any window), so :class:`ConcurrencyLimiter` keeps, per (vendor, scope), ``limit``
*slots*. A call takes a free slot before it is sent and gives it back when the answer has been read.

A slot is a **lease**: it names its owner and is held until ``lease_until``. A Lambda that crashes or
times out mid-call never releases its slot; once the lease has run out, the slot counts as free and
another caller may take it. The lease is sized to outlast any healthy call (connect + read timeout
plus a margin, :attr:`ledgerlink.http.policy.VendorPolicy.concurrency_lease_seconds`), so a live
holder is never displaced. A release is conditional on the owner, so a holder whose lease ran out
and was taken over cannot free its successor's slot.

The slots live behind :class:`ConcurrencyStore`: in process (:class:`InMemoryConcurrencyStore`) for
tests and one-process tools, or DynamoDB (:class:`ledgerlink.http.dynamodb.DynamoDBConcurrencyStore`,
items ``concurrency#<vendor>#<scope>`` / ``slot#<n>``) so every concurrent Lambda shares them.

When every slot is taken the caller polls (on the injected clock, the interval doubling from
``poll_seconds`` up to :data:`MAX_POLL_SECONDS`) until one frees or the call's wait budget is spent,
then raises :class:`ConcurrencyLimited` (retryable, nothing sent), so SQS brings the work back later.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock
from ledgerlink.http.errors import ConcurrencyLimited

logger = Logger(child=True)

# Calls take ~0.1-1 s; a waiter asks again soon at first, then less often, so a long wait does not
# cost one store read per 50 ms.
DEFAULT_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Slot:
    """One held slot: which bucket, which of its ``limit`` slots, and the owner token that releases it."""

    bucket: str
    number: int
    owner: str
    lease_until: float


@dataclass(frozen=True)
class Holder:
    """A slot as the store has it (tests, ``ledgerlink local status``)."""

    number: int
    owner: str
    lease_until: float


class ConcurrencyStore(Protocol):
    def try_acquire(
        self, bucket: str, limit: int, owner: str, now: float, lease_seconds: float
    ) -> Slot | None:
        """Atomically take one of the ``limit`` slots of ``bucket`` that is free or whose lease ended by
        ``now``, for ``owner`` until ``now + lease_seconds``. None (nothing written) when all are held."""
        ...

    def release(self, slot: Slot) -> bool:
        """Give the slot back, iff ``slot.owner`` still holds it. False when its lease had run out and
        someone else took it (or it was already released)."""
        ...

    def holders(self, bucket: str, now: float) -> list[Holder]:
        """The slots of ``bucket`` held by a live lease at ``now``, by slot number."""
        ...


def concurrency_key(vendor: str, scope: str) -> str:
    return f"{vendor}#{scope}"


def new_owner() -> str:
    """A token naming one acquisition: unguessable, so no other caller can release the slot."""
    return secrets.token_hex(8)


class InMemoryConcurrencyStore:
    """Slots in this process only: for tests and the single-process local tools."""

    def __init__(self) -> None:
        self._slots: dict[str, dict[int, Holder]] = {}
        self._lock = threading.Lock()

    def try_acquire(
        self, bucket: str, limit: int, owner: str, now: float, lease_seconds: float
    ) -> Slot | None:
        with self._lock:
            slots = self._slots.setdefault(bucket, {})
            for number in range(limit):
                held = slots.get(number)
                if held is None or held.lease_until <= now:
                    slots[number] = Holder(number, owner, now + lease_seconds)
                    return Slot(bucket, number, owner, now + lease_seconds)
            return None

    def release(self, slot: Slot) -> bool:
        with self._lock:
            slots = self._slots.get(slot.bucket, {})
            held = slots.get(slot.number)
            if held is None or held.owner != slot.owner:
                return False
            del slots[slot.number]
            return True

    def holders(self, bucket: str, now: float) -> list[Holder]:
        with self._lock:
            slots = self._slots.get(bucket, {})
            return sorted((h for h in slots.values() if h.lease_until > now), key=lambda h: h.number)


class ConcurrencyLimiter:
    """Takes a slot for a scope (waiting on the injected clock) and gives it back after the call."""

    def __init__(
        self,
        vendor: str,
        limit: int,
        store: ConcurrencyStore,
        clock: Clock,
        *,
        lease_seconds: float,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        if limit < 1:
            raise ValueError(f"{vendor}: a concurrency limit must be at least 1, got {limit}")
        if lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError(f"{vendor}: concurrency lease and poll interval must be positive")
        self.vendor = vendor
        self.limit = limit
        self._store = store
        self._clock = clock
        self.lease_seconds = lease_seconds
        self._poll = poll_seconds

    def bucket(self, scope: str) -> str:
        return concurrency_key(self.vendor, scope)

    def try_acquire(self, scope: str) -> Slot | None:
        """A slot now, or None when all ``limit`` are held."""
        if not scope:
            raise ValueError(f"{self.vendor}: a concurrency scope is required")
        return self._store.try_acquire(
            self.bucket(scope), self.limit, new_owner(), self._clock.now(), self.lease_seconds
        )

    def acquire(self, scope: str, *, max_wait: float, method: str = "", path: str = "") -> tuple[Slot, float]:
        """A slot and the seconds spent waiting for it; :class:`ConcurrencyLimited` (nothing sent) when
        none frees within ``max_wait``."""
        waited = 0.0
        poll = self._poll
        while True:
            slot = self.try_acquire(scope)
            if slot is not None:
                return slot, waited
            if waited + poll > max_wait:
                logger.warning(
                    "client-side concurrency limit: giving the work back",
                    extra={
                        "vendor": self.vendor,
                        "scope": scope,
                        "limit": self.limit,
                        "waited_seconds": waited,
                    },
                )
                raise ConcurrencyLimited(
                    vendor=self.vendor,
                    method=method,
                    path=path,
                    scope=scope,
                    limit=self.limit,
                    retry_after=MAX_POLL_SECONDS,
                )
            self._clock.sleep(poll)
            waited += poll
            poll = min(poll * 2, MAX_POLL_SECONDS)

    def release(self, slot: Slot) -> None:
        if not self._store.release(slot):
            # The call outlived its lease and someone else may have taken the slot: the vendor may then
            # have seen limit + 1 requests for a moment (and would have answered 429, which is retried).
            logger.warning(
                "concurrency slot released after its lease ran out",
                extra={"vendor": self.vendor, "bucket": slot.bucket, "slot": slot.number},
            )

    def holders(self, scope: str) -> list[Holder]:
        return self._store.holders(self.bucket(scope), self._clock.now())
