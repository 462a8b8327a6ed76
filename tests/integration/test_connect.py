"""``ledgerlink connect qbo|hubspot|microsoft`` against the vendor sandboxes and moto's Secrets Manager.

The "browser" follows the authorize URL with requests: the QBO sandbox consents at once and redirects to
the command's loopback server, as Intuit does after the user picked a company. What the tests look at
is what the Lambdas see afterwards: the connection's secret, the shared token state, and a Lambda's
QBO client working with the new grant.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from ledgerlink.cli.connect import (
    HUBSPOT_SCOPES,
    register,
    run_connect_hubspot,
    run_connect_microsoft,
    run_connect_qbo,
)
from ledgerlink.config import EnvVar, Settings, reset_settings_cache
from ledgerlink.configfile import reset_for_tests as reset_config_cache
from ledgerlink.http.factory import in_process_client
from ledgerlink.qbo.oauth import (
    DynamoDBTokenStateStore,
    QboConnectionRevoked,
    QboOAuth,
    state_key,
    token_endpoint,
    token_policy,
)
from ledgerlink.secrets import PowertoolsSecretStore
from ledgerlink.tables import VENDOR_STATE
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID as GRAPH_CLIENT_ID
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_SECRET as GRAPH_CLIENT_SECRET
from ledgerlink_local.sandboxes.graph import DEMO_TENANT_ID
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_CLIENT_SECRET, DEMO_PORTAL_ID
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_ID,
    DEMO_REALM_ID,
    DEMO_REFRESH_TOKEN,
    THAMES_REALM_ID,
)
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_SECRET as QBO_CLIENT_SECRET,
)
from tests.aws_fixtures import create_tables
from tests.conftest import FIXTURES

REGION = "us-east-1"
STAGE = "test"
VENDOR_STATE_TABLE = f"ledgerlink-{STAGE}-vendor-state"
CONFIG_FILE = FIXTURES / "config" / "connect.toml"
SECRETS = {
    "qbo": f"ledgerlink/{STAGE}/connections/demo/qbo/oauth",
    "hubspot": f"ledgerlink/{STAGE}/connections/demo/hubspot/app",
    "graph": f"ledgerlink/{STAGE}/connections/demo/graph/app",
}
TOKEN_PATH = "/oauth2/v1/tokens/bearer"


@dataclass
class ConnectWorld:
    qbo: SandboxServer
    hubspot: SandboxServer
    graph: SandboxServer
    state_dir: Path
    settings: Settings

    def args(self, *argv: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        register(parser)
        return parser.parse_args([*argv, "--connection", "demo", "--state-dir", str(self.state_dir)])

    def secret(self, vendor: str) -> dict[str, Any]:
        client = boto3.client("secretsmanager", region_name=REGION)
        value: dict[str, Any] = json.loads(client.get_secret_value(SecretId=SECRETS[vendor])["SecretString"])
        return value

    def token_state(self) -> dict[str, Any]:
        item = boto3.client("dynamodb", region_name=REGION).get_item(
            TableName=VENDOR_STATE_TABLE,
            Key={VENDOR_STATE.partition_key: {"S": state_key(SECRETS["qbo"])}, "sk": {"S": "token"}},
        )
        return dict(item.get("Item") or {})

    def worker(self) -> QboOAuth:
        """A Lambda's QBO OAuth: its own clients and a five-minute secret cache, as deployed."""
        _, path = token_endpoint(self.settings.qbo_token_url)
        return QboOAuth(
            secret_name=SECRETS["qbo"],
            secrets=PowertoolsSecretStore(
                max_age_seconds=300, client=boto3.client("secretsmanager", region_name=REGION)
            ),
            state=DynamoDBTokenStateStore(VENDOR_STATE_TABLE, boto3.client("dynamodb", region_name=REGION)),
            token_http=in_process_client(token_policy(self.settings)),
            token_path=path,
        )


@pytest.fixture
def world(
    qbo_sandbox: SandboxServer,
    hubspot_sandbox: SandboxServer,
    graph_sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConnectWorld]:
    variables = {
        EnvVar.STAGE: STAGE,
        EnvVar.EVENT_BUS_NAME: f"ledgerlink-{STAGE}-events",
        EnvVar.RAW_BUCKET_NAME: f"ledgerlink-{STAGE}-raw",
        EnvVar.IDEMPOTENCY_TABLE_NAME: f"ledgerlink-{STAGE}-idempotency",
        EnvVar.LINKS_TABLE_NAME: f"ledgerlink-{STAGE}-links",
        EnvVar.VENDOR_STATE_TABLE_NAME: VENDOR_STATE_TABLE,
        EnvVar.QBO_WEBHOOK_SECRET_NAME: f"ledgerlink/{STAGE}/qbo/webhook-verifier",
        EnvVar.QBO_BASE_URL: qbo_sandbox.url,
        EnvVar.QBO_TOKEN_URL: qbo_sandbox.url + TOKEN_PATH,
        EnvVar.HUBSPOT_BASE_URL: hubspot_sandbox.url,
        EnvVar.GRAPH_BASE_URL: f"{graph_sandbox.url}/v1.0",
        EnvVar.GRAPH_TOKEN_URL: f"{graph_sandbox.url}/{{tenant}}/oauth2/v2.0/token",
        EnvVar.CONFIG_FILE: str(CONFIG_FILE),
    }
    for name, value in variables.items():
        monkeypatch.setenv(str(name), value)
    for name in (
        "LEDGERLINK_QBO_CLIENT_ID",
        "LEDGERLINK_QBO_CLIENT_SECRET",
        "LEDGERLINK_HUBSPOT_TOKEN",
        "LEDGERLINK_HUBSPOT_CLIENT_SECRET",
        "LEDGERLINK_GRAPH_CLIENT_ID",
        "LEDGERLINK_GRAPH_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    reset_settings_cache()
    reset_config_cache()
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name=REGION), ((VENDOR_STATE_TABLE, VENDOR_STATE),))
        secrets = boto3.client("secretsmanager", region_name=REGION)
        # As the CDK stack leaves them before anyone connected (infra/secret_store.py), but for the QBO
        # app's own client id and secret, which the operator put there with the Intuit app's keys.
        secrets.create_secret(
            Name=SECRETS["qbo"],
            SecretString=json.dumps(
                {"configured": False, "client_id": DEMO_CLIENT_ID, "client_secret": QBO_CLIENT_SECRET}
            ),
        )
        for vendor in ("hubspot", "graph"):
            secrets.create_secret(Name=SECRETS[vendor], SecretString=json.dumps({"configured": False}))
        settings = Settings.from_env({str(name): value for name, value in variables.items()})
        yield ConnectWorld(qbo_sandbox, hubspot_sandbox, graph_sandbox, tmp_path / "no-local-stack", settings)
    reset_settings_cache()
    reset_config_cache()


def browser(**choices: str) -> Callable[[str], None]:
    """A browser whose user signs in and picks a company (``realm_id``: the sandbox's company picker)."""

    def follow(url: str) -> None:
        if choices:
            url += "&" + urllib.parse.urlencode(choices)
        requests.get(url, timeout=10)  # the sandbox's 302 lands on the command's loopback server

    return follow


def run_qbo(world: ConnectWorld, open_browser: Callable[[str], None], *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = run_connect_qbo(
        world.args("qbo", "--port", "0", "--no-browser", "--timeout", "20", *extra),
        out,
        open_browser=open_browser,
    )
    return code, out.getvalue()


def test_connect_qbo_stores_the_grant_and_the_realm_and_the_lambdas_use_it(world: ConnectWorld) -> None:
    # when the operator connects the company in the browser
    code, output = run_qbo(world, browser())

    # then the connection's secret holds a working grant for its company, in the shape the Lambdas read
    assert code == 0, output
    secret = world.secret("qbo")
    assert set(secret) == {"client_id", "client_secret", "refresh_token", "realm_id"}
    assert (secret["client_id"], secret["realm_id"]) == (DEMO_CLIENT_ID, DEMO_REALM_ID)
    assert secret["refresh_token"] and secret["refresh_token"] != DEMO_REFRESH_TOKEN
    # the output says what happened, step by step, and names the company read with the new grant
    assert "authorized: company 9341453908059321, state checked" in output
    assert f"stored in {SECRETS['qbo']}" in output
    assert "company 9341453908059321: " in output and "(no name)" not in output
    assert secret["refresh_token"] not in output and QBO_CLIENT_SECRET not in output
    # and a Lambda reads the books with it: the shared token state holds the new access token
    assert world.token_state()["access_token"]["S"]
    assert world.worker().access_token() == world.token_state()["access_token"]["S"]


def test_a_lambda_that_found_the_grant_revoked_uses_the_reconnected_one_at_once(world: ConnectWorld) -> None:
    # given a connected company whose grant the user then revoked, and a Lambda that saw it refused
    assert run_qbo(world, browser())[0] == 0
    worker = world.worker()
    worker.access_token()
    requests.post(f"{world.qbo.url}/_admin/oauth/revoke", json={}, timeout=10)
    with pytest.raises(QboConnectionRevoked):
        worker.access_token(force_refresh=True)

    # when the operator reconnects
    code, output = run_qbo(world, browser())

    # then that same Lambda (its secret cache still five minutes long) works on its next call
    assert code == 0, output
    token = worker.access_token()
    reply = requests.get(
        f"{world.qbo.url}/v3/company/{DEMO_REALM_ID}/companyinfo/{DEMO_REALM_ID}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10,
    )
    assert reply.status_code == 200


def test_a_company_other_than_the_connections_is_refused_and_nothing_is_stored(world: ConnectWorld) -> None:
    before = world.secret("qbo")
    # when the user picks another company than connection demo's
    code, output = run_qbo(world, browser(realm_id=THAMES_REALM_ID))
    # then nothing was stored, and the refusal names both companies
    assert code == 1
    assert world.secret("qbo") == before
    assert world.token_state() == {}
    assert f"authorized: company {THAMES_REALM_ID}" in output


def test_the_refusal_of_another_company_says_which_one_to_pick(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    run_qbo(world, browser(realm_id=THAMES_REALM_ID))
    error = capsys.readouterr().err
    assert f"realm {THAMES_REALM_ID}" in error and f"realm {DEMO_REALM_ID}" in error
    assert "nothing was stored" in error


def test_a_redirect_whose_state_does_not_match_is_refused(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    def forged(url: str) -> None:
        # a redirect that does not answer this run's request: right code, another state
        answer = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        parts = urllib.parse.urlsplit(answer)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["state"] = "someone-elses-state"
        requests.get(parts._replace(query=urllib.parse.urlencode(query)).geturl(), timeout=10)

    code, _ = run_qbo(world, forged)
    assert code == 1
    assert "state does not match" in capsys.readouterr().err
    assert "refresh_token" not in world.secret("qbo")


def test_the_authorize_url_asks_for_the_accounting_scope_with_a_state(world: ConnectWorld) -> None:
    seen: list[str] = []

    def look(url: str) -> None:
        seen.append(url)
        requests.get(url, timeout=10)

    assert run_qbo(world, look)[0] == 0
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(seen[0]).query))
    assert urllib.parse.urlsplit(seen[0]).path == "/connect/oauth2"
    assert query["scope"] == "com.intuit.quickbooks.accounting"
    assert query["response_type"] == "code" and query["client_id"] == DEMO_CLIENT_ID
    assert len(query["state"]) >= 24
    assert urllib.parse.urlsplit(query["redirect_uri"]).hostname == "localhost"
    assert urllib.parse.urlsplit(query["redirect_uri"]).path == "/callback"


# ---------------------------------------------------------------------------- HubSpot


def run_hubspot(world: ConnectWorld, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_connect_hubspot(world.args("hubspot", *extra), out), out.getvalue()


def test_connect_hubspot_checks_the_portal_and_scopes_and_stores_the_token_with_the_signing_secret(
    world: ConnectWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the private app's token and client secret in the environment (not on the command line)
    monkeypatch.setenv("LEDGERLINK_HUBSPOT_TOKEN", DEMO_ACCESS_TOKEN)
    monkeypatch.setenv("LEDGERLINK_HUBSPOT_CLIENT_SECRET", DEMO_CLIENT_SECRET)
    # when the operator connects the portal
    code, output = run_hubspot(world)
    # then the connection's HubSpot secret has its existing shape, for the deal sync and the ingest
    assert code == 0, output
    assert world.secret("hubspot") == {
        "access_token": DEMO_ACCESS_TOKEN,
        "client_secret": DEMO_CLIENT_SECRET,
        "portal_id": str(DEMO_PORTAL_ID),
    }
    assert f"token opens portal {DEMO_PORTAL_ID}" in output
    assert f"all {len(HUBSPOT_SCOPES)} LedgerLink needs are granted" in output
    assert DEMO_ACCESS_TOKEN not in output and DEMO_CLIENT_SECRET not in output


def test_a_private_app_missing_scopes_is_refused_naming_each_missing_scope(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a private app created without line-item write and owner access
    lacking = {"crm.objects.line_items.write", "crm.objects.owners.read"}
    granted = [scope for scope in HUBSPOT_SCOPES if scope not in lacking]
    requests.post(f"{world.hubspot.url}/_admin/config", json={"private_app_scopes": granted}, timeout=10)
    # when the operator connects it
    code, _ = run_hubspot(world, "--token", DEMO_ACCESS_TOKEN, "--client-secret", DEMO_CLIENT_SECRET)
    # then it is refused, each missing scope is named, and nothing was stored
    assert code == 1
    error = capsys.readouterr().err
    assert "lacks 2 scope(s)" in error and all(scope in error for scope in lacking)
    assert world.secret("hubspot") == {"configured": False}


def test_a_rotated_token_reaches_a_lambda_at_once_despite_its_secret_cache(world: ConnectWorld) -> None:
    from ledgerlink.http.policy import hubspot_policy
    from ledgerlink.hubspot.client import HubSpotAuth

    # given a connected portal and a Lambda that has read (and caches for five minutes) its secret
    assert run_hubspot(world, "--token", DEMO_ACCESS_TOKEN, "--client-secret", DEMO_CLIENT_SECRET)[0] == 0
    store = PowertoolsSecretStore(
        max_age_seconds=300, client=boto3.client("secretsmanager", region_name=REGION)
    )
    http = in_process_client(hubspot_policy(world.settings), HubSpotAuth(store, SECRETS["hubspot"]))
    assert http.get("/crm/v3/owners", scope=str(DEMO_PORTAL_ID)).status_code == 200
    # when the operator rotates the private app's token (the old one stops working) and reconnects
    rotated = requests.post(
        f"{world.hubspot.url}/_admin/private-app/rotate-token", json={}, timeout=10
    ).json()
    assert run_hubspot(world, "--token", rotated["token"], "--client-secret", DEMO_CLIENT_SECRET)[0] == 0
    # then the Lambda's next call succeeds: the 401 made it read the secret past its cache, and retry once
    assert http.get("/crm/v3/owners", scope=str(DEMO_PORTAL_ID)).status_code == 200


def test_a_token_the_lambda_cannot_replace_fails_after_one_retry(world: ConnectWorld) -> None:
    from ledgerlink.http.errors import VendorError
    from ledgerlink.http.policy import hubspot_policy
    from ledgerlink.hubspot.client import HubSpotAuth

    # given a Lambda with the connected token, which is then rotated without a reconnect
    assert run_hubspot(world, "--token", DEMO_ACCESS_TOKEN, "--client-secret", DEMO_CLIENT_SECRET)[0] == 0
    store = PowertoolsSecretStore(
        max_age_seconds=300, client=boto3.client("secretsmanager", region_name=REGION)
    )
    http = in_process_client(hubspot_policy(world.settings), HubSpotAuth(store, SECRETS["hubspot"]))
    requests.post(f"{world.hubspot.url}/_admin/private-app/rotate-token", json={}, timeout=10)
    before = len(requests.get(f"{world.hubspot.url}/_admin/requests", timeout=10).json()["requests"])
    # when it calls HubSpot: refused, re-read (the same token), retried once, refused: it fails
    with pytest.raises(VendorError):
        http.get("/crm/v3/owners", scope=str(DEMO_PORTAL_ID))
    after = requests.get(f"{world.hubspot.url}/_admin/requests", timeout=10).json()["requests"]
    assert len(after) - before == 2


# ---------------------------------------------------------------------------- Microsoft


def run_microsoft(world: ConnectWorld, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_connect_microsoft(world.args("microsoft", *extra), out), out.getvalue()


def test_connect_microsoft_checks_the_permission_and_each_mailbox_and_stores_the_credentials(
    world: ConnectWorld,
) -> None:
    code, output = run_microsoft(
        world, "--client-id", GRAPH_CLIENT_ID, "--client-secret", GRAPH_CLIENT_SECRET
    )
    assert code == 0, output
    assert world.secret("graph") == {
        "tenant_id": DEMO_TENANT_ID,
        "client_id": GRAPH_CLIENT_ID,
        "client_secret": GRAPH_CLIENT_SECRET,
        "calendar_user": "finance@ledgerlinkdemo.onmicrosoft.com",
    }
    # the accounts-receivable mailbox and the finance attendee were each checked
    assert "mailbox finance@ledgerlinkdemo.onmicrosoft.com: ok, calendar open" in output
    assert "mailbox avery.chen@ledgerlinkdemo.onmicrosoft.com: ok, calendar open" in output
    assert "Calendars.ReadWrite" in output and GRAPH_CLIENT_SECRET not in output


def test_an_app_without_any_calendar_permission_is_named_with_what_it_lacks(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an app registered with only User.Read.All
    requests.post(
        f"{world.graph.url}/_admin/seed",
        json={
            "apps": [
                {
                    "clientId": "5a0e1f7c-0000-4000-8000-000000000001",
                    "clientSecret": "narrow-app-secret",
                    "displayName": "LedgerLink (narrow)",
                    "roles": ["User.Read.All"],
                }
            ]
        },
        timeout=10,
    )
    # when the operator connects it
    code, _ = run_microsoft(
        world, "--client-id", "5a0e1f7c-0000-4000-8000-000000000001", "--client-secret", "narrow-app-secret"
    )
    # then the mailbox it cannot open is named with what is missing, and nothing was stored
    assert code == 1
    error = capsys.readouterr().err
    assert (
        "the app cannot open the calendar of finance@ledgerlinkdemo.onmicrosoft.com (HTTP 403 "
        "ErrorAccessDenied: no Calendars.ReadWrite in Entra and no Exchange RBAC for Applications role "
        "assignment covering it)" in error
    )
    assert world.secret("graph") == {"configured": False}


def test_a_mailbox_that_does_not_exist_is_named(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the app with the calendar permission, and a mailbox name that is nobody's
    code, _ = run_microsoft(
        world,
        "--client-id",
        GRAPH_CLIENT_ID,
        "--client-secret",
        GRAPH_CLIENT_SECRET,
        "--mailbox",
        "nobody@ledgerlinkdemo.onmicrosoft.com",
    )
    assert code == 1
    assert (
        "the app cannot open the calendar of nobody@ledgerlinkdemo.onmicrosoft.com (HTTP 404 ErrorInvalidUser: "
        "no such user, or the user has no Exchange Online mailbox)" in capsys.readouterr().err
    )
    assert world.secret("graph") == {"configured": False}


def _seed_rbac_app(world: ConnectWorld, client_id: str, role: str, mailboxes: list[str]) -> None:
    """An Entra app with no calendar role, granted ``role`` through Exchange RBAC for Applications on
    ``mailboxes`` only (New-ManagementRoleAssignment -App ... -CustomResourceScope ...)."""
    app = {
        "clientId": client_id,
        "clientSecret": "scoped-app-secret",
        "displayName": "LedgerLink (finance mailboxes)",
        "roles": ["User.Read.All"],
        "exchangeRoleAssignments": [{"role": role, "mailboxes": mailboxes}],
    }
    requests.post(f"{world.graph.url}/_admin/seed", json={"apps": [app]}, timeout=10)


FINANCE_MAILBOXES = ["finance@ledgerlinkdemo.onmicrosoft.com", "avery.chen@ledgerlinkdemo.onmicrosoft.com"]


def test_an_app_scoped_to_the_finance_mailboxes_with_exchange_rbac_is_accepted(world: ConnectWorld) -> None:
    # given an app whose calendar permission is an Exchange RBAC grant on exactly the connection's
    # mailboxes (so the token's roles claim has no Calendars.ReadWrite)
    client_id = "5a0e1f7c-0000-4000-8000-0000000000a1"
    _seed_rbac_app(world, client_id, "Calendars.ReadWrite", FINANCE_MAILBOXES)
    # when the operator connects it, checking writes too
    code, output = run_microsoft(
        world, "--client-id", client_id, "--client-secret", "scoped-app-secret", "--check-write"
    )
    # then each mailbox was read and written, and the credentials are stored
    assert code == 0, output
    assert "Calendars.ReadWrite is not in the token, as with an Exchange RBAC for Applications" in output
    for mailbox in FINANCE_MAILBOXES:
        assert f"mailbox {mailbox}: ok, calendar read and written" in output
    assert world.secret("graph")["client_id"] == client_id
    # and the check left no event behind
    state = requests.get(f"{world.graph.url}/_admin/state", timeout=10).json()
    assert "LedgerLink connection check" not in json.dumps(state)


def test_a_mailbox_outside_the_rbac_scope_and_a_read_only_grant_are_named(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # given an app granted only "Application Calendars.Read", and on the accounts-receivable mailbox only
    client_id = "5a0e1f7c-0000-4000-8000-0000000000a2"
    _seed_rbac_app(world, client_id, "Calendars.Read", FINANCE_MAILBOXES[:1])
    # when the operator connects it with the write check
    code, _ = run_microsoft(
        world, "--client-id", client_id, "--client-secret", "scoped-app-secret", "--check-write"
    )
    # then the read-only mailbox and the mailbox outside the scope are each named, nothing is stored
    assert code == 1
    error = capsys.readouterr().err
    assert "the app cannot write to the calendar of finance@ledgerlinkdemo.onmicrosoft.com (HTTP 403" in error
    assert "the app cannot open the calendar of avery.chen@ledgerlinkdemo.onmicrosoft.com (HTTP 403" in error
    assert world.secret("graph") == {"configured": False}


def test_refused_credentials_are_reported_with_entras_code(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_microsoft(world, "--client-id", GRAPH_CLIENT_ID, "--client-secret", "wrong")
    assert code == 1
    assert "invalid_client AADSTS7000215" in capsys.readouterr().err
    assert world.secret("graph") == {"configured": False}


def test_a_user_who_declines_on_the_consent_page_is_told_so_and_nothing_is_stored(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    requests.post(f"{world.qbo.url}/_admin/config", json={"authorize_decision": "deny"}, timeout=10)
    code, _ = run_qbo(world, browser())
    assert code == 1
    assert "Intuit answered access_denied" in capsys.readouterr().err
    assert "refresh_token" not in world.secret("qbo")


def test_no_redirect_before_the_timeout_fails_saying_what_to_check(
    world: ConnectWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    code = run_connect_qbo(
        world.args("qbo", "--port", "0", "--no-browser", "--timeout", "1"), out, open_browser=lambda url: None
    )
    assert code == 1
    assert "no redirect to http://localhost:" in capsys.readouterr().err
    assert "refresh_token" not in world.secret("qbo")


def test_a_registered_https_redirect_uri_takes_the_pasted_url(world: ConnectWorld) -> None:
    # given production keys, whose redirect URI must be https (here a page the operator controls)
    redirect = "https://ops.example.com/ledgerlink/callback"
    landed: list[str] = []

    def paste(question: str) -> str:
        # the operator opened the printed URL; the browser landed on the https page: its URL is pasted
        (printed,) = re.findall(r"^  (http\S+)$", out.getvalue(), re.MULTILINE)
        answer = requests.get(printed, allow_redirects=False, timeout=10).headers["Location"]
        landed.append(answer)
        return answer

    out = io.StringIO()
    code = run_connect_qbo(world.args("qbo", "--redirect-uri", redirect), out, prompt=paste)
    assert code == 0, out.getvalue()
    assert landed and landed[0].startswith(redirect + "?")
    assert world.secret("qbo")["realm_id"] == DEMO_REALM_ID


def test_a_token_of_another_portal_is_refused(
    world: ConnectWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given connection demo configured for another portal than the one the token opens
    other = tmp_path / "other-portal.toml"
    other.write_text(CONFIG_FILE.read_text().replace('portal_id = "48213570"', 'portal_id = "77000001"'))
    monkeypatch.setenv(str(EnvVar.CONFIG_FILE), str(other))
    reset_settings_cache()
    reset_config_cache()
    # when the operator connects the token
    code, _ = run_hubspot(world, "--token", DEMO_ACCESS_TOKEN, "--client-secret", DEMO_CLIENT_SECRET)
    # then it is refused, naming both portals, and nothing was stored
    assert code == 1
    error = capsys.readouterr().err
    assert f"opens portal {DEMO_PORTAL_ID}" in error and "77000001" in error
    assert world.secret("hubspot") == {"configured": False}
