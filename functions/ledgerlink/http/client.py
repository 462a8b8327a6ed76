"""``VendorHttpClient``: every call LedgerLink makes to QBO, HubSpot or Microsoft Graph goes through here.

One call = breaker check → auth headers → concurrency slot (vendors that limit requests in flight) →
rate-limit slot → HTTP → concurrency slot back → outcome to the breaker → return, or retry (backoff with full jitter, or the vendor's Retry-After), or raise a
:mod:`ledgerlink.http.errors` error. Nothing here knows a vendor's payloads; vendor clients build
requests and parse responses on top of it.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from aws_lambda_powertools import Logger
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.http.backoff import RandomSource, parse_retry_after
from ledgerlink.http.breaker import BreakerStore, CircuitBreaker
from ledgerlink.http.concurrency import ConcurrencyLimiter, ConcurrencyStore, InMemoryConcurrencyStore, Slot
from ledgerlink.http.errors import (
    RateLimited,
    VendorConnectionError,
    VendorError,
    VendorHttpError,
    VendorTimeout,
)
from ledgerlink.http.policy import VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimiter, RateLimitStore

logger = Logger(child=True)

# Methods whose repetition has the effect of one call (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class AuthProvider(Protocol):
    """Supplies the auth headers for a call; OAuth (and its refresh) lives behind it.

    ``force_refresh=True`` is asked for at most once per call, after the vendor answered 401.
    """

    def __call__(self, *, force_refresh: bool = False) -> Mapping[str, str]: ...


class VendorHttpClient:
    """A requests-based client for one vendor, configured by a :class:`VendorPolicy`.

    The ``requests.Session`` (and its connection pool) lives as long as the client; create one client
    per vendor per process and reuse it across Lambda invocations.
    """

    def __init__(
        self,
        policy: VendorPolicy,
        *,
        rate_limit_store: RateLimitStore,
        breaker_store: BreakerStore,
        auth: AuthProvider | None = None,
        clock: Clock | None = None,
        rng: RandomSource | None = None,
        session: requests.Session | None = None,
        concurrency_store: ConcurrencyStore | None = None,
    ) -> None:
        self.policy = policy
        self._auth = auth
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._session = session if session is not None else _new_session(policy)
        self._base = urlsplit(policy.base_url)
        self.limiter = RateLimiter(
            policy.vendor,
            policy.rate_limits,
            rate_limit_store,
            self._clock,
            policy.max_wait_seconds,
            headroom_seconds=policy.rate_limit_headroom_seconds,
        )
        self.breaker = CircuitBreaker(
            policy.vendor,
            breaker_store,
            self._clock,
            failure_threshold=policy.breaker_failure_threshold,
            cool_down_seconds=policy.breaker_cool_down_seconds,
            probe_lease_seconds=policy.probe_lease_seconds,
            cache_seconds=policy.breaker_cache_seconds,
        )
        # Only for a policy with max_concurrent_per_scope. Without a store the limit holds in this
        # process only; shared_state_client passes the DynamoDB store so it holds across Lambdas.
        self.concurrency: ConcurrencyLimiter | None = None
        if policy.max_concurrent_per_scope is not None:
            self.concurrency = ConcurrencyLimiter(
                policy.vendor,
                policy.max_concurrent_per_scope,
                concurrency_store if concurrency_store is not None else InMemoryConcurrencyStore(),
                self._clock,
                lease_seconds=policy.concurrency_lease_seconds,
                poll_seconds=policy.concurrency_poll_seconds,
            )

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, *, scope: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, scope=scope, **kwargs)

    def post(self, path: str, *, scope: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, scope=scope, **kwargs)

    def put(self, path: str, *, scope: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, scope=scope, **kwargs)

    def patch(self, path: str, *, scope: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, scope=scope, **kwargs)

    def delete(self, path: str, *, scope: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, scope=scope, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        limit_group: str = DEFAULT_GROUP,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """Send one logical call, retrying what is safe to retry; return the response or raise.

        ``path`` is relative to the policy's base URL, or an absolute URL on the same origin (a
        vendor's paging link). ``scope`` is what the vendor rate-limits by (QBO realm id, HubSpot
        portal id, Graph mailbox). ``idempotent`` says whether a repeat is harmless: None means
        "by method" (GET/HEAD/OPTIONS/PUT/DELETE yes; POST/PATCH no); pass True for a POST that
        carries an idempotency key (QBO ``requestid``, Graph ``transactionId``, a HubSpot upsert).
        A request that provably never reached the vendor (connection refused, connect timeout) is
        retried whatever the method. Statuses in ``accept`` are returned instead of raised (e.g. a
        QBO 400 whose Fault body the caller parses, or a 404 meaning "absent").

        Raises :class:`CircuitOpenError`, :class:`RateLimited`, :class:`VendorTimeout`,
        :class:`VendorConnectionError` or :class:`VendorHttpError`.
        """
        method = method.upper()
        url, shown_path = self._resolve(path)
        repeatable = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        attempt = 0
        waited = 0.0
        refreshed = False
        refresh_now = False
        while True:
            self.breaker.before_call(method=method, path=shown_path)
            # Credentials first (a token refresh may take a while), the rate-limit slot last: the limiter
            # stamps the admission, the vendor stamps the arrival, and nothing may come between them.
            call_headers = self._headers(headers, force_refresh=refresh_now)
            refresh_now = False
            slot, spent = self._admit(scope, limit_group, method, shown_path, waited)
            waited += spent
            try:
                try:
                    response = self._session.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        data=data,
                        headers=call_headers,
                        timeout=self.policy.timeout,
                    )
                finally:
                    # The whole answer has been read (requests does not stream unless asked), so the
                    # vendor is done with the request and its slot is free before any retry wait. After a
                    # read timeout the vendor may still be working on it; the slot is freed all the same,
                    # because holding it for an unknown time would starve the scope, and the vendor's
                    # 429 for one request too many is retried.
                    self._release(slot)
            except requests.RequestException as exc:
                failure = self._transport_error(exc, method, shown_path)
                if failure is None:
                    raise
                error, never_sent = failure
                self.breaker.on_failure()
                if not (repeatable or never_sent) or attempt + 1 >= self.policy.max_attempts:
                    raise error from None
                delay = self.policy.backoff.delay(attempt, self._rng)
                waited = self._sleep_or_raise(delay, waited, error, method, shown_path, scope)
                attempt += 1
                continue

            status = response.status_code
            self._report_to_breaker(status)
            if status == 401 and self._auth is not None and not refreshed:
                # A rejected token: the request was not processed, so resending is safe for any method.
                refreshed = refresh_now = True
                logger.info(
                    "vendor answered 401: refreshing credentials once",
                    extra={"vendor": self.policy.vendor, "method": method, "path": shown_path},
                )
                continue
            if status < 400 or status in accept:
                return response

            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
            if status == 429 and retry_after is None:
                retry_after = self.policy.default_429_wait_seconds
            error = self._status_error(response, method, shown_path, scope, retry_after)
            if (
                status not in self.policy.retryable_statuses
                or not repeatable
                or attempt + 1 >= self.policy.max_attempts
            ):
                raise error
            delay = retry_after if retry_after is not None else self.policy.backoff.delay(attempt, self._rng)
            waited = self._sleep_or_raise(delay, waited, error, method, shown_path, scope)
            attempt += 1

    def _admit(
        self, scope: str, group: str, method: str, path: str, waited: float
    ) -> tuple[Slot | None, float]:
        """Take the concurrency slot (if the policy has a limit) and the rate-limit slot; return the
        concurrency slot (the caller releases it after the send) and the seconds spent waiting.

        The concurrency slot comes first and the rate-limit admission last, right before the send:
        waiting for a concurrency slot between the limiter's stamp and the send would let calls arrive
        later than the log says, and a rolling window counted on admissions could then hold more
        arrivals than the limit. The other order's cost is avoided too: a slot is never held while
        sleeping for room in a rolling window (that could be many seconds, starving the scope's other
        callers and outliving the lease); when the window is full, the slot is given back, the call
        sleeps, and both are taken again.
        """
        if self.concurrency is None:
            return None, self.limiter.acquire(
                scope, group, method=method, path=path, max_wait=self._wait_cap(waited)
            )
        budget = self._wait_cap(waited)
        spent = 0.0
        not_before = 0.0
        while True:
            slot, slot_wait = self.concurrency.acquire(
                scope, max_wait=budget - spent, method=method, path=path
            )
            spent += slot_wait
            try:
                window_wait, now = self.limiter.try_acquire(scope, group, not_before=not_before)
            except BaseException:
                self.concurrency.release(slot)
                raise
            if window_wait <= 0:
                return slot, spent
            self.concurrency.release(slot)
            if spent + window_wait > budget:
                raise self.limiter.refusal(scope, group, window_wait, method=method, path=path)
            self._clock.sleep(window_wait)
            spent += window_wait
            not_before = now + window_wait

    def _release(self, slot: Slot | None) -> None:
        if slot is not None and self.concurrency is not None:
            self.concurrency.release(slot)

    def _resolve(self, path: str) -> tuple[str, str]:
        """The URL to call and the path to name in logs and errors (no query string, which may carry ids)."""
        if path.startswith(("https://", "http://")):
            target = urlsplit(path)
            if (target.scheme, target.netloc) != (self._base.scheme, self._base.netloc):
                # Auth headers must never follow a link to another host.
                raise ValueError(
                    f"{self.policy.vendor}: refusing to call {target.scheme}://{target.netloc}, "
                    f"which is not the vendor's origin {self._base.scheme}://{self._base.netloc}"
                )
            return path, target.path
        if not path.startswith("/"):
            raise ValueError(f"{self.policy.vendor}: path must start with '/', got {path!r}")
        return self.policy.base_url + path, urlsplit(path).path

    def _headers(self, extra: Mapping[str, str] | None, *, force_refresh: bool) -> dict[str, str]:
        merged: dict[str, str] = {"Accept": "application/json"}
        if self._auth is not None:
            merged.update(self._auth(force_refresh=force_refresh))
        if extra:
            merged.update(extra)
        return merged

    def _wait_cap(self, waited: float) -> float:
        return max(0.0, min(self.policy.max_wait_seconds, self.policy.max_total_wait_seconds - waited))

    def _report_to_breaker(self, status: int) -> None:
        if status >= 500 or (status == 429 and self.policy.breaker_counts_429):
            self.breaker.on_failure()
        else:
            # Any other answer, 4xx included, shows the vendor is up.
            self.breaker.on_success()

    def _sleep_or_raise(
        self, delay: float, waited: float, error: VendorError, method: str, path: str, scope: str
    ) -> float:
        """Sleep ``delay`` and return the new total waited, or raise ``error`` carrying the wait."""
        if delay > self._wait_cap(waited):
            error.retry_after = delay
            logger.warning(
                "vendor call gives up: the wait exceeds what this call may sleep",
                extra={"vendor": self.policy.vendor, "method": method, "path": path, "retry_after": delay},
            )
            raise error
        logger.warning(
            "vendor call failed: retrying",
            extra={
                "vendor": self.policy.vendor,
                "method": method,
                "path": path,
                "scope": scope,
                "error": type(error).__name__,
                "status": getattr(error, "status", None),
                "delay_seconds": round(delay, 3),
            },
        )
        self._clock.sleep(delay)
        return waited + delay

    def _status_error(
        self, response: requests.Response, method: str, path: str, scope: str, retry_after: float | None
    ) -> VendorError:
        body = response.text if response.content else ""
        if response.status_code == 429:
            return RateLimited(
                vendor=self.policy.vendor,
                method=method,
                path=path,
                retry_after=retry_after,
                scope=scope,
                body=body,
            )
        return VendorHttpError(
            vendor=self.policy.vendor,
            status=response.status_code,
            method=method,
            path=path,
            body=body,
            retry_after=retry_after,
        )

    def _transport_error(
        self, exc: requests.RequestException, method: str, path: str
    ) -> tuple[VendorError, bool] | None:
        """The error to raise for a failed send, and whether the request provably never left."""
        vendor = self.policy.vendor
        if isinstance(exc, requests.ConnectTimeout):
            timeout = self.policy.connect_timeout_seconds
            return VendorTimeout(
                vendor=vendor, method=method, path=path, phase="connect", timeout_seconds=timeout
            ), True
        if isinstance(exc, requests.ReadTimeout):
            timeout = self.policy.read_timeout_seconds
            return VendorTimeout(
                vendor=vendor, method=method, path=path, phase="read", timeout_seconds=timeout
            ), False
        if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
            never_sent = _never_connected(exc)
            reason = "could not connect" if never_sent else "connection lost during the call"
            return VendorConnectionError(vendor=vendor, method=method, path=path, reason=reason), never_sent
        return None


def _never_connected(exc: BaseException) -> bool:
    """True when the failure was establishing the connection (refused, DNS), so nothing was sent."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def _new_session(policy: VendorPolicy) -> requests.Session:
    session = requests.Session()
    # Retries are ours (with jitter, Retry-After, breaker accounting); urllib3 must not add its own.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"LedgerLink ({policy.vendor} client)"
    return session
