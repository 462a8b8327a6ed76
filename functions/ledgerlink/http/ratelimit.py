"""Client-side rate limiting: fixed-window counters per vendor, per limit group and per scope.

A scope is whatever the vendor counts against: the QBO realm (company), the HubSpot portal, the
Graph mailbox. A limit group lets one vendor keep separate budgets for separate endpoint families
(HubSpot's CRM search has its own 4/s and is exempt from the 10-second limit). Each group has one
or more :class:`RateLimit` s (QBO: 10 per second AND 500 per minute); a call needs a slot in all
of them.

The counters live behind :class:`RateLimitStore`: in process (:class:`InMemoryRateLimitStore`) for
tests and a single local process, or DynamoDB (``ledgerlink.http.dynamodb``) so every concurrent
Lambda draws from one budget.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock
from ledgerlink.http.errors import RateLimited

logger = Logger(child=True)

DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` calls per fixed window of ``window_seconds``."""

    limit: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ValueError(f"rate limit must be positive, got {self.limit}")
        if self.window_seconds <= 0:
            raise ValueError(f"rate-limit window must be positive, got {self.window_seconds}")

    @property
    def name(self) -> str:
        """Stable, human-readable id used in store keys, e.g. ``10per1s``."""
        return f"{self.limit}per{self.window_seconds:g}s"

    def window_index(self, now: float) -> int:
        return math.floor(now / self.window_seconds)

    def window_end(self, now: float) -> float:
        return (self.window_index(now) + 1) * self.window_seconds


class RateLimitStore(Protocol):
    def try_acquire(self, bucket: str, rate_limit: RateLimit, now: float) -> bool:
        """Atomically take one slot in the window of ``rate_limit`` that contains ``now``.

        True if taken; False (and nothing changed) if that window is already full.
        """
        ...


class InMemoryRateLimitStore:
    """Counters in this process only: for tests and the single-process local stack."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, bucket: str, rate_limit: RateLimit, now: float) -> bool:
        window = rate_limit.window_index(now)
        key = (bucket, rate_limit.name, window)
        with self._lock:
            count = self._counts.get(key, 0)
            if count >= rate_limit.limit:
                return False
            self._counts[key] = count + 1
            self._forget_windows_before(bucket, rate_limit, window)
            return True

    def count(self, bucket: str, rate_limit: RateLimit, now: float) -> int:
        """Slots taken in the window containing ``now`` (for tests and `local status`)."""
        with self._lock:
            return self._counts.get((bucket, rate_limit.name, rate_limit.window_index(now)), 0)

    def _forget_windows_before(self, bucket: str, rate_limit: RateLimit, window: int) -> None:
        # Past windows can never be counted against again; dropping them keeps memory flat.
        stale = [k for k in self._counts if k[0] == bucket and k[1] == rate_limit.name and k[2] < window]
        for key in stale:
            del self._counts[key]


def bucket_key(vendor: str, group: str, scope: str) -> str:
    return f"{vendor}#{group}#{scope}"


class RateLimiter:
    """Waits (on the injected clock) until every limit of a group has a free slot for a scope.

    Limits are tried shortest window first: if the short window is full nothing is taken; if a
    longer one is full, the short-window slot already taken is simply lost, which only lowers that
    one second's budget, whereas the reverse order would burn the scarce long-window budget on
    every refused attempt.
    """

    def __init__(
        self,
        vendor: str,
        groups: Mapping[str, Sequence[RateLimit]],
        store: RateLimitStore,
        clock: Clock,
        max_wait_seconds: float,
    ) -> None:
        if not groups:
            raise ValueError(f"{vendor}: at least one rate-limit group is required")
        self.vendor = vendor
        self._groups = {
            name: sorted(limits, key=lambda x: x.window_seconds) for name, limits in groups.items()
        }
        self._store = store
        self._clock = clock
        self._max_wait = max_wait_seconds

    def limits(self, group: str = DEFAULT_GROUP) -> Sequence[RateLimit]:
        try:
            return self._groups[group]
        except KeyError:
            known = ", ".join(sorted(self._groups))
            raise ValueError(f"{self.vendor}: unknown rate-limit group {group!r} (known: {known})") from None

    def acquire(
        self,
        scope: str,
        group: str = DEFAULT_GROUP,
        *,
        method: str = "",
        path: str = "",
        max_wait: float | None = None,
    ) -> float:
        """Take a slot for ``scope`` in every limit of ``group``; return the seconds spent waiting.

        Raises :class:`RateLimited` (nothing sent, ``status`` None) when the next free slot is
        further away than ``max_wait`` (default: the limiter's maximum wait).
        """
        limit_wait = self._max_wait if max_wait is None else max_wait
        if not scope:
            raise ValueError(f"{self.vendor}: a rate-limit scope (realm, portal or mailbox) is required")
        limits = self.limits(group)
        bucket = bucket_key(self.vendor, group, scope)
        waited = 0.0
        while True:
            now = self._clock.now()
            blocked_until = self._take_all(bucket, limits, now)
            if blocked_until is None:
                return waited
            wait = blocked_until - now
            if waited + wait > limit_wait:
                logger.warning(
                    "client-side rate limit: giving the work back",
                    extra={"vendor": self.vendor, "group": group, "scope": scope, "retry_after": wait},
                )
                raise RateLimited(
                    vendor=self.vendor, method=method, path=path, retry_after=wait, scope=scope, status=None
                )
            logger.debug(
                "client-side rate limit: waiting for the next window",
                extra={"vendor": self.vendor, "group": group, "scope": scope, "wait_seconds": wait},
            )
            self._clock.sleep(wait)
            waited += wait

    def _take_all(self, bucket: str, limits: Sequence[RateLimit], now: float) -> float | None:
        """None when a slot was taken in every limit, else the end of the first full window."""
        for rate_limit in limits:
            if not self._store.try_acquire(bucket, rate_limit, now):
                return rate_limit.window_end(now)
        return None
