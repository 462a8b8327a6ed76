"""The QBO Accounting API (v3) client: reads by query, as few calls as the API allows.

A webhook says only which entities changed, so the sync re-reads them. One ``Id IN (...)`` query per
entity type and realm reads up to :data:`MAX_RESULTS` entities in one call (QBO's page size cap), where
reading them one by one would cost a call each. Statements go in the body of ``POST .../query``
(``Content-Type: application/text``) so a long ``IN`` list never meets a URL length limit.

Every call goes through the vendor HTTP layer (rate limits per realm, retries, breaker). Bodies are
parsed with ``parse_float=Decimal``: money never becomes a float. QBO can answer 200 *with* a ``Fault``
body, so every body is checked; a fault becomes :class:`QboFault` naming the code and message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import requests

from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.errors import VendorError, body_excerpt
from ledgerlink.qbo.ids import checked_entity_id, is_realm_id

MAX_RESULTS: Final = 1000  # QBO's largest page
# Entities the deal sync reads; the query endpoint names them exactly like this.
QUERYABLE: Final = frozenset({"Invoice", "Estimate", "Payment", "Customer", "Item", "Preferences"})

# Fault codes that will not go away by retrying the same read (bad query, missing object, no access).
PERMANENT_FAULT_CODES: Final = frozenset({"610", "4000", "4001", "2010", "2020", "2030", "6190"})


class QboFault(VendorError):
    """QBO answered with a ``Fault`` body. ``code`` is Intuit's error code (a string, e.g. "610")."""

    reason = "qbo_fault"

    def __init__(
        self, *, status: int, code: str, message: str, detail: str, fault_type: str, path: str
    ) -> None:
        self.status = status
        self.code = code
        self.fault_type = fault_type
        super().__init__(
            f"QBO {fault_type} {code} (HTTP {status}) at {path}: {body_excerpt(message)}"
            + (f" — {body_excerpt(detail)}" if detail else ""),
            vendor="qbo",
            path=path,
        )
        self.retryable = status >= 500 or (code not in PERMANENT_FAULT_CODES and fault_type == "SystemFault")


def parse_body(response: requests.Response) -> dict[str, Any]:
    """The JSON body with Decimal numbers; a non-JSON body is an error naming the status."""
    try:
        body = json.loads(response.content.decode("utf-8") or "{}", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise VendorError(
            f"QBO answered HTTP {response.status_code} with a body that is not JSON", vendor="qbo"
        ) from None
    if not isinstance(body, dict):
        raise VendorError(f"QBO answered HTTP {response.status_code} with a non-object body", vendor="qbo")
    return body


def raise_for_fault(body: Mapping[str, Any], status: int, path: str) -> None:
    fault = body.get("Fault") or body.get("fault")
    if not isinstance(fault, Mapping):
        return
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    raise QboFault(
        status=status,
        code=str(first.get("code", "")),
        message=str(first.get("Message") or first.get("message") or ""),
        detail=str(first.get("Detail") or first.get("detail") or ""),
        fault_type=str(fault.get("type", "Fault")),
        path=path,
    )


def quote(value: str) -> str:
    """A QBO query string literal (single quotes; a quote inside is escaped with a backslash)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class QboClient:
    """Reads QBO entities for the sync. One instance per process; ``http`` carries auth and limits."""

    def __init__(self, http: VendorHttpClient, *, minor_version: str) -> None:
        self._http = http
        self._minor_version = minor_version
        self.calls = 0  # vendor calls made through this client (benchmarks, logs)

    def query(self, realm_id: str, statement: str) -> list[dict[str, Any]]:
        """Every row of a ``select * from <Entity> ...`` statement, following pages of MAX_RESULTS."""
        entity = _entity_of(statement)
        rows: list[dict[str, Any]] = []
        start = 1
        while True:
            page = f"{statement} STARTPOSITION {start} MAXRESULTS {MAX_RESULTS}"
            body = self._post_query(realm_id, page)
            response = body.get("QueryResponse") or {}
            found = response.get(entity) or []
            if not isinstance(found, list):
                raise VendorError(f"QBO query answered {entity} that is not a list", vendor="qbo")
            rows.extend(found)
            if len(found) < MAX_RESULTS:
                return rows
            start += MAX_RESULTS

    def read_many(self, realm_id: str, entity: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Entities by Id, ``MAX_RESULTS`` per call; ids QBO does not return (deleted, never existed)
        are simply absent from the result."""
        if entity not in QUERYABLE:
            raise ValueError(f"entity {entity!r} is not read by the deal sync")
        wanted = sorted({_checked_id(value) for value in ids}, key=lambda v: (len(v), v))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), MAX_RESULTS):
            chunk = wanted[start : start + MAX_RESULTS]
            in_list = ", ".join(quote(value) for value in chunk)
            # Every id is checked against ids.ENTITY_ID_PATTERN and quoted: the statement carries no free text.
            statement = f"select * from {entity} where {_active_filter(entity)}Id in ({in_list})"  # noqa: S608
            for row in self.query(realm_id, statement):
                found[str(row.get("Id"))] = row
        return found

    def preferences(self, realm_id: str) -> dict[str, Any]:
        path = f"/v3/company/{_checked_realm(realm_id)}/preferences"
        response = self._http.get(
            path, scope=realm_id, params={"minorversion": self._minor_version}, accept=(400,)
        )
        self.calls += 1
        body = parse_body(response)
        raise_for_fault(body, response.status_code, path)
        preferences = body.get("Preferences")
        if not isinstance(preferences, dict):
            raise VendorError("QBO preferences answer has no Preferences object", vendor="qbo")
        return preferences

    def home_currency(self, realm_id: str) -> str:
        preferences = self.preferences(realm_id)
        currency = ((preferences.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
        return str(currency or "USD")

    def _post_query(self, realm_id: str, statement: str) -> dict[str, Any]:
        path = f"/v3/company/{_checked_realm(realm_id)}/query"
        response = self._http.post(
            path,
            scope=realm_id,
            params={"minorversion": self._minor_version},
            data=statement.encode("utf-8"),
            headers={"Content-Type": "application/text"},
            idempotent=True,  # a query reads; repeating it changes nothing
            accept=(400,),
        )
        self.calls += 1
        body = parse_body(response)
        raise_for_fault(body, response.status_code, path)
        return body


def _active_filter(entity: str) -> str:
    """QBO name lists (Customer, Item) answer only active objects unless the query filters on Active;
    an invoice can name a customer or item made inactive since, and the sync must still read it."""
    return "Active in (true, false) and " if entity in ("Customer", "Item") else ""


def _entity_of(statement: str) -> str:
    match = re.search(r"\bfrom\s+([A-Za-z]+)", statement, re.IGNORECASE)
    if not match or match.group(1) not in QUERYABLE:
        raise ValueError(f"cannot tell which entity the statement reads: {statement[:80]!r}")
    return match.group(1)


def _checked_realm(realm_id: str) -> str:
    # Whole match: "123\n" is not a realm (a pattern ending in ``$`` would let the newline through).
    if not is_realm_id(realm_id):
        raise ValueError(f"QBO realm id must be digits, got {realm_id!r}")
    return realm_id


def _checked_id(entity_id: str) -> str:
    """The id to quote in a query; :class:`~ledgerlink.qbo.ids.InvalidEntityId` (not retryable) otherwise."""
    return checked_entity_id(str(entity_id).strip())
