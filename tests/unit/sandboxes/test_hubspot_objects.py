"""HubSpot sandbox: CRM object CRUD, property validation and both deal paths, through real HTTP."""

from __future__ import annotations

import json

import pytest

from tests.unit.sandboxes.test_hubspot_support import SPEC_BY_TYPE, HubSpotApi, checked, hubspot, payload

__all__ = ["hubspot"]


@pytest.mark.parametrize("deal_path", ["/crm/v3/objects/deals", "/crm/v3/objects/0-3"])
def test_deal_lifecycle_through_either_path(hubspot: HubSpotApi, deal_path: str) -> None:
    # given LedgerLink's deal for a QBO invoice
    body = payload("deal_create_invoice.json")
    # when it is created, read, updated and archived through one of the two deal paths
    created = checked("deals.json", hubspot.post(deal_path, body), 201).json()
    read = checked("deals.json", hubspot.get(f"{deal_path}/{created['id']}?properties=amount,dealstage"), 200)
    updated = checked(
        "deals.json", hubspot.patch(f"{deal_path}/{created['id']}", {"properties": {"amount": "400"}}), 200
    )
    archived = hubspot.delete(f"{deal_path}/{created['id']}")
    gone = hubspot.get(f"/crm/v3/objects/deals/{created['id']}")
    # then the deal existed with HubSpot's system properties, took the update, and is gone
    assert created["properties"]["hs_object_id"] == created["id"]
    assert created["properties"]["amount"] == "362.07"
    assert created["properties"]["closedate"] == "2026-12-15T00:00:00Z"
    assert read.json()["properties"]["dealstage"] == "880015"
    assert updated.json()["properties"]["amount"] == "400"
    assert updated.json()["updatedAt"] >= created["updatedAt"]
    assert archived.status_code == 204
    checked("deals.json", gone, 404)
    archived_read = hubspot.get(f"/crm/v3/objects/0-3/{created['id']}?archived=true")
    assert checked("deals.json", archived_read, 200).json()["archived"] is True


def test_unset_requested_properties_come_back_null_and_unknown_names_are_ignored(hubspot: HubSpotApi) -> None:
    # given a demo deal without a description
    # when it is read asking for a description and a property that does not exist
    answer = checked(
        "deals.json", hubspot.get("/crm/v3/objects/deals/91001?properties=description,no_such_thing")
    )
    # then HubSpot's shape: the unset property is null, the unknown one absent, system ones present
    properties = answer.json()["properties"]
    assert properties["description"] is None
    assert "no_such_thing" not in properties
    assert {"hs_object_id", "createdate", "hs_lastmodifieddate"} <= set(properties)


def test_unknown_property_is_refused_like_hubspot_and_nothing_is_created(hubspot: HubSpotApi) -> None:
    # given a deal with a misspelled property name
    before = hubspot.admin("GET", "state")["counts"]["deals"]
    # when it is created
    answer = checked(
        "deals.json", hubspot.post("/crm/v3/objects/deals", payload("unknown_property_deal.json")), 400
    )
    # then HubSpot's VALIDATION_ERROR with the per-property list inside the message
    body = answer.json()
    assert body["category"] == "VALIDATION_ERROR" and body["status"] == "error"
    assert body["message"].startswith("Property values were not valid: ")
    problems = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert problems == [
        {
            "isValid": False,
            "message": 'Property "invoice_nmuber" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": "invoice_nmuber",
            "localizedErrorMessage": 'Property "invoice_nmuber" does not exist',
            "portalId": 48213570,
        }
    ]
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert hubspot.admin("GET", "state")["counts"]["deals"] == before


@pytest.mark.parametrize(
    ("properties", "code", "name"),
    [
        ({"amount": "12,50"}, "INVALID_FLOAT", "amount"),
        ({"dealstage": "closedwon", "pipeline": "880014"}, "INVALID_OPTION", "dealstage"),
        ({"pipeline": "no-such-pipeline"}, "INVALID_OPTION", "pipeline"),
        ({"deal_currency_code": "GBP"}, "INVALID_OPTION", "deal_currency_code"),
        ({"hubspot_owner_id": "not-a-number"}, "INVALID_INTEGER", "hubspot_owner_id"),
        ({"hubspot_owner_id": "999"}, "INVALID_OPTION", "hubspot_owner_id"),
        ({"closedate": "next tuesday"}, "INVALID_DATE", "closedate"),
        ({"amount": " 10"}, "LEADING_TRAILING_WHITESPACE", "amount"),
        ({"hs_object_id": "5"}, "READ_ONLY_VALUE", "hs_object_id"),
    ],
)
def test_deal_values_are_validated_like_hubspot(
    hubspot: HubSpotApi, properties: dict[str, str], code: str, name: str
) -> None:
    # when a deal is created with an invalid value
    answer = hubspot.post("/crm/v3/objects/deals", {"properties": {"dealname": "Bad", **properties}})
    # then it is refused naming the property and HubSpot's error code
    checked("deals.json", answer, 400)
    problems = json.loads(answer.json()["message"].removeprefix("Property values were not valid: "))
    assert [(p["name"], p["error"]) for p in problems] == [(name, code)]


def test_stage_must_belong_to_the_deals_pipeline_named_in_hubspots_words(hubspot: HubSpotApi) -> None:
    # when a deal in the Invoices pipeline is moved to a sales-pipeline stage
    answer = hubspot.patch("/crm/v3/objects/deals/91001", {"properties": {"pipeline": "880014"}})
    # then (the demo deal is in closedwon, not an Invoices stage) HubSpot's message lists the valid stages
    problems = json.loads(answer.json()["message"].removeprefix("Property values were not valid: "))
    assert problems[0]["message"].startswith(
        "closedwon is not a valid pipeline stage ID. Valid options are: "
    )
    assert "pipelineId=880014 : [880015, 880016, 880017, 880018, 880019]" in problems[0]["message"]


def test_enabled_currency_converts_to_the_company_currency(hubspot: HubSpotApi) -> None:
    # given a deal in EUR (enabled at 1.08 USD)
    created = hubspot.post(
        "/crm/v3/objects/deals",
        {"properties": {"dealname": "Euro deal", "amount": "100", "deal_currency_code": "EUR"}},
    ).json()
    # when it is read with HubSpot's calculated home-currency amount
    read = hubspot.get(f"/crm/v3/objects/deals/{created['id']}?properties=amount_in_home_currency,pipeline")
    # then the amount is converted and the pipeline defaulted
    assert read.json()["properties"] == {
        **read.json()["properties"],
        "amount_in_home_currency": "108",
        "pipeline": "default",
    }


def test_list_pages_with_after_cursors(hubspot: HubSpotApi) -> None:
    # given the demo portal's 58 contacts
    seen: list[str] = []
    after = None
    # when they are listed 25 at a time following paging.next.after
    while True:
        query = "?limit=25" + (f"&after={after}" if after else "")
        page = checked("contacts.json", hubspot.get("/crm/v3/objects/contacts" + query), 200).json()
        seen += [r["id"] for r in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    # then every contact came exactly once, in id order
    assert len(seen) == 58 and seen == sorted(set(seen), key=int)
    checked("contacts.json", hubspot.get("/crm/v3/objects/contacts?limit=101"), 400)


def test_reads_include_v3_associations_as_hubspot_names_them(hubspot: HubSpotApi) -> None:
    # given a deal with two line items
    deal = hubspot.post("/crm/v3/objects/deals", {"properties": {"dealname": "With lines"}}).json()
    for name in ("Design", "Hours"):
        hubspot.post(
            "/crm/v3/objects/line_items",
            {
                "properties": {"name": name, "quantity": "1", "price": "10"},
                "associations": [
                    {
                        "to": {"id": deal["id"]},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}],
                    }
                ],
            },
        )
    # when the deal is read with its associations
    read = checked(
        "deals.json", hubspot.get(f"/crm/v3/objects/deals/{deal['id']}?associations=line_items,companies")
    )
    # then line items come under HubSpot's "line items" key with the v3 type name; no empty keys
    associations = read.json()["associations"]
    assert list(associations) == ["line items"]
    assert [r["type"] for r in associations["line items"]["results"]] == ["deal_to_line_item"] * 2


def test_line_item_from_a_product_copies_it_and_computes_the_net_price(hubspot: HubSpotApi) -> None:
    # given the demo product "Rock Fountain" (275.00)
    products = hubspot.post(
        "/crm/v3/objects/products/search",
        {
            "filterGroups": [
                {"filters": [{"propertyName": "name", "operator": "EQ", "value": "rock fountain"}]}
            ]
        },
    ).json()["results"]
    # when a line item is created from it with a quantity and a unit discount
    created = hubspot.post(
        "/crm/v3/objects/line_items",
        {"properties": {"hs_product_id": products[0]["id"], "quantity": "2", "discount": "25"}},
    )
    # then name and price come from the product and amount is HubSpot's calculated net price
    properties = checked("lineItems.json", created, 201).json()["properties"]
    assert (properties["name"], properties["price"], properties["amount"]) == ("Rock Fountain", "275", "500")
    bad = hubspot.post("/crm/v3/objects/line_items", {"properties": {"hs_product_id": "1"}})
    assert checked("lineItems.json", bad, 400).json()["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"amount": "150"}, "READ_ONLY_VALUE"),  # HubSpot calculates the net price
        ({"price": "-5"}, "INVALID_NUMBER"),  # "The price ... cannot be negative"
    ],
)
def test_line_item_net_price_is_calculated_and_price_never_negative(
    hubspot: HubSpotApi, properties: dict[str, str], code: str
) -> None:
    answer = hubspot.post(
        "/crm/v3/objects/line_items", {"properties": {"name": "Credit", "quantity": "1", **properties}}
    )
    problems = json.loads(checked("lineItems.json", answer, 400).json()["message"].split(": ", 1)[1])
    assert [p["error"] for p in problems] == [code]


@pytest.mark.parametrize(
    ("object_type", "properties"),
    [
        ("contacts", {"email": "new.person@example.com", "firstname": "New", "lastname": "Person"}),
        ("companies", {"name": "New Co", "domain": "newco.example"}),
        ("products", {"name": "Consulting", "price": "150", "hs_sku": "CONSULT"}),
        ("line_items", {"name": "Consulting", "quantity": "2", "price": "150"}),
    ],
)
def test_other_object_types_support_basic_crud(
    hubspot: HubSpotApi, object_type: str, properties: dict[str, str]
) -> None:
    spec = SPEC_BY_TYPE[object_type]
    # when a record is created, read back, updated and archived
    created = checked(
        spec, hubspot.post(f"/crm/v3/objects/{object_type}", {"properties": properties}), 201
    ).json()
    read = checked(
        spec, hubspot.get(f"/crm/v3/objects/{object_type}/{created['id']}?properties={','.join(properties)}")
    )
    first = next(iter(properties))
    updated = checked(
        spec, hubspot.patch(f"/crm/v3/objects/{object_type}/{created['id']}", {"properties": {first: ""}})
    )
    deleted = hubspot.delete(f"/crm/v3/objects/{object_type}/{created['id']}")
    # then each step did what HubSpot does (an empty string clears a value)
    assert read.json()["properties"] | properties == read.json()["properties"]
    assert first not in updated.json()["properties"]
    assert deleted.status_code == 204
    assert hubspot.get(f"/crm/v3/objects/{object_type}/{created['id']}").status_code == 404


def test_unknown_object_type_is_a_validation_error(hubspot: HubSpotApi) -> None:
    answer = checked("deals.json", hubspot.get("/crm/v3/objects/deals/1"), 404)
    assert answer.json()["category"] == "OBJECT_NOT_FOUND"
    unknown = hubspot.get("/crm/v3/objects/tickets")
    assert (
        unknown.status_code == 400
        and unknown.json()["message"] == "Unable to infer object type from: tickets"
    )
