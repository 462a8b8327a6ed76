"""What the HubSpot sandbox's route handlers share: the route-group base class, request parsing
and response shapes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from ledgerlink_local.sandboxes.core import Handler, Request, Response, SandboxClock
from ledgerlink_local.sandboxes.hubspot.errors import HubSpotError, validation_error
from ledgerlink_local.sandboxes.hubspot.model import instant
from ledgerlink_local.sandboxes.hubspot.store import Portal

MAX_BATCH_INPUTS = 100  # CRM object and property batch endpoints
MAX_HISTORY_BATCH_INPUTS = 50  # batch read with propertiesWithHistory
MAX_ASSOCIATION_BATCH_INPUTS = 1000  # v4 association batch endpoints


class PortalHost(Protocol):
    """What a route group uses of the sandbox that serves it (``HubSpotSandbox`` is one).

    Declared here rather than naming ``HubSpotSandbox``, so the route groups do not import the
    module that imports them."""

    clock: SandboxClock
    base_url: str
    portal: Portal

    def add_route(
        self, method: str, path_pattern: str, handler: Handler, *, authenticated: bool = True
    ) -> None: ...


class RouteGroup:
    """One family of HubSpot endpoints (objects, portal set-up, associations): its handlers and
    the routes that lead to them, registered on the sandbox that serves them."""

    def __init__(self, sandbox: PortalHost) -> None:
        self.sandbox = sandbox

    @property
    def portal(self) -> Portal:
        # Looked up on every call: a sandbox reset replaces the portal.
        return self.sandbox.portal

    def register(self) -> None:
        raise NotImplementedError


def json_body(request: Request, *, required: bool = True) -> Any:
    if not request.body:
        if required:
            raise validation_error("Invalid input JSON: the request body is empty")
        return None
    try:
        return json.loads(request.body.decode("utf-8"), parse_float=str)
    except UnicodeDecodeError:
        raise validation_error("Invalid input JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise validation_error(
            f"Invalid input JSON on line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None


def json_object(request: Request) -> dict[str, Any]:
    body = json_body(request)
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected a JSON object")
    return body


def list_arg(request: Request, name: str) -> list[str]:
    """A list query parameter, repeated (``a=1&a=2``) or comma-separated (``a=1,2``)."""
    found: list[str] = []
    for raw in request.query.get(name, []):
        found.extend(part.strip() for part in raw.split(",") if part.strip())
    return found


def bool_arg(request: Request, name: str, default: bool = False) -> bool:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false"):
        raise validation_error(f"{name} must be true or false, got {raw}")
    return raw.lower() == "true"


def int_arg(request: Request, name: str, default: int, maximum: int, minimum: int = 1) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(f"{name} must be an integer, got {raw}") from None
    if value < minimum or value > maximum:
        raise validation_error(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def batch_inputs(
    body: Mapping[str, Any], limit: int = MAX_BATCH_INPUTS, what: str = "a batch request"
) -> list[Any]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation_error("Invalid input JSON: inputs must be a list")
    if len(inputs) > limit:
        raise HubSpotError(
            400,
            f"The maximum number of inputs supported in {what} is {limit}. "
            "Please reduce the number of items and try again",
            "VALIDATION_ERROR",
            context={"inputs": [str(len(inputs))]},
        )
    return inputs


def batch_response(
    started: datetime,
    completed: datetime,
    results: list[Any],
    errors: list[dict[str, Any]],
    *,
    success_status: int = 200,
) -> Response:
    """HubSpot's batch envelope: 207 Multi-Status with ``errors[]`` when some inputs failed."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": instant(started),
        "completedAt": instant(completed),
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body)
    return Response(success_status, body)


def no_content() -> Response:
    return Response(204, None)
