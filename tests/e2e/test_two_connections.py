"""End to end on the local stack as `make run` wires it: two connections, each invoice in its own portal.

local/config/local.toml has two connections: "demo" (the QBO sandbox's US company, the first HubSpot
portal) and "thames" (the UK company in GBP, the second portal). An invoice created in each company
must end as a deal in its own connection's portal only: read back through the HubSpot API with each
portal's own token, each portal has the deal of its company's invoice and none for the other's.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import requests

from ledgerlink_local.sandboxes.hubspot import DEMO_PORTAL, THAMES_PORTAL
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID, THAMES_REALM_ID
from ledgerlink_local.stack.up import LOCAL_JSON_KEYS
from tests.e2e.conftest import wait_for


def _connections(state_dir: Path) -> dict[str, dict]:
    description = json.loads((state_dir / "local.json").read_text())
    return {connection["name"]: connection for connection in description["connections"]}


def _deal(hubspot: Mapping[str, str], key: str) -> dict | None:
    """The deal whose unique ``qbo_invoice_id`` is ``key`` in the portal of ``hubspot``'s token."""
    reply = requests.get(
        f"{hubspot['base_url']}/crm/v3/objects/deals/{quote(key, safe='')}",
        params={
            "idProperty": "qbo_invoice_id",
            "properties": "qbo_invoice_id,pipeline,dealstage,qbo_status,deal_currency_code",
        },
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        timeout=10,
    )
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


def test_local_json_describes_both_connections_with_the_persons_own_grants(environment, state_dir):
    description = json.loads((state_dir / "local.json").read_text())
    connections = _connections(state_dir)
    assert list(connections) == ["demo", "thames"]
    # each connection: its own company and portal, the same sections and keys as the top level
    assert (connections["demo"]["qbo"]["realm_id"], connections["demo"]["hubspot"]["portal_id"]) == (
        DEMO_REALM_ID,
        str(DEMO_PORTAL.portal_id),
    )
    assert (connections["thames"]["qbo"]["realm_id"], connections["thames"]["hubspot"]["portal_id"]) == (
        THAMES_REALM_ID,
        str(THAMES_PORTAL.portal_id),
    )
    for connection in connections.values():
        for section in ("qbo", "hubspot", "graph"):
            assert tuple(connection[section]) == LOCAL_JSON_KEYS[section]
    # the top-level sections describe the first connection
    assert {section: description[section] for section in ("qbo", "hubspot", "graph")} == {
        section: connections["demo"][section] for section in ("qbo", "hubspot", "graph")
    }
    # and no refresh token in it is the one the stack's secret holds (the app's grant)
    secrets = environment.stack.client("secretsmanager")
    for connection in connections.values():
        name = f"ledgerlink/local/connections/{connection['name']}/qbo/oauth"
        app = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        assert app["realm_id"] == connection["qbo"]["realm_id"]
        assert app["refresh_token"] != connection["qbo"]["refresh_token"]
    assert stat.S_IMODE(os.stat(state_dir / "local.json").st_mode) == 0o600


def test_an_invoice_in_each_company_becomes_a_deal_in_its_own_portal_only(environment, state_dir):
    qbo = environment.sandboxes.sandbox("qbo")
    connections = _connections(state_dir)
    # given a new invoice in each QBO company (the demo activity's first step in each)
    keys = {}
    for name, realm in (("demo", DEMO_REALM_ID), ("thames", THAMES_REALM_ID)):
        change = qbo.demo_activity_step(0, realm_id=realm)
        assert (change["entity"], change["operation"]) == ("Invoice", "Create")
        keys[name] = f"{realm}:{change['id']}"
    # then each becomes a deal in its own connection's portal
    for name, profile in (("demo", DEMO_PORTAL), ("thames", THAMES_PORTAL)):
        hubspot = connections[name]["hubspot"]
        key = keys[name]
        deal = wait_for(lambda h=hubspot, k=key: _deal(h, k), f"the {name} portal's deal for {key}")
        # in that portal's own "Invoices" pipeline (its connection's stage map)
        assert deal["properties"]["pipeline"] == profile.invoices_pipeline_id
        assert deal["properties"]["dealstage"] == profile.invoice_stage_ids[deal["properties"]["qbo_status"]]
    assert (
        _deal(connections["thames"]["hubspot"], keys["thames"])["properties"]["deal_currency_code"] == "GBP"
    )
    # and neither portal has a deal for the other company's invoice (both deals exist by now)
    assert _deal(connections["demo"]["hubspot"], keys["thames"]) is None
    assert _deal(connections["thames"]["hubspot"], keys["demo"]) is None
