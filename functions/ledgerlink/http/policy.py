"""How LedgerLink calls each vendor: timeouts, retries, limits, breaker. Defaults come from Settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ledgerlink.config import Settings
from ledgerlink.http.backoff import Backoff
from ledgerlink.http.concurrency import DEFAULT_POLL_SECONDS
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# HubSpot's CRM search endpoints have their own per-second budget and do not count against the
# 10-second limit (../shared/api-notes.md §3f); calls to them pass ``limit_group=HUBSPOT_SEARCH``.
HUBSPOT_SEARCH = "search"

# The safety margin of the client-side rate limits (LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS in Settings;
# this constant is for policies built without Settings): every admitted call counts for its window plus this
# much. The vendor stamps a call when it arrives, the limiter when it admits it; between the two lie a
# connection set-up (a new TLS connection is a few round trips, ~100-200 ms across regions) and the
# clock difference between Lambdas (Amazon Time Sync keeps it well under 1 ms). 0.2 s covers both, at
# the price of 10 calls per 1.2 s instead of per 1.0 s for QBO and 1/50 of HubSpot's 10-second budget.
DEFAULT_RATE_LIMIT_HEADROOM_SECONDS = 0.2

# Connecting should take milliseconds; a slightly-above-3 s connect timeout is the conventional
# value (one TCP SYN retransmission) and fails fast when a host is unreachable.
CONNECT_TIMEOUT_SECONDS = 3.05

# Outlook's documented limit of requests in flight at once per app and mailbox (../shared/api-notes.md §4,
# "4 concurrent requests"); the fifth is answered 429.
OUTLOOK_CONCURRENT_REQUESTS = 4


@dataclass(frozen=True)
class VendorPolicy:
    vendor: str
    base_url: str
    rate_limits: Mapping[str, tuple[RateLimit, ...]]
    # Added to every rate-limit window (see DEFAULT_RATE_LIMIT_HEADROOM_SECONDS); 0 trusts the clocks.
    rate_limit_headroom_seconds: float = DEFAULT_RATE_LIMIT_HEADROOM_SECONDS
    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
    read_timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff: Backoff = field(default_factory=Backoff)
    retryable_statuses: frozenset[int] = RETRYABLE_STATUSES
    # The longest single wait (Retry-After, backoff or rate-limit slot) a call will sleep through;
    # beyond it the call raises RateLimited/VendorHttpError with retry_after and lets SQS retry.
    max_wait_seconds: float = 20.0
    # Everything one call may spend sleeping, across all its attempts; keeps a call inside the
    # Lambda timeout however the waits add up.
    max_total_wait_seconds: float = 45.0
    # What to wait after a 429 that carries no Retry-After (None: use the backoff).
    default_429_wait_seconds: float | None = None
    breaker_failure_threshold: int = 5
    breaker_cool_down_seconds: float = 30.0
    # 429 is per scope (one realm, portal or mailbox) while the breaker is per vendor: by default
    # a throttled tenant must not cut every other tenant off, so 429 does not count as a failure.
    breaker_counts_429: bool = False
    # How long this process trusts the breaker state it last read from the store.
    breaker_cache_seconds: float = 1.0
    # At most this many requests in flight at once per scope, across every Lambda (None: no limit);
    # see ledgerlink.http.concurrency.
    max_concurrent_per_scope: int | None = None
    # The first wait of a caller that finds every slot taken (doubling up to concurrency.MAX_POLL_SECONDS).
    concurrency_poll_seconds: float = DEFAULT_POLL_SECONDS

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"{self.vendor}: base_url must be an http(s) URL, got {self.base_url!r}")
        if self.max_attempts < 1:
            raise ValueError(f"{self.vendor}: max_attempts must be at least 1, got {self.max_attempts}")
        if DEFAULT_GROUP not in self.rate_limits:
            raise ValueError(f"{self.vendor}: rate_limits needs a {DEFAULT_GROUP!r} group")
        if self.connect_timeout_seconds <= 0 or self.read_timeout_seconds <= 0:
            raise ValueError(f"{self.vendor}: timeouts must be positive")
        if self.rate_limit_headroom_seconds < 0:
            raise ValueError(
                f"{self.vendor}: rate_limit_headroom_seconds must not be negative, "
                f"got {self.rate_limit_headroom_seconds}"
            )
        if self.max_concurrent_per_scope is not None and self.max_concurrent_per_scope < 1:
            raise ValueError(
                f"{self.vendor}: max_concurrent_per_scope must be at least 1 (or None for no limit), "
                f"got {self.max_concurrent_per_scope}"
            )
        if self.concurrency_poll_seconds <= 0:
            raise ValueError(f"{self.vendor}: concurrency_poll_seconds must be positive")

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_seconds, self.read_timeout_seconds)

    @property
    def probe_lease_seconds(self) -> float:
        """How long a half-open probe may take before another caller may probe instead."""
        return self.connect_timeout_seconds + self.read_timeout_seconds + 5.0

    @property
    def concurrency_lease_seconds(self) -> float:
        """How long a concurrency slot is held before it counts as free (its holder crashed): longer than a
        healthy call (connect, then the read timeout, which bounds each wait for the answer), plus margin."""
        return self.connect_timeout_seconds + self.read_timeout_seconds + 5.0


def _from_settings(
    settings: Settings,
    *,
    vendor: str,
    base_url: str,
    rate_limits: Mapping[str, tuple[RateLimit, ...]],
    default_429_wait_seconds: float | None = None,
    max_concurrent_per_scope: int | None = None,
) -> VendorPolicy:
    return VendorPolicy(
        vendor=vendor,
        base_url=base_url,
        rate_limits=rate_limits,
        rate_limit_headroom_seconds=settings.limits.headroom_seconds,
        read_timeout_seconds=settings.http_timeout_seconds,
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, settings.http_timeout_seconds),
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_cool_down_seconds=settings.breaker_cool_down_seconds,
        default_429_wait_seconds=default_429_wait_seconds,
        max_concurrent_per_scope=max_concurrent_per_scope,
    )


def qbo_policy(settings: Settings) -> VendorPolicy:
    """QBO: per realm, 10 requests/s and 500/min; after a 429 Intuit asks for 60 s."""
    limits = settings.limits
    return _from_settings(
        settings,
        vendor="qbo",
        base_url=settings.qbo_base_url,
        rate_limits={
            DEFAULT_GROUP: (
                RateLimit(limits.qbo_per_second, 1.0),
                RateLimit(limits.qbo_per_minute, 60.0),
            )
        },
        default_429_wait_seconds=60.0,
    )


def hubspot_policy(settings: Settings) -> VendorPolicy:
    """HubSpot: per portal, N per 10 s (100 by default); CRM search separately at 4/s."""
    limits = settings.limits
    return _from_settings(
        settings,
        vendor="hubspot",
        base_url=settings.hubspot_base_url,
        rate_limits={
            DEFAULT_GROUP: (RateLimit(limits.hubspot_per_10s, 10.0),),
            HUBSPOT_SEARCH: (RateLimit(limits.hubspot_search_per_second, 1.0),),
        },
    )


def graph_policy(settings: Settings) -> VendorPolicy:
    """Microsoft Graph (Outlook): per app and mailbox (the scope ``<app id>/<mailbox>``, see
    ``ledgerlink.graph.client``), 10,000 per 10 minutes and at most 4 requests in flight; Retry-After on
    every 429."""
    return _from_settings(
        settings,
        vendor="graph",
        base_url=settings.graph_base_url,
        rate_limits={DEFAULT_GROUP: (RateLimit(settings.limits.graph_per_10min, 600.0),)},
        max_concurrent_per_scope=OUTLOOK_CONCURRENT_REQUESTS,
    )
