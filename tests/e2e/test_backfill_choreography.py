"""End to end on the local stack as `make run` wires it: invoices created while the QBO sandbox holds
its webhooks back reach HubSpot through `ledgerlink backfill` — run in this process, and as the
qbo_backfill job the local stack runs from the topology (`--in-aws`)."""

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

CONNECTION = "demo"  # local/config/local.toml


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


def _held_back_invoices(environment: LocalEnvironment, amounts: tuple[str, ...]) -> list[str]:
    qbo = environment.sandboxes.sandbox("qbo")
    realm = environment.description["qbo"]["realm_id"]
    qbo.update_config({"webhooks_held": True})
    keys = []
    with qbo.lock:
        for amount in amounts:
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
    return keys


def _run(*arguments: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(list(arguments))
    return status, out.getvalue()


def test_a_backfill_run_from_the_command_line_makes_the_deals(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    # given invoices whose webhooks never reached LedgerLink
    keys = _held_back_invoices(environment, ("210.00", "220.00"))
    assert all(_deal(environment, key) is None for key in keys)
    # when the operator runs `ledgerlink backfill --connection demo --entities Invoice`
    status, text = _run(
        "backfill", "--connection", CONNECTION, "--entities", "Invoice", "--state-dir", str(state_dir)
    )
    # then it exits 0 with its summary, and the deals are in HubSpot
    assert status == 0, text
    assert "finished" in text and "Invoice" in text
    for key in keys:
        assert _deal(environment, key) is not None, key


def _job_line(text: str) -> str:
    return next(
        line for line in text.splitlines() if line.startswith("backfill ") and f" of {CONNECTION} " in line
    )


def test_the_backfill_job_runs_in_the_local_stack_and_finishes(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    # given more held-back invoices, and the checkpoint of whatever job ran before
    keys = _held_back_invoices(environment, ("310.00", "320.00"))
    code, before = _run("backfill", "status", "--connection", CONNECTION, "--state-dir", str(state_dir))
    earlier = _job_line(before).split()[1] if code == 0 and "no backfill" not in before else None
    # when the operator starts the job in "AWS" (the local stack's qbo_backfill Lambda and its queue)
    status, text = _run(
        "backfill",
        "--connection",
        CONNECTION,
        "--entities",
        "Invoice",
        "--in-aws",
        "--state-dir",
        str(state_dir),
    )
    assert status == 0, text
    # then the Lambda makes the deals, and `backfill status` shows the job finished
    for key in keys:
        wait_for(lambda key=key: _deal(environment, key), f"a HubSpot deal for invoice {key}")

    def finished() -> str | None:
        code, shown = _run("backfill", "status", "--connection", CONNECTION, "--state-dir", str(state_dir))
        if code != 0 or "no backfill" in shown:
            return None
        line = _job_line(shown)
        return line if ": finished" in line and line.split()[1] != earlier else None

    wait_for(finished, "a new backfill job's checkpoint to say finished")
