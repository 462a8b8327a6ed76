"""GraphAuth against the Graph sandbox's Entra ID token endpoint: client-credentials tokens per
connection, cached until near expiry, refreshed after a 401, and Entra's refusals classified."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from moto import mock_aws

from ledgerlink.clock import ManualClock
from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.graph.auth import EXPIRY_MARGIN_SECONDS, GraphAuth, token_policy
from ledgerlink.graph.errors import GraphAuthError, GraphCredentialsRejected, GraphTenantMismatch
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.ratelimit import InMemoryRateLimitStore
from ledgerlink.secrets import InMemorySecretStore, PowertoolsSecretStore, SecretDict
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from tests.unit.graph.support import (
    AR_MAILBOX,
    SandboxTime,
    admin,
    build,
    demo_connection,
    demo_secrets,
    graph_secret,
    requests_to,
    secret_name,
    settings_for,
    token_requests,
)


class CountingSecrets(InMemorySecretStore):
    """The in-memory store, counting reads and cache bypasses (what an operator's rotation relies on)."""

    def __init__(self, secrets: dict[str, Any]) -> None:
        super().__init__(secrets)
        self.reads = 0
        self.invalidated: list[str] = []

    def get_json(self, name: str) -> SecretDict:
        self.reads += 1
        return super().get_json(name)

    def invalidate(self, name: str) -> None:
        self.invalidated.append(name)


def test_a_token_is_minted_with_client_credentials_and_opens_graph(graph_sandbox: SandboxServer) -> None:
    # given the demo connection's Graph client
    graph = build(graph_sandbox)
    # when it makes its first call
    calendar = graph.client.calendar(AR_MAILBOX)
    # then it asked the connection's tenant for a token once, and Graph accepted it
    assert calendar.default_online_meeting_provider == "teamsForBusiness"
    assert token_requests(graph_sandbox) == [200]
    assert graph.auth.tokens_minted == 1
    assert graph.auth.app_id == DEMO_CLIENT_ID


def test_the_token_is_reused_until_near_expiry_then_replaced(graph_sandbox: SandboxServer) -> None:
    # given a token the sandbox issued for 3599 s, on the sandbox's clock
    time = SandboxTime(graph_sandbox)
    graph = build(graph_sandbox, clock=time)
    first = graph.auth.access_token()
    # when calls come until just before the margin, then they all use it
    time.sleep(3599 - EXPIRY_MARGIN_SECONDS - 1)
    graph.client.calendar(AR_MAILBOX)
    assert graph.auth.access_token() == first
    assert token_requests(graph_sandbox) == [200]
    # when the clock passes into the last five minutes of its life, then a new one is minted and used
    time.sleep(2)
    graph.client.calendar(AR_MAILBOX)
    assert graph.auth.access_token() != first
    assert token_requests(graph_sandbox) == [200, 200]


def test_a_short_lived_token_is_kept_for_half_its_life(graph_sandbox: SandboxServer) -> None:
    # given a tenant that issues 120-second tokens
    admin(graph_sandbox, "PATCH", "config", {"token_lifetime_seconds": 120})
    time = SandboxTime(graph_sandbox)
    graph = build(graph_sandbox, clock=time)
    first = graph.auth.access_token()
    # then it is not replaced on every call (a 5-minute margin would), but after half its life
    time.sleep(59)
    assert graph.auth.access_token() == first
    time.sleep(2)
    assert graph.auth.access_token() != first


def test_a_token_graph_refuses_is_replaced_once_and_the_call_goes_through(
    graph_sandbox: SandboxServer,
) -> None:
    # given a cached token this process still thinks fresh (its clock stands still)
    graph = build(graph_sandbox, clock=ManualClock())
    graph.client.calendar(AR_MAILBOX)
    # when the sandbox's clock passes the token's expiry, so Graph answers 401
    graph_sandbox.sandbox.clock.advance(3600)
    calendar = graph.client.calendar(AR_MAILBOX)
    # then the client minted a new token and repeated the call, which succeeded
    assert calendar.id
    statuses = [entry["status"] for entry in requests_to(graph_sandbox, "/v1.0/")]
    assert statuses == [200, 401, 200]
    assert token_requests(graph_sandbox) == [200, 200]


def test_force_refresh_mints_a_new_token(graph_sandbox: SandboxServer) -> None:
    graph = build(graph_sandbox)
    first = graph.auth.access_token()
    assert graph.auth.access_token(force_refresh=True) != first
    assert graph.auth(force_refresh=False) == {"Authorization": f"Bearer {graph.auth.access_token()}"}
    assert token_requests(graph_sandbox) == [200, 200]


def test_a_revoked_secret_fails_the_connection_naming_the_secret_and_the_code(
    graph_sandbox: SandboxServer,
) -> None:
    # given the app's secret deleted from its registration in Entra
    secrets = CountingSecrets({secret_name(): graph_secret()})
    graph = build(graph_sandbox, secrets=secrets)
    admin(graph_sandbox, "POST", "apps/revoke-secret", {})
    # when the connection needs a token
    with pytest.raises(GraphCredentialsRejected) as raised:
        graph.client.calendar(AR_MAILBOX)
    error = raised.value
    # then it is the connection's permanent failure, saying which secret, which code and what to do
    text = str(error)
    assert secret_name() in text and "AADSTS7000215" in text and "invalid_client" in text
    assert "update the secret" in text and "replay the dead-letter queue" in text
    assert DEMO_CLIENT_SECRET not in text and DEMO_CLIENT_SECRET not in repr(error)
    assert (error.retryable, error.connection_wide, error.aadsts) == (False, True, "AADSTS7000215")
    classified = classify(error)
    assert (classified.retryable, classified.scope) == (False, FailureScope.SHARED)
    # and before giving up it looked past the secret cache once (the secret was unchanged: one request)
    assert secrets.invalidated == [secret_name()]
    assert token_requests(graph_sandbox) == [401]
    # and nothing reached Graph
    assert requests_to(graph_sandbox, "/v1.0/") == []


def test_an_expired_secret_names_its_own_code(graph_sandbox: SandboxServer) -> None:
    admin(graph_sandbox, "POST", "apps/expire-secret", {})
    with pytest.raises(GraphCredentialsRejected, match="AADSTS7000222"):
        build(graph_sandbox).auth.access_token()


def test_an_app_unknown_to_the_tenant_is_rejected(graph_sandbox: SandboxServer) -> None:
    graph = build(graph_sandbox, secrets=demo_secrets(client_id="0e5c1b7a-0000-4000-8000-000000000000"))
    with pytest.raises(GraphCredentialsRejected) as raised:
        graph.auth.access_token()
    assert raised.value.aadsts == "AADSTS700016" and "unauthorized_client" in str(raised.value)


def test_a_tenant_entra_does_not_know_is_rejected(graph_sandbox: SandboxServer) -> None:
    unknown = "00000000-1111-4222-8333-444444444444"
    # given a connection configured for a tenant Entra does not know (the secret names none)
    graph = build(
        graph_sandbox,
        connection=demo_connection(tenant_id=unknown),
        secrets=InMemorySecretStore({secret_name(): graph_secret(tenant_id=None)}),
    )
    # then its token request is refused for good, naming Entra's code
    with pytest.raises(GraphCredentialsRejected) as raised:
        graph.auth.access_token()
    assert raised.value.aadsts == "AADSTS90002" and not raised.value.retryable
    assert [entry["path"] for entry in requests_to(graph_sandbox, f"/{unknown}/")] == [
        f"/{unknown}/oauth2/v2.0/token"
    ]


def test_a_secret_for_another_tenant_is_refused_before_anything_is_sent(graph_sandbox: SandboxServer) -> None:
    other = "7b0f6a2c-5555-4666-8777-888888888888"
    graph = build(graph_sandbox, secrets=demo_secrets(tenant_id=other))
    with pytest.raises(GraphTenantMismatch) as raised:
        graph.client.calendar(AR_MAILBOX)
    text = str(raised.value)
    assert other in text and DEMO_TENANT_ID in text and secret_name() in text
    assert DEMO_CLIENT_SECRET not in text
    assert classify(raised.value).scope is FailureScope.SHARED and not raised.value.retryable
    assert list(graph_sandbox.sandbox.request_log) == []


def test_a_secret_without_a_client_secret_is_refused(graph_sandbox: SandboxServer) -> None:
    graph = build(graph_sandbox, secrets=demo_secrets(client_secret=None))
    with pytest.raises(GraphAuthError, match="lacks client_secret"):
        graph.auth.access_token()
    assert token_requests(graph_sandbox) == []


def test_a_transient_entra_failure_is_retried(graph_sandbox: SandboxServer) -> None:
    # given Entra answering 503 once
    admin(graph_sandbox, "POST", "faults", {"kind": "503", "path_prefix": f"/{DEMO_TENANT_ID}/", "count": 1})
    time = SandboxTime(graph_sandbox)
    # when a token is needed, then the token call is retried after a backoff and succeeds
    assert build(graph_sandbox, clock=time).auth.access_token()
    assert token_requests(graph_sandbox) == [503, 200]
    assert len(time.sleeps) == 1


# ----------------------------------------------------------------------------- a rotation by an operator


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name=secret_name(), SecretString=json.dumps(graph_secret()))
        yield client


def test_a_secret_rotated_by_an_operator_is_used_at_once(
    graph_sandbox: SandboxServer, secretsmanager: Any
) -> None:
    # given a connection whose secret this process has read and caches for five minutes
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)
    graph = build(graph_sandbox, secrets=store)
    graph.client.calendar(AR_MAILBOX)
    # when an operator rotates the app's secret in Entra and stores the new one in Secrets Manager
    rotated = admin(graph_sandbox, "POST", "apps/rotate-secret", {})["clientSecret"]
    secretsmanager.put_secret_value(
        SecretId=secret_name(), SecretString=json.dumps(graph_secret(client_secret=rotated))
    )
    # and the cached token has to be replaced (Graph refused it)
    token = graph.auth.access_token(force_refresh=True)
    # then the forced refresh read the secret past the cache first: the new one was used, the old cached
    # one never sent again
    assert token
    assert token_requests(graph_sandbox) == [200, 200]
    assert graph.client.calendar(AR_MAILBOX).id


def test_the_token_request_is_the_documented_form(graph_sandbox: SandboxServer) -> None:
    # given a token client whose session records what goes on the wire
    sent: list[requests.PreparedRequest] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(response.request))
    settings = settings_for(graph_sandbox)
    auth = GraphAuth(
        secret_name=secret_name(),
        tenant_id=DEMO_TENANT_ID,
        secrets=demo_secrets(),
        token_http=VendorHttpClient(
            token_policy(settings),
            rate_limit_store=InMemoryRateLimitStore(),
            breaker_store=InMemoryBreakerStore(),
            session=session,
        ),
        token_url=settings.graph_token_url,
    )
    # when it mints a token
    assert auth.access_token()
    # then it posted Entra's client-credentials form to the tenant's token endpoint
    form = parse_qs(str(sent[0].body))
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [DEMO_CLIENT_ID],
        "client_secret": [DEMO_CLIENT_SECRET],
        "scope": ["https://graph.microsoft.com/.default"],
    }
    assert sent[0].method == "POST"
    assert sent[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent[0].url == f"{graph_sandbox.url}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
