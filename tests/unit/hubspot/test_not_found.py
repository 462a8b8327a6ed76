"""Records deleted in HubSpot, as the client reports them: ``ObjectsNotFound`` with the object type and
the ids HubSpot named in its error's ``context.ids`` (never parsed out of the message), and per-pair
association failures. Recorded answers first, then the same against the HubSpot sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ledgerlink.hubspot.client import (
    AssociationsFailed,
    HubSpotClient,
    HubSpotError,
    ObjectsNotFound,
    Update,
    Upsert,
)
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from tests.conftest import FIXTURES
from tests.integration.test_deal_sync_support import Capture, assert_hubspot_request_conforms
from tests.unit.deal_sync.helpers import hubspot_schema_errors
from tests.unit.hubspot.test_client import deal, hubspot_client


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / "hubspot" / name).read_text(encoding="utf-8"))
    return body


class Replay:
    """Stands in for the vendor HTTP layer: answers every POST with one recorded HubSpot body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.paths: list[str] = []

    def post(self, path: str, **_: Any) -> requests.Response:
        self.paths.append(path)
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.body).encode()
        response.headers["Content-Type"] = "application/json"
        return response


def replaying(status: int, body: dict[str, Any]) -> HubSpotClient:
    return HubSpotClient(Replay(status, body), scope="test-portal")  # type: ignore[arg-type]


# ---- recorded answers


def test_a_deleted_deal_in_a_batch_update_is_objects_not_found_with_its_type_and_id() -> None:
    # given HubSpot's 207 to an update of one live and one deleted deal
    body = recorded("batch_update_deals_not_found.json")
    assert hubspot_schema_errors("deals.json", "BatchResponseSimplePublicObjectWithErrors", body) == []
    client = replaying(207, body)

    # when the client sends the update
    outcome = client.batch_update("deals", [Update("91013", {"qbo_status": "deleted"}), Update("91020", {})])

    # then the live one is written and the deleted one failed as not found, typed and named
    assert set(outcome.written) == {"91013"}
    error = outcome.failed["91020"]
    assert isinstance(error, ObjectsNotFound)
    assert (error.object_type, error.ids) == ("deals", frozenset({"91020"}))
    assert error.retryable  # once the link naming it is dropped, the same record can be written again
    assert "Could not get some DEAL objects" in str(error)


def test_a_deleted_company_fails_only_its_own_association_pair() -> None:
    # given HubSpot's answer to associating one deal with a deleted and a live company
    body = recorded("associate_default_company_not_found.json")
    assert hubspot_schema_errors("associations.v4.json", "BatchResponsePublicDefaultAssociation", body) == []
    client = replaying(200, body)

    # when the client associates both pairs
    with pytest.raises(AssociationsFailed) as raised:
        client.associate_default("deals", "companies", [("91013", "21036"), ("91013", "21040")])

    # then exactly the pair naming the deleted company failed, as that company not found
    failed = raised.value.failed
    assert set(failed) == {("91013", "21036")}
    error = failed[("91013", "21036")]
    assert isinstance(error, ObjectsNotFound)
    assert (error.object_type, error.ids) == ("companies", frozenset({"21036"}))
    # and the whole error is still a HubSpotError for callers that do not look at pairs
    assert isinstance(raised.value, HubSpotError) and raised.value.retryable


def test_a_missing_record_on_the_from_side_is_typed_as_that_side() -> None:
    # given the same kind of answer, naming the deal (deleted between its upsert and this call)
    body = {
        **recorded("associate_default_company_not_found.json"),
        "results": [],
        "errors": [
            {
                **recorded("associate_default_company_not_found.json")["errors"][0],
                "context": {"ids": ["91013"]},
            }
        ],
    }

    # when the pair is associated
    with pytest.raises(AssociationsFailed) as raised:
        replaying(200, body).associate_default("deals", "companies", [("91013", "21040")])

    # then the deal is what is missing
    error = raised.value.failed[("91013", "21040")]
    assert isinstance(error, ObjectsNotFound) and error.object_type == "deals"


def test_only_structured_not_found_errors_become_objects_not_found() -> None:
    # given errors that mention deletion in their text but are not OBJECT_NOT_FOUND with ids
    validation = {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Object 91020 may be deleted or not exist",
        "context": {"ids": ["91020"]},
    }
    without_ids = {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "not found", "context": {}}

    for error_body in (validation, without_ids):
        # when an update is refused with one of them
        body = {"status": "COMPLETE", "results": [], "errors": [error_body]}
        outcome = replaying(207, body).batch_update("deals", [Update("91020", {"qbo_status": "deleted"})])

        # then it stays an ordinary HubSpot error: no id is guessed from free text
        assert not isinstance(outcome.failed["91020"], ObjectsNotFound)
        assert isinstance(outcome.failed["91020"], HubSpotError)


def test_a_batch_read_leaves_out_the_deleted_ids() -> None:
    # given HubSpot's 207 to reading one live and two deleted companies
    client = replaying(207, recorded("batch_read_companies_not_found.json"))

    # when they are read
    found = client.batch_read("companies", ["8144745976", "8380080352", "7440157923"], ["hs_object_id"])

    # then only the live one is there: absence is how a read reports deletion
    assert set(found) == {"8144745976"}


# ---- the same against the HubSpot sandbox


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Capture]:
    sent = Capture()
    sent.install(monkeypatch)
    yield sent


@pytest.fixture
def client(hubspot_sandbox: SandboxServer, capture: Capture) -> Iterator[HubSpotClient]:
    built = hubspot_client(hubspot_sandbox.url)
    setup_portal(built)
    capture.clear()
    yield built
    for sent in capture.to(hubspot_sandbox.url):
        assert_hubspot_request_conforms(sent)


def delete(server: SandboxServer, object_type: str, object_id: str) -> None:
    """A HubSpot user deleting a record through the API."""
    response = requests.delete(
        f"{server.url}/crm/v3/objects/{object_type}/{object_id}",
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 204


def test_the_sandbox_reports_a_deleted_company_per_pair_and_makes_the_other_associations(
    client: HubSpotClient, hubspot_sandbox: SandboxServer
) -> None:
    # given a deal and two companies, one of which a user then deleted
    deal_id = client.batch_upsert("deals", [deal("5:1")]).written["5:1"].id
    companies = client.batch_upsert(
        "companies",
        [
            Upsert("qbo_customer_id", f"5:{n}", {"name": f"Company {n}", "qbo_customer_id": f"5:{n}"})
            for n in (1, 2)
        ],
    ).written
    gone, live = companies["5:1"].id, companies["5:2"].id
    delete(hubspot_sandbox, "companies", gone)

    # when the deal is associated with both
    with pytest.raises(AssociationsFailed) as raised:
        client.associate_default("deals", "companies", [(deal_id, gone), (deal_id, live)])

    # then only the deleted company's pair failed, as that company not found, and the other was made
    assert set(raised.value.failed) == {(deal_id, gone)}
    error = raised.value.failed[(deal_id, gone)]
    assert isinstance(error, ObjectsNotFound) and (error.object_type, error.ids) == ("companies", {gone})
    assert client.associations("deals", "companies", [deal_id])[deal_id] == [live]


def test_the_sandbox_reports_an_update_of_a_deleted_deal_as_not_found(
    client: HubSpotClient, hubspot_sandbox: SandboxServer
) -> None:
    written = client.batch_upsert("deals", [deal("6:1"), deal("6:2")]).written
    delete(hubspot_sandbox, "deals", written["6:1"].id)

    outcome = client.batch_update(
        "deals", [Update(record.id, {"dealname": "renamed"}) for record in written.values()]
    )

    assert set(outcome.written) == {written["6:2"].id}
    error = outcome.failed[written["6:1"].id]
    assert isinstance(error, ObjectsNotFound) and error.ids == {written["6:1"].id}
