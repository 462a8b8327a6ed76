"""End to end on the local stack: ``ledgerlink connect qbo`` reconnects a company whose grant was revoked,
and the running stack syncs with the new grant within seconds.

The local stack's connections are fixed when it starts (local/config/local.toml), so the "new
connection" here is what an operator meets in practice: the company disconnected LedgerLink in QBO (the
grant is revoked, every token of it dies), the deal sync dead-letters what it cannot read, and the
operator runs ``ledgerlink connect qbo --connection demo``. The "browser" follows the authorize URL with
requests; the QBO sandbox consents and redirects to the command's loopback server. The deal sync's
workers keep their five-minute secret cache throughout: no restart, no wait.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from urllib.parse import quote

import requests

from ledgerlink import cli
from ledgerlink.cli.connect import register, run_connect_qbo
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import queue_depth, wait_for


def _deal(environment: LocalEnvironment, invoice_id: str) -> dict | None:
    """The demo portal's deal of the demo company's invoice ``invoice_id``, read through HubSpot's API."""
    hubspot = environment.description["hubspot"]
    reply = requests.get(
        f"{hubspot['base_url']}/crm/v3/objects/deals/{quote(f'{DEMO_REALM_ID}:{invoice_id}', safe='')}",
        params={"idProperty": "qbo_invoice_id", "properties": "qbo_invoice_id,dealstage,amount"},
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


def _connect(state_dir: Path) -> tuple[int, str]:
    def browser(url: str) -> None:
        requests.get(url, timeout=10)  # the sandbox consents and redirects to the loopback server

    parser = argparse.ArgumentParser()
    register(parser)
    args = parser.parse_args(
        ["qbo", "--connection", "demo", "--no-browser", "--port", "0", "--state-dir", str(state_dir)]
    )
    out = io.StringIO()
    return run_connect_qbo(args, out, open_browser=browser), out.getvalue()


def test_a_revoked_company_reconnected_with_connect_qbo_syncs_again_within_seconds(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    queue = environment.stack.resources.queue("deal-sync")
    # given a connection whose company disconnected LedgerLink: its invoices can no longer be read
    first = qbo.demo_activity_step(0, realm_id=DEMO_REALM_ID)  # a synced invoice: the stack works
    wait_for(lambda: _deal(environment, first["id"]), "the first invoice's deal")
    requests.post(f"{qbo.base_url}/_admin/oauth/revoke", json={"realm_id": DEMO_REALM_ID}, timeout=10)
    lost = qbo.demo_activity_step(0, realm_id=DEMO_REALM_ID)
    wait_for(lambda: queue_depth(environment, queue.dlq_url) >= 1, "the revoked invoice dead-lettered", 120)
    assert _deal(environment, lost["id"]) is None

    # when the operator reconnects the company
    code, output = _connect(state_dir)

    # then the command stored the new grant for the connection's company
    assert code == 0, output
    assert f"authorized: company {DEMO_REALM_ID}, state checked" in output
    assert "stored in ledgerlink/local/connections/demo/qbo/oauth" in output
    secret = json.loads(
        environment.stack.client("secretsmanager").get_secret_value(
            SecretId="ledgerlink/local/connections/demo/qbo/oauth"
        )["SecretString"]
    )
    assert secret["realm_id"] == DEMO_REALM_ID

    # and the running stack syncs the company's next invoice with it (the same workers, caches and all)
    after = qbo.demo_activity_step(0, realm_id=DEMO_REALM_ID)
    deal = wait_for(
        lambda: _deal(environment, after["id"]), "the reconnected company's invoice as a deal", 60
    )
    assert deal["properties"]["qbo_invoice_id"] == f"{DEMO_REALM_ID}:{after['id']}"

    # and the invoice dead-lettered while the company was disconnected syncs once replayed
    replay = ["dlq", "replay", queue.dlq_name, "--endpoint-url", environment.stack.endpoint_url]
    assert cli.main([*replay, "--region", "us-east-1"]) == 0
    wait_for(lambda: _deal(environment, lost["id"]), "the dead-lettered invoice's deal after the replay", 60)
