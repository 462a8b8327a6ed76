"""End to end on the local stack as `make run` wires it: with the QBO sandbox holding its webhooks back,
three invoices are created and no webhook reaches LedgerLink; `ledgerlink catchup` finds them in QBO's
change data capture and the deals appear in HubSpot through the normal deal sync."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ledgerlink import cli
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import wait_for


def _deal(environment: LocalEnvironment, key: str) -> dict[str, Any] | None:
    hubspot = environment.description["hubspot"]
    reply = requests.get(
        f"{hubspot['base_url']}/crm/v3/objects/deals/{quote(key, safe='')}",
        params={"idProperty": "qbo_invoice_id", "properties": "qbo_invoice_id,amount"},
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


def test_invoices_whose_webhooks_were_held_back_become_deals_after_a_catchup(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    # given the QBO sandbox holding back its webhooks, and three invoices created meanwhile
    qbo.update_config({"webhooks_held": True})
    keys = []
    with qbo.lock:
        for amount in ("110.00", "120.00", "130.00"):
            invoice = qbo.companies[realm].create(
                "Invoice",
                {
                    "CustomerRef": {"value": "1"},
                    "Line": [
                        {
                            "Amount": amount,
                            "DetailType": "SalesItemLineDetail",
                            "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 1, "UnitPrice": amount},
                        }
                    ],
                },
            )
            keys.append(f"{realm}:{invoice['Id']}")
    assert qbo.webhooks_withheld >= 3
    assert all(_deal(environment, key) is None for key in keys)
    # when the operator runs `ledgerlink catchup` against the local stack
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(["catchup", "--state-dir", str(state_dir)])
    assert status == 0, out.getvalue()
    assert "Invoice:" in out.getvalue()
    # then the three deals appear in HubSpot
    for key in keys:
        wait_for(lambda key=key: _deal(environment, key), f"a HubSpot deal for invoice {key}")
