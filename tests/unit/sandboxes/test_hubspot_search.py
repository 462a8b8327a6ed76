"""HubSpot sandbox: CRM search (filter groups, operators, sorts, paging, limits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot, payload

__all__ = ["hubspot"]

SEARCH = "/crm/v3/objects/deals/search"


def _search(hubspot: HubSpotApi, *filters: dict, **extra: object) -> dict:
    body = {"filterGroups": [{"filters": list(filters)}] if filters else [], "limit": 100, **extra}
    return checked("deals.json", hubspot.post(SEARCH, body), 200).json()


def _names(result: dict) -> list[str]:
    return [r["properties"]["dealname"].split(" - ")[0] for r in result["results"]]


def test_open_invoice_deals_search_from_the_recorded_request(hubspot: HubSpotApi) -> None:
    # given invoice deals in the Invoices pipeline: open, overdue, and paid
    checked(
        "properties.json", hubspot.post("/crm/v3/properties/deals", payload("invoice_id_property.json")), 201
    )
    hubspot.post("/crm/v3/objects/deals/batch/upsert", payload("deals_batch_upsert_invoices.json"))
    hubspot.post(
        "/crm/v3/objects/deals",
        {
            "properties": {
                "dealname": "Invoice 1001 - Paid",
                "amount": "99",
                "pipeline": "880014",
                "dealstage": "880018",
            }
        },
    )
    # when LedgerLink's open-invoices search runs
    answer = checked(
        "deals.json", hubspot.post(SEARCH, payload("deals_search_open_invoices.json")), 200
    ).json()
    # then open and overdue invoices come back, largest first, with only the requested properties
    assert answer["total"] == 2
    assert [r["properties"]["qbo_invoice_id"] for r in answer["results"]] == ["1038", "1037"]
    assert set(answer["results"][0]["properties"]) == {
        "amount", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "qbo_invoice_id",
    }  # fmt: skip


def test_filter_groups_are_ored_and_filters_anded(hubspot: HubSpotApi) -> None:
    won_big = {"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}
    big = {"propertyName": "amount", "operator": "GTE", "value": "4000"}
    in_cad = {"propertyName": "deal_currency_code", "operator": "EQ", "value": "CAD"}
    answer = checked(
        "deals.json",
        hubspot.post(
            SEARCH, {"filterGroups": [{"filters": [won_big, big]}, {"filters": [in_cad]}], "limit": 50}
        ),
        200,
    ).json()
    assert sorted(_names(answer)) == ["Amy's Bird Sanctuary", "Maple Leaf Outfitters"]


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"propertyName": "amount", "operator": "LT", "value": "1000"}, ["Pye's Cakes", "Weiskopf Consulting"]),
        ({"propertyName": "amount", "operator": "LTE", "value": "960"}, ["Pye's Cakes", "Weiskopf Consulting"]),
        ({"propertyName": "amount", "operator": "GT", "value": "9600"}, ["Northwind Traders"]),
        ({"propertyName": "amount", "operator": "BETWEEN", "value": "3000", "highValue": "3400"},
         ["Blue Heron Landscaping", "Paulsen Medical Supplies"]),
        ({"propertyName": "dealstage", "operator": "IN", "values": ["closedlost"]}, ["Dukes Basketball Camp", "Pye's Cakes"]),
        ({"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "resurf*"}, ["Dukes Basketball Camp"]),
        ({"propertyName": "deal_currency_code", "operator": "HAS_PROPERTY"}, ["Maple Leaf Outfitters"]),
        ({"propertyName": "dealname", "operator": "EQ", "value": "PYE'S CAKES - WINDOW BOXES"}, ["Pye's Cakes"]),
    ],
)  # fmt: skip
def test_operators(hubspot: HubSpotApi, condition: dict, expected: list[str]) -> None:
    assert sorted(_names(_search(hubspot, condition, properties=["dealname"]))) == expected


def test_negative_operators(hubspot: HubSpotApi) -> None:
    not_closed = _search(
        hubspot, {"propertyName": "dealstage", "operator": "NOT_IN", "values": ["closedwon", "closedlost"]}
    )
    no_currency = _search(hubspot, {"propertyName": "deal_currency_code", "operator": "NOT_HAS_PROPERTY"})
    not_pyes = _search(
        hubspot, {"propertyName": "dealname", "operator": "NEQ", "value": "Pye's Cakes - Window boxes"}
    )
    no_token = _search(
        hubspot, {"propertyName": "dealname", "operator": "NOT_CONTAINS_TOKEN", "value": "garden"}
    )
    assert _search(hubspot)["total"] == 12
    assert (not_closed["total"], no_currency["total"], not_pyes["total"], no_token["total"]) == (
        6,
        11,
        11,
        11,
    )


def test_date_filters_accept_iso_and_epoch_milliseconds(hubspot: HubSpotApi) -> None:
    # given demo deals created 60, 45, 30, 20, 15 and 10 days ago (and older ones)
    cutoff = datetime.now(UTC) - timedelta(days=50)
    # when deals created since the cutoff are searched, by ISO date-time and by epoch milliseconds
    by_iso = _search(hubspot, {"propertyName": "createdate", "operator": "GTE", "value": cutoff.isoformat()})
    by_millis = _search(
        hubspot,
        {"propertyName": "createdate", "operator": "GTE", "value": str(int(cutoff.timestamp() * 1000))},
    )
    # then both find the same five recent deals
    expected = ["Blue Heron Landscaping", "Harbor Point Marina", "Maple Leaf Outfitters", "Sierra Solar Co",
                "Weiskopf Consulting"]  # fmt: skip
    assert sorted(_names(by_iso)) == sorted(_names(by_millis)) == expected


def test_association_filter_finds_a_companys_deals(hubspot: HubSpotApi) -> None:
    answer = _search(hubspot, {"propertyName": "associations.company", "operator": "EQ", "value": "21001"})
    assert _names(answer) == ["Amy's Bird Sanctuary"]


def test_sorting_paging_and_total(hubspot: HubSpotApi) -> None:
    # when deals are paged 5 at a time sorted by amount, descending
    pages, after = [], "0"
    while after is not None:
        page = checked(
            "deals.json",
            hubspot.post(SEARCH, {"filterGroups": [], "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
                                  "properties": ["amount"], "limit": 5, "after": after}),
            200,
        ).json()  # fmt: skip
        pages.append(page)
        after = page.get("paging", {}).get("next", {}).get("after")
    amounts = [float(r["properties"]["amount"]) for p in pages for r in p["results"]]
    # then every page reports the same total and amounts never increase across pages
    assert [p["total"] for p in pages] == [12, 12, 12]
    assert len(amounts) == 12 and amounts == sorted(amounts, reverse=True)


def test_free_text_query_matches_default_searchable_properties(hubspot: HubSpotApi) -> None:
    answer = checked(
        "contacts.json",
        hubspot.post("/crm/v3/objects/contacts/search", {"query": "kuplis", "properties": ["email"]}),
        200,
    ).json()
    assert [r["properties"]["email"] for r in answer["results"]] == ["qbwebsamplecompany@yahoo.com"]


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "EQ", "value": "1"}]}] * 6},
        {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "EQ", "value": "1"}] * 7}]},
        {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "ALMOST", "value": "1"}]}]},
        {
            "filterGroups": [
                {"filters": [{"propertyName": "no_such_property", "operator": "EQ", "value": "1"}]}
            ]
        },
        {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "IN"}]}]},
        {"after": "10000", "limit": 100},
    ],
)
def test_invalid_searches_are_refused(hubspot: HubSpotApi, body: dict) -> None:
    answer = checked("deals.json", hubspot.post(SEARCH, body), 400)
    assert answer.json()["category"] == "VALIDATION_ERROR"
