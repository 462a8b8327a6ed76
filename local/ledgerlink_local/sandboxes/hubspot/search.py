"""The CRM search endpoint's request validation and filter evaluation.

``filterGroups`` are ORed, the filters inside a group ANDed. Operators: EQ, NEQ, LT, LTE, GT,
GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN.
String comparisons ignore case; number properties compare as numbers and date properties as
instants (epoch milliseconds or ISO-8601 accepted in filter values). ``associations.<type>``
filters on associated record ids, as HubSpot allows. NEQ and NOT_IN also match records without a
value (unverified). Limits: 5 filter groups, 6 filters per group, 18 filters in all; ``limit``
<= 200; results stop at 10,000.

Not reproduced: the search index's lag (HubSpot's search can trail writes by a few seconds),
relevance ranking of ``query`` (here: a case-insensitive substring match on the type's default
searchable properties, results in id order).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledgerlink_local.sandboxes.hubspot.errors import validation_error
from ledgerlink_local.sandboxes.hubspot.model import (
    ObjectType,
    PropertyCatalog,
    find_object_type,
    parse_datetime_value,
    parse_number,
    stringify,
)
from ledgerlink_local.sandboxes.hubspot.store import CrmObject

OPERATORS = (
    "BETWEEN", "CONTAINS_TOKEN", "EQ", "GT", "GTE", "HAS_PROPERTY", "IN", "LT", "LTE", "NEQ",
    "NOT_CONTAINS_TOKEN", "NOT_HAS_PROPERTY", "NOT_IN",
)  # fmt: skip
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_RESULTS = 10_000

SEARCHABLE: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "phone", "mobilephone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname", "pipeline", "dealstage", "description", "dealtype"),
    "products": ("name", "description", "price", "hs_sku"),
    "line_items": ("name", "description", "hs_sku"),
}

# Is this record associated with that one? (from_type, from_id, to_type, to_id)
AssociationCheck = Callable[[str, str, str, str], bool]


@dataclass(frozen=True)
class Filter:
    property_name: str
    operator: str
    value: str | None
    high_value: str | None
    values: tuple[str, ...]


@dataclass(frozen=True)
class SearchRequest:
    groups: tuple[tuple[Filter, ...], ...]
    sorts: tuple[tuple[str, bool], ...]  # (property, descending)
    query: str | None
    properties: tuple[str, ...]
    limit: int
    offset: int


def parse_search(body: Any, catalog: PropertyCatalog) -> SearchRequest:
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: the search request must be a JSON object")
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise validation_error("filterGroups must be a list")
    if len(raw_groups) > MAX_FILTER_GROUPS:
        raise validation_error(
            f"Too many filter groups: {len(raw_groups)}. A search can have up to {MAX_FILTER_GROUPS} filterGroups."
        )
    groups: list[tuple[Filter, ...]] = []
    total = 0
    for raw_group in raw_groups:
        filters = raw_group.get("filters") if isinstance(raw_group, Mapping) else None
        if not isinstance(filters, list):
            raise validation_error("each filter group needs a list of filters")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a filter group: {len(filters)}. The maximum is {MAX_FILTERS_PER_GROUP}."
            )
        total += len(filters)
        groups.append(tuple(_parse_filter(f, catalog) for f in filters))
    if total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: {total}. A search can have up to {MAX_FILTERS} filters in all."
        )
    limit = _integer(body.get("limit"), "limit", DEFAULT_LIMIT)
    if limit < 0 or limit > MAX_LIMIT:
        raise validation_error(f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    offset = _integer(body.get("after"), "after", 0)
    if offset < 0:
        raise validation_error("after must be a non-negative paging cursor")
    if offset >= MAX_RESULTS:
        raise validation_error(
            f"Paging beyond {MAX_RESULTS} results is not supported; narrow the search with filters."
        )
    limit = min(limit, MAX_RESULTS - offset)
    sorts = tuple(_parse_sort(s, catalog) for s in body.get("sorts") or [])
    properties = body.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise validation_error("properties must be a list of property names")
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise validation_error("query must be a string")
    if query is not None and len(query) > 3000:
        raise validation_error("query can be at most 3000 characters")
    return SearchRequest(tuple(groups), sorts, query or None, tuple(properties), limit, offset)


def _integer(raw: Any, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise validation_error(f"{name} must be an integer, got {raw!r}") from None


def _parse_filter(raw: Any, catalog: PropertyCatalog) -> Filter:
    if not isinstance(raw, Mapping):
        raise validation_error("each filter must be an object")
    name = raw.get("propertyName")
    operator = raw.get("operator")
    if not isinstance(name, str) or not name:
        raise validation_error("a filter needs a propertyName")
    if operator not in OPERATORS:
        raise validation_error(
            f"Unknown filter operator {operator!r}; expected one of {', '.join(OPERATORS)}"
        )
    if name.startswith("associations."):
        target = find_object_type(name.split(".", 1)[1])
        if target is None or operator not in ("EQ", "IN", "NEQ", "NOT_IN"):
            raise validation_error(f"Unsupported association filter {name} {operator}")
    elif catalog.get(name) is None:
        raise validation_error(
            f"There was a problem with the request: property {name} does not exist on {catalog.object_type.name}",
            context={"propertyName": [name]},
        )
    value = stringify(raw.get("value"))
    high_value = stringify(raw.get("highValue"))
    raw_values = raw.get("values") or []
    if not isinstance(raw_values, list):
        raise validation_error("values must be a list")
    values = tuple(v for v in (stringify(x) for x in raw_values) if v is not None)
    if (
        operator in ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
        and value is None
    ):
        raise validation_error(f"operator {operator} needs a value (filter on {name})")
    if operator in ("IN", "NOT_IN") and not values:
        raise validation_error(f"operator {operator} needs values (filter on {name})")
    if operator == "BETWEEN" and (value is None or high_value is None):
        raise validation_error(f"operator BETWEEN needs value and highValue (filter on {name})")
    return Filter(name, operator, value, high_value, values)


def _parse_sort(raw: Any, catalog: PropertyCatalog) -> tuple[str, bool]:
    if isinstance(raw, str):
        descending = raw.startswith("-")
        name = raw.lstrip("-")
    elif isinstance(raw, Mapping):
        name = str(raw.get("propertyName", ""))
        descending = str(raw.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        raise validation_error("each sort must be a property name or {propertyName, direction}")
    if catalog.get(name) is None:
        raise validation_error(f"cannot sort by unknown property {name}", context={"propertyName": [name]})
    return name, descending


def run_search(
    request: SearchRequest,
    catalog: PropertyCatalog,
    records: list[CrmObject],
    associated: AssociationCheck,
) -> tuple[list[CrmObject], int]:
    """The page of matching records and the total number of matches."""
    object_type = catalog.object_type
    matches = [
        r
        for r in records
        if _matches_query(r, request.query)
        and (
            not request.groups
            or any(all(_test(f, r, catalog, object_type, associated) for f in g) for g in request.groups)
        )
    ]
    for name, descending in reversed(request.sorts):
        definition = catalog.get(name)
        assert definition is not None
        present = [r for r in matches if r.values.get(name) is not None]
        missing = [r for r in matches if r.values.get(name) is None]
        kind = definition.type

        def key(record: CrmObject, name: str = name, kind: str = kind) -> tuple[int, Any]:
            return _sort_key(record.values[name], kind)

        present.sort(key=key, reverse=descending)
        matches = present + missing
    return matches[request.offset : request.offset + request.limit], len(matches)


def _matches_query(record: CrmObject, query: str | None) -> bool:
    if not query:
        return True
    needle = query.casefold().strip("*")
    return any(needle in (record.values.get(n) or "").casefold() for n in SEARCHABLE[record.object_type.name])


def _sort_key(value: str, kind: str) -> tuple[int, Any]:
    comparable = _comparable(value, kind)
    if isinstance(comparable, Decimal | int):
        return (0, comparable)
    return (1, str(comparable))


def _comparable(value: str, kind: str) -> Decimal | int | str:
    if kind == "number":
        number = parse_number(value)
        return number if number is not None else value.casefold()
    if kind in ("datetime", "date"):
        moment = parse_datetime_value(value)
        return _millis(moment) if moment is not None else value.casefold()
    return value.casefold()


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _test(
    condition: Filter,
    record: CrmObject,
    catalog: PropertyCatalog,
    object_type: ObjectType,
    associated: AssociationCheck,
) -> bool:
    if condition.property_name.startswith("associations."):
        target = find_object_type(condition.property_name.split(".", 1)[1])
        assert target is not None
        wanted = condition.values if condition.operator in ("IN", "NOT_IN") else (condition.value or "",)
        hit = any(associated(object_type.name, record.id, target.name, str(v)) for v in wanted)
        return hit if condition.operator in ("EQ", "IN") else not hit
    definition = catalog.get(condition.property_name)
    assert definition is not None
    current = record.values.get(condition.property_name)
    operator = condition.operator
    if operator == "HAS_PROPERTY":
        return current is not None
    if operator == "NOT_HAS_PROPERTY":
        return current is None
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = current is not None and _contains_token(current, condition.value or "")
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator in ("IN", "NOT_IN"):
        present = current is not None and any(_equal(current, v, definition.type) for v in condition.values)
        return present if operator == "IN" else not present
    if operator == "NEQ":
        return current is None or not _equal(current, condition.value or "", definition.type)
    if current is None:
        return False
    if operator == "EQ":
        return _equal(current, condition.value or "", definition.type)
    left = _comparable(current, definition.type)
    right = _comparable(condition.value or "", definition.type)
    if type(left) is not type(right):
        left, right = str(left), str(right)
    if operator == "BETWEEN":
        high = _comparable(condition.high_value or "", definition.type)
        if type(high) is not type(left):
            return False
        return bool(right <= left <= high)  # type: ignore[operator]
    return bool(
        {
            "LT": left < right,  # type: ignore[operator]
            "LTE": left <= right,  # type: ignore[operator]
            "GT": left > right,  # type: ignore[operator]
            "GTE": left >= right,  # type: ignore[operator]
        }[operator]
    )


def _equal(current: str, wanted: str, kind: str) -> bool:
    left = _comparable(current, kind)
    right = _comparable(wanted, kind)
    if type(left) is not type(right):
        return current.casefold() == wanted.casefold()
    return left == right


def _contains_token(current: str, pattern: str) -> bool:
    pattern = pattern.casefold()
    text = current.casefold()
    if fnmatch.fnmatchcase(text, pattern):
        return True
    return any(fnmatch.fnmatchcase(token, pattern) for token in re.split(r"[\s,;]+", text) if token)
