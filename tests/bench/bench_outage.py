"""A HubSpot outage on the local stack as `make run` wires it: how soon after it ends is every deal current?

The whole stack runs with its deployed settings (visibility timeout 725 s, batching window 1 s, retry
delays of 2 s growing by a quarter a receive to 2 minutes, maxReceiveCount 76); only the ports are free ones and the demo
activity is off. HubSpot's sandbox answers 503 to every CRM call for ``LEDGERLINK_BENCH_OUTAGE_SECONDS``
(120 by default) while ``LEDGERLINK_BENCH_OUTAGE_INVOICES`` new invoices (8) are created in QBO, spread
over the outage. The outage is then lifted, and the bench waits until every one of those invoices has
its deal in HubSpot with QBO's amount (read through HubSpot's API).

Measured: seconds from the end of the outage until the last deal is current; the messages in the
dead-letter queue at the end (should be 0); the deal-sync receives per invoice (from the hop log).
Before retries had their own delay (the 725 s visibility timeout), the issue measured about 13.5
minutes for the same outage.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ledgerlink_local.stack.settings import LocalSettings, Ports
from ledgerlink_local.stack.up import LocalEnvironment, start_environment

# Every demo_activity_step(4k) creates an invoice (the steps cycle invoice, payment, estimate, due date).
INVOICE_STEP = 4
GIVE_UP_SECONDS = 1200.0


def _deal_amount(environment: LocalEnvironment, key: str) -> Decimal | None:
    hubspot = environment.description["hubspot"]
    reply = requests.get(
        f"{hubspot['base_url']}/crm/v3/objects/deals/{quote(key, safe='')}",
        params={"idProperty": "qbo_invoice_id", "properties": "amount"},
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    if reply.status_code != 200:
        return None
    amount = reply.json()["properties"].get("amount")
    return Decimal(amount) if amount else None


def _queue_depth(environment: LocalEnvironment, url: str) -> int:
    attributes = environment.stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def main() -> dict[str, Any]:
    outage_seconds = float(os.environ.get("LEDGERLINK_BENCH_OUTAGE_SECONDS", "120"))
    invoices = int(os.environ.get("LEDGERLINK_BENCH_OUTAGE_INVOICES", "8"))
    with tempfile.TemporaryDirectory(prefix="ledgerlink-outage-") as state:
        state_dir = Path(state)
        settings = LocalSettings(
            ports=Ports(gateway=0, aws=0, qbo=0, hubspot=0, graph=0), state_dir=state_dir, demo=False
        )
        environment = start_environment(settings, console=None)
        try:
            return _run(environment, state_dir, outage_seconds, invoices)
        finally:
            environment.stop()


def _run(
    environment: LocalEnvironment, state_dir: Path, outage_seconds: float, invoices: int
) -> dict[str, Any]:
    assert environment.stack.resources is not None
    queue = environment.stack.resources.queue("deal-sync")
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    hubspot_url = environment.description["hubspot"]["base_url"]
    faults = f"{hubspot_url}/_admin/faults"
    requests.post(faults, json={"kind": "503", "path_prefix": "/crm/"}, timeout=10).raise_for_status()
    started = time.monotonic()
    created: dict[str, Decimal] = {}
    for index in range(invoices):
        # spread the invoices over the outage: the first at its start, the last near its end
        due = started + outage_seconds * index / max(1, invoices)
        time.sleep(max(0.0, due - time.monotonic()))
        change = qbo.demo_activity_step(INVOICE_STEP * index)
        with qbo.lock:
            invoice = qbo.companies[realm].read("Invoice", change["id"])
        created[f"{realm}:{change['id']}"] = Decimal(str(invoice["TotalAmt"]))
    time.sleep(max(0.0, started + outage_seconds - time.monotonic()))
    requests.delete(faults, timeout=10).raise_for_status()
    ended = time.monotonic()

    current_at: dict[str, float] = {}
    while len(current_at) < len(created):
        for key, amount in created.items():
            if key not in current_at and _deal_amount(environment, key) == amount:
                current_at[key] = time.monotonic() - ended
        if time.monotonic() - ended > GIVE_UP_SECONDS:
            break
        time.sleep(0.5)
    receives = [
        json.loads(line)
        for line in (state_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
        if '"step":"queue"' in line
    ]
    return {
        "outage_seconds": outage_seconds,
        "invoices_created_during_outage": len(created),
        "deals_current": len(current_at),
        "seconds_after_outage_until_every_deal_current": round(max(current_at.values(), default=-1.0), 1),
        "seconds_after_outage_per_deal": sorted(round(value, 1) for value in current_at.values()),
        "dead_lettered": _queue_depth(environment, queue.dlq_url),
        "deal_sync_receives": len(receives),
        "max_receives_of_one_message": max(
            (
                sum(1 for r in receives if r["details"].get("message_id") == m)
                for m in {r["details"].get("message_id") for r in receives}
            ),
            default=0,
        ),
    }
