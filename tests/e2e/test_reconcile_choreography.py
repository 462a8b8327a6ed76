"""End to end on the local stack as `make run` wires it: after a backfill, a deal's amount is changed and
another deal deleted through HubSpot's API; `ledgerlink reconcile` (run as the operator runs it, in a
shell whose only AWS region is the one in the state directory's local.json) reports both, `--repair`
puts both right through the deal flow, and a second reconcile is clean."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from ledgerlink import cli
from ledgerlink_local.stack.up import LocalEnvironment
from tests.conftest import REPO_ROOT

CONNECTION = "demo"  # local/config/local.toml


def _hubspot(environment: LocalEnvironment, method: str, path: str, **kwargs: Any) -> requests.Response:
    """What a HubSpot user's tool does, through HubSpot's API."""
    hubspot = environment.description["hubspot"]
    return requests.request(
        method,
        f"{hubspot['base_url']}{path}",
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
        **kwargs,
    )


def _deal(environment: LocalEnvironment, key: str) -> dict[str, Any] | None:
    reply = _hubspot(
        environment,
        "GET",
        f"/crm/v3/objects/deals/{quote(key, safe='')}",
        params={"idProperty": "qbo_invoice_id", "properties": "qbo_invoice_id,amount"},
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


def _run(*arguments: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = cli.main(list(arguments))
    return status, out.getvalue()


def _reconcile_in_a_shell_without_a_region(state_dir: Path) -> tuple[int, dict[str, Any], str]:
    """``ledgerlink reconcile --format json`` as a separate process, with no AWS region in its
    environment: the local stack's region must come from local.json alone."""
    env = {
        name: value for name, value in os.environ.items() if name not in {"AWS_REGION", "AWS_DEFAULT_REGION"}
    }
    env["AWS_CONFIG_FILE"] = str(state_dir / "no-aws-config")  # nor from ~/.aws/config
    done = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and our module
        [
            sys.executable,
            "-m",
            "ledgerlink.cli",
            "reconcile",
            "--connection",
            CONNECTION,
            "--format",
            "json",
            "--state-dir",
            str(state_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def test_reconcile_reports_a_changed_and_a_deleted_deal_and_repair_puts_both_right(
    environment: LocalEnvironment, state_dir: Path
) -> None:
    realm = environment.description["qbo"]["realm_id"]
    # given the demo company backfilled into HubSpot, and reconcile clean
    status, text = _run("backfill", "--connection", CONNECTION, "--state-dir", str(state_dir))
    assert status == 0, text
    status, clean = _run("reconcile", "--connection", CONNECTION, "--state-dir", str(state_dir))
    assert status == 0, clean
    invoices = environment.sandboxes.sandbox("qbo").companies[realm].all("Invoice")
    changed_key, deleted_key = (f"{realm}:{invoice['Id']}" for invoice in invoices[:2])
    changed, deleted = _deal(environment, changed_key), _deal(environment, deleted_key)
    assert changed is not None and deleted is not None
    right_amount = changed["properties"]["amount"]
    # when a HubSpot user changes one deal's amount and deletes another through HubSpot's API
    _hubspot(
        environment,
        "PATCH",
        f"/crm/v3/objects/deals/{changed['id']}",
        json={"properties": {"amount": "1.00"}},
    ).raise_for_status()
    _hubspot(environment, "DELETE", f"/crm/v3/objects/deals/{deleted['id']}").raise_for_status()
    # then reconcile reports exactly those two records: the amount with both values, the deal gone
    status, report, stderr = _reconcile_in_a_shell_without_a_region(state_dir)
    assert status == 1, stderr
    invoices_drifted = {e["qbo"]["id"]: e for e in report["drift"] if e["qbo"]["type"] == "Invoice"}
    assert set(invoices_drifted) == {changed_key, deleted_key}, report["drift"]
    amount = next(field for field in invoices_drifted[changed_key]["fields"] if field["field"] == "amount")
    assert (amount["hubspot"], float(amount["qbo"])) == ("1.00", float(right_amount))
    assert [field["cause"] for field in invoices_drifted[deleted_key]["fields"]] == [
        "deal_deleted_in_hubspot"
    ]
    # (and, at most, the customers whose open balances those two deals now skew)
    others = [e for e in report["drift"] if e["qbo"]["type"] != "Invoice"]
    assert all(e["qbo"]["type"] == "Customer" for e in others), others
    # when the operator repairs
    status, repaired = _run(
        "reconcile", "--connection", CONNECTION, "--repair", "--state-dir", str(state_dir)
    )
    # then both are put right through the deal flow, and a second reconcile is clean
    assert status == 0, repaired
    restored = _deal(environment, changed_key)
    assert restored is not None and float(restored["properties"]["amount"]) == float(right_amount)
    assert _deal(environment, deleted_key) is not None
    status, again = _run("reconcile", "--connection", CONNECTION, "--state-dir", str(state_dir))
    assert status == 0, again
    assert "clean" in again
