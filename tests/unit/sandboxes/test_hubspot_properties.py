"""HubSpot sandbox: properties, property groups, pipelines and stages, owners, currencies."""

from __future__ import annotations

import pytest

from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot, payload

__all__ = ["hubspot"]

PROPS = "/crm/v3/properties/deals"


def test_default_properties_are_hubspots(hubspot: HubSpotApi) -> None:
    results = {
        t: {
            p["name"]: p
            for p in checked("properties.json", hubspot.get(f"/crm/v3/properties/{t}"), 200).json()["results"]
        }
        for t in ("deals", "contacts", "companies", "line_items", "products")
    }
    assert {"dealname", "amount", "dealstage", "pipeline", "closedate", "deal_currency_code", "hubspot_owner_id",
            "description"} <= set(results["deals"])  # fmt: skip
    assert {"email", "firstname", "lastname", "phone", "address", "city", "country", "zip"} <= set(
        results["contacts"]
    )
    assert {"name", "domain", "phone", "city", "country"} <= set(results["companies"])
    assert {"name", "quantity", "price", "amount", "hs_sku", "hs_product_id", "hs_line_item_currency_code",
            "hs_position_on_quote", "description"} <= set(results["line_items"])  # fmt: skip
    # enumerations list their live options: pipeline stages, portal currencies
    stages = [o["value"] for o in results["deals"]["dealstage"]["options"]]
    assert stages[:7] == ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                          "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]  # fmt: skip
    assert [o["value"] for o in results["deals"]["deal_currency_code"]["options"]] == ["USD", "CAD", "EUR"]
    assert results["deals"]["amount"]["hubspotDefined"] is True


def test_custom_unique_property_lifecycle(hubspot: HubSpotApi) -> None:
    # when LedgerLink's unique invoice-id property is created, read, created again, edited, archived
    created = checked("properties.json", hubspot.post(PROPS, payload("invoice_id_property.json")), 201).json()
    read = checked("properties.json", hubspot.get(f"{PROPS}/qbo_invoice_id"), 200).json()
    again = checked("properties.json", hubspot.post(PROPS, payload("invoice_id_property.json")), 409).json()
    edited = checked(
        "properties.json", hubspot.patch(f"{PROPS}/qbo_invoice_id", {"label": "QBO invoice"}), 200
    )
    archived = hubspot.delete(f"{PROPS}/qbo_invoice_id")
    write = hubspot.post("/crm/v3/objects/deals", {"properties": {"qbo_invoice_id": "1"}})
    # then it behaved as HubSpot documents
    assert created["hasUniqueValue"] is True and created["hubspotDefined"] is False
    assert read["modificationMetadata"] == {
        "archivable": True,
        "readOnlyDefinition": False,
        "readOnlyValue": False,
    }
    assert (
        again["category"] == "OBJECT_ALREADY_EXISTS"
        and again["message"] == "Property named 'qbo_invoice_id' already exists."
    )
    assert edited.json()["label"] == "QBO invoice"
    assert archived.status_code == 204
    assert "PROPERTY_DOESNT_EXIST" in checked("deals.json", write, 400).json()["message"]
    archived_list = checked("properties.json", hubspot.get(f"{PROPS}?archived=true"), 200).json()["results"]
    assert [p["name"] for p in archived_list] == ["qbo_invoice_id"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "Bad Name"}, "invalid"),
        ({"name": "hs_mine"}, "reserved"),
        ({"type": "bool", "fieldType": "booleancheckbox", "hasUniqueValue": True}, "hasUniqueValue"),
        ({"fieldType": "number"}, "fieldType"),
        ({"groupName": "nope"}, "does not exist"),
        ({"type": "enumeration", "fieldType": "select"}, "at least one option"),
    ],
)
def test_invalid_property_definitions_are_refused(hubspot: HubSpotApi, change: dict, reason: str) -> None:
    body = {**payload("invoice_id_property.json"), **change}
    answer = checked("properties.json", hubspot.post(PROPS, body), 400).json()
    assert answer["category"] == "VALIDATION_ERROR" and reason in answer["message"]


def test_hubspot_defined_properties_are_read_only(hubspot: HubSpotApi) -> None:
    checked("properties.json", hubspot.patch(f"{PROPS}/amount", {"label": "Money"}), 400)
    checked("properties.json", hubspot.delete(f"{PROPS}/amount"), 400)
    checked("properties.json", hubspot.get(f"{PROPS}/no_such_property"), 404)


def test_property_batches_and_groups(hubspot: HubSpotApi) -> None:
    # given a LedgerLink property group
    group = {"name": "ledgerlink", "label": "LedgerLink", "displayOrder": 5}
    checked("properties.json", hubspot.post(f"{PROPS}/groups", group), 201)
    checked("properties.json", hubspot.post(f"{PROPS}/groups", group), 409)
    # when two properties are batch-created in it, one of them invalid, and both are read back
    good = {**payload("invoice_id_property.json"), "groupName": "ledgerlink"}
    bad = {**good, "name": "qbo_balance", "type": "number", "fieldType": "text"}
    created = checked(
        "properties.json", hubspot.post(f"{PROPS}/batch/create", {"inputs": [good, bad]}), 207
    ).json()
    read = hubspot.post(f"{PROPS}/batch/read", {"inputs": [{"name": "qbo_invoice_id"}, {"name": "qbo_balance"}],
                                                "archived": False, "dataSensitivity": "non_sensitive"})  # fmt: skip
    # then the valid one exists in the group, the invalid one is reported
    assert [p["name"] for p in created["results"]] == ["qbo_invoice_id"]
    assert created["errors"][0]["context"]["name"] == ["qbo_balance"]
    assert checked("properties.json", read, 207).json()["errors"][0]["context"] == {"names": ["qbo_balance"]}
    groups = checked("properties.json", hubspot.get(f"{PROPS}/groups"), 200).json()["results"]
    assert {g["name"] for g in groups} == {"dealinformation", "ledgerlink"}
    checked("properties.json", hubspot.delete(f"{PROPS}/groups/ledgerlink"), 400)  # still has a property
    checked("properties.json", hubspot.patch(f"{PROPS}/groups/ledgerlink", {"label": "LedgerLink sync"}), 200)
    assert hubspot.post(f"{PROPS}/batch/archive", {"inputs": [{"name": "qbo_invoice_id"}]}).status_code == 204
    assert hubspot.delete(f"{PROPS}/groups/ledgerlink").status_code == 204
    checked("properties.json", hubspot.get(f"{PROPS}/groups/ledgerlink"), 404)


def test_pipelines_and_stages(hubspot: HubSpotApi) -> None:
    pipelines = checked("pipelines.json", hubspot.get("/crm/v3/pipelines/deals"), 200).json()["results"]
    assert [(p["id"], p["label"]) for p in pipelines] == [
        ("default", "Sales Pipeline"),
        ("880014", "Invoices"),
    ]
    invoices = checked("pipelines.json", hubspot.get("/crm/v3/pipelines/deals/880014"), 200).json()
    assert [s["label"] for s in invoices["stages"]] == [
        "Invoice Open", "Invoice Overdue", "Partially Paid", "Paid", "Voided",
    ]  # fmt: skip
    assert invoices["stages"][3]["metadata"] == {"isClosed": "true", "probability": "1.0"}
    stage = checked(
        "pipelines.json", hubspot.get("/crm/v3/pipelines/deals/default/stages/closedwon"), 200
    ).json()
    assert stage["createdAt"] == "1970-01-01T00:00:00Z"  # HubSpot's default stages have createdAt = 0
    checked("pipelines.json", hubspot.get("/crm/v3/pipelines/deals/default/stages"), 200)
    checked("pipelines.json", hubspot.get("/crm/v3/pipelines/deals/nope"), 404)


def test_a_new_pipeline_and_stage_become_valid_deal_values(hubspot: HubSpotApi) -> None:
    # when a pipeline is created and a stage added to it
    created = checked(
        "pipelines.json",
        hubspot.post("/crm/v3/pipelines/deals", {"label": "Estimates", "displayOrder": 2, "stages": [
            {"label": "Estimate sent", "displayOrder": 0, "metadata": {"probability": "0.5"}}]}),
        201,
    ).json()  # fmt: skip
    stage = checked(
        "pipelines.json",
        hubspot.post(f"/crm/v3/pipelines/deals/{created['id']}/stages",
                     {"label": "Accepted", "displayOrder": 1, "metadata": {"probability": "1.0"}}),
        201,
    ).json()  # fmt: skip
    no_probability = hubspot.post(
        f"/crm/v3/pipelines/deals/{created['id']}/stages", {"label": "X", "displayOrder": 2, "metadata": {}}
    )
    # then deals can use them, and HubSpot's rules hold
    deal = hubspot.post(
        "/crm/v3/objects/deals",
        {"properties": {"dealname": "Estimate 12", "pipeline": created["id"], "dealstage": stage["id"]}},
    )
    assert checked("deals.json", deal, 201).json()["properties"]["hs_is_closed_won"] == "true"
    checked("pipelines.json", no_probability, 400)
    checked(
        "pipelines.json", hubspot.patch(f"/crm/v3/pipelines/deals/{created['id']}", {"label": "Quotes"}), 200
    )
    checked("pipelines.json", hubspot.get("/crm/v3/pipelines/contacts"), 400)


def test_owners(hubspot: HubSpotApi) -> None:
    owners = checked("crmOwners.json", hubspot.get("/crm/v3/owners"), 200).json()["results"]
    by_email = checked(
        "crmOwners.json", hubspot.get("/crm/v3/owners?email=SAM.OKAFOR@northwind-demo.example"), 200
    )
    one = checked("crmOwners.json", hubspot.get(f"/crm/v3/owners/{owners[0]['id']}"), 200).json()
    by_user = checked(
        "crmOwners.json", hubspot.get(f"/crm/v3/owners/{owners[0]['userId']}?idProperty=userId"), 200
    )
    archived = checked("crmOwners.json", hubspot.get("/crm/v3/owners?archived=true"), 200).json()["results"]
    assert len(owners) == 3 and all(o["email"] for o in owners)
    assert [o["firstName"] for o in by_email.json()["results"]] == ["Sam"]
    assert one == by_user.json() == owners[0]
    assert [o["lastName"] for o in archived] == ["Former"]
    checked("crmOwners.json", hubspot.get("/crm/v3/owners/1"), 404)


def test_portal_currencies_can_be_read_and_configured(hubspot: HubSpotApi) -> None:
    # given the demo portal: USD company currency, EUR and CAD enabled
    company = hubspot.get("/settings/v3/currencies/company-currency").json()
    rates = hubspot.get("/settings/v3/currencies/exchange-rates/current").json()["results"]
    codes = hubspot.get("/settings/v3/currencies/codes").json()["results"]
    refused = hubspot.post(
        "/crm/v3/objects/deals", {"properties": {"dealname": "GBP", "deal_currency_code": "GBP"}}
    )
    # when the admin enables GBP
    hubspot.configure(exchange_rates={"EUR": "1.08", "CAD": "0.73", "GBP": "1.27"})
    accepted = hubspot.post(
        "/crm/v3/objects/deals",
        {"properties": {"dealname": "GBP", "deal_currency_code": "GBP", "amount": "10"}},
    )
    # then GBP was refused before and is accepted (and converted) after
    assert company["id"] == "USD"
    assert sorted((r["fromCurrencyCode"], r["toCurrencyCode"], r["conversionRate"]) for r in rates) == [
        ("CAD", "USD", 0.73), ("EUR", "USD", 1.08),
    ]  # fmt: skip
    assert {"currencyCode": "GBP", "currencyName": "British Pound"} in codes
    assert refused.status_code == 400 and "INVALID_OPTION" in refused.json()["message"]
    assert checked("deals.json", accepted, 201).json()["properties"]["amount_in_home_currency"] == "12.7"


@pytest.mark.parametrize(
    ("object_type", "group"), [("line_items", "lineiteminformation"), ("products", "productinformation")]
)
def test_unique_values_are_refused_on_line_items_and_products(
    hubspot: HubSpotApi, object_type: str, group: str
) -> None:
    # given a unique-value property definition for line items or products
    unique = {**payload("line_id_property.json"), "groupName": group}
    path = f"/crm/v3/properties/{object_type}"

    # when it is created, batch-created, and created without unique values then made unique
    created = checked("properties.json", hubspot.post(path, unique), 400).json()
    batch = checked("properties.json", hubspot.post(f"{path}/batch/create", {"inputs": [unique]}), 207).json()
    plain = checked("properties.json", hubspot.post(path, {**unique, "hasUniqueValue": False}), 201).json()
    made_unique = checked(
        "properties.json", hubspot.patch(f"{path}/qbo_line_id", {"hasUniqueValue": True}), 400
    )

    # then HubSpot's validation error says unique values are not supported there; the plain one exists
    assert created["category"] == "VALIDATION_ERROR"
    assert (
        f"Unique values are not supported for properties of object type {object_type}" in created["message"]
    )
    assert created["context"] == {"hasUniqueValue": ["true"], "objectType": [object_type]}
    assert batch["results"] == [] and batch["errors"][0]["category"] == "VALIDATION_ERROR"
    assert batch["errors"][0]["context"]["name"] == ["qbo_line_id"]
    assert plain["hasUniqueValue"] is False
    assert "Unique values are not supported" in made_unique.json()["message"]
    # and deals keep their unique values
    checked("properties.json", hubspot.post(PROPS, payload("invoice_id_property.json")), 201)


def test_an_upsert_by_a_line_item_property_that_is_not_unique_fails(hubspot: HubSpotApi) -> None:
    # given qbo_line_id on line items, not unique (the only way HubSpot allows it)
    line_id = {**payload("line_id_property.json"), "hasUniqueValue": False}
    checked("properties.json", hubspot.post("/crm/v3/properties/line_items", line_id), 201)
    item = {"name": "Design", "quantity": "1", "price": "50", "qbo_line_id": "1:130:1"}

    # when line items are upserted by it
    answer = hubspot.post(
        "/crm/v3/objects/line_items/batch/upsert",
        {"inputs": [{"id": "1:130:1", "idProperty": "qbo_line_id", "properties": item}]},
    )

    # then HubSpot has nothing to upsert by, and nothing was written
    body = checked("lineItems.json", answer, 400).json()
    assert body["category"] == "VALIDATION_ERROR" and "not a unique identifier property" in body["message"]
    assert hubspot.admin("GET", "state")["counts"]["line_items"] == 0


def test_the_admin_switch_allows_unique_values_on_line_items_until_reset(hubspot: HubSpotApi) -> None:
    # given the switch on (a portal an older tool set up with a unique line-item property)
    assert hubspot.admin("GET", "config")["unique_values_on_line_items"] is False
    hubspot.configure(unique_values_on_line_items=True)

    # when the unique property is created and line items are upserted by it twice
    checked(
        "properties.json",
        hubspot.post("/crm/v3/properties/line_items", payload("line_id_property.json")),
        201,
    )
    item = {"name": "Design", "quantity": "1", "price": "50", "qbo_line_id": "1:130:1"}
    body = {"inputs": [{"id": "1:130:1", "idProperty": "qbo_line_id", "properties": item}]}
    first = checked(
        "lineItems.json", hubspot.post("/crm/v3/objects/line_items/batch/upsert", body), 200
    ).json()
    second = checked(
        "lineItems.json", hubspot.post("/crm/v3/objects/line_items/batch/upsert", body), 200
    ).json()

    # then one line item exists; and a reset turns the switch off again
    assert first["results"][0]["id"] == second["results"][0]["id"]
    assert hubspot.admin("GET", "state")["counts"]["line_items"] == 1
    hubspot.admin("POST", "reset")
    assert hubspot.admin("GET", "config")["unique_values_on_line_items"] is False
    checked(
        "properties.json",
        hubspot.post("/crm/v3/properties/line_items", payload("line_id_property.json")),
        400,
    )
