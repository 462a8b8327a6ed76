"""Errors raised by the vendor HTTP layer.

Every error names the vendor and, where there was one, the method and path of the call (never the
query string, headers or request body, which can carry tokens). ``retryable`` tells an SQS consumer
whether the same message may succeed later (fail the record so SQS redelivers it) or never will
(send it to the dead-letter queue with the message as the reason). ``retry_after`` is how long the
vendor (or the breaker) asked us to wait, in seconds, when known.
"""

from __future__ import annotations

import re

# Bodies are truncated before they go into an exception: enough to diagnose, never a whole document.
BODY_EXCERPT_CHARS = 300

_SECRET_JSON_FIELD = re.compile(
    r'("(?:[a-z_]*token|[a-z_]*secret|password|authorization|api[_-]?key|hapikey)"\s*:\s*)"[^"]*"',
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_SECRET_FORM_FIELD = re.compile(
    r"((?:^|[?&\s])(?:[a-z_]*token|[a-z_]*secret|password|api[_-]?key|hapikey)=)[^&\s]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Mask anything in a vendor response that looks like a credential (OAuth error bodies echo some)."""
    text = _SECRET_JSON_FIELD.sub(r'\1"***"', text)
    text = _BEARER.sub(r"\1 ***", text)
    return _SECRET_FORM_FIELD.sub(r"\1***", text)


def body_excerpt(body: str, limit: int = BODY_EXCERPT_CHARS) -> str:
    """A short, single-line, credential-free excerpt of a response body."""
    flattened = " ".join(body.split())
    excerpt = redact(flattened)
    if len(excerpt) > limit:
        return excerpt[:limit] + "…"
    return excerpt


class VendorError(Exception):
    """Base of every error from a vendor call."""

    retryable: bool = False
    # True when the failure is the connection's, not one request's (credentials refused, a scope
    # missing): every record behind it fails the same way (ledgerlink.consumer.failures.FailureScope.SHARED).
    connection_wide: bool = False

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.method = method
        self.path = path
        self.retry_after = retry_after


def _call(method: str | None, path: str | None) -> str:
    return f" ({method} {path})" if method and path else ""


class VendorHttpError(VendorError):
    """The vendor answered with a non-success status.

    Retryable for 408, 429 and 5xx (the vendor may succeed later); not for other 4xx, which will fail
    the same way every time (bad input, missing object, forbidden).
    """

    def __init__(
        self,
        *,
        vendor: str,
        status: int,
        method: str,
        path: str,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.body_excerpt = body_excerpt(body)
        detail = f": {self.body_excerpt}" if self.body_excerpt else ""
        super().__init__(
            f"{vendor} answered HTTP {status}{_call(method, path)}{detail}",
            vendor=vendor,
            method=method,
            path=path,
            retry_after=retry_after,
        )
        self.retryable = status in (408, 429) or status >= 500
        # 401/403: the credentials or their scopes are refused, whatever the request was.
        self.connection_wide = status in (401, 403)


class RateLimited(VendorError):
    """Not now: the vendor answered HTTP 429, or our own limiter has no slot soon enough.

    Raised instead of sleeping when the wait exceeds the client's maximum, so the caller can hand the
    work back to SQS (visibility timeout) rather than sleep past the Lambda timeout. ``status`` is 429
    when the vendor said so and ``None`` when the client-side limiter did (nothing was sent).
    """

    retryable = True

    def __init__(
        self,
        *,
        vendor: str,
        method: str,
        path: str,
        retry_after: float | None,
        scope: str | None = None,
        status: int | None = 429,
        body: str = "",
    ) -> None:
        self.status = status
        self.scope = scope
        self.body_excerpt = body_excerpt(body)
        source = "vendor rate limit (HTTP 429)" if status is not None else "client-side rate limit"
        wait = f"retry after {retry_after:.3f}s" if retry_after is not None else "retry later"
        scope_text = f" for scope {scope}" if scope else ""
        super().__init__(
            f"{vendor} {source} reached{scope_text}{_call(method, path)}: {wait}",
            vendor=vendor,
            method=method,
            path=path,
            retry_after=retry_after,
        )


class ConcurrencyLimited(RateLimited):
    """Our own concurrency limit had no free slot for the scope in time (``ledgerlink.http.concurrency``):
    nothing was sent (``status`` None). Retryable, like every rate limit: the slots free within seconds."""

    def __init__(
        self,
        *,
        vendor: str,
        method: str,
        path: str,
        scope: str,
        limit: int,
        retry_after: float | None,
    ) -> None:
        super().__init__(
            vendor=vendor, method=method, path=path, retry_after=retry_after, scope=scope, status=None
        )
        self.limit = limit
        wait = f"retry after {retry_after:.3f}s" if retry_after is not None else "retry later"
        self.args = (
            f"{vendor} client-side concurrency limit ({limit} requests in flight) reached for scope "
            f"{scope}{_call(method, path)}: {wait}",
        )


class CircuitOpenError(VendorError):
    """The vendor's circuit breaker is open: the call was not sent. Retry after the cool-down."""

    retryable = True

    def __init__(
        self, *, vendor: str, retry_after: float, method: str | None = None, path: str | None = None
    ):
        super().__init__(
            f"{vendor} circuit breaker is open after repeated failures; call not sent{_call(method, path)}; "
            f"retry after {retry_after:.3f}s",
            vendor=vendor,
            method=method,
            path=path,
            retry_after=retry_after,
        )


class VendorTimeout(VendorError):
    """Connecting to, or reading from, the vendor took longer than the policy's timeout."""

    retryable = True

    def __init__(self, *, vendor: str, method: str, path: str, phase: str, timeout_seconds: float) -> None:
        self.phase = phase
        super().__init__(
            f"{vendor} {phase} timed out after {timeout_seconds:g}s{_call(method, path)}",
            vendor=vendor,
            method=method,
            path=path,
        )


class VendorConnectionError(VendorError):
    """No usable connection to the vendor (refused, reset, DNS, TLS)."""

    retryable = True

    def __init__(self, *, vendor: str, method: str, path: str, reason: str) -> None:
        super().__init__(
            f"{vendor} connection failed{_call(method, path)}: {reason}",
            vendor=vendor,
            method=method,
            path=path,
        )
