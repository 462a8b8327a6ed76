"""The spec-validation helper (tests/openapi.py) catches what it must: misspelled fields, wrong
types, bad formats, undocumented statuses; and finds operations under every path spelling."""

from __future__ import annotations

import pytest

from tests.openapi import convert, find_operation, validate_request_body, validate_response
from tests.unit.sandboxes.test_hubspot_support import payload

DEAL = {
    "id": "91001",
    "properties": {"amount": "10", "description": None},
    "createdAt": "2026-01-02T03:04:05.678Z",
    "updatedAt": "2026-01-02T03:04:05Z",
    "archived": False,
}


@pytest.mark.parametrize(
    ("spec", "method", "path", "template"),
    [
        ("deals.json", "GET", "/crm/v3/objects/deals/{dealId}", "/crm/v3/objects/0-3/{dealId}"),
        ("deals.json", "GET", "/crm/v3/objects/0-3/123", "/crm/v3/objects/0-3/{dealId}"),
        ("deals.json", "POST", "http://127.0.0.1:9/crm/v3/objects/deals/batch/upsert", "/crm/v3/objects/0-3/batch/upsert"),
        ("deals.json", "POST", "/crm/v3/objects/deals/search", "/crm/v3/objects/0-3/search"),
        ("lineItems.json", "GET", "/crm/v3/objects/0-8/5", "/crm/v3/objects/line_items/{lineItemId}"),
        ("associationsSchema.v4.json", "GET", "/crm/v4/associations/deals/companies/labels",
         "/crm/associations/v4/{fromObjectType}/{toObjectType}/labels"),
    ],
)  # fmt: skip
def test_operations_are_found_under_every_spelling(spec: str, method: str, path: str, template: str) -> None:
    assert find_operation(spec, method, path)[0] == template


def test_unknown_operation_is_an_error() -> None:
    with pytest.raises(AssertionError, match="not an operation"):
        find_operation("deals.json", "PUT", "/crm/v3/objects/deals/1")


def test_a_valid_object_passes_including_hubspots_null_property_values() -> None:
    validate_response("deals.json", "GET", "/crm/v3/objects/deals/1", 200, DEAL)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"archivd": False}, "Additional properties"),
        ({"id": 91001}, "is not of type 'string'"),
        ({"createdAt": "2026-01-02 03:04"}, "date-time"),
        ({"properties": {"amount": 10}}, "is not of type"),
    ],
)
def test_invalid_responses_fail_naming_the_field(change: dict, complaint: str) -> None:
    with pytest.raises(AssertionError, match=complaint):
        validate_response("deals.json", "GET", "/crm/v3/objects/deals/1", 200, {**DEAL, **change})


def test_statuses_must_be_documented_and_errors_match_the_error_schema() -> None:
    with pytest.raises(AssertionError, match="not documented"):
        validate_response("deals.json", "POST", "/crm/v3/objects/deals", 200, DEAL)
    validate_response(
        "deals.json", "GET", "/crm/v3/objects/deals/1", 404,
        {"status": "error", "message": "gone", "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": "OBJECT_NOT_FOUND"},
    )  # fmt: skip
    with pytest.raises(AssertionError, match=r"is not a 'uuid'"):
        validate_response(
            "deals.json", "GET", "/crm/v3/objects/deals/1", 404,
            {"message": "gone", "correlationId": "abc", "category": "OBJECT_NOT_FOUND"},
        )  # fmt: skip
    with pytest.raises(AssertionError, match="no body"):
        validate_response("deals.json", "DELETE", "/crm/v3/objects/deals/1", 204, {"unexpected": True})


def test_request_bodies_are_checked_strictly() -> None:
    # LedgerLink's recorded upsert body is what HubSpot's spec describes
    validate_request_body(
        "deals.json",
        "POST",
        "/crm/v3/objects/deals/batch/upsert",
        payload("deals_batch_upsert_invoices.json"),
    )
    validate_request_body(
        "properties.json", "POST", "/crm/v3/properties/deals", payload("invoice_id_property.json")
    )
    misspelled = payload("deals_batch_upsert_invoices.json")
    misspelled["inputs"][0]["idProprety"] = misspelled["inputs"][0].pop("idProperty")
    with pytest.raises(AssertionError, match="idProprety"):
        validate_request_body("deals.json", "POST", "/crm/v3/objects/deals/batch/upsert", misspelled)
    # the response errata do not apply to requests: a null property value is not a string
    with pytest.raises(AssertionError, match="None is not of type 'string'"):
        validate_request_body(
            "deals.json", "PATCH", "/crm/v3/objects/deals/1", {"properties": {"amount": None}}
        )


def test_openapi_dialect_conversion() -> None:
    converted = convert(
        {
            "type": "object",
            "required": ["id", "secret"],
            "properties": {
                "id": {"type": "string", "readOnly": True},
                "secret": {"type": "string", "writeOnly": True},
                "note": {"type": "string", "nullable": True, "enum": ["a"]},
                "ref": {"$ref": "#/components/schemas/X", "nullable": True},
                "count": {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "example": 3},
            },
        },
        mode="request",
        strict=True,
    )
    assert converted["required"] == ["secret"]
    assert converted["properties"]["note"] == {"type": ["string", "null"], "enum": ["a", None]}
    assert converted["properties"]["ref"] == {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}
    assert converted["properties"]["count"] == {"type": "integer", "exclusiveMinimum": 0}
    assert converted["additionalProperties"] is False
    assert convert({"required": ["id", "secret"], "properties": {"id": {"readOnly": True}, "secret": {"writeOnly": True}}},
                   mode="response", strict=False)["required"] == ["id"]  # fmt: skip
