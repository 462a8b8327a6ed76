"""HubSpot sandbox: associations v4 (default, typed, batch, labels), stored both ways."""

from __future__ import annotations

from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot

__all__ = ["hubspot"]

V4 = "/crm/v4/objects"
SPEC = "associations.v4.json"
SCHEMA = "associationsSchema.v4.json"


def _new_deal(hubspot: HubSpotApi, name: str = "Invoice 1040") -> str:
    deal_id: str = hubspot.post("/crm/v3/objects/deals", {"properties": {"dealname": name}}).json()["id"]
    return deal_id


def _types_between(hubspot: HubSpotApi, path: str) -> dict[str, list[int]]:
    results = checked(SPEC, hubspot.get(path), 200).json()["results"]
    return {r["toObjectId"]: sorted(t["typeId"] for t in r["associationTypes"]) for r in results}


def test_default_association_is_stored_in_both_directions(hubspot: HubSpotApi) -> None:
    deal = _new_deal(hubspot)
    # when the deal is associated with company 21001 the default way
    answer = checked(SPEC, hubspot.put(f"{V4}/deals/{deal}/associations/default/companies/21001"), 200).json()
    # then HubSpot's unlabeled types show from both sides
    assert [(r["from"]["id"], r["associationSpec"]["associationTypeId"]) for r in answer["results"]] == [
        (deal, 341),
        ("21001", 342),
    ]
    assert _types_between(hubspot, f"{V4}/deals/{deal}/associations/companies") == {"21001": [341]}
    assert _types_between(hubspot, f"{V4}/companies/21001/associations/deals")[deal] == [342]


def test_typed_association_with_primary_replaces_the_previous_primary(hubspot: HubSpotApi) -> None:
    deal = _new_deal(hubspot)
    primary = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]
    # when the deal gets company 21001 as primary, then company 21002
    first = checked(SPEC, hubspot.put(f"{V4}/deals/{deal}/associations/companies/21001", primary), 201).json()
    checked(SPEC, hubspot.put(f"{V4}/deals/{deal}/associations/companies/21002", primary), 201)
    # then only the latest is primary (a record has one primary company); both keep the unlabeled
    # type HubSpot adds to every association
    assert (
        first["labels"] == ["Primary"]
        and first["fromObjectTypeId"] == "0-3"
        and first["toObjectTypeId"] == "0-2"
    )
    assert _types_between(hubspot, f"{V4}/deals/{deal}/associations/companies") == {
        "21001": [341],
        "21002": [5, 341],
    }


def test_invalid_types_and_missing_records_are_refused(hubspot: HubSpotApi) -> None:
    deal = _new_deal(hubspot)
    wrong_direction = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 342}]
    checked(SPEC, hubspot.put(f"{V4}/deals/{deal}/associations/companies/21001", wrong_direction), 400)
    checked(SPEC, hubspot.put(f"{V4}/deals/{deal}/associations/default/companies/999"), 404)
    checked(SPEC, hubspot.put(f"{V4}/products/71001/associations/default/companies/21001"), 400)
    assert _types_between(hubspot, f"{V4}/deals/{deal}/associations/companies") == {}


def test_delete_removes_every_type_both_ways(hubspot: HubSpotApi) -> None:
    # given demo deal 91001 with company 21001 (unlabeled and primary)
    assert hubspot.delete(f"{V4}/deals/91001/associations/companies/21001").status_code == 204
    assert _types_between(hubspot, f"{V4}/deals/91001/associations/companies") == {}
    assert "91001" not in _types_between(hubspot, f"{V4}/companies/21001/associations/deals")


def test_batch_default_create_and_read(hubspot: HubSpotApi) -> None:
    deals = [_new_deal(hubspot, f"Invoice {n}") for n in (1, 2)]
    # when line items are attached by batch (one input naming a missing deal), then read back
    lines = [
        hubspot.post(
            "/crm/v3/objects/line_items", {"properties": {"name": "Design", "quantity": "1", "price": "5"}}
        ).json()["id"]
        for _ in range(2)
    ]
    default = hubspot.post(
        "/crm/v4/associations/deals/line_items/batch/associate/default",
        {
            "inputs": [
                {"from": {"id": deals[0]}, "to": {"id": lines[0]}},
                {"from": {"id": "1"}, "to": {"id": lines[1]}},
            ]
        },
    )
    typed = hubspot.post(
        "/crm/v4/associations/deals/line_items/batch/create",
        {"inputs": [{"from": {"id": deals[1]}, "to": {"id": lines[1]},
                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 19}]}]},
    )  # fmt: skip
    read = hubspot.post(
        "/crm/v4/associations/deals/line_items/batch/read", {"inputs": [{"id": d} for d in [*deals, "91001"]]}
    )
    # then the valid inputs were linked; the missing deal and the deal without lines are reported
    default_body = checked(SPEC, default, 200).json()
    assert default_body["numErrors"] == 1 and default_body["errors"][0]["context"] == {"ids": ["1"]}
    assert checked(SPEC, typed, 201).json()["results"][0]["labels"] == []
    read_body = checked(SPEC, read, 207).json()
    assert [(r["from"]["id"], [t["toObjectId"] for t in r["to"]]) for r in read_body["results"]] == [
        (deals[0], [lines[0]]),
        (deals[1], [lines[1]]),
    ]
    assert read_body["errors"][0]["message"] == "No line_item is associated with deal 91001."
    # and the line items see their deal through the inverse type
    assert _types_between(hubspot, f"{V4}/line_items/{lines[1]}/associations/deals") == {deals[1]: [20]}


def test_batch_archive_and_label_archive(hubspot: HubSpotApi) -> None:
    # given demo contact 51001 with company 21001 (unlabeled 279 and primary 1)
    archive_primary = hubspot.post(
        "/crm/v4/associations/contacts/companies/batch/labels/archive",
        {"inputs": [{"from": {"id": "51001"}, "to": {"id": "21001"},
                     "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]},
    )  # fmt: skip
    assert archive_primary.status_code == 204
    assert _types_between(hubspot, f"{V4}/contacts/51001/associations/companies") == {"21001": [279]}
    archive_all = hubspot.post(
        "/crm/v4/associations/contacts/companies/batch/archive",
        {"inputs": [{"from": {"id": "51001"}, "to": [{"id": "21001"}]}]},
    )
    assert archive_all.status_code == 204
    assert _types_between(hubspot, f"{V4}/contacts/51001/associations/companies") == {}


def test_custom_labels_on_both_label_paths(hubspot: HubSpotApi) -> None:
    # when a paired label is created, used, renamed and deleted
    created = hubspot.post(
        "/crm/v4/associations/deals/contacts/labels",
        {"label": "Billing contact", "inverseLabel": "Billed deal", "name": "billing_contact"},
    )
    forward, backward = checked(SCHEMA, created, 200).json()["results"]
    deal = _new_deal(hubspot)
    linked = hubspot.put(
        f"{V4}/deals/{deal}/associations/contacts/51001",
        [{"associationCategory": "USER_DEFINED", "associationTypeId": forward["typeId"]}],
    )
    inverse_view = checked(SPEC, hubspot.get(f"{V4}/contacts/51001/associations/deals"), 200).json()[
        "results"
    ]
    renamed = hubspot.put(
        "/crm/associations/v4/deals/contacts/labels",
        {"associationTypeId": forward["typeId"], "label": "Payer"},
    )
    labels = checked(SCHEMA, hubspot.get("/crm/associations/v4/deals/contacts/labels"), 200).json()["results"]
    deleted = hubspot.delete(f"/crm/v4/associations/deals/contacts/labels/{forward['typeId']}")
    # then the label worked both ways, was renamed, and its associations went with it
    assert checked(SPEC, linked, 201).json()["labels"] == ["Billing contact"]
    assert {"category": "USER_DEFINED", "typeId": backward["typeId"], "label": "Billed deal"} in [
        t for r in inverse_view if r["toObjectId"] == deal for t in r["associationTypes"]
    ]
    assert renamed.status_code == 204 and deleted.status_code == 204
    assert {"category": "USER_DEFINED", "typeId": forward["typeId"], "label": "Payer"} in labels
    assert _types_between(hubspot, f"{V4}/deals/{deal}/associations/contacts") == {"51001": [3]}


def test_inline_associations_on_create_and_their_validation(hubspot: HubSpotApi) -> None:
    to_company = {
        "to": {"id": "21001"},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}],
    }
    created = hubspot.post(
        "/crm/v3/objects/deals", {"properties": {"dealname": "Inline"}, "associations": [to_company]}
    )
    deal = checked("deals.json", created, 201).json()["id"]
    assert _types_between(hubspot, f"{V4}/deals/{deal}/associations/companies") == {"21001": [341]}
    missing = {**to_company, "to": {"id": "999"}}
    refused = hubspot.post(
        "/crm/v3/objects/deals", {"properties": {"dealname": "Nope"}, "associations": [missing]}
    )
    checked("deals.json", refused, 400)
    assert hubspot.admin("GET", "state")["counts"]["deals"] == 13
