"""The HubSpot client against the HubSpot sandbox; every request body checked against HubSpot's specs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
import requests

from ledgerlink.http.errors import VendorHttpError
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.policy import HUBSPOT_SEARCH, VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.hubspot import client as client_module
from ledgerlink.hubspot.client import Create, HubSpotClient, Upsert
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from tests.integration.test_deal_sync_support import Capture, assert_hubspot_request_conforms


def hubspot_client(base_url: str, token: str = DEMO_ACCESS_TOKEN) -> HubSpotClient:
    policy = VendorPolicy(
        vendor="hubspot",
        base_url=base_url,
        rate_limits={DEFAULT_GROUP: (RateLimit(100, 10.0),), HUBSPOT_SEARCH: (RateLimit(4, 1.0),)},
    )

    def auth(*, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return HubSpotClient(in_process_client(policy, auth), scope="test-portal")


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


def deal(key: str, currency: str = "USD") -> Upsert:
    return Upsert(
        "qbo_invoice_id",
        key,
        {
            "dealname": f"Invoice {key}",
            "amount": "100.00",
            "deal_currency_code": currency,
            "qbo_invoice_id": key,
        },
    )


def test_one_invalid_input_fails_alone_and_its_neighbours_are_written(client: HubSpotClient) -> None:
    # given three deals, one in a currency the portal has not enabled
    inputs = [deal("1:1"), deal("1:2", currency="GBP"), deal("1:3")]

    # when they are upserted in one batch
    outcome = client.batch_upsert("deals", inputs)

    # then the two good ones are written, the bad one failed with HubSpot's reason naming the property
    assert set(outcome.written) == {"1:1", "1:3"}
    assert set(outcome.failed) == {"1:2"}
    assert "deal_currency_code" in str(outcome.failed["1:2"])
    assert all(record.new for record in outcome.written.values())


def test_an_upsert_repeated_updates_the_same_records(client: HubSpotClient) -> None:
    # given deals upserted once
    first = client.batch_upsert("deals", [deal("1:10"), deal("1:11")])

    # when the same upsert runs again (a replay)
    second = client.batch_upsert("deals", [deal("1:10"), deal("1:11")])

    # then the same HubSpot records were updated, none created
    assert {k: r.id for k, r in second.written.items()} == {k: r.id for k, r in first.written.items()}
    assert not any(record.new for record in second.written.values())


def test_more_than_a_hundred_inputs_go_in_several_calls(client: HubSpotClient, capture: Capture) -> None:
    outcome = client.batch_upsert("deals", [deal(f"2:{n}") for n in range(150)])
    assert len(outcome.written) == 150
    upserts = [s for s in capture.sent if s.path.endswith("/batch/upsert")]
    assert [len(s.json()["inputs"]) for s in upserts] == [100, 50]


def test_search_follows_every_page(client: HubSpotClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # given pages of ten results and the demo portal's 34 companies
    monkeypatch.setattr(client_module, "MAX_SEARCH_LIMIT", 10)

    # when companies with a name are searched
    found = client.search(
        "companies", [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}], ["name"]
    )

    # then every one of them came back
    assert len(found) >= 34 and len({record.id for record in found}) == len(found)


def line(key: str, price: str = "50") -> dict[str, str]:
    return {"name": f"Line {key}", "quantity": "1", "price": price, "qbo_line_id": key}


def test_default_associations_are_created_once_and_read_back(client: HubSpotClient) -> None:
    # given a deal and two line items
    deals = client.batch_upsert("deals", [deal("3:1")]).written
    items = client.batch_create("line_items", [Create(f"3:1:{n}", line(f"3:1:{n}")) for n in (1, 2)]).written
    pairs = [(deals["3:1"].id, record.id) for record in items.values()]

    # when they are associated, twice
    client.associate_default("deals", "line_items", pairs)
    client.associate_default("deals", "line_items", pairs)

    # then the deal has exactly those two line items
    assert sorted(client.associations("deals", "line_items", [deals["3:1"].id])[deals["3:1"].id]) == sorted(
        record.id for record in items.values()
    )


def test_a_batch_create_associates_each_record_and_fails_bad_inputs_alone(
    client: HubSpotClient, capture: Capture
) -> None:
    # given a deal, and three line items for it, one with a negative price (HubSpot refuses those)
    deal_id = client.batch_upsert("deals", [deal("3:2")]).written["3:2"].id
    inputs = [
        Create(f"3:2:{n}", line(f"3:2:{n}", price), ((deal_id, 20),))
        for n, price in ((1, "5"), (2, "-5"), (3, "7"))
    ]

    # when they are created in one call
    outcome = client.batch_create("line_items", inputs)

    # then the good ones exist, keyed by the caller's ids, already associated with the deal; the bad one
    # failed alone, with HubSpot's reason
    assert set(outcome.written) == {"3:2:1", "3:2:3"} and set(outcome.failed) == {"3:2:2"}
    assert "price" in str(outcome.failed["3:2:2"])
    associated = client.associations("deals", "line_items", [deal_id])[deal_id]
    assert sorted(associated) == sorted(record.id for record in outcome.written.values())
    (sent,) = [s for s in capture.sent if s.path.endswith("/line_items/batch/create")]
    assert sent.json()["inputs"][0]["associations"] == [
        {
            "to": {"id": deal_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 20}],
        }
    ]


def test_a_batch_create_is_sent_once_even_after_a_5xx(
    client: HubSpotClient, hubspot_sandbox: SandboxServer
) -> None:
    # given HubSpot answering the next create with a 503 (it may or may not have created the records)
    requests.post(
        f"{hubspot_sandbox.url}/_admin/faults",
        json={"kind": "503", "path_prefix": "/crm/v3/objects/line_items/batch/create", "count": 1},
        timeout=10,
    ).raise_for_status()

    # when line items are created
    with pytest.raises(VendorHttpError) as raised:
        client.batch_create("line_items", [Create("3:3:1", line("3:3:1"))])

    # then the call was not repeated: repeating a create can only duplicate; the caller looks first
    assert raised.value.retryable
    log = requests.get(f"{hubspot_sandbox.url}/_admin/requests", timeout=10).json()["requests"]
    assert [r["status"] for r in log if r["path"].endswith("/batch/create")] == [503]


def test_archived_records_are_gone_from_reads(client: HubSpotClient) -> None:
    written = client.batch_upsert("deals", [deal("4:1"), deal("4:2")]).written
    client.batch_archive("deals", [written["4:1"].id])
    found = client.batch_read("deals", [r.id for r in written.values()], ["dealname"])
    assert set(found) == {written["4:2"].id}


def test_the_portal_currencies_are_the_deal_currency_options(client: HubSpotClient) -> None:
    assert client.enabled_currencies() == frozenset({"USD", "EUR", "CAD"})


def test_a_bad_token_is_a_clear_non_retryable_error(hubspot_sandbox: SandboxServer) -> None:
    from ledgerlink.http.errors import VendorHttpError

    with pytest.raises(VendorHttpError) as raised:
        hubspot_client(
            hubspot_sandbox.url, token="pat-na1-00000000-0000-0000-0000-000000000000"
        ).enabled_currencies()
    assert raised.value.status == 401 and not raised.value.retryable
    assert "pat-na1" not in str(raised.value)
    requests.delete(f"{hubspot_sandbox.url}/_admin/requests", timeout=10)
