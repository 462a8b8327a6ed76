"""End to end on the local stack as `make run` wires it: a change in the QBO sandbox becomes a HubSpot deal.

The QBO sandbox's own webhook (signed, CloudEvents, batched as Intuit does) reaches the gateway; the
ingest function archives and publishes it; the rule routes it to the deal-sync queue; the poller
hands it to the deal sync, which re-reads the invoice from QBO and upserts the deal in HubSpot.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import requests

from ledgerlink_local.sandboxes.hubspot import INVOICE_STAGE_IDS, INVOICES_PIPELINE_ID
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import hop_steps, wait_for


def _deal_by_invoice_key(environment: LocalEnvironment, key: str) -> dict | None:
    """The deal whose unique ``qbo_invoice_id`` is ``key``, read through HubSpot's API (None: not yet)."""
    hubspot = environment.description["hubspot"]
    reply = requests.get(
        f"{hubspot['base_url']}/crm/v3/objects/deals/{quote(key, safe='')}",
        params={
            "idProperty": "qbo_invoice_id",
            "properties": "qbo_invoice_id,dealname,amount,pipeline,dealstage,qbo_status",
        },
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


def test_a_new_qbo_invoice_becomes_a_hubspot_deal(environment, state_dir):
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given the demo company, when a new invoice is created in QBO (the demo's first step)
    change = qbo.demo_activity_step(0)
    assert (change["entity"], change["operation"]) == ("Invoice", "Create")
    key = f"{realm}:{change['id']}"
    # then a deal keyed on that invoice appears in HubSpot
    deal = wait_for(lambda: _deal_by_invoice_key(environment, key), f"a HubSpot deal for invoice {key}")
    assert deal["properties"]["qbo_invoice_id"] == key
    # in the sandbox portal's "Invoices" pipeline, at the stage of its status (the local stage map)
    assert deal["properties"]["pipeline"] == INVOICES_PIPELINE_ID
    assert deal["properties"]["dealstage"] == INVOICE_STAGE_IDS[deal["properties"]["qbo_status"]]
    # and the hop log shows the whole path, ending in a successful deal sync
    events = [json.loads(line) for line in (state_dir / "events.jsonl").read_text().splitlines()]
    published = [
        event
        for event in events
        if event["step"] == "published" and event["details"].get("entity_id") == change["id"]
    ]
    assert published, "the change was published on the bus"
    correlation_id = published[0]["correlation_id"]

    def steps_once_synced() -> list[tuple[str, str | None]] | None:
        steps = hop_steps(state_dir, correlation_id)
        return steps if ("handler", "ok") in steps else None

    steps = wait_for(steps_once_synced, "the deal sync's outcome in the hop log")
    assert [step for step, _ in steps][:4] == ["published", "rule", "queue", "vendor"]
