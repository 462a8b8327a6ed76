"""The JSON schemas in schemas/: patterns that mean the same in Python's re and in ECMA-262, one id rule.

jsonschema applies ``pattern`` with Python's ``re.search``, where ``$`` also matches just before a
final newline: ``^[0-9]{1,32}$`` let the realm id ``"9341455130122367\\n"`` through. Another
validator (ECMA-262, e.g. a consumer in TypeScript) would have refused it, and ``\\d`` differs too
(Python's also matches other scripts' digits). Every pattern ends in ``(?![\\s\\S])`` (nothing
follows) and spells digits ``[0-9]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerlink import schemas
from ledgerlink.qbo.ids import ENTITY_ID_PATTERN

END: str = r"(?![\s\S])"


def _patterns(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield where, value
            else:
                yield from _patterns(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _patterns(value, f"{where}/{index}")


def _all_patterns() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(schemas.schemas_root().rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        found.extend(_patterns(document, str(path.relative_to(schemas.schemas_root()))))
    return found


PATTERNS = _all_patterns()


def test_the_schemas_have_patterns_to_check() -> None:
    assert len(PATTERNS) >= 15


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[where for where, _ in PATTERNS])
def test_every_pattern_is_anchored_at_both_ends_without_a_bare_dollar(where: str, pattern: str) -> None:
    assert pattern.startswith("^"), where
    assert pattern.endswith(END), where
    assert "$" not in pattern, where
    assert r"\d" not in pattern, where


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[where for where, _ in PATTERNS])
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_value_a_pattern_accepts_is_refused_with_a_newline_after_it(
    where: str, pattern: str, data: st.DataObject
) -> None:
    # given a value the pattern accepts (drawn from the pattern without its end guard)
    core = pattern.removeprefix("^").removesuffix(END)
    value = data.draw(st.from_regex(f"^{core}$", fullmatch=True).filter(lambda v: not v.endswith("\n")))
    assert re.search(pattern, value), (where, value)

    # then the same value followed by a newline is refused (Python's re, as jsonschema applies it)
    assert re.search(pattern, value + "\n") is None, (where, value)


def test_the_event_schema_applies_the_one_entity_id_rule_of_ledgerlink_qbo_ids() -> None:
    document = json.loads((schemas.schemas_root() / "events" / "qbo.entity.changed.v1.json").read_text())
    fields = document["properties"]["payload"]["properties"]
    for name in ("entity_id", "deleted_id"):
        assert fields[name]["pattern"] == f"^{ENTITY_ID_PATTERN}{END}"


def test_the_webhook_schemas_accept_any_short_id_so_the_delivery_is_not_refused() -> None:
    # the parser skips an event whose id is outside the rule; a schema refusal would cost the delivery
    for relative, definition, fields in (
        ("webhooks/qbo-cloudevents.v1.json", "event", ("intuitentityid",)),
        ("webhooks/qbo-legacy.v1.json", "entity", ("id", "deletedId")),
    ):
        document = json.loads((Path(schemas.schemas_root()) / relative).read_text())
        for name in fields:
            field = document["$defs"][definition]["properties"][name]
            assert "pattern" not in field
            assert (field["minLength"], field["maxLength"]) == (1, 64)
            assert "skipped" in field["description"]


def test_a_realm_id_with_a_trailing_newline_is_not_a_valid_published_event() -> None:
    detail = {
        "schema_version": "1",
        "event_id": "e" * 64,
        "correlation_id": "c",
        "occurred_at": "2026-11-25T14:02:51Z",
        "payload": {
            "realm_id": "9341455130122367\n",
            "entity": "Invoice",
            "entity_id": "145",
            "operation": "Create",
            "last_updated": "2026-11-25T14:02:51Z",
            "delivery_id": "d",
            "source_format": "cloudevents",
        },
    }
    error = schemas.first_error("events/qbo.entity.changed.v1.json", detail)
    assert error is not None
    assert schemas.describe(error).startswith("$.payload.realm_id: ")
