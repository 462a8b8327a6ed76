"""Graph sandbox: the Entra ID client-credentials endpoint and bearer-token checks on Graph calls.

Expected field sets are written down from Microsoft's docs (client-credentials flow response;
AADSTS error response sample; Graph error resource with innerError).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_CALENDAR_USER,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_DOMAIN,
    DEMO_TENANT_ID,
    DemoCredentials,
)
from tests.conftest import REPO_ROOT
from tests.unit.sandboxes.graph_support import GRAPH_SCOPE, get_token, token_form

# https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow (successful response)
TOKEN_RESPONSE_FIELDS = {"token_type", "expires_in", "ext_expires_in", "access_token"}
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes (sample error response)
ENTRA_ERROR_FIELDS = {
    "error",
    "error_description",
    "error_codes",
    "timestamp",
    "trace_id",
    "correlation_id",
    "error_uri",
}
# https://learn.microsoft.com/graph/errors (error resource) with the innerError Graph adds
GRAPH_INNER_ERROR_FIELDS = {"date", "request-id", "client-request-id"}


def assert_graph_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert set(error["innerError"]) >= GRAPH_INNER_ERROR_FIELDS
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return error


def test_client_credentials_token_opens_graph(graph_sandbox: SandboxServer) -> None:
    # given the demo app's credentials
    credentials = DemoCredentials.for_sandbox(graph_sandbox.url)
    # when it asks Entra for an app-only Graph token
    reply = get_token(graph_sandbox)
    # then the answer has exactly the documented fields, and the token reads the calendar user
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == TOKEN_RESPONSE_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert body["access_token"].count(".") == 2  # JWT compact form
    assert reply.headers["Cache-Control"].startswith("no-store")
    user = requests.get(
        f"{credentials.base_url}/users/{DEMO_CALENDAR_USER}",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=5,
    )
    assert user.status_code == 200
    assert user.json()["userPrincipalName"] == DEMO_CALENDAR_USER
    assert user.json()["mail"] == DEMO_CALENDAR_USER


def test_token_endpoint_accepts_the_tenant_domain_and_http_basic_client_auth(
    graph_sandbox: SandboxServer,
) -> None:
    # given client credentials sent as HTTP Basic (client_secret_basic) to the domain-named tenant
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    # when the token is requested
    reply = requests.post(
        f"{graph_sandbox.url}/{DEMO_TENANT_DOMAIN}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
        headers={"Authorization": f"Basic {basic}"},
        timeout=5,
    )
    # then Entra issues it as for form credentials
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "Bearer"


def test_wrong_secret_is_refused_as_entra_does(graph_sandbox: SandboxServer) -> None:
    # when the app presents a wrong secret
    reply = get_token(graph_sandbox, client_secret="not-the-secret")
    # then 401 invalid_client AADSTS7000215 in Entra's documented shape, secret never echoed
    assert reply.status_code == 401
    body = reply.json()
    assert set(body) == ENTRA_ERROR_FIELDS
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID: " + body["trace_id"] in body["error_description"]
    assert "not-the-secret" not in reply.text and DEMO_CLIENT_SECRET not in reply.text


@pytest.mark.parametrize(
    ("tenant", "overrides", "status", "error", "code"),
    [
        ("00000000-0000-0000-0000-000000000000", {}, 400, "invalid_request", 90002),
        (
            DEMO_TENANT_ID,
            {"scope": "https://graph.microsoft.com/Calendars.ReadWrite"},
            400,
            "invalid_scope",
            1002012,
        ),
        (DEMO_TENANT_ID, {"scope": "https://example.com/.default"}, 400, "invalid_resource", 500011),
        (DEMO_TENANT_ID, {"scope": f"{GRAPH_SCOPE} offline_access"}, 400, "invalid_scope", 70011),
        (DEMO_TENANT_ID, {"scope": None}, 400, "invalid_request", 900144),
        (DEMO_TENANT_ID, {"grant_type": None}, 400, "invalid_request", 900144),
        (DEMO_TENANT_ID, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        (
            DEMO_TENANT_ID,
            {"client_id": "11111111-2222-3333-4444-555555555555"},
            400,
            "unauthorized_client",
            700016,
        ),
        (DEMO_TENANT_ID, {"client_secret": None}, 401, "invalid_client", 7000218),
    ],
)
def test_bad_token_requests_get_the_entra_error(
    graph_sandbox: SandboxServer, tenant: str, overrides: dict, status: int, error: str, code: int
) -> None:
    # when a token request is wrong in one way
    reply = requests.post(
        f"{graph_sandbox.url}/{tenant}/oauth2/v2.0/token", data=token_form(**overrides), timeout=5
    )
    # then Entra's status, error and AADSTS code name the problem
    assert reply.status_code == status
    body = reply.json()
    assert set(body) == ENTRA_ERROR_FIELDS
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def test_token_expires_on_the_sandbox_clock(graph_sandbox: SandboxServer) -> None:
    # given a fresh token that works
    token = get_token(graph_sandbox).json()["access_token"]
    url = f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}/events"
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    # when the clock passes its 3599-second lifetime
    requests.post(f"{graph_sandbox.url}/_admin/clock", json={"advance_seconds": 3600}, timeout=5)
    # then Graph refuses it as expired, and a new token works again
    expired = requests.get(url, headers=headers, timeout=5)
    error = assert_graph_error(expired, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Lifetime validation failed, the token is expired."
    fresh = get_token(graph_sandbox).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {fresh}"}, timeout=5).status_code == 200


def test_token_lifetime_is_configurable(graph_sandbox: SandboxServer) -> None:
    requests.patch(f"{graph_sandbox.url}/_admin/config", json={"token_lifetime_seconds": 60}, timeout=5)
    assert get_token(graph_sandbox).json()["expires_in"] == 60


@pytest.mark.parametrize(
    ("authorization", "message_start"),
    [
        (None, "Access token is empty."),
        ("Bearer ", "Access token is empty."),
        ("Basic abc", "Access token is empty."),
        ("Bearer not-a-jwt", "IDX14100: JWT is not well formed, there are no dots (.)."),
    ],
)
def test_missing_or_malformed_token_gets_graphs_401(
    graph_sandbox: SandboxServer, authorization: str | None, message_start: str
) -> None:
    # when Graph is called without a usable token, naming our own client-request-id
    headers = {"client-request-id": "3f9a6c1e-0000-4000-8000-00000000abcd"}
    if authorization is not None:
        headers["Authorization"] = authorization
    reply = requests.get(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}/events", headers=headers, timeout=5
    )
    # then 401 InvalidAuthenticationToken with innerError, WWW-Authenticate, ids echoed
    error = assert_graph_error(reply, 401, "InvalidAuthenticationToken")
    assert error["message"].startswith(message_start)
    assert error["innerError"]["client-request-id"] == "3f9a6c1e-0000-4000-8000-00000000abcd"
    assert reply.headers["client-request-id"] == "3f9a6c1e-0000-4000-8000-00000000abcd"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer ")


def test_a_token_with_altered_claims_is_refused(graph_sandbox: SandboxServer) -> None:
    # given a real token whose payload is edited to add a role
    header, payload, signature = get_token(graph_sandbox).json()["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 86400
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    # when it is presented
    reply = requests.get(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}",
        headers={"Authorization": f"Bearer {header}.{forged}.{signature}"},
        timeout=5,
    )
    # then the signature check refuses it
    assert_graph_error(reply, 401, "InvalidAuthenticationToken")


def test_an_app_without_calendar_permission_is_denied(graph_sandbox: SandboxServer) -> None:
    # given a second app registration granted only User.Read.All
    requests.post(
        f"{graph_sandbox.url}/_admin/seed",
        json={"apps": [{"clientId": "app-readonly", "clientSecret": "s3cret", "roles": ["User.Read.All"]}]},
        timeout=5,
    )
    token = get_token(graph_sandbox, client_id="app-readonly", client_secret="s3cret").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # when it reads users and then a calendar
    users = requests.get(f"{graph_sandbox.url}/v1.0/users", headers=headers, timeout=5)
    events = requests.get(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}/events", headers=headers, timeout=5
    )
    # then users are readable and the calendar is 403 ErrorAccessDenied
    assert users.status_code == 200 and len(users.json()["value"]) >= 4
    assert_graph_error(events, 403, "ErrorAccessDenied")


def test_an_exchange_rbac_grant_opens_the_scoped_mailboxes_only_and_is_not_in_the_token(
    graph_sandbox: SandboxServer,
) -> None:
    # given an app with no Entra calendar role, granted "Application Calendars.ReadWrite" through Exchange
    # RBAC for Applications on the finance mailbox only
    grant = {"role": "Calendars.ReadWrite", "mailboxes": [DEMO_CALENDAR_USER]}
    app = {"clientId": "app-rbac", "clientSecret": "s3cret", "roles": [], "exchangeRoleAssignments": [grant]}
    requests.post(f"{graph_sandbox.url}/_admin/seed", json={"apps": [app]}, timeout=5)
    token = get_token(graph_sandbox, client_id="app-rbac", client_secret="s3cret").json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    # when it opens the finance calendar, writes an event there, and opens another user's calendar
    calendar = requests.get(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}/calendar", headers=headers, timeout=5
    )
    event = {
        "subject": "Invoice 1006 due",
        "start": {"dateTime": "2027-01-05T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2027-01-05T09:30:00", "timeZone": "UTC"},
    }
    written = requests.post(
        f"{graph_sandbox.url}/v1.0/users/{DEMO_CALENDAR_USER}/events", json=event, headers=headers, timeout=5
    )
    other = requests.get(
        f"{graph_sandbox.url}/v1.0/users/avery.chen@ledgerlinkdemo.onmicrosoft.com/calendar",
        headers=headers,
        timeout=5,
    )
    # then the scoped mailbox is open for reads and writes, the other is denied, and the token's roles
    # claim is empty: Exchange grants are not Entra app roles
    assert calendar.status_code == 200 and written.status_code == 201, written.text
    assert_graph_error(other, 403, "ErrorAccessDenied")
    payload = token.split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("roles", []) == []


def test_me_needs_a_delegated_token(graph_sandbox: SandboxServer) -> None:
    token = get_token(graph_sandbox).json()["access_token"]
    reply = requests.get(
        f"{graph_sandbox.url}/v1.0/me/events", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    error = assert_graph_error(reply, 400, "BadRequest")
    assert error["message"] == "/me request is only valid with delegated authentication flow."


def test_unknown_user_answers_as_the_directory_does(graph_sandbox: SandboxServer) -> None:
    token = get_token(graph_sandbox).json()["access_token"]
    reply = requests.get(
        f"{graph_sandbox.url}/v1.0/users/nobody@{DEMO_TENANT_DOMAIN}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert_graph_error(reply, 404, "Request_ResourceNotFound")


def test_openid_configuration_names_the_token_endpoint(graph_sandbox: SandboxServer) -> None:
    reply = requests.get(
        f"{graph_sandbox.url}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration", timeout=5
    )
    assert reply.status_code == 200
    assert reply.json()["token_endpoint"] == DemoCredentials.for_sandbox(graph_sandbox.url).token_url


def test_demo_credentials_carry_the_keys_the_local_stack_writes(graph_sandbox: SandboxServer) -> None:
    credentials = DemoCredentials.for_sandbox(graph_sandbox.url + "/")
    assert set(credentials.as_dict()) == {
        "base_url",
        "token_url",
        "tenant_id",
        "client_id",
        "client_secret",
        "calendar_user",
    }
    assert credentials.base_url == graph_sandbox.url + "/v1.0"
    assert credentials.token_url == f"{graph_sandbox.url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"


def test_runs_on_its_own_from_the_command_line(unused_tcp_port: int) -> None:
    # when the module is started as a program on a chosen port
    process = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter and our module
        [sys.executable, "-m", "ledgerlink_local.sandboxes.graph", "--port", str(unused_tcp_port)],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT / 'local'}:{REPO_ROOT / 'functions'}", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        # then it announces its URL and answers health and token requests there
        assert announced["vendor"] == "graph"
        assert announced["url"].endswith(f":{unused_tcp_port}")
        deadline = time.monotonic() + 10
        while True:
            try:
                health = requests.get(announced["admin"] + "/health", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
        assert health.json() == {"status": "ok", "vendor": "graph"}
        token = requests.post(
            DemoCredentials.for_sandbox(announced["url"]).token_url, data=token_form(), timeout=5
        )
        assert token.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------------------- client secrets at runtime


def entra_code(reply: requests.Response) -> tuple[int, str, list[int]]:
    body = reply.json()
    assert set(body) >= ENTRA_ERROR_FIELDS
    return reply.status_code, body["error"], body["error_codes"]


def test_a_revoked_secret_is_refused_until_a_new_one_is_rotated_in(graph_sandbox: SandboxServer) -> None:
    # given the demo app's secret, which works
    assert get_token(graph_sandbox).status_code == 200
    # when an administrator deletes it from the app registration
    revoked = requests.post(f"{graph_sandbox.url}/_admin/apps/revoke-secret", json={}, timeout=5)
    # then the registration says so (never the secret), and Entra refuses it as a wrong secret
    assert revoked.status_code == 200 and revoked.json()["secretState"] == "revoked"
    assert DEMO_CLIENT_SECRET not in revoked.text
    assert entra_code(get_token(graph_sandbox)) == (401, "invalid_client", [7000215])
    # when a new secret is added, then it works and the old one still does not
    rotated = requests.post(
        f"{graph_sandbox.url}/_admin/apps/rotate-secret", json={"clientId": DEMO_CLIENT_ID}, timeout=5
    ).json()
    assert rotated["clientSecret"] and rotated["clientSecret"] != DEMO_CLIENT_SECRET
    assert get_token(graph_sandbox, client_secret=rotated["clientSecret"]).status_code == 200
    assert entra_code(get_token(graph_sandbox)) == (401, "invalid_client", [7000215])
    # and a reset brings the demo secret back
    requests.post(f"{graph_sandbox.url}/_admin/reset", timeout=5)
    assert get_token(graph_sandbox).status_code == 200


def test_a_rotation_can_name_the_new_secret(graph_sandbox: SandboxServer) -> None:
    requests.post(
        f"{graph_sandbox.url}/_admin/apps/rotate-secret", json={"clientSecret": "chosen~secret"}, timeout=5
    )
    assert get_token(graph_sandbox, client_secret="chosen~secret").status_code == 200
    assert get_token(graph_sandbox).status_code == 401


def test_an_expired_secret_gets_its_own_code(graph_sandbox: SandboxServer) -> None:
    requests.post(f"{graph_sandbox.url}/_admin/apps/expire-secret", json={}, timeout=5)
    reply = get_token(graph_sandbox)
    assert entra_code(reply) == (401, "invalid_client", [7000222])
    assert reply.json()["error_description"].startswith("AADSTS7000222: ")
    # a wrong secret is still just wrong
    assert entra_code(get_token(graph_sandbox, client_secret="nope")) == (401, "invalid_client", [7000215])


def test_secret_actions_name_a_known_app(graph_sandbox: SandboxServer) -> None:
    reply = requests.post(
        f"{graph_sandbox.url}/_admin/apps/revoke-secret", json={"clientId": "no-such-app"}, timeout=5
    )
    assert reply.status_code == 400 and "no-such-app" in reply.json()["error"]
    assert get_token(graph_sandbox).status_code == 200


def test_the_demo_companys_domain_is_a_verified_domain_of_the_tenant(graph_sandbox: SandboxServer) -> None:
    # when the token endpoint is addressed by the company's domain, then it is the demo tenant
    reply = requests.post(
        f"{graph_sandbox.url}/northwind-demo.example/oauth2/v2.0/token", data=token_form(), timeout=5
    )
    assert reply.status_code == 200
    state = requests.get(f"{graph_sandbox.url}/_admin/state", timeout=5).json()
    assert state["tenant"]["verifiedDomains"] == [DEMO_TENANT_DOMAIN, "northwind-demo.example"]
