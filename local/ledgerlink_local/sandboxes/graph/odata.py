"""The OData query subset the Graph sandbox understands: ``$filter``, ``$orderby``, ``$select``,
``$top``, ``$skip`` and ``$count`` over an entity described by a small schema.

``$filter`` grammar (what Outlook clients send for calendar queries)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | comparison | function
    comparison := path ("eq"|"ne"|"gt"|"ge"|"lt"|"le") literal
    function   := ("startswith"|"endswith"|"contains") "(" path "," 'string' ")"
    literal    := 'string' (quote doubled to escape) | true | false | null | number
                | bare DateTimeOffset such as 2024-01-01T00:00:00Z

Like Exchange, string comparisons ignore case, and a ``start/dateTime`` literal without an
offset is read as UTC. Lambda operators (``attendees/any(...)``) are not understood: they are
answered with the error Graph gives for an unsupported filter node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerlink_local.sandboxes.graph.datetimes import TimeValueError, parse_instant

Predicate = Callable[[Any], bool]


class QueryError(Exception):
    """A query option Graph would reject; carries Graph's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Field:
    """One property an OData path can reach: how to read it and how to compare it."""

    getter: Callable[[Any], Any]
    kind: str  # "string" | "enum" | "bool" | "datetime" | "number"
    filterable: bool = True
    sortable: bool = True


@dataclass(frozen=True)
class EntitySchema:
    type_name: str  # used in Graph's "Could not find a property named ..." message
    fields: Mapping[str, Field]  # path (e.g. "start/dateTime") -> field; matched case-insensitively
    selectable: Sequence[str]  # top-level property names $select accepts

    def field(self, path: str) -> Field:
        lowered = path.lower()
        for name, field in self.fields.items():
            if name.lower() == lowered:
                return field
        top = path.split("/")[0]
        if top.lower() not in {name.lower() for name in self.selectable}:
            raise QueryError(
                "RequestBroker--ParseUri",
                f"Could not find a property named '{top}' on type '{self.type_name}'.",
            )
        raise QueryError("ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")


# --------------------------------------------------------------------------- tokens

_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"startswith", "endswith", "contains"}
_TOKEN = re.compile(r"\s*(?:(?P<punct>[(),])|(?P<string>'(?:[^']|'')*')|(?P<bare>[^\s(),']+))")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?$")


@dataclass(frozen=True)
class _Token:
    kind: str  # punct | string | word | number | datetime
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise _syntax_error(text, position)
        if found["punct"]:
            tokens.append(_Token("punct", found["punct"], found.start("punct")))
        elif found["string"]:
            tokens.append(_Token("string", found["string"][1:-1].replace("''", "'"), found.start("string")))
        else:
            bare = found["bare"]
            kind = "number" if _NUMBER.match(bare) else "datetime" if _DATETIME.match(bare) else "word"
            tokens.append(_Token(kind, bare, found.start("bare")))
        position = found.end()
    return tokens


def _syntax_error(text: str, position: int) -> QueryError:
    return QueryError(
        "BadRequest", f"Invalid filter clause: syntax error at position {position} in '{text}'."
    )


# --------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, schema: EntitySchema) -> None:
        self.text = text
        self.schema = schema
        self.tokens = _tokenize(text)
        self.index = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise QueryError("BadRequest", "Invalid filter clause: the $filter expression is empty.")
        predicate = self._or()
        if self.index != len(self.tokens):
            raise _syntax_error(self.text, self.tokens[self.index].position)
        return predicate

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise _syntax_error(self.text, len(self.text))
        self.index += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._next()
        if token.text != text:
            raise _syntax_error(self.text, token.position)

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.index += 1
            return True
        return False

    def _or(self) -> Predicate:
        return self._joined("or", self._and, any)

    def _and(self) -> Predicate:
        return self._joined("and", self._unary, all)

    def _joined(
        self, keyword: str, operand: Callable[[], Predicate], combine: Callable[[Iterable[bool]], bool]
    ) -> Predicate:
        """``operand (keyword operand)*``: one precedence level of the boolean operators."""
        parts = [operand()]
        while self._keyword(keyword):
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        return lambda entity: combine(part(entity) for part in parts)

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            inner = self._unary()
            return lambda entity: not inner(entity)
        token = self._peek()
        if token is not None and token.kind == "punct" and token.text == "(":
            self.index += 1
            inner = self._or()
            self._expect(")")
            return inner
        head = self._next()
        if head.kind != "word":
            raise _syntax_error(self.text, head.position)
        following = self._peek()
        if head.text.lower() in _FUNCTIONS and following is not None and following.text == "(":
            return self._function(head.text.lower())
        if head.text.lower().endswith(("/any", "/all")):  # lambda operators
            raise QueryError(
                "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."
            )
        return self._comparison(head.text)

    def _function(self, name: str) -> Predicate:
        self._expect("(")
        path_token = self._next()
        if path_token.kind != "word":
            raise _syntax_error(self.text, path_token.position)
        field = self.schema.field(path_token.text)
        self._expect(",")
        literal = self._next()
        if literal.kind != "string" or field.kind not in ("string", "enum") or not field.filterable:
            raise QueryError(
                "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."
            )
        self._expect(")")
        needle = literal.text.lower()
        getter = field.getter

        def matches(entity: Any) -> bool:
            value = getter(entity)
            if not isinstance(value, str):
                return False
            haystack = value.lower()
            if name == "startswith":
                return haystack.startswith(needle)
            if name == "endswith":
                return haystack.endswith(needle)
            return needle in haystack

        return matches

    def _comparison(self, path: str) -> Predicate:
        field = self.schema.field(path)
        if not field.filterable:
            raise QueryError(
                "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes."
            )
        operator_token = self._next()
        operator = operator_token.text.lower()
        if operator_token.kind != "word" or operator not in _COMPARISONS:
            raise _syntax_error(self.text, operator_token.position)
        literal_token = self._next()
        literal = self._literal(field, literal_token)
        getter = field.getter
        folded = field.kind in ("string", "enum")

        def compare(entity: Any) -> bool:
            value = getter(entity)
            if folded and isinstance(value, str):
                value = value.lower()
            if value is None or literal is None:
                if operator == "eq":
                    return value is None and literal is None
                if operator == "ne":
                    return (value is None) != (literal is None)
                return False
            try:
                if operator == "eq":
                    return bool(value == literal)
                if operator == "ne":
                    return bool(value != literal)
                if operator == "gt":
                    return bool(value > literal)
                if operator == "ge":
                    return bool(value >= literal)
                if operator == "lt":
                    return bool(value < literal)
                return bool(value <= literal)
            except TypeError:
                return False

        return compare

    def _literal(self, field: Field, token: _Token) -> Any:
        if token.kind == "word" and token.text.lower() == "null":
            return None
        if field.kind == "bool":
            if token.kind == "word" and token.text.lower() in ("true", "false"):
                return token.text.lower() == "true"
            raise self._type_error(token)
        if field.kind == "datetime":
            if token.kind not in ("string", "datetime"):
                raise self._type_error(token)
            try:
                return parse_instant(token.text)
            except TimeValueError as exc:
                raise self._type_error(token) from exc
        if field.kind == "number":
            try:
                return Decimal(token.text)
            except InvalidOperation as exc:
                raise self._type_error(token) from exc
        if token.kind != "string":
            raise self._type_error(token)
        return token.text.lower()

    def _type_error(self, token: _Token) -> QueryError:
        return QueryError(
            "BadRequest",
            f"Invalid filter clause: the literal '{token.text}' at position {token.position} "
            "does not match the type of the property it is compared with.",
        )


def parse_filter(text: str, schema: EntitySchema) -> Predicate:
    """A predicate for ``$filter``; raises QueryError with Graph's code on bad input."""
    return _Parser(text, schema).parse()


# --------------------------------------------------------------------------- $orderby / $select / paging


def parse_orderby(text: str, schema: EntitySchema) -> list[tuple[Callable[[Any], Any], bool]]:
    """``start/dateTime desc,subject`` → [(getter, descending), ...]."""
    keys: list[tuple[Callable[[Any], Any], bool]] = []
    for clause in text.split(","):
        parts = clause.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise QueryError("BadRequest", f"Invalid $orderby clause: '{clause.strip()}'.")
        field = schema.field(parts[0])
        if not field.sortable:
            raise QueryError("ErrorInvalidUrlQueryOrderBy", f"The property '{parts[0]}' cannot be sorted on.")
        keys.append((field.getter, len(parts) == 2 and parts[1].lower() == "desc"))
    return keys


def sort_entities(entities: list[Any], keys: list[tuple[Callable[[Any], Any], bool]]) -> list[Any]:
    ordered = list(entities)
    for getter, descending in reversed(keys):  # stable sorts, least significant key first

        def sort_key(entity: Any, getter: Callable[[Any], Any] = getter) -> tuple[int, Any]:
            value = getter(entity)
            if isinstance(value, str):
                value = value.lower()
            return (0, 0) if value is None else (1, value)

        ordered.sort(key=sort_key, reverse=descending)
    return ordered


def parse_select(text: str, schema: EntitySchema) -> list[str]:
    """Canonical property names for ``$select`` (Graph matches them case-insensitively)."""
    canonical = {name.lower(): name for name in schema.selectable}
    chosen: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower() not in canonical:
            raise QueryError(
                "RequestBroker--ParseUri",
                f"Could not find a property named '{name}' on type '{schema.type_name}'.",
            )
        chosen.append(canonical[name.lower()])
    return chosen


def parse_non_negative(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit():
        raise QueryError("BadRequest", f"Invalid value '{text}' for query option '{name}'.")
    return int(text)
