"""End to end on the local stack: ``ledgerlink ui`` finds the stack from its state directory, as every
operator command does, and its API shows what the flows really wrote: an invoice entered past its due
date traced through the deal sync, the calendar sync and the Teams follow-ups, its connection healthy,
and the plot's latency from the queue's own SentTimestamp (docs/status.md#the-web-page-ledgerlink-ui)."""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ledgerlink.cli.ui import UiServer, register, run_ui_command
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import wait_for

LATE_INVOICE_STEP = 4  # the demo enters its second new invoice already past due (test_trace_choreography)


@pytest.fixture
def ui(environment: LocalEnvironment, state_dir: Path) -> Iterator[UiServer]:
    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(["--state-dir", str(state_dir), "--port", "0", "--no-browser"])
    started: list[UiServer] = []
    command = threading.Thread(
        target=lambda: run_ui_command(args, io.StringIO(), ready=started.append), daemon=True
    )
    command.start()
    server = wait_for(lambda: started[0] if started else None, "ledgerlink ui to listen", timeout=15)
    try:
        yield server
    finally:
        server.shutdown()
        command.join(timeout=10)


def _get(server: UiServer, path: str) -> Any:
    response = requests.get(f"{server.url}{path}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_shows_what_the_local_stacks_flows_wrote(
    environment: LocalEnvironment, ui: UiServer
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given an invoice entered in QBO already past its due date
    change = qbo.demo_activity_step(LATE_INVOICE_STEP)
    with qbo.lock:
        number = str(qbo.companies[realm].read("Invoice", change["id"])["DocNumber"])

    # when it has been through its three flows, the page's trace shows each of them written
    def written_by_every_flow() -> list[dict[str, Any]] | None:
        hops = _get(ui, f"api/trace?connection=demo&kind=invoice&ref={number}")["hops"]
        written = {hop["flow"] for hop in hops if hop["outcome"] == "written"}
        return hops if {"deal_sync", "calendar_sync", "followups"} <= written else None

    hops = wait_for(written_by_every_flow, "a written hop of each flow")
    assert all(hop.get("queued_at") for hop in hops)  # the local pollers pass SQS's SentTimestamp on

    # then its connection is healthy among the local stack's connections, with the queues listed
    status = _get(ui, "api/status")
    states = {health["connection"]: health["state"] for health in status["connections"]}
    assert states["demo"] == "healthy" and len(states) >= 1
    assert any(queue["dlq_name"] for queue in status["queues"])
    # and the plot has throughput and a latency for it
    buckets = _get(ui, "api/series?connection=demo")["buckets"]
    assert sum(bucket["throughput"] for bucket in buckets) >= len(hops)
    assert any(bucket["latency_p95_ms"] is not None for bucket in buckets)
