"""QBO's SQL-like query language: the subset clients use, with QBO's errors.

Grammar (keywords case-insensitive; ``ORDER BY`` is accepted as well as QBO's ``ORDERBY``)::

    SELECT * [, field ...] | count(*) | field [, field ...] FROM Entity
        [WHERE cond [AND cond ...]]
        [ORDERBY field [ASC|DESC] [, field [ASC|DESC] ...]]
        [STARTPOSITION n] [MAXRESULTS n]
    cond := field (= | < | > | <= | >= | != | LIKE) value  |  field IN (value [, value ...])
    value := 'text' (\\' escapes a quote) | number | true | false

``OR`` does not exist in QBO's language: it is a parse error, like anything else the grammar does not
allow (Fault 4000, ``QueryParserError: Encountered ...``). A field the entity does not have, or one QBO
does not let you filter on, is Fault 4001 (``QueryValidationError``). Nested fields are written with a
dot (``MetaData.LastUpdatedTime``); a reference (``CustomerRef``) compares on its ``value``, an e-mail
(``PrimaryEmailAddr``) on its ``Address``. String comparisons ignore case; ``LIKE`` takes ``%``
wildcards. Name lists (Customer, Item, Employee, ...) return only active objects unless the query filters
on ``Active``. ``MAXRESULTS`` defaults to 100 and may not exceed 1000; ``STARTPOSITION`` is 1-based.

Filterable fields: the XSD does not say which; Intuit's entity reference pages mark each attribute
"filterable". Customer and Item follow those marks (sources at :data:`FILTERABLE`); the other lists
are unverified. Also unverified: that string comparisons ignore case (one integration's docs say
values compare "as QuickBooks stores them"), and that a projection (``SELECT Id, DisplayName``)
answers the named fields with ``sparse: true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ledgerlink_local.sandboxes.qbo.faults import QboFault, query_parse_error, query_validation_error
from ledgerlink_local.sandboxes.qbo.model import ENTITIES, ENTITY_BY_LOWER, json_copy

JsonObject = dict[str, Any]
DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_LIMIT = 1000

_COMMON = ("Id", "MetaData.CreateTime", "MetaData.LastUpdatedTime")
_NAMES = (
    "DisplayName",
    "GivenName",
    "MiddleName",
    "FamilyName",
    "CompanyName",
    "FullyQualifiedName",
    "PrimaryEmailAddr",
    "PrintOnCheckName",
    "Active",
)
# Customer: the attributes Intuit's Customer reference marks "filterable"
# (developer.intuit.com/app/developer/qbo/docs/api/accounting/most-commonly-used/customer, read through
# its copy in abossenbroek/qbo-mcp qbo-api-docs/entities/customer.md): Id, DisplayName, GivenName,
# MiddleName, FamilyName, PrimaryEmailAddr (compared on its Address), Active, CompanyName, Balance,
# PrintOnCheckName, FullyQualifiedName and MetaData.CreateTime/LastUpdatedTime. Job, CurrencyRef and
# ParentRef are not marked, so filtering on them is Fault 4001 here.
# Item: Intuit's Item reference (.../most-commonly-used/item) marks Id, Name, Type, Sku (minorversion
# 4+), Active, FullyQualifiedName and MetaData.*; Intuit's own MCP server
# (intuit/quickbooks-online-mcp-server src/tools/search-items.tool.ts) allows the same list.
_CUSTOMER_FILTERABLE = (
    *_COMMON,
    "DisplayName",
    "GivenName",
    "MiddleName",
    "FamilyName",
    "CompanyName",
    "FullyQualifiedName",
    "PrimaryEmailAddr",
    "PrintOnCheckName",
    "Active",
    "Balance",
)
FILTERABLE: dict[str, tuple[str, ...]] = {
    "Customer": _CUSTOMER_FILTERABLE,
    "Employee": (*_COMMON, *_NAMES, "EmployeeNumber"),
    "Item": (*_COMMON, "Name", "Type", "Sku", "Active", "FullyQualifiedName"),
    "Invoice": (
        *_COMMON,
        "DocNumber",
        "TxnDate",
        "DueDate",
        "CustomerRef",
        "TotalAmt",
        "Balance",
        "CurrencyRef",
    ),
    "Estimate": (*_COMMON, "DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "TxnStatus", "ExpirationDate"),
    "Payment": (*_COMMON, "DocNumber", "TxnDate", "CustomerRef", "TotalAmt", "PaymentRefNum"),
    "TimeActivity": (*_COMMON, "TxnDate", "NameOf", "EmployeeRef", "CustomerRef"),
    "TaxCode": (*_COMMON, "Name", "Active"),
    "TaxRate": (*_COMMON, "Name", "Active"),
    "Term": (*_COMMON, "Name", "Active"),
    "Account": (*_COMMON, "Name", "AccountType", "AccountSubType", "Classification", "Active"),
    "PaymentMethod": (*_COMMON, "Name", "Active", "Type"),
    "CompanyInfo": _COMMON,
    "Preferences": _COMMON,
}
_DATE_FIELDS = {"TxnDate", "DueDate", "ExpirationDate"}
_DATETIME_FIELDS = {"MetaData.CreateTime", "MetaData.LastUpdatedTime"}
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "IN",
    "LIKE",
    "ORDERBY",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "STARTPOSITION",
    "MAXRESULTS",
    "COUNT",
    "TRUE",
    "FALSE",
    "NOT",
}
_OPERATORS = ("<=", ">=", "!=", "=", "<", ">")


@dataclass(frozen=True)
class Token:
    kind: str  # IDENTIFIER, STRING, INTEGER, DECIMAL, OP, PUNCT, KEYWORD, EOF
    text: str
    column: int


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str  # = < > <= >= != LIKE IN
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool
    fields: tuple[str, ...] | None  # None: every field (SELECT *)
    conditions: tuple[Condition, ...]
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    start_position: int
    max_results: int


# ---------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<STRING>'(?:\\.|[^'\\])*')
    | (?P<DECIMAL>-?\d+\.\d+)
    | (?P<INTEGER>-?\d+)
    | (?P<OP><=|>=|!=|=|<|>)
    | (?P<PUNCT>[(),*])
    | (?P<WORD>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            tokens.append(Token("EOF", "", position + 1))
            return tokens
        found = _TOKEN.match(text, position)
        if found is None or found.lastgroup is None:
            raise query_parse_error(
                f'Lexical error at line 1, column {position + 1}.  Encountered: "{text[position]}" after : ""'
            )
        kind = found.lastgroup
        image = found.group(kind)
        column = found.start(kind) + 1
        if kind == "WORD":
            kind = "KEYWORD" if image.upper() in _KEYWORDS else "IDENTIFIER"
        tokens.append(Token(kind, image, column))
        position = found.end()


def _encountered(token: Token) -> QboFault:
    if token.kind == "EOF":
        return query_parse_error(f'Encountered "<EOF>" at line 1, column {token.column}.')
    kinds = {
        "IDENTIFIER": "<IDENTIFIER>",
        "STRING": "<STRING>",
        "INTEGER": "<INTEGER>",
        "DECIMAL": "<DECIMAL>",
    }
    label = kinds.get(token.kind, f'"{token.text}"')
    return query_parse_error(f'Encountered " {label} "{token.text} "" at line 1, column {token.column}.')


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        return self.current.kind == "KEYWORD" and self.current.text.upper() in words

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise _encountered(self.current)
        self.advance()

    def expect_punct(self, text: str) -> None:
        if self.current.kind != "PUNCT" or self.current.text != text:
            raise _encountered(self.current)
        self.advance()

    def identifier(self) -> str:
        if self.current.kind != "IDENTIFIER":
            raise _encountered(self.current)
        return self.advance().text

    def integer(self) -> int:
        if self.current.kind != "INTEGER":
            raise _encountered(self.current)
        return int(self.advance().text)

    def value(self) -> Any:
        token = self.current
        if token.kind == "STRING":
            self.advance()
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind in ("INTEGER", "DECIMAL"):
            self.advance()
            return Decimal(token.text)
        if self.keyword("TRUE", "FALSE"):
            self.advance()
            return token.text.upper() == "TRUE"
        raise _encountered(token)

    def parse(
        self,
    ) -> tuple[str, bool, tuple[str, ...] | None, list[Condition], list[tuple[str, bool]], int, int]:
        self.expect_keyword("SELECT")
        count = False
        fields: list[str] | None = []
        if self.keyword("COUNT"):
            self.advance()
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        elif self.current.kind == "PUNCT" and self.current.text == "*":
            self.advance()
            fields = None
            while self.current.kind == "PUNCT" and self.current.text == ",":
                self.advance()
                self.identifier()  # "SELECT *, Sku": every field already includes it
        else:
            assert fields is not None
            fields.append(self.identifier())
            while self.current.kind == "PUNCT" and self.current.text == ",":
                self.advance()
                fields.append(self.identifier())
        self.expect_keyword("FROM")
        entity = self.identifier()
        conditions: list[Condition] = []
        if self.keyword("WHERE"):
            self.advance()
            conditions.append(self.condition())
            while self.keyword("AND"):
                self.advance()
                conditions.append(self.condition())
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDERBY", "ORDER"):
            if self.advance().text.upper() == "ORDER":
                self.expect_keyword("BY")
            order.append(self.order_item())
            while self.current.kind == "PUNCT" and self.current.text == ",":
                self.advance()
                order.append(self.order_item())
        start, maximum = 1, DEFAULT_MAX_RESULTS
        seen: set[str] = set()
        while self.keyword("STARTPOSITION", "MAXRESULTS") and self.current.text.upper() not in seen:
            word = self.advance().text.upper()
            seen.add(word)
            if word == "STARTPOSITION":
                start = self.integer()
            else:
                maximum = self.integer()
        if self.current.kind != "EOF":
            raise _encountered(self.current)
        return entity, count, None if fields is None else tuple(fields), conditions, order, start, maximum

    def condition(self) -> Condition:
        name = self.identifier()
        if self.keyword("IN"):
            self.advance()
            self.expect_punct("(")
            values = [self.value()]
            while self.current.kind == "PUNCT" and self.current.text == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return Condition(name, "IN", tuple(values))
        if self.keyword("LIKE"):
            self.advance()
            return Condition(name, "LIKE", (self.value(),))
        if self.current.kind != "OP":
            raise _encountered(self.current)
        operator = self.advance().text
        return Condition(name, operator, (self.value(),))

    def order_item(self) -> tuple[str, bool]:
        name = self.identifier()
        descending = False
        if self.keyword("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        return name, descending


def parse(text: str, max_results_limit: int = MAX_RESULTS_LIMIT) -> Query:
    """Parse and validate a query; raises QboFault 4000 (syntax) or 4001 (fields, limits)."""
    if not text or not text.strip():
        raise query_parse_error('Encountered "<EOF>" at line 1, column 1.')
    entity_text, count, fields, conditions, order, start, maximum = _Parser(text).parse()
    entity = ENTITY_BY_LOWER.get(entity_text.lower())
    if entity is None:
        raise query_validation_error(f"Entity {entity_text} is not supported")
    filterable = {name.lower(): name for name in FILTERABLE[entity]}
    resolved: list[Condition] = []
    for condition in conditions:
        name = _resolve(entity, condition.field, filterable)
        if condition.operator == "LIKE" and not isinstance(condition.values[0], str):
            raise query_validation_error(f"LIKE needs a string value for property {name}")
        resolved.append(Condition(name, condition.operator, condition.values))
    resolved_order = tuple((_resolve(entity, name, filterable), descending) for name, descending in order)
    if maximum > max_results_limit:
        raise query_validation_error(
            f"The value {maximum} of MAXRESULTS is more than the maximum of {max_results_limit}"
        )
    if maximum < 0 or start < 0:
        raise query_validation_error("STARTPOSITION and MAXRESULTS can't be negative")
    return Query(entity, count, fields, tuple(resolved), resolved_order, max(start, 1), maximum)


def _resolve(entity: str, name: str, filterable: Mapping[str, str]) -> str:
    canonical = filterable.get(name.lower())
    if canonical is not None:
        return canonical
    if name.split(".")[0] in ENTITIES[entity].input_fields:
        raise query_validation_error(f"property '{name}' is not queryable")
    raise query_validation_error(f"Property {name} not found for Entity {entity}")


# ---------------------------------------------------------------------------- evaluation


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if isinstance(value, Mapping):  # a reference compares on its value, an address on its Address
        value = value.get("value", value.get("Address"))
    return value


def _comparable(name: str, value: Any, tz: ZoneInfo) -> Any:
    """Stored values and literals in one comparable form (dates, numbers, booleans, lower-case text)."""
    if value is None:
        return None
    if name in _DATETIME_FIELDS:
        text = str(value)
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tz)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if name in _DATE_FIELDS:
        return date.fromisoformat(str(value)[:10])
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    text = str(value)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if name in ("Id", "Balance", "TotalAmt") or name.endswith("Ref"):
        try:
            return Decimal(text) if name in ("Balance", "TotalAmt") else text.lower()
        except InvalidOperation:
            return text.lower()
    return text.lower()


def _like(pattern: str, value: str) -> bool:
    regex = "^" + ".*".join(re.escape(part) for part in pattern.lower().split("%")) + "$"
    return re.match(regex, value.lower(), re.DOTALL) is not None


class _Literals:
    """A condition's literals in comparable form, converted once per query on first use (an ``Id IN``
    of 100 values against 10,000 invoices would otherwise convert a million literals), so an invalid
    literal still fails only when there is an object to compare it with, as before."""

    def __init__(self, condition: Condition, tz: ZoneInfo) -> None:
        self.condition, self.tz = condition, tz
        self._values: list[Any] | None = None
        self._hashed: frozenset[Any] | None = None

    def values(self) -> list[Any]:
        if self._values is None:
            self._values = [
                _comparable(self.condition.field, value, self.tz) for value in self.condition.values
            ]
        return self._values

    def contains(self, stored: Any) -> bool:
        if self._hashed is None:
            self._hashed = frozenset(self.values())
        return stored in self._hashed


def _matches(
    obj: Mapping[str, Any], condition: Condition, tz: ZoneInfo, literals: _Literals | None = None
) -> bool:
    literals = literals or _Literals(condition, tz)
    try:
        stored = _comparable(condition.field, _lookup(obj, condition.field), tz)
        wanted = literals.values()
    except (ValueError, InvalidOperation) as exc:
        raise query_validation_error(f"invalid value for property {condition.field}") from exc
    if stored is None:
        return False
    operator = condition.operator
    try:
        if operator == "IN":
            return literals.contains(stored)
        if operator == "LIKE":
            return _like(str(condition.values[0]), str(_lookup(obj, condition.field)))
        target = wanted[0]
        comparisons = {
            "=": lambda: stored == target,
            "!=": lambda: stored != target,
            "<": lambda: stored < target,
            ">": lambda: stored > target,
            "<=": lambda: stored <= target,
            ">=": lambda: stored >= target,
        }
        return bool(comparisons[operator]())
    except TypeError as exc:
        raise query_validation_error(f"invalid value for property {condition.field}") from exc


def execute(query: Query, objects: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> list[JsonObject] | int:
    """The matching objects (ordered and paged, not deep copies) or, for count(*), how many match."""
    spec = ENTITIES[query.entity]
    conditions = list(query.conditions)
    if spec.name_list and not any(condition.field == "Active" for condition in conditions):
        conditions.append(Condition("Active", "=", (True,)))
    compiled = [(condition, _Literals(condition, tz)) for condition in conditions]
    matching = [
        obj
        for obj in objects
        if all(_matches(obj, condition, tz, literals) for condition, literals in compiled)
    ]
    if query.count:
        return len(matching)

    def id_key(obj: Mapping[str, Any]) -> tuple[int, str]:
        text = str(obj.get("Id", ""))
        return (int(text), "") if text.isdigit() else (1 << 62, text)

    matching.sort(key=id_key)
    for name, descending in reversed(query.order):
        present = [obj for obj in matching if _lookup(obj, name) is not None]
        absent = [obj for obj in matching if _lookup(obj, name) is None]

        def sort_key(obj: Mapping[str, Any], field: str = name) -> Any:
            return _comparable(field, _lookup(obj, field), tz)

        present.sort(key=sort_key, reverse=descending)
        matching = present + absent
    page = matching[query.start_position - 1 : query.start_position - 1 + query.max_results]
    if query.fields is None:
        return [dict(obj) for obj in page]  # shallow: the caller encodes them at once, under the sandbox lock
    projected: list[JsonObject] = []
    for obj in page:
        selected: JsonObject = {}
        for name in query.fields:
            top = name.split(".")[0]
            for key, value in obj.items():
                if key.lower() == top.lower():
                    selected[key] = json_copy(value)
        selected.update({"domain": "QBO", "sparse": True})
        projected.append(selected)
    return projected
