"""API Gateway HTTP API (payload format 2.0): the request model, JSON responses, errors as responses.

Handlers parse the event with :meth:`HttpRequest.from_event`, read the body with
:meth:`HttpRequest.body` (which refuses an oversize body before decoding it), and turn every
exception into a response in one place, :func:`error_response`, given their own table of
exception type -> HTTP status. Error bodies are ``{"error": <reason>, "message": <text>}``; the
message is the exception's own text, which LedgerLink's errors keep free of secrets. Anything not in
the table is a bug: it is logged with its traceback and answered with a generic 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from ledgerlink.observability import METRICS_NAMESPACE

JSON_HEADERS: Final = {"content-type": "application/json"}


class ApiError(Exception):
    """An error this module raises itself, carrying its HTTP status and a stable reason."""

    status: int = 400
    reason: str = "bad_request"


class PayloadTooLarge(ApiError):
    status = 413
    reason = "payload_too_large"


class BadRequest(ApiError):
    status = 400
    reason = "bad_request"


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an HTTP API v2 event a handler uses; header names lower-case, as API Gateway sends.

    ``path`` is the decoded path (``requestContext.http.path``); ``raw_path`` and ``raw_query_string``
    are the path and query as the client wrote them (``rawPath``, ``rawQueryString``: escapes kept),
    which is what a sender that signs its URL signed. ``domain_name`` and ``stage`` are
    ``requestContext.domainName`` and ``requestContext.stage``.
    """

    request_id: str
    route_key: str
    method: str
    path: str
    headers: Mapping[str, str]
    received_at: datetime
    raw_body: str = field(repr=False)
    is_base64_encoded: bool = False
    raw_path: str = ""
    raw_query_string: str = ""
    domain_name: str = ""
    stage: str = ""

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> HttpRequest:
        context = event.get("requestContext")
        if not isinstance(context, Mapping) or not context.get("requestId"):
            raise BadRequest("not an API Gateway HTTP API event: requestContext.requestId is missing")
        http = context.get("http") or {}
        received_at = _received_at(context.get("timeEpoch"))
        headers = event.get("headers") or {}
        path = str(http.get("path", event.get("rawPath", "")))
        return cls(
            request_id=str(context["requestId"]),
            route_key=str(event.get("routeKey", "")),
            method=str(http.get("method", "")),
            path=path,
            headers={str(name).lower(): str(value) for name, value in headers.items()},
            received_at=received_at,
            raw_body=str(event.get("body") or ""),
            is_base64_encoded=bool(event.get("isBase64Encoded", False)),
            raw_path=str(event.get("rawPath") or path),
            raw_query_string=str(event.get("rawQueryString") or ""),
            domain_name=str(context.get("domainName") or ""),
            stage=str(context.get("stage") or ""),
        )

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def public_url(self, configured: str | None = None) -> str:
        """The URL the client called, rebuilt: ``configured`` (scheme, host and path, e.g. a custom
        domain with a base path, as registered with the sender) when given, else ``https://`` + the
        ``host`` header (``domainName`` without one) + ``rawPath``; then ``?`` + ``rawQueryString``
        when there is a query. An HTTP API serves HTTPS only; that ``rawPath`` is the path the client
        called holds for the ``$default`` stage on the API's own domain, which is what LedgerLink
        deploys (for a named stage or an API mapping it is (unverified): configure the URL then).
        """
        if configured is not None:
            base = configured
        else:
            host = self.header("host") or self.domain_name
            if not host:
                raise BadRequest("the request names no host (no host header, no requestContext.domainName)")
            base = f"https://{host}{self.raw_path}"
        return f"{base}?{self.raw_query_string}" if self.raw_query_string else base

    def body(self, max_bytes: int) -> bytes:
        """The body bytes exactly as the client sent them; :class:`PayloadTooLarge` past ``max_bytes``.

        The size is checked before any decoding: base64 text longer than ``4 * ceil(max / 3)``
        cannot decode to ``max_bytes`` or fewer.
        """
        if self.is_base64_encoded:
            if len(self.raw_body) > 4 * -(-max_bytes // 3):
                raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
            try:
                data = base64.b64decode(self.raw_body, validate=True)
            except (binascii.Error, ValueError):
                raise BadRequest("the body is marked base64 but is not valid base64") from None
        else:
            # UTF-8 takes at least one byte per character: too many characters is too many bytes.
            if len(self.raw_body) > max_bytes:
                raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
            try:
                data = self.raw_body.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate ("\ud800" in the event's JSON) has no UTF-8 bytes: no client sent it.
                raise BadRequest("the body is not UTF-8 text") from None
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
        return data


def _received_at(epoch_ms: Any) -> datetime:
    """API Gateway's receipt time (``requestContext.timeEpoch``, ms); now if it is missing or odd."""
    try:
        return datetime.fromtimestamp(int(epoch_ms) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def json_response(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """An HTTP API v2 response with a JSON body."""
    return {
        "statusCode": status,
        "headers": dict(JSON_HEADERS),
        "body": json.dumps(body, separators=(",", ":"), sort_keys=True),
        "isBase64Encoded": False,
    }


def error_status(error: BaseException, statuses: Mapping[type[BaseException], int]) -> int | None:
    """The status ``statuses`` gives the error's class or its nearest ancestor; None when unmapped."""
    if isinstance(error, ApiError):
        return error.status
    for klass in type(error).__mro__:
        if klass in statuses:
            return statuses[klass]
    return None


def error_reason(error: BaseException) -> str:
    """The error's stable ``reason`` label (for the body, the logs and the metrics)."""
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) and reason else "internal_error"


def error_response(
    error: BaseException, statuses: Mapping[type[BaseException], int], logger: Logger
) -> dict[str, Any]:
    """The one place where an exception becomes a response (see the module docstring)."""
    status = error_status(error, statuses)
    if status is None:
        logger.exception("unhandled error", extra={"error_type": type(error).__name__})
        return json_response(500, {"error": "internal_error", "message": "internal error"})
    reason = error_reason(error)
    logger.warning("request rejected", extra={"status": status, "reason": reason, "detail": str(error)})
    return json_response(status, {"error": reason, "message": str(error)})


def count_rejection(error: BaseException, statuses: Mapping[type[BaseException], int], service: str) -> None:
    """``DeliveriesRejected`` for a refused delivery, twice: with its reason and status as dimensions
    (what went wrong), and with the service alone, the series the rejected-deliveries alarm divides by
    ``DeliveriesReceived`` (an alarm cannot sum a metric over dimension values it does not name). Each
    is a metric of its own, so the dimensions never join the handler's other metrics."""
    status = error_status(error, statuses) or 500
    for dimensions in (
        {"service": service, "reason": error_reason(error), "status": str(status)},
        {"service": service},
    ):
        with single_metric(
            name="DeliveriesRejected",
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass
