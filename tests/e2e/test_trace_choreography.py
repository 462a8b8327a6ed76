"""End to end on the local stack: an invoice entered already past its due date goes through the deal
sync, the calendar sync and the Teams follow-ups, and ``ledgerlink trace invoice <DocNumber>`` shows
each hop in order (docs/status.md); ``ledgerlink status`` lists the same records with their ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledgerlink.cli import main
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import wait_for

LATE_INVOICE_STEP = 4  # the demo enters its second new invoice already past due
CONNECTION = "demo"


def _cli(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(arguments)
    return code, capsys.readouterr().out


def _hops(state_dir: Path, doc_number: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out = _cli(
        [
            "trace",
            "invoice",
            doc_number,
            "--connection",
            CONNECTION,
            "--state-dir",
            str(state_dir),
            "--format",
            "json",
        ],
        capsys,
    )
    return list(json.loads(out)["hops"]) if code == 0 else []


def test_an_invoice_through_all_its_flows_is_traced_hop_by_hop_in_order(
    environment: LocalEnvironment, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given an invoice entered in QBO already past its due date
    change = qbo.demo_activity_step(LATE_INVOICE_STEP)
    with qbo.lock:
        invoice = qbo.companies[realm].read("Invoice", change["id"])
    number = str(invoice["DocNumber"])

    # when it has been through the deal sync, the calendar sync and the Teams follow-ups
    def written_by_every_flow() -> list[dict[str, Any]] | None:
        hops = _hops(state_dir, number, capsys)
        written = {hop["flow"] for hop in hops if hop["outcome"] == "written"}
        return hops if {"deal_sync", "calendar_sync", "followups"} <= written else None

    hops = wait_for(written_by_every_flow, "a written hop of each flow")

    # then the trace names each hop in time order, each with its outcome, time and correlation id,
    # and the targets: the deal, the Outlook event, the Teams meeting
    assert [hop["at"] for hop in hops] == sorted(hop["at"] for hop in hops)
    first = {
        flow: next(i for i, hop in enumerate(hops) if hop["flow"] == flow)
        for flow in ("deal_sync", "calendar_sync", "followups")
    }
    assert first["deal_sync"] < first["calendar_sync"] < first["followups"]
    by_flow = {hop["flow"]: hop for hop in hops if hop["outcome"] == "written"}
    deal_id = by_flow["deal_sync"]["deal_id"]
    assert by_flow["deal_sync"]["source"] == f"Invoice {number}"
    assert by_flow["deal_sync"]["deal_stage"]
    assert by_flow["calendar_sync"]["deal_id"] == deal_id
    assert by_flow["calendar_sync"]["outlook_event_id"]
    assert by_flow["followups"]["teams_meeting_id"]
    assert all(hop["correlation_id"] and hop["connection"] == CONNECTION for hop in hops)

    # and the same by Id, by deal, and in the table an operator reads
    # (by Id: the same hops, and any that came since)
    by_id = [hop["row_id"] for hop in _hops(state_dir, str(invoice["Id"]), capsys)]
    assert by_id[: len(hops)] == [hop["row_id"] for hop in hops]
    code, table = _cli(
        ["trace", "invoice", number, "--connection", CONNECTION, "--state-dir", str(state_dir), "--wide"],
        capsys,
    )
    assert code == 0
    with capsys.disabled():  # the must-show output (pytest -s prints it)
        print(f"\n$ ledgerlink trace invoice {number} --connection {CONNECTION} --wide\n{table}")
    assert f"Invoice {number}" in table and by_flow["followups"]["teams_meeting_id"] in table
    code, deal_trace = _cli(
        ["trace", "deal", deal_id, "--connection", CONNECTION, "--state-dir", str(state_dir)], capsys
    )
    assert code == 0 and "calendar_sync" in deal_trace
    code, status = _cli(
        ["status", "--connection", CONNECTION, "--state-dir", str(state_dir), "--wide"], capsys
    )
    assert code == 0, status
    with capsys.disabled():
        print(f"\n$ ledgerlink status --connection {CONNECTION} --wide\n{status}")
    assert f"Invoice {number}" in status and deal_id in status
