"""HubSpot sandbox admin API: seeding data, inspecting state, simulated user edits, reset."""

from __future__ import annotations

import requests

from tests.unit.sandboxes.test_hubspot_support import HubSpotApi, checked, hubspot

__all__ = ["hubspot"]


def test_seed_creates_records_and_associations_then_reset_forgets_them(hubspot: HubSpotApi) -> None:
    # when a benchmark seeds a company, a deal and their association
    seeded = hubspot.admin(
        "POST",
        "seed",
        {
            "companies": [{"name": "Seeded Co", "domain": "seeded.example"}],
            "deals": [{"dealname": "Seeded deal", "amount": "10"}],
        },
    )
    company, deal = seeded["created"]["companies"][0], seeded["created"]["deals"][0]
    linked = hubspot.admin(
        "POST",
        "seed",
        {"associations": [{"from_type": "deals", "from_id": deal, "to_type": "companies", "to_id": company}]},
    )
    # then the API sees them, the state dump lists them, and reset returns to the demo portal
    assert linked == {"created": {}, "associations": 1}
    read = checked(
        "deals.json", hubspot.get(f"/crm/v3/objects/deals/{deal}?associations=companies"), 200
    ).json()
    assert read["associations"]["companies"]["results"] == [
        {"id": company, "type": "deal_to_company_unlabeled"}
    ]
    state = hubspot.admin("GET", "state")
    assert state["counts"] == {"contacts": 58, "companies": 37, "deals": 13, "products": 10, "line_items": 0}
    assert {
        "id": deal,
        "properties": state["objects"]["deals"][-1]["properties"],
        "archived": False,
    } == state["objects"]["deals"][-1]
    hubspot.admin("POST", "reset")
    assert hubspot.admin("GET", "state")["counts"]["deals"] == 12


def test_seed_and_ui_update_validate_like_the_api(hubspot: HubSpotApi) -> None:
    bad_seed = requests.post(
        f"{hubspot.url}/_admin/seed", json={"deals": [{"dealstage": "nope"}]}, timeout=10
    )
    bad_edit = requests.post(
        f"{hubspot.url}/_admin/ui_update",
        json={"objectType": "deals", "id": "91001", "properties": {"amount": "x"}},
        timeout=10,
    )
    missing = requests.post(
        f"{hubspot.url}/_admin/ui_update", json={"objectType": "deals", "id": "1"}, timeout=10
    )
    assert bad_seed.status_code == 400 and "INVALID_OPTION" in bad_seed.json()["message"]
    assert bad_edit.status_code == 400 and "INVALID_FLOAT" in bad_edit.json()["message"]
    assert missing.status_code == 404


def test_ui_update_changes_the_record_like_a_user_would(hubspot: HubSpotApi) -> None:
    hubspot.admin(
        "POST", "ui_update", {"objectType": "deals", "id": "91005", "properties": {"dealstage": "closedwon"}}
    )
    history = hubspot.get("/crm/v3/objects/deals/91005?propertiesWithHistory=dealstage").json()[
        "propertiesWithHistory"
    ]
    assert [(h["value"], h["sourceType"]) for h in history["dealstage"]] == [
        ("closedwon", "CRM_UI"),
        ("contractsent", "CRM_UI"),
    ]
