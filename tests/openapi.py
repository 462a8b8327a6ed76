"""Validate HubSpot request and response bodies against HubSpot's own OpenAPI 3.0 specs.

The specs live in ``../shared/specs/hubspot/`` (never copied into the project). Use::

    validate_response("deals.json", "GET", "/crm/v3/objects/deals/{dealId}", 200, body)
    validate_request_body("deals.json", "POST", "/crm/v3/objects/deals/batch/upsert", body)
    validate_http_response("deals.json", response)  # a requests.Response: method, path, status, body

Paths may be templates or concrete (``/crm/v3/objects/deals/123``). Object types are matched
in any of HubSpot's spellings (``deals``, ``deal``, ``0-3``), so ``/crm/v3/objects/deals/...``
finds the deals spec's ``/crm/v3/objects/0-3/...``, and ``/crm/v4/associations/...`` finds the
schema spec's ``/crm/associations/v4/...``. A failure raises ``AssertionError`` naming every
invalid field.

OpenAPI 3.0 -> JSON Schema (2020-12): ``$ref`` to ``#/components/schemas`` becomes
``#/$defs``; ``nullable`` becomes a ``null`` type; ``readOnly`` fields are not required in
requests, ``writeOnly`` ones not in responses; boolean ``exclusiveMinimum``/``Maximum`` become
numbers; ``example`` and other annotations are dropped; formats ``date-time`` (RFC 3339 with an
offset), ``uuid``, ``int32`` and ``int64`` are checked. Objects are strict by default
(``additionalProperties: false`` where the spec lists ``properties`` and says nothing else), so a
misspelled field fails.

Response errata (HubSpot's observed behaviour where its spec is narrower; requests get none):
- CRM object ``properties`` maps hold ``null`` for requested properties that have no value;
- an association type's ``label`` is ``null`` for unlabeled types;
- error bodies carry ``status`` beyond the ``Error`` schema, and a 429 body has ``errorType``,
  ``policyName`` (and ``groupName``, ``requestId``) instead of ``category``.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from datetime import datetime
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from tests.conftest import SHARED_SPECS

HUBSPOT_SPECS = SHARED_SPECS / "hubspot"
ANNOTATIONS = {
    "example",
    "examples",
    "xml",
    "externalDocs",
    "discriminator",
    "deprecated",
    "readOnly",
    "writeOnly",
}
SEGMENT_ALIASES = {
    "0-1": "contacts", "contact": "contacts",
    "0-2": "companies", "company": "companies",
    "0-3": "deals", "deal": "deals",
    "0-7": "products", "product": "products",
    "0-8": "line_items", "line_item": "line_items", "lineitems": "line_items",
}  # fmt: skip

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value):
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if isinstance(value, str) and not re.fullmatch(
        r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", value
    ):
        raise ValueError(f"{value!r} is not a UUID")
    return True


@FORMATS.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


# ---------------------------------------------------------------------------- loading


@cache
def load_spec(spec_file: str) -> dict[str, Any]:
    name = spec_file if spec_file.endswith(".json") else spec_file + ".json"
    path = HUBSPOT_SPECS / name
    if not path.is_file():
        raise FileNotFoundError(f"no HubSpot spec {name} in {HUBSPOT_SPECS}")
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return spec


def _apply_response_errata(schemas: dict[str, Any]) -> None:
    for name, schema in schemas.items():
        if re.fullmatch(r"SimplePublic(Upsert)?Object(WithAssociations)?", name):
            schema["properties"]["properties"]["additionalProperties"]["nullable"] = True
    if "AssociationSpecWithLabel" in schemas:
        schemas["AssociationSpecWithLabel"]["properties"]["label"]["nullable"] = True
    if "Error" in schemas:
        error = schemas["Error"]
        for extra in ("status", "errorType", "policyName", "groupName", "requestId"):
            error["properties"].setdefault(extra, {"type": "string"})
        # A 429 names its policy (errorType, policyName) where other errors have a category.
        error["required"] = [name for name in error["required"] if name != "category"]
        error["anyOf"] = [{"required": ["category"]}, {"required": ["errorType", "policyName"]}]


def convert(node: Any, *, mode: str, strict: bool) -> Any:
    """One OpenAPI 3.0 schema node as JSON Schema 2020-12 (mode: "request" or "response")."""
    if isinstance(node, list):
        return [convert(item, mode=mode, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        reference = node["$ref"]
        prefix = "#/components/schemas/"
        if not reference.startswith(prefix):
            raise ValueError(f"unsupported reference {reference}")
        converted: dict[str, Any] = {"$ref": "#/$defs/" + reference[len(prefix) :]}
        return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in ANNOTATIONS or key == "nullable":
            continue
        if key == "properties":
            result[key] = {name: convert(child, mode=mode, strict=strict) for name, child in value.items()}
        elif key in ("items", "not"):
            result[key] = convert(value, mode=mode, strict=strict)
        elif key == "additionalProperties":
            result[key] = value if isinstance(value, bool) else convert(value, mode=mode, strict=strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            result[key] = [convert(child, mode=mode, strict=strict) for child in value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            if value and bound in node:
                result[key] = node[bound]
        else:
            result[key] = copy.deepcopy(value)
    if node.get("exclusiveMinimum") is True:
        result.pop("minimum", None)
    if node.get("exclusiveMaximum") is True:
        result.pop("maximum", None)
    if "required" in node and isinstance(node.get("properties"), dict):
        hidden = "readOnly" if mode == "request" else "writeOnly"
        result["required"] = [
            name for name in node["required"] if not node["properties"].get(name, {}).get(hidden)
        ]
    if node.get("nullable"):
        kind = result.get("type")
        if isinstance(kind, str):
            result["type"] = [kind, "null"]
        elif kind is None:
            result = {"anyOf": [result, {"type": "null"}]}
        if "enum" in result and None not in result["enum"]:
            result["enum"] = [*result["enum"], None]
    if strict and isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
        result["additionalProperties"] = False
    return result


@cache
def _definitions(spec_file: str, mode: str, strict: bool) -> dict[str, Any]:
    schemas = copy.deepcopy(load_spec(spec_file).get("components", {}).get("schemas", {}))
    if mode == "response":
        _apply_response_errata(schemas)
    return {name: convert(schema, mode=mode, strict=strict) for name, schema in schemas.items()}


# ---------------------------------------------------------------------------- path lookup


def _segments(path: str) -> list[str]:
    parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(path).path.strip("/").split("/") if p]
    if parts[:3] == ["crm", "associations", "v4"]:
        parts[:3] = ["crm", "v4", "associations"]
    return [p if p.startswith("{") else SEGMENT_ALIASES.get(p.lower(), p) for p in parts]


def find_operation(spec_file: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec's path template and operation for a request (template or concrete path)."""
    wanted = _segments(path)
    best: tuple[int, str, dict[str, Any]] | None = None
    for template, operations in load_spec(spec_file)["paths"].items():
        operation = operations.get(method.lower())
        candidate = _segments(template)
        if operation is None or len(candidate) != len(wanted):
            continue
        score = 0
        for theirs, ours in zip(candidate, wanted, strict=True):
            if theirs.startswith("{"):
                continue  # a spec parameter matches any segment
            if ours.startswith("{") or theirs != ours:
                score = -1
                break
            score += 1
        if score >= 0 and (best is None or score > best[0]):
            best = (score, template, operation)
    if best is None:
        raise AssertionError(f"{method.upper()} {path} is not an operation of {spec_file}")
    return best[1], best[2]


def _content_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content:
        return None
    for media_type in ("application/json", "*/*"):
        if media_type in content:
            schema: dict[str, Any] | None = content[media_type].get("schema")
            return schema
    first: dict[str, Any] | None = next(iter(content.values())).get("schema")
    return first


def _response_schema(
    spec_file: str, operation: dict[str, Any], status: int
) -> tuple[bool, dict[str, Any] | None]:
    """(documented, schema) for a status; undocumented 2xx statuses are failures."""
    responses = operation.get("responses", {})
    response = responses.get(str(status))
    if response is None:
        if 200 <= status < 300:
            return False, None
        response = responses.get("default")
        if response is None:
            return False, None
    if "$ref" in response:
        name = response["$ref"].split("/")[-1]
        response = load_spec(spec_file)["components"]["responses"][name]
    return True, _content_schema(response.get("content"))


def _check(spec_file: str, schema: dict[str, Any], body: Any, *, mode: str, strict: bool, where: str) -> None:
    root = {"$defs": _definitions(spec_file, mode, strict), **convert(schema, mode=mode, strict=strict)}
    validator = Draft202012Validator(root, format_checker=FORMATS)
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if problems:
        lines = [
            f"  at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in problems[:20]
        ]
        raise AssertionError(f"{where} does not match {spec_file}:\n" + "\n".join(lines))


# ---------------------------------------------------------------------------- public API


def validate_response(
    spec_file: str, method: str, path: str, status: int, body: Any, *, strict: bool = True
) -> None:
    template, operation = find_operation(spec_file, method, path)
    documented, schema = _response_schema(spec_file, operation, status)
    where = f"{method.upper()} {template} -> {status}"
    if not documented:
        raise AssertionError(f"{where}: status {status} is not documented in {spec_file}")
    if schema is None:
        if body not in (None, b"", ""):
            raise AssertionError(f"{where}: the spec documents no body, got {body!r}")
        return
    _check(spec_file, schema, body, mode="response", strict=strict, where=where)


def validate_request_body(spec_file: str, method: str, path: str, body: Any, *, strict: bool = True) -> None:
    template, operation = find_operation(spec_file, method, path)
    schema = _content_schema(operation.get("requestBody", {}).get("content"))
    where = f"request body of {method.upper()} {template}"
    if schema is None:
        if body not in (None, b"", ""):
            raise AssertionError(f"{where}: the spec documents no request body")
        return
    _check(spec_file, schema, body, mode="request", strict=strict, where=where)


def validate_http_response(spec_file: str, response: Any, *, strict: bool = True) -> None:
    """Validate a ``requests.Response``: its request's method and path pick the operation."""
    body = response.json() if response.content else None
    validate_response(
        spec_file, response.request.method, response.request.url, response.status_code, body, strict=strict
    )


__all__ = [
    "HUBSPOT_SPECS",
    "convert",
    "find_operation",
    "load_spec",
    "validate_http_response",
    "validate_request_body",
    "validate_response",
]
