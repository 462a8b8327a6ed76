"""HubSpot sandbox: batch endpoints, the 100-input limit, 207 multi-status, upsert by a unique
property and unique-value conflicts."""

from __future__ import annotations

import json

from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot, payload

__all__ = ["hubspot"]

DEALS = "/crm/v3/objects/deals"


def _with_invoice_property(hubspot: HubSpotApi) -> None:
    checked(
        "properties.json", hubspot.post("/crm/v3/properties/deals", payload("invoice_id_property.json")), 201
    )


def test_batch_upsert_by_unique_property_creates_then_updates_and_never_duplicates(
    hubspot: HubSpotApi,
) -> None:
    # given the unique qbo_invoice_id property LedgerLink sets up
    _with_invoice_property(hubspot)
    body = payload("deals_batch_upsert_invoices.json")
    # when the same upsert is sent twice (a replayed QBO event), the second time with a new amount
    first = checked("deals.json", hubspot.post(f"{DEALS}/batch/upsert", body), 200).json()
    body["inputs"][0]["properties"]["amount"] = "400.00"
    second = checked("deals.json", hubspot.post(f"{DEALS}/batch/upsert", body), 200).json()
    # then the first created both deals, the second updated them in place
    assert [r["new"] for r in first["results"]] == [True, True]
    assert [r["new"] for r in second["results"]] == [False, False]
    assert [r["id"] for r in first["results"]] == [r["id"] for r in second["results"]]
    assert first["results"][0]["properties"]["qbo_invoice_id"] == "1037"
    read = hubspot.get(f"{DEALS}/1037?idProperty=qbo_invoice_id&properties=amount,qbo_invoice_id").json()
    assert read["properties"]["amount"] == "400.00"
    found = hubspot.post(
        f"{DEALS}/search",
        {"filterGroups": [{"filters": [{"propertyName": "qbo_invoice_id", "operator": "HAS_PROPERTY"}]}]},
    )
    assert found.json()["total"] == 2


def test_upsert_needs_a_unique_id_property(hubspot: HubSpotApi) -> None:
    # when an upsert names no idProperty, or a property whose values are not unique
    missing = hubspot.post(
        f"{DEALS}/batch/upsert", {"inputs": [{"id": "x", "properties": {"dealname": "x"}}]}
    )
    not_unique = hubspot.post(
        f"{DEALS}/batch/upsert", {"inputs": [{"id": "x", "idProperty": "dealname", "properties": {}}]}
    )
    # then both are refused and nothing is written
    assert checked("deals.json", missing, 400).json()["category"] == "VALIDATION_ERROR"
    assert "not a unique identifier property" in checked("deals.json", not_unique, 400).json()["message"]
    assert hubspot.admin("GET", "state")["counts"]["deals"] == 12


def test_contacts_upsert_by_email(hubspot: HubSpotApi) -> None:
    # when contacts are upserted by email: one that exists in the demo portal, one new
    answer = hubspot.post(
        "/crm/v3/objects/contacts/batch/upsert",
        {
            "inputs": [
                {"id": "birds@intuit.com", "idProperty": "email", "properties": {"jobtitle": "Director"}},
                {"id": "new.buyer@example.com", "idProperty": "email", "properties": {"firstname": "New"}},
            ]
        },
    )
    # then the existing contact was updated and the other created
    results = checked("contacts.json", answer, 200).json()["results"]
    assert [(r["new"], r["properties"]["email"]) for r in results] == [
        (False, "birds@intuit.com"),
        (True, "new.buyer@example.com"),
    ]


def test_duplicate_unique_values_are_conflicts(hubspot: HubSpotApi) -> None:
    # given a deal holding invoice id 1037
    _with_invoice_property(hubspot)
    hubspot.post(DEALS, {"properties": {"dealname": "A", "qbo_invoice_id": "1037"}})
    other = hubspot.post(DEALS, {"properties": {"dealname": "B"}}).json()
    # when another deal is created or updated with the same value, or a contact reuses an email
    on_create = hubspot.post(DEALS, {"properties": {"dealname": "C", "qbo_invoice_id": "1037"}})
    on_update = hubspot.patch(f"{DEALS}/{other['id']}", {"properties": {"qbo_invoice_id": "1037"}})
    contact = hubspot.post("/crm/v3/objects/contacts", {"properties": {"email": "Birds@Intuit.com"}})
    # then each is a 409 CONFLICT naming the existing record, as HubSpot answers duplicate contacts
    for answer in (on_create, on_update):
        assert checked("deals.json", answer, 409).json()["category"] == "CONFLICT"
    assert (
        checked("contacts.json", contact, 409).json()["message"]
        == "Contact already exists. Existing ID: 51001"
    )
    assert hubspot.admin("GET", "state")["counts"]["deals"] == 14


def test_batch_create_is_all_or_nothing_without_trace_ids(hubspot: HubSpotApi) -> None:
    # given a batch of two line items, one with an unknown property
    body = payload("line_items_batch_create.json")
    body["inputs"][1]["properties"]["colour"] = "blue"
    # when it is sent
    answer = hubspot.post("/crm/v3/objects/line_items/batch/create", body)
    # then the whole batch is refused and nothing was created
    assert checked("lineItems.json", answer, 400).json()["category"] == "VALIDATION_ERROR"
    assert hubspot.admin("GET", "state")["counts"]["line_items"] == 0


def test_batch_create_with_trace_ids_answers_207_for_partial_failures(hubspot: HubSpotApi) -> None:
    # given the same batch, each input tagged with an objectWriteTraceId (HubSpot's opt-in)
    body = payload("line_items_batch_create.json")
    body["inputs"][1]["properties"]["colour"] = "blue"
    for index, item in enumerate(body["inputs"]):
        item["objectWriteTraceId"] = f"line-{index}"
    # when it is sent
    answer = checked(
        "lineItems.json", hubspot.post("/crm/v3/objects/line_items/batch/create", body), 207
    ).json()
    # then the valid input was created and the failed one is reported with its trace id
    assert [r["objectWriteTraceId"] for r in answer["results"]] == ["line-0"]
    assert answer["results"][0]["properties"]["amount"] == "225"
    assert answer["numErrors"] == 1
    error = answer["errors"][0]
    assert error["category"] == "VALIDATION_ERROR" and error["context"]["objectWriteTraceId"] == ["line-1"]
    assert "PROPERTY_DOESNT_EXIST" in error["message"]
    assert hubspot.admin("GET", "state")["counts"]["line_items"] == 1


def test_batch_create_all_valid_answers_201(hubspot: HubSpotApi) -> None:
    answer = hubspot.post("/crm/v3/objects/line_items/batch/create", payload("line_items_batch_create.json"))
    results = checked("lineItems.json", answer, 201).json()["results"]
    # net price: 3 x 75 and 1 x (275 - 25 unit discount)
    assert [r["properties"]["amount"] for r in results] == ["225", "250"]


def test_more_than_100_inputs_is_refused(hubspot: HubSpotApi) -> None:
    inputs = [{"properties": {"dealname": f"Deal {n}"}} for n in range(101)]
    for operation in ("create", "update", "upsert", "read", "archive"):
        answer = hubspot.post(f"{DEALS}/batch/{operation}", {"inputs": inputs})
        body = checked("deals.json", answer, 400).json()
        assert body["category"] == "VALIDATION_ERROR" and "100" in body["message"]
    assert hubspot.admin("GET", "state")["counts"]["deals"] == 12


def test_batch_read_answers_207_for_missing_ids_and_returns_the_rest(hubspot: HubSpotApi) -> None:
    # when two existing deals and one unknown id are read
    answer = hubspot.post(
        f"{DEALS}/batch/read",
        {
            "inputs": [{"id": "91001"}, {"id": "404404"}, {"id": "91002"}],
            "properties": ["amount"],
            "propertiesWithHistory": [],
        },
    )
    # then HubSpot's multi-status: the found ones plus an OBJECT_NOT_FOUND error naming the id
    body = checked("deals.json", answer, 207).json()
    assert [r["id"] for r in body["results"]] == ["91001", "91002"]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": ["404404"]}


def test_batch_read_with_history_allows_50_inputs(hubspot: HubSpotApi) -> None:
    inputs = [{"id": str(91001 + n)} for n in range(51)]
    answer = hubspot.post(
        f"{DEALS}/batch/read", {"inputs": inputs, "properties": [], "propertiesWithHistory": ["amount"]}
    )
    assert "property histories is 50" in checked("deals.json", answer, 400).json()["message"]
    history = hubspot.post(
        f"{DEALS}/batch/read",
        {"inputs": inputs[:1], "properties": [], "propertiesWithHistory": ["dealstage"]},
    )
    entries = checked("deals.json", history, 200).json()["results"][0]["propertiesWithHistory"]["dealstage"]
    assert entries[0]["value"] == "closedwon" and entries[0]["sourceType"] == "CRM_UI"


def test_batch_update_reports_missing_ids_and_refuses_duplicates(hubspot: HubSpotApi) -> None:
    # when a batch update names an unknown id next to a real one
    answer = hubspot.post(
        f"{DEALS}/batch/update",
        {
            "inputs": [
                {"id": "91001", "properties": {"amount": "4300"}},
                {"id": "1", "properties": {"amount": "1"}},
            ]
        },
    )
    duplicate = hubspot.post(
        f"{DEALS}/batch/update",
        {
            "inputs": [
                {"id": "91001", "properties": {"amount": "1"}},
                {"id": "91001", "properties": {"amount": "2"}},
            ]
        },
    )
    # then the real one is updated, the unknown reported; duplicates refuse the whole batch
    body = checked("deals.json", answer, 207).json()
    assert body["results"][0]["properties"]["amount"] == "4300"
    assert body["errors"][0]["context"] == {"ids": ["1"]}
    assert (
        "Duplicate IDs found in batch input: [91001]"
        in checked("deals.json", duplicate, 400).json()["message"]
    )
    assert hubspot.get(f"{DEALS}/91001?properties=amount").json()["properties"]["amount"] == "4300"


def test_batch_archive_removes_records_and_their_associations(hubspot: HubSpotApi) -> None:
    answer = hubspot.post(
        f"{DEALS}/batch/archive", {"inputs": [{"id": "91001"}, {"id": "91002"}, {"id": "1"}]}
    )
    assert answer.status_code == 204 and answer.content == b""
    assert hubspot.get(f"{DEALS}/91001").status_code == 404
    companies = hubspot.get("/crm/v4/objects/companies/21001/associations/deals").json()["results"]
    assert companies == []


def test_two_inputs_of_one_batch_cannot_share_a_unique_value(hubspot: HubSpotApi) -> None:
    answer = hubspot.post(
        "/crm/v3/objects/contacts/batch/create",
        {
            "inputs": [
                {"properties": {"email": "twin@example.com"}},
                {"properties": {"email": "TWIN@example.com"}},
            ]
        },
    )
    body = checked("contacts.json", answer, 409).json()
    assert body["category"] == "CONFLICT" and json.dumps(body).count("email") >= 1
    assert hubspot.admin("GET", "state")["counts"]["contacts"] == 58
