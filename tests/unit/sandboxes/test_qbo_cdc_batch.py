"""QBO sandbox: change data capture (window, deletions, cap) and the batch endpoint (limit, per-item faults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledgerlink_local.sandboxes.core import SandboxServer
from tests.unit.sandboxes.qbo_support import QboApi, fault, payload


def _cdc(api: QboApi, entities: str, since: str) -> dict:
    answer = api.get("cdc", entities=entities, changedSince=since)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _by_entity(body: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for response in body["CDCResponse"][0]["QueryResponse"]:
        for key, value in response.items():
            if isinstance(value, list):
                found[key] = value
    return found


def test_cdc_returns_changes_and_deletions_since_a_time(qbo_sandbox: SandboxServer) -> None:
    # given a moment, then a new customer, an updated invoice and a deleted estimate
    api = QboApi(qbo_sandbox)
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    customer = api.created("Customer", payload("customer_create"))
    invoice = api.read("Invoice", "1")
    api.post(
        "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"], "sparse": True, "PrivateNote": "chased"}
    )
    estimate = api.read("Estimate", "2")
    api.post("estimate", {"Id": "2", "SyncToken": estimate["SyncToken"]}, operation="delete")
    # when CDC is asked for those entities
    body = _cdc(api, "Customer,Invoice,Estimate,Payment", since)
    changes = _by_entity(body)
    # then exactly those changes come back, deletions as QBO's tombstones, untouched entities empty
    assert [c["Id"] for c in changes["Customer"]] == [customer["Id"]]
    assert [(i["Id"], i["PrivateNote"]) for i in changes["Invoice"]] == [("1", "chased")]
    tombstone = changes["Estimate"][0]
    assert (tombstone["Id"], tombstone["status"]) == ("2", "Deleted") and "MetaData" in tombstone
    assert "Payment" not in changes
    assert len(body["CDCResponse"][0]["QueryResponse"]) == 4


def test_cdc_refuses_a_window_older_than_30_days(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    inside = (datetime.now(UTC) - timedelta(days=29)).date().isoformat()
    outside = (datetime.now(UTC) - timedelta(days=31)).isoformat()
    assert api.get("cdc", entities="Invoice", changedSince=inside).status_code == 200
    answer = api.get("cdc", entities="Invoice", changedSince=outside)
    assert answer.status_code == 400
    assert "older than fixed days is not supported" in fault(answer)["Detail"]
    # and the window moves with the sandbox clock
    api.advance_clock(2 * 24 * 3600)
    api.renew()  # the access token expired meanwhile
    assert api.get("cdc", entities="Invoice", changedSince=inside).status_code == 400


def test_cdc_validates_its_parameters_and_caps_the_objects(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert fault(api.get("cdc", changedSince=since))["code"] == "2020"
    assert fault(api.get("cdc", entities="Invoice"))["code"] == "2020"
    assert fault(api.get("cdc", entities="Invoice", changedSince="last tuesday"))["code"] == "2010"
    # given more changes than the cap (lowered from 1000 to 2 for the test)
    api.configure(cdc_max_objects=2)
    for number in range(3):
        api.created("Customer", {"DisplayName": f"Walk-in customer {number}"})
    changes = _by_entity(_cdc(api, "Customer", since))
    assert [c["DisplayName"] for c in changes["Customer"]] == ["Walk-in customer 0", "Walk-in customer 1"]


def test_batch_runs_each_item_and_reports_faults_per_item(qbo_sandbox: SandboxServer) -> None:
    # given a batch: a good create, a duplicate name, a missing customer, a query
    api = QboApi(qbo_sandbox)
    answer = api.post("batch", payload("batch_mixed"))
    # then the batch itself succeeds and each item answers for itself, by bId
    assert answer.status_code == 200
    items = {item["bId"]: item for item in answer.json()["BatchItemResponse"]}
    assert list(items) == ["b1", "b2", "b3", "b4"]
    assert items["b1"]["Customer"]["DisplayName"] == "Ferry Plaza Florist"
    assert items["b2"]["Fault"]["Error"][0]["code"] == "6240"
    assert items["b3"]["Fault"]["Error"][0]["code"] == "610"
    assert items["b2"]["Fault"]["type"] == "ValidationFault"
    assert [c["Id"] for c in items["b4"]["QueryResponse"]["Customer"]] == ["2"]
    # and the good item really exists
    assert api.query_rows("select * from Customer where DisplayName = 'Ferry Plaza Florist'", "Customer")


def test_batch_update_delete_and_void_items(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    invoice = api.created("Invoice", payload("invoice_create"))
    batch = {"BatchItemRequest": [
        {"bId": "u", "operation": "update", "Customer": {"Id": "7", "SyncToken": "0", "sparse": True, "Notes": "VIP"}},
        {"bId": "v", "operation": "update", "optionsData": "void", "Invoice": {"Id": "4", "SyncToken": "0"}},
        {"bId": "d", "operation": "delete", "Invoice": {"Id": invoice["Id"], "SyncToken": "0"}},
        {"bId": "s", "operation": "update", "Invoice": {"Id": "1", "SyncToken": "9", "sparse": True}},
    ]}  # fmt: skip
    items = {item["bId"]: item for item in api.post("batch", batch).json()["BatchItemResponse"]}
    assert items["u"]["Customer"]["Notes"] == "VIP"
    assert items["v"]["Invoice"]["PrivateNote"] == "Voided" and items["v"]["Invoice"]["TotalAmt"] == 0
    assert items["d"]["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    assert items["s"]["Fault"]["Error"][0]["code"] == "5010"


def test_batch_over_30_items_is_refused_whole(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    items = [{"bId": str(n), "Query": "select * from Term"} for n in range(31)]
    answer = api.post("batch", {"BatchItemRequest": items})
    assert answer.status_code == 400 and fault(answer)["code"] == "6000"
    assert "30" in fault(answer)["Detail"]
    assert api.post("batch", {"BatchItemRequest": items[:30]}).status_code == 200
    assert fault(api.post("batch", {"BatchItemRequest": []}))["code"] == "2020"


def test_batch_with_requestid_is_not_applied_twice(qbo_sandbox: SandboxServer) -> None:
    api = QboApi(qbo_sandbox)
    batch = {
        "BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Once Only"}}]
    }
    first = api.post("batch", batch, requestid="batch-0001")
    second = api.post("batch", batch, requestid="batch-0001")
    assert second.json() == first.json()
    assert len(api.query_rows("select * from Customer where DisplayName = 'Once Only'", "Customer")) == 1
