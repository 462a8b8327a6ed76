"""Reconciliation and plan on moto and the sandboxes: given synced documents, each kind of drift is made
as it happens (a person edits a deal in HubSpot, a deal is deleted there, QBO changes with its webhook
lost, ...); ``reconcile`` reports it with its field, both values and cause; ``--repair`` fixes it through
the deal flow and a second check is clean. ``plan`` shows a stage-map change and writes nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import requests

from ledgerlink.deal_sync.reconcile import Cause, Reconciliation, RepairResult, reconcile, repair
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import DealSyncWorld

world = support.world  # the fixture

SINCE = date.today() - timedelta(days=400)


def synced(world: DealSyncWorld) -> None:
    """Every invoice and estimate of the demo company synced, as their webhooks would have it."""
    events = [
        world.change(entity, str(raw["Id"]), "Create")
        for entity in ("Invoice", "Estimate")
        for raw in (world.qbo_entity(entity, str(i)) for i in range(1, 40))
        if raw is not None
    ]
    world.sync(events)


def check(world: DealSyncWorld) -> Reconciliation:
    return reconcile(world.parts.only.service, DEMO_REALM_ID, SINCE)


def test_synced_documents_reconcile_clean(world: DealSyncWorld) -> None:
    synced(world)
    result = check(world)
    assert [r.describe() for r in result.drift] == []
    assert result.counts()["invoices"] > 0


def repaired(world: DealSyncWorld, result: Reconciliation, *, qbo_wins: bool = True) -> RepairResult:
    service = world.parts.only.service
    return repair(service, world.parts.service, result, qbo_wins=qbo_wins, run_id="test-run")


def key(entity_id: str) -> str:
    return f"{DEMO_REALM_ID}:{entity_id}"


def deal_of(world: DealSyncWorld, entity_id: str) -> dict[str, Any]:
    return world.deals()[key(entity_id)]


def drift_of(result: Reconciliation, qbo_type: str, entity_id: str) -> dict[str, Any]:
    (found,) = [r.describe() for r in result.drift if r.qbo_type == qbo_type and r.qbo_id == key(entity_id)]
    return found


def hubspot_api(world: DealSyncWorld, method: str, path: str, body: Any = None) -> requests.Response:
    """What a HubSpot user's tool does, through HubSpot's API."""
    return requests.request(
        method,
        f"{world.hubspot.url}{path}",
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        json=body,
        timeout=10,
    )


def person_edits(world: DealSyncWorld, deal_id: str, properties: dict[str, str]) -> None:
    """A HubSpot user edits the deal in the CRM (its history says CRM_UI)."""
    world.hubspot_admin("POST", "ui_update", {"objectType": "deals", "id": deal_id, "properties": properties})


def lose_webhook_and_change(world: DealSyncWorld, invoice_id: str) -> None:
    """A user edits the invoice in QBO; its webhook never arrives."""
    current = world.qbo_entity("Invoice", invoice_id)
    assert current is not None
    world.qbo_write(
        "Invoice",
        "update",
        {"Id": invoice_id, "SyncToken": current["SyncToken"], "sparse": True, "DueDate": "2031-03-31"},
    )


def test_a_person_changed_amount_is_reported_and_repaired_through_the_flow(world: DealSyncWorld) -> None:
    # given every document synced, and a person changed invoice 3's deal amount in HubSpot
    synced(world)
    deal = deal_of(world, "3")
    qbo_amount = deal["properties"]["amount"]
    person_edits(world, deal["id"], {"amount": "1.00"})

    # when reconciled
    result = check(world)

    # then exactly that record drifts: its amount, both values, changed by a person
    entry = drift_of(result, "Invoice", "3")
    assert entry["hubspot"]["id"] == deal["id"]
    (amount,) = [f for f in entry["fields"] if f["field"] == "amount"]
    assert (amount["qbo"], amount["hubspot"], amount["cause"]) == (qbo_amount, "1.00", "changed_in_hubspot")
    assert "CRM_UI" in amount["detail"]

    # when repaired (qbo wins by default), the flow writes QBO's amount back and the check after is clean
    outcome = repaired(world, result)
    assert key("3") in [r.qbo_id for r in outcome.fixed]
    assert deal_of(world, "3")["properties"]["amount"] == qbo_amount
    assert outcome.after is not None and outcome.after.drift == []
    assert check(world).drift == []


def test_an_amount_another_app_changed_through_the_api_is_changed_in_hubspot_not_a_mapping_change(
    world: DealSyncWorld,
) -> None:
    # given every document synced, and another integration set invoice 3's deal amount through the API
    synced(world)
    deal = deal_of(world, "3")
    qbo_amount = deal["properties"]["amount"]
    hubspot_api(world, "PATCH", f"/crm/v3/objects/deals/{deal['id']}", {"properties": {"amount": "1.00"}})

    # when reconciled
    entry = drift_of(check(world), "Invoice", "3")

    # then the amount drifted because HubSpot changed (the deal held QBO's value before the API write),
    # not because LedgerLink's mapping now gives another value
    (amount,) = [f for f in entry["fields"] if f["field"] == "amount"]
    assert (amount["qbo"], amount["hubspot"], amount["cause"]) == (qbo_amount, "1.00", "changed_in_hubspot")
    assert "another app, through the API" in amount["detail"]


def test_qbo_wins_false_leaves_the_persons_change(world: DealSyncWorld) -> None:
    synced(world)
    deal = deal_of(world, "3")
    person_edits(world, deal["id"], {"amount": "1.00"})

    outcome = repaired(world, check(world), qbo_wins=False)

    assert [(r.qbo_id, "qbo_wins is false" in why) for r, why in outcome.left if r.qbo_type == "Invoice"] == [
        (key("3"), True)
    ]
    assert deal_of(world, "3")["properties"]["amount"] == "1.00"
    assert drift_of(check(world), "Invoice", "3")["fields"][0]["cause"] == Cause.CHANGED_IN_HUBSPOT


def test_a_deal_deleted_in_hubspot_is_reported_and_written_again(world: DealSyncWorld) -> None:
    synced(world)
    deal = deal_of(world, "4")
    assert hubspot_api(world, "DELETE", f"/crm/v3/objects/deals/{deal['id']}").status_code == 204

    result = check(world)

    entry = drift_of(result, "Invoice", "4")
    assert entry["fields"] == [
        {
            "field": "deal",
            "qbo": key("4"),
            "hubspot": f"deal {deal['id']} gone",
            "cause": "deal_deleted_in_hubspot",
            "detail": entry["fields"][0]["detail"],
        }
    ]
    outcome = repaired(world, result)
    assert key("4") in [r.qbo_id for r in outcome.fixed]
    assert deal_of(world, "4")["id"] != deal["id"]  # a new deal, through the flow's healing path
    assert check(world).drift == []


def test_a_qbo_change_whose_webhook_was_lost_is_reported_and_synced(world: DealSyncWorld) -> None:
    synced(world)
    lose_webhook_and_change(world, "5")

    result = check(world)

    entry = drift_of(result, "Invoice", "5")
    assert [(f["field"], f["cause"]) for f in entry["fields"]] == [("due_date", "qbo_change_not_synced")]
    repaired(world, result)
    assert check(world).drift == []


def test_an_invoice_deleted_in_qbo_is_reported_and_its_deal_marked_deleted(world: DealSyncWorld) -> None:
    synced(world)
    deal = deal_of(world, "5")
    current = world.qbo_entity("Invoice", "5")
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": "5", "SyncToken": current["SyncToken"]})

    result = check(world)

    entry = drift_of(result, "Invoice", "5")
    assert entry["hubspot"]["id"] == deal["id"]
    assert [(f["field"], f["qbo"], f["cause"]) for f in entry["fields"]] == [
        ("qbo_status", "deleted", "document_deleted_in_qbo")
    ]
    repaired(world, result)
    assert world.objects("deals")[deal["id"]]["qbo_status"] == "deleted"
    assert check(world).drift == []


def test_a_duplicate_deal_and_the_customer_balance_it_skews_are_reported(world: DealSyncWorld) -> None:
    synced(world)
    original = deal_of(world, "2")["properties"]
    copy = {
        name: original[name]
        for name in (
            "dealname",
            "qbo_realm_id",
            "qbo_doc_number",
            "qbo_customer_id",
            "qbo_balance",
            "qbo_txn_date",
        )
    }
    response = hubspot_api(world, "POST", "/crm/v3/objects/deals", {"properties": copy, "associations": []})
    assert response.status_code == 201, response.text
    copy_id = str(response.json()["id"])

    result = check(world)

    entry = drift_of(result, "Invoice", "2")
    assert entry["hubspot"]["ids"] == [deal_of(world, "2")["id"], copy_id]
    assert [(f["field"], f["qbo"], f["hubspot"], f["cause"]) for f in entry["fields"]] == [
        ("deal_count", "1", "2", "duplicate_deal")
    ]
    customer = drift_of(result, "Customer", original["qbo_customer_id"].split(":")[1])
    (balance,) = customer["fields"]
    assert balance["field"] == "open_balance" and balance["cause"] == "document_drift"
    # the flow deletes nothing in the CRM: repair leaves the duplicate and says why
    outcome = repaired(world, result)
    assert any(r.qbo_id == key("2") and "duplicate" in why for r, why in outcome.left)


def test_json_shape_lists_only_drifted_records(world: DealSyncWorld) -> None:
    synced(world)
    person_edits(world, deal_of(world, "3")["id"], {"amount": "1.00"})
    entries = [r.describe() for r in check(world).drift]
    # the invoice only (its amount moves no open balance); no clean record is listed
    assert [e["qbo"]["type"] for e in entries] == ["Invoice"]
    assert entries[0]["qbo"]["id"] == key("3")
    first = entries[0]
    assert set(first) == {"connection", "qbo", "hubspot", "fields"}
    assert set(first["qbo"]) == {"type", "id", "number"} and first["qbo"]["number"]
    assert set(first["fields"][0]) == {"field", "qbo", "hubspot", "cause", "detail"}


def test_plan_shows_a_stage_map_change_and_writes_nothing(world: DealSyncWorld) -> None:
    import dataclasses

    from ledgerlink.deal_sync.plan import plan
    from ledgerlink.mapping.stages import StageMap

    # given every document synced, and a configuration whose invoice stage map moves "open" invoices
    synced(world)
    service = world.parts.only.service
    stages = service.config.invoice_stages
    moved = dict(stages.by_status)
    open_stage = moved["open"]
    moved["open"] = moved["overdue"]
    changed = dataclasses.replace(service.config, invoice_stages=StageMap(by_status=moved))
    before = world.hubspot_state()["objects"]
    qbo_before = world.qbo_entity("Invoice", "1")

    # when planned
    result = plan(service, DEMO_REALM_ID, changed, SINCE)

    # then each open invoice's deal would move dealstage old -> new, and nothing else changes
    assert result.records, "an open invoice must be planned"
    for record in result.records:
        assert record.qbo_type == "Invoice"
        assert [(c.property, c.old, c.new) for c in record.changes] == [
            ("dealstage", open_stage.stage, moved["overdue"].stage)
        ]
    # and nothing was written in HubSpot or QBO
    assert world.hubspot_state()["objects"] == before
    assert world.qbo_entity("Invoice", "1") == qbo_before


def test_the_commands_print_the_report_and_exit_1_on_drift_0_when_repaired(
    world: DealSyncWorld, monkeypatch: Any, tmp_path: Any
) -> None:
    import argparse
    import contextlib
    import io
    import json
    from collections.abc import Iterator

    from ledgerlink.cli import reconcile as command
    from ledgerlink.configfile import load

    config = load(support.CONFIG_FILE)

    @contextlib.contextmanager
    def deal_flow(args: argparse.Namespace, out: Any) -> Iterator[Any]:
        yield world.parts, config, list(config.connections)

    monkeypatch.setattr(command, "_deal_flow", deal_flow)
    synced(world)
    person_edits(world, deal_of(world, "3")["id"], {"amount": "1.00"})
    gone = deal_of(world, "4")["id"]
    assert hubspot_api(world, "DELETE", f"/crm/v3/objects/deals/{gone}").status_code == 204

    def run(*argv: str, plan: bool = False) -> tuple[int, str]:
        parser = argparse.ArgumentParser()
        (command.register_plan if plan else command.register)(parser)
        out = io.StringIO()
        args = parser.parse_args(list(argv))
        return args.func(args, out), out.getvalue()

    code, text = run("--format", "json")
    report = json.loads(text)
    # the two deals, and the customer whose open balance the deleted deal takes away
    assert code == 1 and report["drift_count"] == 3
    assert [(e["qbo"]["type"], [f["cause"] for f in e["fields"]]) for e in report["drift"]] == [
        ("Invoice", ["changed_in_hubspot"]),
        ("Invoice", ["deal_deleted_in_hubspot"]),
        ("Customer", ["document_drift"]),
    ]
    assert [e["qbo"]["id"] for e in report["drift"][:2]] == [key("3"), key("4")]
    code, table = run()
    assert code == 1 and "changed_in_hubspot" in table
    code, repaired_table = run("--repair")
    assert code == 0 and "fixed (clean on the check after)" in repaired_table
    # and its summary counts what the check after the repair found, saying what the first one did
    assert "0 drifted records after the repair (3 before it)" in repaired_table
    code, clean = run()
    assert code == 0 and "clean: QBO and HubSpot agree" in clean
    moved = tmp_path / "moved.toml"
    moved.write_text(
        support.CONFIG_FILE.read_text().replace('open = "880015"', 'open = "880016"'), encoding="utf-8"
    )
    code, planned = run("--config", str(moved), plan=True)
    assert code == 0 and "dealstage: 880015 (Invoice Open) -> 880016 (Invoice Overdue)" in planned
    (tmp_path.parent / "reconcile-sample.txt").write_text(
        "\n".join(
            [
                "$ ledgerlink reconcile --format json",
                text,
                "$ ledgerlink reconcile",
                table,
                "$ ledgerlink reconcile --repair",
                repaired_table,
                "$ ledgerlink reconcile",
                clean,
                "$ ledgerlink plan --config moved.toml",
                planned,
            ]
        )
    )
    print(tmp_path.parent / "reconcile-sample.txt")


class ConnectionCounts:
    """A metrics sink whose counts name the connection, as the reconcile Lambda's ServiceMetrics do."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def for_connection(self, connection: str) -> Any:
        sink = self

        class Counter:
            def count(self, name: str, value: int = 1) -> None:
                sink.counts[(connection, name)] = sink.counts.get((connection, name), 0) + value

        return Counter()


def test_the_scheduled_check_reports_a_persons_change_and_repairs_nothing(world: DealSyncWorld) -> None:
    from ledgerlink.configfile import load as load_config
    from ledgerlink.deal_sync.reconcile_schedule import run_scheduled_reconcile
    from ledgerlink.secrets import PowertoolsSecretStore

    # given every document synced, and a person changed invoice 3's deal amount in HubSpot
    synced(world)
    deal = deal_of(world, "3")
    person_edits(world, deal["id"], {"amount": "1.00"})
    config = load_config(support.CONFIG_FILE)
    counts = ConnectionCounts()

    # when the scheduled reconciliation runs, built as its Lambda builds it
    report = run_scheduled_reconcile(
        world.settings,
        config,
        secrets=PowertoolsSecretStore(max_age_seconds=0, client=world.aws["secretsmanager"]),
        metrics=counts,
        remaining_ms=lambda: 14 * 60 * 1000,
        dynamodb=world.aws["dynamodb"],
        since=SINCE,
    )

    # then each connection is checked and DriftRecords counts the one drifted record
    (connection,) = [each.name for each in config.connections]
    assert report.failures == {} and report.not_reached == []
    assert counts.counts[(connection, "DriftRecords")] == 1 == report.drifted
    # and the person's value is still there: a scheduled check reports, the operator repairs
    assert deal_of(world, "3")["properties"]["amount"] == "1.00"
