"""What the mapper builds validates against HubSpot's OpenAPI specs; the QBO fixtures match Intuit's XSD.

A misspelled field fails here, not in production: every HubSpot body goes through the vendor's own
component schema, every property name is a HubSpot default or one of our catalogued custom
properties, and every field of the recorded QBO payloads exists in the QBO data model.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from typing import Any

import pytest

from ledgerlink.deal_sync.mapping import (
    UpsertInput,
    batch_upsert_body,
    batches,
    map_customer,
    map_estimate,
    map_invoice,
)
from ledgerlink.mapping.properties import CUSTOM_PROPERTIES, HUBSPOT_DEFAULT_PROPERTIES, custom_property_names
from ledgerlink.mapping.stages import default_estimate_stages, default_invoice_stages
from tests.conftest import FIXTURES, SHARED_SPECS
from tests.unit.deal_sync.helpers import at, company, hubspot_schema_errors, qbo_entity, qbo_payload

INVOICES = sorted(path.name for path in (FIXTURES / "qbo").glob("invoice_*.json"))
NOW = at("2025-06-10T12:00:00-04:00")
SPEC_FILE = {
    "deals": "deals.json",
    "line_items": "lineItems.json",
    "companies": "companies.json",
    "contacts": "contacts.json",
}
UPSERT_BATCH = "BatchInputSimplePublicObjectBatchInputUpsert"


def assert_valid_upserts(object_type: str, inputs: list[UpsertInput]) -> None:
    body = batch_upsert_body(inputs)
    assert hubspot_schema_errors(SPEC_FILE[object_type], UPSERT_BATCH, body) == []
    known = HUBSPOT_DEFAULT_PROPERTIES[object_type] | custom_property_names(object_type)
    for item in inputs:
        assert set(item.properties) <= known, set(item.properties) - known
        assert item.id_property in known
        # HubSpot answers 400 to a non-string property value with leading or trailing whitespace
        # (changelog "Enhanced validations for non-string properties", 2025); we never send one.
        assert [name for name, value in item.properties.items() if value != value.strip()] == []


@pytest.mark.parametrize("fixture", INVOICES)
def test_invoice_deal_and_line_items_validate_against_hubspot_specs(fixture: str) -> None:
    result = map_invoice(qbo_entity(fixture), company(), default_invoice_stages(), now=NOW)

    assert_valid_upserts("deals", [result.deal])
    if result.line_items:
        assert_valid_upserts("line_items", list(result.line_items))


def test_estimate_deal_validates() -> None:
    result = map_estimate(qbo_entity("estimate_pending.json"), company(), default_estimate_stages(), now=NOW)

    assert_valid_upserts("deals", [result.deal])
    assert_valid_upserts("line_items", list(result.line_items))


def test_companies_and_contacts_validate() -> None:
    customers = [qbo_entity("customer_us.json"), qbo_entity("customer_uk.json")]
    customers += qbo_payload("customers_shared_email.json")["QueryResponse"]["Customer"]
    mapped = [map_customer(customer, company()) for customer in customers]

    assert_valid_upserts("companies", [m.company for m in mapped])
    assert_valid_upserts("contacts", [m.contact for m in mapped if m.contact])


def test_the_validation_catches_a_non_string_value() -> None:
    # a control: the spec really is applied (HubSpot property values are strings)
    body = {"inputs": [{"id": "1", "idProperty": "qbo_invoice_id", "properties": {"amount": 312.5}}]}

    assert hubspot_schema_errors("deals.json", UPSERT_BATCH, body) != []


def test_batches_hold_at_most_one_hundred_inputs() -> None:
    line = map_invoice(
        qbo_entity("invoice_plain.json"), company(), default_invoice_stages(), now=NOW
    ).line_items[0]

    chunks = list(batches([line] * 250))

    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    with pytest.raises(ValueError, match="at most 100 inputs"):
        batch_upsert_body([line] * 101)
    with pytest.raises(ValueError, match="at least one input"):
        batch_upsert_body([])


@pytest.mark.parametrize("object_type", sorted(CUSTOM_PROPERTIES))
def test_custom_property_definitions_validate_against_the_properties_spec(object_type: str) -> None:
    for spec in CUSTOM_PROPERTIES[object_type]:
        body = spec.create_body()
        assert hubspot_schema_errors("properties.json", "PropertyCreate", body) == [], spec.name
        assert body["name"].startswith("qbo_") and body["name"] == body["name"].lower()


# --- QBO fixtures against Intuit's XSD ---------------------------------------------------------

XS = "{http://www.w3.org/2001/XMLSchema}"
XSD_DIR = SHARED_SPECS / "quickbooks" / "xsd"


@cache
def _complex_types() -> dict[str, ET.Element]:
    types: dict[str, ET.Element] = {}
    for name in ("Finance.xsd", "IntuitBaseTypes.xsd", "IntuitNamesTypes.xsd", "SalesTax.xsd"):
        # The vendor XSD is a trusted, read-only file beside the checkout, not untrusted input.
        for node in ET.parse(XSD_DIR / name).getroot().findall(f"{XS}complexType"):  # noqa: S314
            types[node.attrib["name"]] = node
    return types


@cache
def _fields(type_name: str) -> dict[str, str | None]:
    """JSON field name → XSD type of a complexType, inherited fields and attributes included."""
    node = _complex_types()[type_name]
    fields: dict[str, str | None] = {}
    extension = node.find(f"{XS}complexContent/{XS}extension")
    if extension is not None:
        fields.update(_fields(extension.attrib["base"].split(":")[-1]))
    if node.find(f"{XS}simpleContent") is not None:
        fields["value"] = None  # a simple-content type (ReferenceType) is {"value": ..., "name": ...}
    for element in node.iter(f"{XS}element"):
        if "name" in element.attrib:
            fields[element.attrib["name"]] = element.attrib.get("type", "").split(":")[-1] or None
    for attribute in node.iter(f"{XS}attribute"):
        fields[attribute.attrib["name"]] = None
    return fields


def _unknown_fields(value: Any, type_name: str, path: str) -> list[str]:
    if type_name not in _complex_types() or type_name == "IntuitAnyType":
        return []
    if isinstance(value, list):
        return [
            problem
            for i, item in enumerate(value)
            for problem in _unknown_fields(item, type_name, f"{path}[{i}]")
        ]
    if not isinstance(value, dict):
        return []
    fields = _fields(type_name)
    problems = [f"{path}.{key}" for key in value if key not in fields]
    for key, child in value.items():
        child_type = fields.get(key)
        if child_type:
            problems += _unknown_fields(child, child_type, f"{path}.{key}")
    return problems


@pytest.mark.parametrize("fixture", sorted(path.name for path in (FIXTURES / "qbo").glob("*.json")))
def test_qbo_fixtures_use_only_fields_of_the_qbo_data_model(fixture: str) -> None:
    body = qbo_payload(fixture)
    entities = body.get("QueryResponse", body)
    problems = [
        problem
        for entity_type, value in entities.items()
        if entity_type not in ("time", "startPosition", "maxResults")
        for problem in _unknown_fields(value, entity_type, entity_type)
    ]
    assert problems == []


def test_the_xsd_check_catches_a_misspelled_field() -> None:
    invoice = qbo_entity("invoice_plain.json")
    invoice["Line"][0]["SalesItemLineDetail"]["Quantity"] = 1

    assert _unknown_fields(invoice, "Invoice", "Invoice") == ["Invoice.Line[0].SalesItemLineDetail.Quantity"]
