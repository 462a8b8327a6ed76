"""The vendor HTTP layer: timeouts, retries with full jitter, Retry-After, rate limits, circuit breakers.

See docs/http-layer.md. Vendor clients build on :class:`VendorHttpClient`; in Lambda,
:func:`shared_state_client` gives one whose limits and breaker are shared through DynamoDB.
"""

from __future__ import annotations

from ledgerlink.http.backoff import Backoff, parse_retry_after
from ledgerlink.http.breaker import BreakerState, CircuitBreaker, InMemoryBreakerStore
from ledgerlink.http.client import AuthProvider, VendorHttpClient
from ledgerlink.http.concurrency import ConcurrencyLimiter, InMemoryConcurrencyStore
from ledgerlink.http.errors import (
    CircuitOpenError,
    ConcurrencyLimited,
    RateLimited,
    VendorConnectionError,
    VendorError,
    VendorHttpError,
    VendorTimeout,
)
from ledgerlink.http.factory import in_process_client, shared_state_client
from ledgerlink.http.policy import HUBSPOT_SEARCH, VendorPolicy, graph_policy, hubspot_policy, qbo_policy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, RateLimit, RateLimiter

__all__ = [
    "DEFAULT_GROUP",
    "HUBSPOT_SEARCH",
    "AuthProvider",
    "Backoff",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConcurrencyLimited",
    "ConcurrencyLimiter",
    "InMemoryBreakerStore",
    "InMemoryConcurrencyStore",
    "InMemoryRateLimitStore",
    "RateLimit",
    "RateLimited",
    "RateLimiter",
    "VendorConnectionError",
    "VendorError",
    "VendorHttpClient",
    "VendorHttpError",
    "VendorPolicy",
    "VendorTimeout",
    "graph_policy",
    "hubspot_policy",
    "in_process_client",
    "parse_retry_after",
    "qbo_policy",
    "shared_state_client",
]
