"""The QBO Accounting API (v3) client: reads by query or by id, and writes carrying a ``requestid``.

A webhook says only which entities changed, so the sync re-reads them. One ``Id IN (...)`` query per
entity type and realm reads up to :data:`MAX_RESULTS` entities in one call (QBO's page size cap), where
reading them one by one would cost a call each. Statements go in the body of ``POST .../query``
(``Content-Type: application/text``) so a long ``IN`` list never meets a URL length limit.

Writes (:meth:`QboClient.create`, :meth:`QboClient.update`) always carry the caller's ``requestid``:
QBO answers a repeated id with the first answer instead of writing twice (../shared/api-notes.md §2
"Idempotency": unverified at Intuit, so callers keep their own crosswalk too), which is what makes a
POST safe for the HTTP layer to retry. Their bodies are serialised here (:func:`encode_body`) so that a
``Decimal`` goes out exactly as written and a float is refused: money never passes through binary.

Every call goes through the vendor HTTP layer (rate limits per realm, retries, breaker). Bodies are
parsed with ``parse_float=Decimal``: money never becomes a float. QBO can answer 200 *with* a ``Fault``
body, so every body is checked; a fault becomes :class:`QboFault` naming the code and message. A
ValidationFault (stale SyncToken 5010, duplicate DocNumber 6140, duplicate name 6240, ...) arrives as
HTTP 400, which the HTTP layer hands back unretried; repeating the same write could not fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import requests

from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.errors import VendorError, body_excerpt
from ledgerlink.qbo.ids import checked_entity_id, is_realm_id

MAX_RESULTS: Final = 1000  # QBO's largest page
# Entities LedgerLink reads by query (the deal sync; the HubSpot -> QBO flow's customers, items and tax
# codes); the query endpoint names them exactly like this.
QUERYABLE: Final = frozenset(
    {"Invoice", "Estimate", "Payment", "Customer", "Item", "TaxCode", "CompanyInfo", "Preferences"}
)
# Entities LedgerLink writes (the HubSpot -> QBO flow; Preferences only in tests and tools).
WRITABLE: Final = frozenset({"Customer", "Item", "Estimate", "Invoice", "Preferences"})
# Entities LedgerLink reads through change data capture (``GET .../cdc``; the catch-up).
CDC_ENTITIES: Final = frozenset({"Invoice", "Estimate", "Payment", "Customer"})
CDC_MAX_OBJECTS: Final = 1000  # CDC's cap per response: a full answer means "split the window"
# Entities read one at a time by id (GET .../{entity}/{id}); CompanyInfo and Preferences have their own.
READABLE: Final = frozenset({"Customer", "Item", "Estimate", "Invoice", "Payment", "TaxCode"})
REQUEST_ID_MAX_LENGTH: Final = 50  # QBO refuses a longer requestid (Fault 6000 in the sandbox)
# Printable ASCII, no spaces: the id travels in the query string and in logs.
_REQUEST_ID: Final = re.compile(rf"[\x21-\x7e]{{1,{REQUEST_ID_MAX_LENGTH}}}")

# Fault codes that will not go away by retrying the same read (bad query, missing object, no access).
PERMANENT_FAULT_CODES: Final = frozenset({"610", "4000", "4001", "2010", "2020", "2030", "6190"})
OBJECT_NOT_FOUND: Final = "610"
STALE_OBJECT: Final = "5010"
DUPLICATE_DOC_NUMBER: Final = "6140"
DUPLICATE_NAME: Final = "6240"


class QboFault(VendorError):
    """QBO answered with a ``Fault`` body. ``code`` is Intuit's error code (a string, e.g. "610")."""

    reason = "qbo_fault"

    def __init__(
        self, *, status: int, code: str, message: str, detail: str, fault_type: str, path: str
    ) -> None:
        self.status = status
        self.code = code
        self.fault_type = fault_type
        # QBO's own words, kept for callers that act on them (6140 names the holder of a number);
        # they are the vendor's error text, never a credential, and are redacted like every excerpt.
        self.message = body_excerpt(message)
        self.detail = body_excerpt(detail)
        super().__init__(
            f"QBO {fault_type} {code} (HTTP {status}) at {path}: {body_excerpt(message)}"
            + (f" — {body_excerpt(detail)}" if detail else ""),
            vendor="qbo",
            path=path,
        )
        self.retryable = status >= 500 or (code not in PERMANENT_FAULT_CODES and fault_type == "SystemFault")

    @property
    def is_object_not_found(self) -> bool:
        """610: the object (or one it references) does not exist or is inactive."""
        return self.code == OBJECT_NOT_FOUND

    @property
    def is_stale_object(self) -> bool:
        """5010: the SyncToken sent is not the object's current one; re-read and apply again."""
        return self.code == STALE_OBJECT

    @property
    def is_duplicate_doc_number(self) -> bool:
        """6140: the DocNumber is taken (only when the company's CustomTxnNumbers is on)."""
        return self.code == DUPLICATE_DOC_NUMBER

    @property
    def is_duplicate_name(self) -> bool:
        """6240: another customer, vendor or employee (or item) already has this name."""
        return self.code == DUPLICATE_NAME


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


def encode_body(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON, each ``Decimal`` written exactly (``Decimal("0.10")`` -> ``0.10``).

    The standard encoder cannot write a Decimal as a number, and going through float would turn
    ``1234.565`` into whatever binary makes of it; a float in a body is refused for the same reason.
    """
    parts: list[str] = []
    _encode(body, "body", parts)
    return "".join(parts).encode("utf-8")


def _encode(value: Any, path: str, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{path} is {value}, which JSON cannot carry")
        out.append(format(value, "f"))  # never an exponent: QBO parses plain decimals
    elif isinstance(value, float):
        raise TypeError(f"{path} is a float; QBO bodies carry numbers as Decimal or int")
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"{path} has a key that is not a string: {key!r}")
            if index:
                out.append(",")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _encode(item, f"{path}.{key}", out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, f"{path}[{index}]", out)
        out.append("]")
    else:
        raise TypeError(f"{path} is a {type(value).__name__}, which a QBO body cannot carry")


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

    def query_page(
        self, realm_id: str, statement: str, start: int, max_results: int = MAX_RESULTS
    ) -> list[dict[str, Any]]:
        """One page of a ``select * from <Entity> ...`` statement: the rows from 1-based ``start``, at
        most ``max_results`` (≤ :data:`MAX_RESULTS`). One call; the caller keeps the position."""
        if start < 1 or not 1 <= max_results <= MAX_RESULTS:
            raise ValueError(f"STARTPOSITION {start} MAXRESULTS {max_results} is outside QBO's paging")
        entity = _entity_of(statement)
        body = self._post_query(realm_id, f"{statement} STARTPOSITION {start} MAXRESULTS {max_results}")
        found = (body.get("QueryResponse") or {}).get(entity) or []
        if not isinstance(found, list):
            raise VendorError(f"QBO query answered {entity} that is not a list", vendor="qbo")
        return found

    def count(self, realm_id: str, statement: str) -> int:
        """The ``totalCount`` of a ``select count(*) from <Entity> ...`` statement (one call)."""
        _entity_of(statement)
        body = self._post_query(realm_id, statement)
        total = (body.get("QueryResponse") or {}).get("totalCount", 0)
        try:
            return int(total)
        except (TypeError, ValueError):
            raise VendorError(f"QBO count answered totalCount {total!r}", vendor="qbo") from None

    def read_many(self, realm_id: str, entity: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Entities by Id, ``MAX_RESULTS`` per call; ids QBO does not return (deleted, never existed)
        are simply absent from the result."""
        if entity not in QUERYABLE:
            raise ValueError(f"entity {entity!r} is not one LedgerLink queries")
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

    def cdc(
        self, realm_id: str, entities: Iterable[str], changed_since: datetime
    ) -> dict[str, list[dict[str, Any]]]:
        """The objects of each entity changed at or after ``changed_since``, by entity (every one asked).

        QBO answers ``CDCResponse[0].QueryResponse[]``, one element per entity type holding
        ``<Entity>: [...]``; a deleted object comes as ``{"status": "Deleted", "Id", "MetaData"}``.
        There is no paging: an entity with :data:`CDC_MAX_OBJECTS` objects may have more, and the
        caller narrows the window. Numbers are Decimal. ``changed_since`` must be timezone-aware.
        """
        names = [_checked_entity(entity, CDC_ENTITIES) for entity in entities]
        if not names:
            raise ValueError("a CDC read names at least one entity")
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must carry its UTC offset")
        path = f"/v3/company/{_checked_realm(realm_id)}/cdc"
        response = self._http.get(
            path,
            scope=realm_id,
            params={
                "entities": ",".join(names),
                "changedSince": changed_since.isoformat(timespec="seconds"),
                "minorversion": self._minor_version,
            },
            accept=(400,),
        )
        self.calls += 1
        body = parse_body(response)
        raise_for_fault(body, response.status_code, path)
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        outer = body.get("CDCResponse")
        if not isinstance(outer, list):
            raise VendorError("QBO CDC answered without a CDCResponse list", vendor="qbo", path=path)
        for part in outer:
            responses = part.get("QueryResponse") if isinstance(part, Mapping) else None
            for response_part in responses if isinstance(responses, list) else []:
                if not isinstance(response_part, Mapping):
                    continue
                for name in names:
                    rows = response_part.get(name)
                    if rows is None:
                        continue
                    if not isinstance(rows, list):
                        raise VendorError(
                            f"QBO CDC answered {name} that is not a list", vendor="qbo", path=path
                        )
                    found[name].extend(row for row in rows if isinstance(row, dict))
        return found

    def read(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any] | None:
        """One entity by id (``GET .../{entity}/{id}``), or None when QBO says it does not exist.

        QBO answers a read of a missing (or deleted) id with HTTP 400 and Fault 610 Object Not Found
        (Intuit's SDKs map it to ObjectNotFoundException; python-quickbooks' tests and the sandbox do
        the same); a 404 is taken to mean the same (unverified: no source shows QBO sending one).
        """
        name = _checked_entity(entity, READABLE)
        path = f"/v3/company/{_checked_realm(realm_id)}/{name.lower()}/{_checked_id(entity_id)}"
        response = self._http.get(
            path, scope=realm_id, params={"minorversion": self._minor_version}, accept=(400, 404)
        )
        self.calls += 1
        if response.status_code == 404:
            return None
        body = parse_body(response)
        try:
            raise_for_fault(body, response.status_code, path)
        except QboFault as fault:
            if fault.is_object_not_found:
                return None
            raise
        return _entity_object(body, name, path)

    def company_info(self, realm_id: str) -> dict[str, Any]:
        """The company's CompanyInfo (``GET .../companyinfo/{realmId}``): name, country, addresses."""
        realm = _checked_realm(realm_id)
        path = f"/v3/company/{realm}/companyinfo/{realm}"
        response = self._http.get(
            path, scope=realm_id, params={"minorversion": self._minor_version}, accept=(400,)
        )
        self.calls += 1
        body = parse_body(response)
        raise_for_fault(body, response.status_code, path)
        return _entity_object(body, "CompanyInfo", path)

    def create(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """Create ``entity`` from ``body``; the created object as QBO answers it (Id, SyncToken, totals).

        ``request_id`` (at most 50 printable characters) names this write: send the same one on every
        retry of the same intent, so QBO answers a repeat with the first result instead of creating a
        second object. The HTTP layer may therefore resend the POST after a timeout or a 5xx.
        """
        return self._write(realm_id, entity, body, request_id=request_id)

    def update(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """Update ``entity``; ``body`` carries ``Id`` and the ``SyncToken`` last read (``"sparse": true``
        changes only the fields sent). A SyncToken that is no longer current is Fault 5010
        (:attr:`QboFault.is_stale_object`): re-read, re-apply, write again under a new request id."""
        missing = [key for key in ("Id", "SyncToken") if body.get(key) in (None, "")]
        if missing:
            raise ValueError(f"an update of {entity} needs {' and '.join(missing)}")
        return self._write(realm_id, entity, body, request_id=request_id)

    def preferences(self, realm_id: str) -> dict[str, Any]:
        path = f"/v3/company/{_checked_realm(realm_id)}/preferences"
        response = self._http.get(
            path, scope=realm_id, params={"minorversion": self._minor_version}, accept=(400,)
        )
        self.calls += 1
        body = parse_body(response)
        raise_for_fault(body, response.status_code, path)
        return _entity_object(body, "Preferences", path)

    def home_currency(self, realm_id: str) -> str:
        preferences = self.preferences(realm_id)
        currency = ((preferences.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value")
        return str(currency or "USD")

    def _write(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        name = _checked_entity(entity, WRITABLE)
        path = f"/v3/company/{_checked_realm(realm_id)}/{name.lower()}"
        data = encode_body(body)  # before any call: a body that cannot be sent exactly is not sent
        response = self._http.post(
            path,
            scope=realm_id,
            params={"requestid": _checked_request_id(request_id), "minorversion": self._minor_version},
            data=data,
            headers={"Content-Type": "application/json"},
            idempotent=True,  # the requestid makes a repeat return the first answer
            accept=(400,),
        )
        self.calls += 1
        answer = parse_body(response)
        raise_for_fault(answer, response.status_code, path)
        return _entity_object(answer, name, path)

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


def _entity_object(body: Mapping[str, Any], entity: str, path: str) -> dict[str, Any]:
    found = body.get(entity)
    if not isinstance(found, dict):
        raise VendorError(f"QBO answer at {path} has no {entity} object", vendor="qbo", path=path)
    return found


def _checked_entity(entity: str, allowed: frozenset[str]) -> str:
    """The entity name as QBO spells it; the path segment is its lower-case form."""
    if entity not in allowed:
        raise ValueError(f"entity {entity!r} is not one of {', '.join(sorted(allowed))}")
    return entity


def _checked_request_id(request_id: str) -> str:
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise ValueError(
            f"requestid must be 1-{REQUEST_ID_MAX_LENGTH} printable characters without spaces, "
            f"got {request_id!r:.70}"
        )
    return request_id


def _checked_realm(realm_id: str) -> str:
    # Whole match: "123\n" is not a realm (a pattern ending in ``$`` would let the newline through).
    if not is_realm_id(realm_id):
        raise ValueError(f"QBO realm id must be digits, got {realm_id!r}")
    return realm_id


def _checked_id(entity_id: str) -> str:
    """The id to quote in a query; :class:`~ledgerlink.qbo.ids.InvalidEntityId` (not retryable) otherwise."""
    return checked_entity_id(str(entity_id).strip())
