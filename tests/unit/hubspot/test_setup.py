"""``ledgerlink hubspot setup``: the property group and custom properties, idempotently, in a portal."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from ledgerlink.cli import main
from ledgerlink.cli.hubspot import run_setup
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink.mapping.properties import CUSTOM_PROPERTIES, PROPERTY_GROUP
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN
from tests.integration.test_deal_sync_support import Capture, assert_hubspot_request_conforms
from tests.unit.hubspot.test_client import hubspot_client


def writes(server: SandboxServer) -> list[str]:
    log = requests.get(f"{server.url}/_admin/requests", timeout=10).json()["requests"]
    return [f"{r['method']} {r['path']}" for r in log if r["method"] != "GET"]


def properties(server: SandboxServer, object_type: str) -> dict[str, dict[str, Any]]:
    response = requests.get(
        f"{server.url}/crm/v3/properties/{object_type}",
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        timeout=10,
    )
    return {p["name"]: p for p in response.json()["results"]}


def test_a_fresh_portal_gets_the_group_and_every_property_and_a_second_run_creates_nothing(
    hubspot_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = Capture()
    capture.install(monkeypatch)
    client = hubspot_client(hubspot_sandbox.url)

    # when setup runs on a portal that has never seen LedgerLink
    first = setup_portal(client)

    # then each object type has the group and every catalogued property, the unique ones unique
    expected = {f"{t}.{spec.name}" for t, specs in CUSTOM_PROPERTIES.items() for spec in specs}
    assert set(first.properties_created) == expected
    assert set(first.groups_created) == {f"{t}.{PROPERTY_GROUP}" for t in CUSTOM_PROPERTIES}
    deals = properties(hubspot_sandbox, "deals")
    assert deals["qbo_invoice_id"]["hasUniqueValue"] is True
    # line items have no unique properties in HubSpot: their key is an ordinary property
    assert properties(hubspot_sandbox, "line_items")["qbo_line_id"]["hasUniqueValue"] is False
    assert deals["qbo_invoice_id"]["groupName"] == PROPERTY_GROUP
    assert {o["value"] for o in deals["qbo_status"]["options"]} >= {"open", "paid", "voided", "deleted"}
    for sent in capture.to(hubspot_sandbox.url):
        assert_hubspot_request_conforms(sent)

    # and when it runs again, it only reads
    requests.delete(f"{hubspot_sandbox.url}/_admin/requests", timeout=10)
    second = setup_portal(client)
    assert not second.changed and not second.conflicts
    assert set(second.properties_present) == expected
    assert writes(hubspot_sandbox) == []


def test_a_property_that_exists_without_unique_values_is_reported_and_left_alone(
    hubspot_sandbox: SandboxServer,
) -> None:
    # given someone already created qbo_invoice_id on deals, not unique
    requests.post(
        f"{hubspot_sandbox.url}/crm/v3/properties/deals",
        json={
            "name": "qbo_invoice_id",
            "label": "Invoice",
            "type": "string",
            "fieldType": "text",
            "groupName": "dealinformation",
        },
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        timeout=10,
    ).raise_for_status()

    # when setup runs
    report = setup_portal(hubspot_client(hubspot_sandbox.url))

    # then the conflict is reported, the property untouched, everything else created
    assert report.conflicts == [
        "deals.qbo_invoice_id: exists without unique values; LedgerLink upserts by it and needs hasUniqueValue"
    ]
    assert properties(hubspot_sandbox, "deals")["qbo_invoice_id"]["hasUniqueValue"] is False
    assert "deals.qbo_estimate_id" in report.properties_created


def test_a_unique_line_key_left_by_an_earlier_version_is_kept_without_a_conflict(
    hubspot_sandbox: SandboxServer,
) -> None:
    # given a portal where an earlier LedgerLink created qbo_line_id on line items with unique values
    # (the sandbox refuses that unless told to stand for such a portal)
    requests.patch(
        f"{hubspot_sandbox.url}/_admin/config", json={"unique_values_on_line_items": True}, timeout=10
    ).raise_for_status()
    client = hubspot_client(hubspot_sandbox.url)
    client.create_property(
        "line_items",
        {
            "name": "qbo_line_id",
            "label": "QBO line key",
            "type": "string",
            "fieldType": "text",
            "groupName": "lineiteminformation",
            "hasUniqueValue": True,
        },
    )
    requests.patch(
        f"{hubspot_sandbox.url}/_admin/config", json={"unique_values_on_line_items": False}, timeout=10
    ).raise_for_status()

    # when setup runs
    report = setup_portal(client)

    # then the property is left as it is, and nothing is reported against it
    assert not report.conflicts
    assert "line_items.qbo_line_id" in report.properties_present
    assert properties(hubspot_sandbox, "line_items")["qbo_line_id"]["hasUniqueValue"] is True


def test_an_enumeration_missing_an_option_gets_it_added(hubspot_sandbox: SandboxServer) -> None:
    # given a portal set up before the "deleted" status existed
    client = hubspot_client(hubspot_sandbox.url)
    setup_portal(client)
    status = properties(hubspot_sandbox, "deals")["qbo_status"]
    kept = [o for o in status["options"] if o["value"] != "deleted"]
    client.update_property("deals", "qbo_status", {"options": kept})

    # when setup runs again
    report = setup_portal(client)

    # then the option is back and the others are kept
    assert report.properties_updated == ["deals.qbo_status"]
    values = [o["value"] for o in properties(hubspot_sandbox, "deals")["qbo_status"]["options"]]
    assert "deleted" in values and values[: len(kept)] == [o["value"] for o in kept]


def test_the_command_sets_up_the_portal_and_says_what_it_did(
    hubspot_sandbox: SandboxServer, tmp_path: Path
) -> None:
    # given the portal's address and a token file
    token_file = tmp_path / "token"
    token_file.write_text(DEMO_ACCESS_TOKEN + "\n")
    argv = ["hubspot", "setup", "--base-url", hubspot_sandbox.url, "--token-file", str(token_file)]

    # when the command runs twice
    assert main(argv) == 0
    out = io.StringIO()
    args = argparse.Namespace(
        base_url=hubspot_sandbox.url, token=None, token_file=token_file, state_dir=str(tmp_path)
    )
    assert run_setup(args, out) == 0

    # then the second run reports it had nothing to do, and never prints the token
    text = out.getvalue()
    assert "0 properties created, 0 updated" in text
    assert "nothing to do" in text
    assert DEMO_ACCESS_TOKEN not in text


def test_the_command_finds_the_local_stack_portal(hubspot_sandbox: SandboxServer, tmp_path: Path) -> None:
    (tmp_path / "local.json").write_text(
        json.dumps({"hubspot": {"base_url": hubspot_sandbox.url, "access_token": DEMO_ACCESS_TOKEN}})
    )
    out = io.StringIO()
    args = argparse.Namespace(base_url=None, token=None, token_file=None, state_dir=str(tmp_path))
    assert run_setup(args, out) == 0
    assert f"portal: {hubspot_sandbox.url} (from {tmp_path / 'local.json'})" in out.getvalue()
    assert "created property deals.qbo_invoice_id" in out.getvalue()


def test_the_command_sets_up_the_named_connections_portal_of_the_local_stack(
    hubspot_sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a local stack with two connections, the second's portal at the sandbox
    first = {"base_url": "http://127.0.0.1:9", "access_token": "pat-unused"}
    second = {"base_url": hubspot_sandbox.url, "access_token": DEMO_ACCESS_TOKEN}
    (tmp_path / "local.json").write_text(
        json.dumps(
            {
                "hubspot": first,
                "connections": [{"name": "demo", "hubspot": first}, {"name": "thames", "hubspot": second}],
            }
        )
    )
    # when the operator sets up thames, then an unknown connection
    out = io.StringIO()
    args = argparse.Namespace(
        base_url=None, token=None, token_file=None, state_dir=str(tmp_path), connection="thames", aws=False
    )
    assert run_setup(args, out) == 0
    unknown = ["hubspot", "setup", "--connection", "nowhere", "--state-dir", str(tmp_path)]
    # then thames's portal was set up, and the unknown name is refused naming the ones there are
    assert "created property deals.qbo_invoice_id" in out.getvalue()
    assert main(unknown) == 2
    assert (
        "the local stack has no connection 'nowhere' (connections: demo, thames)" in capsys.readouterr().err
    )


def test_with_aws_the_local_stack_is_passed_over_for_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a running local stack, and no deployment configuration in this shell
    (tmp_path / "local.json").write_text(
        json.dumps({"hubspot": {"base_url": "http://127.0.0.1:9", "access_token": "pat-local"}})
    )
    from ledgerlink.configfile import reset_for_tests

    monkeypatch.setenv("LEDGERLINK_CONFIG_FILE", str(tmp_path / "no-such-config.toml"))
    reset_for_tests()  # the configuration file is loaded once per process
    # when the operator asks for the deployment's portal
    try:
        status = main(["hubspot", "setup", "--aws", "--state-dir", str(tmp_path)])
    finally:
        reset_for_tests()
    # then the local stack's portal is not used: the deployment's settings are looked for and missed
    assert status == 2
    assert "no deployment configuration usable" in capsys.readouterr().err


def test_half_a_target_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hubspot", "setup", "--base-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path)]) == 2
    assert "--base-url and --token (or --token-file) go together" in capsys.readouterr().err
