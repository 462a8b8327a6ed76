"""Shared by the mapping tests: recorded QBO payloads, a company context, HubSpot spec validation."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator

from ledgerlink.deal_sync.mapping import CompanyContext
from tests.conftest import FIXTURES, SHARED_SPECS

REALM = "9341453050211370"
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")


def qbo_payload(name: str) -> dict[str, Any]:
    """A recorded QBO response body, numbers parsed as Decimal (as the QBO client does)."""
    text = (FIXTURES / "qbo" / name).read_text(encoding="utf-8")
    return json.loads(text, parse_float=Decimal)


def qbo_entity(name: str) -> dict[str, Any]:
    """The one entity of a recorded single-entity response ({"Invoice": {...}, "time": ...})."""
    body = qbo_payload(name)
    (entity_name,) = [key for key in body if key != "time"]
    entity: dict[str, Any] = body[entity_name]
    return entity


def company(
    *,
    zone: ZoneInfo = NEW_YORK,
    home_currency: str = "USD",
    portal_currencies: frozenset[str] = frozenset({"USD", "EUR", "GBP"}),
) -> CompanyContext:
    return CompanyContext(
        realm_id=REALM, home_currency=home_currency, time_zone=zone, portal_currencies=portal_currencies
    )


def at(iso: str) -> datetime:
    """An instant written with its offset, e.g. at("2025-11-02T00:30:00-04:00")."""
    moment = datetime.fromisoformat(iso)
    assert moment.tzinfo is not None, "test instants carry their offset"
    return moment


@cache
def _spec(file_name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SHARED_SPECS / "hubspot" / file_name).read_text(encoding="utf-8"))
    return document


def hubspot_schema_errors(file_name: str, component: str, instance: Any) -> list[str]:
    """Errors of ``instance`` against components/schemas/<component> of a HubSpot OpenAPI file.

    The $refs resolve inside that file (the schema carries its components).
    """
    spec = _spec(file_name)
    schema = {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    validator = Draft202012Validator(schema)
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(instance)]
