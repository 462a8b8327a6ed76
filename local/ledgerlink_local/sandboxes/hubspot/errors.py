"""HubSpot-shaped error bodies for the HubSpot sandbox.

HubSpot answers errors with ``{"status": "error", "message", "correlationId", "category", ...}``
(the ``Error`` schema of every CRM spec), and reports per-input failures inside batch responses
as ``StandardError`` objects. Property validation failures carry a JSON list of per-property
problems inside ``message`` (``Property values were not valid: [...]``), as HubSpot does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledgerlink_local.sandboxes.core import HttpError, Response

CORRELATION_HEADER = "X-HubSpot-Correlation-Id"

# HubSpot's category per HTTP status, for errors that have no more specific category.
CATEGORY_BY_STATUS = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    405: "VALIDATION_ERROR",
    409: "CONFLICT",
    415: "VALIDATION_ERROR",
    423: "LOCKED",
    429: "RATE_LIMITS",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

# What HubSpot says for a missing, malformed or unknown token (observed for both cases).
AUTHENTICATION_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotError(HttpError):
    """Raised anywhere in the HubSpot sandbox to answer with HubSpot's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str | None = None,
        *,
        context: Mapping[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        sub_category: str | None = None,
    ) -> None:
        self.message = message
        self.category = category or CATEGORY_BY_STATUS.get(status, "ERROR")
        self.status = status
        self.context = dict(context or {})
        correlation_id = new_correlation_id()
        body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id}
        if context:
            body["context"] = {key: list(values) for key, values in context.items()}
        if errors:
            body["errors"] = errors
        body["category"] = self.category
        if sub_category:
            body["subCategory"] = sub_category
        super().__init__(Response(status, body, {CORRELATION_HEADER: correlation_id}))


def error_response(status: int, message: str, category: str | None = None) -> Response:
    """HubSpot's error answer where nothing is raised (injected faults, unknown paths, crashes)."""
    return HubSpotError(status, message, category).response


def validation_error(message: str, *, context: Mapping[str, list[str]] | None = None) -> HubSpotError:
    return HubSpotError(400, message, "VALIDATION_ERROR", context=context)


def not_found(
    message: str = "resource not found", *, context: Mapping[str, list[str]] | None = None
) -> HubSpotError:
    return HubSpotError(404, message, "OBJECT_NOT_FOUND", context=context)


@dataclass(frozen=True)
class PropertyProblem:
    """One invalid property value, as HubSpot lists it inside a validation message."""

    name: str
    error: str  # HubSpot's code, e.g. PROPERTY_DOESNT_EXIST, INVALID_OPTION
    message: str

    def describe(self, portal_id: int) -> dict[str, Any]:
        return {
            "isValid": False,
            "message": self.message,
            "error": self.error,
            "name": self.name,
            "localizedErrorMessage": self.message,
            "portalId": portal_id,
        }


class PropertyValidationError(Exception):
    """Raised by the property layer; turned into a 400 (or a batch error) by the caller."""

    def __init__(self, problems: Iterable[PropertyProblem]) -> None:
        self.problems = list(problems)
        super().__init__(", ".join(f"{p.name}: {p.error}" for p in self.problems))

    def message(self, portal_id: int) -> str:
        detail = json.dumps([p.describe(portal_id) for p in self.problems], separators=(",", ":"))
        return f"Property values were not valid: {detail}"

    def error_details(self) -> list[dict[str, Any]]:
        return [
            {"message": p.message, "code": p.error, "context": {"propertyName": [p.name]}}
            for p in self.problems
        ]

    def as_http_error(self, portal_id: int) -> HubSpotError:
        return HubSpotError(400, self.message(portal_id), "VALIDATION_ERROR", errors=self.error_details())


def standard_error(
    status: int,
    category: str,
    message: str,
    *,
    context: Mapping[str, list[str]] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One entry of a batch response's ``errors[]`` (the spec's ``StandardError``)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {key: list(values) for key, values in (context or {}).items()},
        "errors": errors or [],
        "links": {},
    }


def standard_error_from(error: HubSpotError | PropertyValidationError, portal_id: int) -> dict[str, Any]:
    if isinstance(error, PropertyValidationError):
        return standard_error(400, "VALIDATION_ERROR", error.message(portal_id), errors=error.error_details())
    return standard_error(error.status, error.category, error.message, context=error.context)
