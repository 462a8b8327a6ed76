"""QBO OAuth: one refresh for many workers, rotation stored back, a revoked connection alarmed and
failed fast. Against the QBO sandbox's token endpoint and moto (DynamoDB vendor-state table, Secrets
Manager); each "worker" has its own objects and clients and shares only the table and the secret, as
concurrent Lambdas do."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto import mock_aws

from ledgerlink.clock import ManualClock
from ledgerlink.config import Settings
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.policy import qbo_policy
from ledgerlink.qbo.client import QboClient
from ledgerlink.qbo.oauth import (
    DynamoDBTokenStateStore,
    QboConnectionRevoked,
    QboOAuth,
    token_endpoint,
    token_policy,
)
from ledgerlink.secrets import PowertoolsSecretStore, SecretError
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REALM_ID,
    DEMO_REDIRECT_URI,
    DEMO_REFRESH_TOKEN,
)
from tests.integration.test_deal_sync_support import QBO_SECRET, TABLES, create_aws_resources, environment

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
# moto evaluates a conditional write in the caller's thread without a lock, so two threads can both
# pass the same condition; DynamoDB never lets that happen. One lock around every call of the workers'
# clients gives the fake the atomicity of the real table (the code under test is unchanged).
_MOTO_LOCK = threading.Lock()


class AtomicCalls:
    """A boto3 client whose API calls run one at a time, as DynamoDB's conditional writes are atomic."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with _MOTO_LOCK:
                return attribute(*args, **kwargs)

        return call


@dataclass
class Alarms:
    raised: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, name: str, fields: Mapping[str, Any]) -> None:
        self.raised.append((name, dict(fields)))


@dataclass
class OAuthWorld:
    qbo: SandboxServer
    settings: Settings
    alarms: Alarms

    def worker(self, *, secrets: Any = None, clock: Any = None) -> QboOAuth:
        """A new "Lambda": its own boto3 clients, secret cache, HTTP client and memo."""
        store = secrets or PowertoolsSecretStore(
            max_age_seconds=300, client=boto3.client("secretsmanager", region_name="us-east-1")
        )
        _, path = token_endpoint(self.settings.qbo_token_url)
        return QboOAuth(
            secret_name=QBO_SECRET,
            secrets=store,
            state=DynamoDBTokenStateStore(
                TABLES["vendor-state"], AtomicCalls(boto3.client("dynamodb", region_name="us-east-1"))
            ),
            token_http=in_process_client(token_policy(self.settings)),
            token_path=path,
            clock=clock,
            alarm=self.alarms,
        )

    def token_calls(self) -> int:
        log = requests.get(f"{self.qbo.url}/_admin/requests", timeout=10).json()["requests"]
        return sum(1 for entry in log if entry["path"] == TOKEN_PATH)

    def secret(self) -> dict[str, Any]:
        client = boto3.client("secretsmanager", region_name="us-east-1")
        value: dict[str, Any] = json.loads(client.get_secret_value(SecretId=QBO_SECRET)["SecretString"])
        return value

    def admin(self, action: str, body: Any = None) -> Any:
        return requests.post(f"{self.qbo.url}/_admin/{action}", json=body or {}, timeout=10).json()


@pytest.fixture
def oauth_world(qbo_sandbox: SandboxServer) -> Iterator[OAuthWorld]:
    with mock_aws():
        create_aws_resources()
        settings = Settings.from_env(environment(qbo_sandbox.url, "http://127.0.0.1:9"))
        yield OAuthWorld(qbo_sandbox, settings, Alarms())


def test_many_workers_finding_the_token_expired_refresh_it_exactly_once(oauth_world: OAuthWorld) -> None:
    # given eight Lambdas that all start with no valid access token
    workers = [oauth_world.worker() for _ in range(8)]
    start = threading.Barrier(len(workers))
    tokens: list[str] = []
    errors: list[BaseException] = []

    def run(worker: QboOAuth) -> None:
        start.wait()
        try:
            tokens.append(worker.access_token())
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    # when they all ask for a token at the same moment
    threads = [threading.Thread(target=run, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then Intuit's token endpoint was called once, and every worker uses that one token
    assert errors == []
    assert oauth_world.token_calls() == 1
    assert len(tokens) == 8 and len(set(tokens)) == 1
    # and the rotated refresh token was stored back to the secret (the demo one is now superseded)
    stored = oauth_world.secret()
    assert stored["refresh_token"] != DEMO_REFRESH_TOKEN
    assert {stored["client_id"], stored["realm_id"]} == {DEMO_CLIENT_ID, DEMO_REALM_ID}


def test_a_worker_reuses_the_token_another_worker_refreshed(oauth_world: OAuthWorld) -> None:
    # given one worker refreshed the token
    first = oauth_world.worker().access_token()

    # when a second worker (a new Lambda, empty memory) needs one
    second = oauth_world.worker().access_token()

    # then it reads it from the shared state without calling Intuit
    assert second == first
    assert oauth_world.token_calls() == 1


def test_an_access_token_the_api_rejects_is_refreshed_once_and_the_call_succeeds(
    oauth_world: OAuthWorld,
) -> None:
    # given a QBO client whose token worked, then expired early on Intuit's side
    oauth = oauth_world.worker()
    client = QboClient(in_process_client(qbo_policy(oauth_world.settings), oauth), minor_version="75")
    assert client.home_currency(DEMO_REALM_ID) == "USD"
    oauth_world.admin("oauth/expire-access-tokens")

    # when the next call is made
    currency = client.home_currency(DEMO_REALM_ID)

    # then the 401 led to exactly one more refresh and the call succeeded
    assert currency == "USD"
    assert oauth_world.token_calls() == 2


def test_a_token_about_to_expire_is_refreshed_before_it_fails(oauth_world: OAuthWorld) -> None:
    # given a worker whose clock says the token expires within the safety margin
    clock = ManualClock()
    import time as _time

    clock.set(_time.time())
    worker = oauth_world.worker(clock=clock)
    first = worker.access_token()
    clock.advance(3600 - 120)

    # when it needs a token again
    second = worker.access_token()

    # then it refreshed ahead of expiry
    assert second != first
    assert oauth_world.token_calls() == 2


def test_a_revoked_connection_alarms_once_and_every_worker_then_fails_fast(
    oauth_world: OAuthWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # given a working connection that the user then disconnected in QBO
    worker = oauth_world.worker()
    worker.access_token()
    oauth_world.admin("oauth/revoke")
    before = oauth_world.token_calls()

    # when QBO rejects the worker's access token and it refreshes
    with caplog.at_level(logging.INFO), pytest.raises(QboConnectionRevoked) as raised:
        worker.access_token(force_refresh=True)

    # then the error says what to do, it is not retryable, one alarm and one ERROR log were raised
    assert "re-authorise the app" in str(raised.value) and raised.value.retryable is False
    assert [name for name, _ in oauth_world.alarms.raised] == ["QboConnectionRevoked"]
    assert any(r.levelno == logging.ERROR and "invalid_grant" in r.getMessage() for r in caplog.records)
    # both refresh tokens known (the state's and the secret's, here the same) were tried once
    assert oauth_world.token_calls() == before + 1

    # and other workers fail at once, without calling Intuit or alarming again
    for _ in range(3):
        with pytest.raises(QboConnectionRevoked):
            oauth_world.worker().access_token()
    assert oauth_world.token_calls() == before + 1
    assert len(oauth_world.alarms.raised) == 1


def test_a_re_authorised_connection_works_again(oauth_world: OAuthWorld) -> None:
    # given a revoked connection that workers have given up on
    worker = oauth_world.worker()
    worker.access_token()
    oauth_world.admin("oauth/revoke")
    with pytest.raises(QboConnectionRevoked):
        worker.access_token(force_refresh=True)

    # when the user re-authorises the app and the new refresh token goes into the secret
    authorize = requests.get(
        f"{oauth_world.qbo.url}/connect/oauth2",
        params={
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": DEMO_REDIRECT_URI,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "state": "s1",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    granted = requests.post(
        oauth_world.settings.qbo_token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    ).json()
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=QBO_SECRET,
        SecretString=json.dumps({**oauth_world.secret(), "refresh_token": granted["refresh_token"]}),
    )

    # then a worker gets a token again (the old token kept in the state is refused, the secret's works)
    token = oauth_world.worker().access_token()
    assert token
    assert oauth_world.secret()["refresh_token"] not in (granted["refresh_token"], DEMO_REFRESH_TOKEN)


def _reauthorise(oauth_world: OAuthWorld) -> str:
    """The user connects the app again (authorize, then the code exchanged); the new refresh token."""
    authorize = requests.get(
        f"{oauth_world.qbo.url}/connect/oauth2",
        params={
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": DEMO_REDIRECT_URI,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "state": "s2",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    granted = requests.post(
        oauth_world.settings.qbo_token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URI},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    ).json()
    token = str(granted["refresh_token"])
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=QBO_SECRET, SecretString=json.dumps({**oauth_world.secret(), "refresh_token": token})
    )
    return token


def test_a_reconnect_reaches_a_worker_that_gave_up_at_once_despite_its_secret_cache(
    oauth_world: OAuthWorld,
) -> None:
    # given a worker (a 300 s secret cache) that found the connection revoked
    worker = oauth_world.worker()
    worker.access_token()
    oauth_world.admin("oauth/revoke")
    with pytest.raises(QboConnectionRevoked):
        worker.access_token(force_refresh=True)

    # when the operator reconnects (a new grant in the secret), seconds later
    _reauthorise(oauth_world)

    # then that same worker gets a token on its next call: the revoked token's fingerprint made it read
    # the secret past its cache once, instead of failing for the cache's remaining five minutes
    assert worker.access_token()
    assert oauth_world.alarms.raised == [("QboConnectionRevoked", oauth_world.alarms.raised[0][1])]


def test_a_worker_whose_cached_grant_is_refused_reads_the_secret_again_and_retries_once(
    oauth_world: OAuthWorld,
) -> None:
    # given a worker holding the secret in its cache, and a connection revoked then reconnected before
    # the worker noticed (its access token and both refresh tokens it knows are dead)
    worker = oauth_world.worker()
    worker.access_token()
    assert worker.realm_id() == DEMO_REALM_ID  # the secret, rotated, read into the worker's cache
    oauth_world.admin("oauth/revoke")
    new_grant = _reauthorise(oauth_world)
    before = oauth_world.token_calls()

    # when QBO rejects its access token and it refreshes
    token = worker.access_token(force_refresh=True)

    # then it tried what it knew (refused), re-read the secret, and the new grant worked: one more call
    assert token
    assert oauth_world.token_calls() == before + 2
    assert oauth_world.alarms.raised == []
    assert oauth_world.secret()["refresh_token"] not in (new_grant, DEMO_REFRESH_TOKEN)  # rotated, stored


def test_a_revoked_connection_without_a_new_grant_fails_after_one_fresh_read(oauth_world: OAuthWorld) -> None:
    # given a revoked connection whose secret still holds the refused grant
    worker = oauth_world.worker()
    worker.access_token()
    oauth_world.admin("oauth/revoke")
    before = oauth_world.token_calls()

    # when the worker refreshes: refused, the secret re-read is the same token, so no further call
    with pytest.raises(QboConnectionRevoked):
        worker.access_token(force_refresh=True)
    assert oauth_world.token_calls() == before + 1


class UnwritableSecrets(PowertoolsSecretStore):
    """Secrets Manager that can be read but refuses writes (a missing IAM permission, an outage)."""

    def put_json(self, name: str, value: Mapping[str, Any]) -> None:
        raise SecretError(f"secret {name!r} could not be stored (AccessDeniedException)")


def test_a_rotated_refresh_token_that_cannot_reach_the_secret_is_kept_and_used(
    oauth_world: OAuthWorld,
) -> None:
    # given the secret cannot be written
    def unwritable() -> UnwritableSecrets:
        return UnwritableSecrets(
            max_age_seconds=300, client=boto3.client("secretsmanager", region_name="us-east-1")
        )

    # when a worker refreshes (Intuit rotates the refresh token and supersedes the secret's)
    worker = oauth_world.worker(secrets=unwritable())
    first = worker.access_token()
    assert oauth_world.secret()["refresh_token"] == DEMO_REFRESH_TOKEN  # not stored
    oauth_world.admin("oauth/expire-access-tokens")

    # then the next refresh still works, with the rotated token kept in the shared state
    second = worker.access_token(force_refresh=True)
    assert second != first
    assert [name for name, _ in oauth_world.alarms.raised] == ["QboRefreshTokenNotStored"] * 2


def test_no_token_reaches_a_log_line(
    oauth_world: OAuthWorld, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # given refreshes, a rotation and a revocation
    with caplog.at_level(logging.DEBUG):
        worker = oauth_world.worker()
        access = worker.access_token()
        rotated = oauth_world.secret()["refresh_token"]
        oauth_world.admin("oauth/revoke")
        with pytest.raises(QboConnectionRevoked) as raised:
            worker.access_token(force_refresh=True)

    # then no log line, printed output, error or repr carries a token or the client secret
    # (LedgerLink's own loggers; botocore's DEBUG output is off in Lambda and logs request bodies)
    ours = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records if "ledgerlink" in r.name)
    text = ours + capsys.readouterr().out + str(raised.value) + repr(worker)
    for secret in (access, rotated, DEMO_REFRESH_TOKEN, DEMO_CLIENT_SECRET):
        assert secret not in text
