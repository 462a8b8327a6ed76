"""Client-side rate limiting: rolling windows per vendor, per limit group and per scope.

A scope is whatever the vendor counts against: the QBO realm (company), the HubSpot portal, the
Graph mailbox. A limit group lets one vendor keep separate budgets for separate endpoint families
(HubSpot's CRM search has its own per-second limit and is exempt from the 10-second limit). Each
group has one or more :class:`RateLimit` s (QBO: 10 per second AND 500 per minute); a call needs
room in all of them.

The vendors count **rolling** windows: a call is refused when the last ``window`` seconds already
hold ``limit`` calls, wherever the window starts. So the limiter keeps, per (vendor, group, scope),
the log of the times it admitted calls (a sliding log) and admits a call only if, for every limit,
fewer than ``limit`` of them lie in the last ``window + headroom`` seconds. One log serves all the
limits of a group (the short window's calls are the newest entries of the long window's log), so a
call is admitted under every limit at once or not at all; nothing is taken from one limit when
another one is full. When a call must wait, the wait is exact: until the entry that blocks it
leaves the window.

``headroom_seconds`` is the explicit safety margin: each admitted call counts for its window plus
the headroom. It covers what the client cannot see: clocks of different Lambdas that disagree a
little, and the spread of the time between admission here and arrival at the vendor (the vendor
stamps the arrival, not our admission).

The log lives behind :class:`RateLimitStore`: in process (:class:`InMemoryRateLimitStore`) for
tests and a single local process, or DynamoDB (``ledgerlink.http.dynamodb``) so every concurrent
Lambda draws from one budget.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock
from ledgerlink.http.errors import RateLimited

logger = Logger(child=True)

DEFAULT_GROUP = "default"

# Float arithmetic on epoch seconds (~1.7e9, resolution ~2e-7 s) can leave a call that waited exactly
# until an entry's expiry a rounding error short of it; an entry this close to its expiry has expired.
EXPIRY_TOLERANCE_SECONDS = 1e-6


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` calls in any rolling window of ``window_seconds``."""

    limit: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ValueError(f"rate limit must be positive, got {self.limit}")
        if self.window_seconds <= 0:
            raise ValueError(f"rate-limit window must be positive, got {self.window_seconds}")

    @property
    def name(self) -> str:
        """Stable, human-readable id used in logs, e.g. ``10per1s``."""
        return f"{self.limit}per{self.window_seconds:g}s"


def retention_seconds(limits: Sequence[RateLimit], headroom_seconds: float) -> float:
    """How long an admitted call still matters to some limit of the group: the longest counted window."""
    return max(rate_limit.window_seconds for rate_limit in limits) + headroom_seconds


def rolling_wait(
    admitted: Sequence[float], limits: Sequence[RateLimit], now: float, headroom_seconds: float
) -> float:
    """Seconds until one more call fits every limit; 0.0 when it fits now.

    ``admitted`` is the log of admission times, sorted ascending. A call admitted at ``t`` counts
    against a limit of window ``W`` while ``now < t + W + headroom``.
    """
    wait = 0.0
    total = len(admitted)
    for rate_limit in limits:
        span = rate_limit.window_seconds + headroom_seconds
        first_counted = bisect.bisect_right(admitted, now - span + EXPIRY_TOLERANCE_SECONDS)
        if total - first_counted >= rate_limit.limit:
            # Room comes back when all but limit-1 of the counted calls have left the window: when the
            # limit-th newest call leaves it.
            blocking = admitted[total - rate_limit.limit]
            wait = max(wait, blocking + span - now)
    return wait


class RateLimitStore(Protocol):
    def try_acquire(
        self, bucket: str, limits: Sequence[RateLimit], now: float, headroom_seconds: float
    ) -> float:
        """Atomically admit one call at ``now`` under every limit of ``limits`` for ``bucket``.

        Returns 0.0 when the call was admitted (and recorded); otherwise, with nothing recorded, the
        seconds until it could be admitted (always positive). The wait may be an underestimate when
        another process admitted calls this one has not seen yet; asking again then says so.
        """
        ...

    def admitted(self, bucket: str) -> list[float]:
        """The admission times still on record for ``bucket``, oldest first (tests, `local status`)."""
        ...


class InMemoryRateLimitStore:
    """Sliding logs in this process only: for tests and the single-process local stack."""

    def __init__(self) -> None:
        self._logs: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def try_acquire(
        self, bucket: str, limits: Sequence[RateLimit], now: float, headroom_seconds: float
    ) -> float:
        with self._lock:
            log = self._logs.setdefault(bucket, [])
            # Entries no limit counts any more are dropped, which keeps each log at most as long as
            # the group's largest limit.
            del log[: bisect.bisect_right(log, now - retention_seconds(limits, headroom_seconds))]
            wait = rolling_wait(log, limits, now, headroom_seconds)
            if wait > 0:
                return wait
            bisect.insort(log, now)
            return 0.0

    def admitted(self, bucket: str) -> list[float]:
        with self._lock:
            return list(self._logs.get(bucket, ()))


def bucket_key(vendor: str, group: str, scope: str) -> str:
    return f"{vendor}#{group}#{scope}"


class RateLimiter:
    """Waits (on the injected clock) until every limit of a group has room for a scope, then admits."""

    def __init__(
        self,
        vendor: str,
        groups: Mapping[str, Sequence[RateLimit]],
        store: RateLimitStore,
        clock: Clock,
        max_wait_seconds: float,
        *,
        headroom_seconds: float = 0.0,
    ) -> None:
        if not groups:
            raise ValueError(f"{vendor}: at least one rate-limit group is required")
        empty = sorted(name for name, limits in groups.items() if not limits)
        if empty:
            raise ValueError(f"{vendor}: rate-limit group(s) {', '.join(empty)} have no limits")
        if headroom_seconds < 0:
            raise ValueError(f"{vendor}: rate-limit headroom must not be negative, got {headroom_seconds}")
        self.vendor = vendor
        self._groups = {name: tuple(limits) for name, limits in groups.items()}
        self._store = store
        self._clock = clock
        self._max_wait = max_wait_seconds
        self.headroom_seconds = headroom_seconds

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
        """Admit one call for ``scope`` under every limit of ``group``; return the seconds spent waiting.

        Raises :class:`RateLimited` (nothing sent, ``status`` None) when room comes back later than
        ``max_wait`` (default: the limiter's maximum wait) from the first attempt.
        """
        limit_wait = self._max_wait if max_wait is None else max_wait
        waited = 0.0
        not_before = 0.0
        while True:
            wait, now = self.try_acquire(scope, group, not_before=not_before)
            if wait <= 0:
                return waited
            if waited + wait > limit_wait:
                raise self.refusal(scope, group, wait, method=method, path=path)
            logger.debug(
                "client-side rate limit: waiting for room in the rolling window",
                extra={"vendor": self.vendor, "group": group, "scope": scope, "wait_seconds": wait},
            )
            self._clock.sleep(wait)
            waited += wait
            not_before = now + wait

    def try_acquire(
        self, scope: str, group: str = DEFAULT_GROUP, *, not_before: float = 0.0
    ) -> tuple[float, float]:
        """One admission attempt, never waiting: ``(0.0, now)`` when admitted, else ``(seconds until room,
        now)``, where ``now`` is the instant the attempt was made as of.

        ``not_before`` is the instant a caller that just slept waited for: after sleeping until an entry's
        expiry the clock can read a hair earlier than that (float rounding, a sleep that wakes early), and
        the call is admitted as of the instant it waited for, which only ever makes the record later.
        """
        if not scope:
            raise ValueError(f"{self.vendor}: a rate-limit scope (realm, portal or mailbox) is required")
        limits = self.limits(group)
        now = max(self._clock.now(), not_before)
        return self._store.try_acquire(
            bucket_key(self.vendor, group, scope), limits, now, self.headroom_seconds
        ), now

    def refusal(
        self, scope: str, group: str, wait: float, *, method: str = "", path: str = ""
    ) -> RateLimited:
        """The error for a call that would have to wait ``wait`` seconds, more than it may."""
        logger.warning(
            "client-side rate limit: giving the work back",
            extra={"vendor": self.vendor, "group": group, "scope": scope, "retry_after": wait},
        )
        return RateLimited(
            vendor=self.vendor, method=method, path=path, retry_after=wait, scope=scope, status=None
        )
