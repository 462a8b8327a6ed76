"""Secrets through Powertools Parameters (against moto's Secrets Manager) and the in-memory fake."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from ledgerlink.secrets import (
    InMemorySecretStore,
    PowertoolsSecretStore,
    SecretDict,
    SecretError,
    default_secret_store,
    get_secret_json,
    put_secret_json,
    reset_default_secret_store,
)
from tests.conftest import FIXTURES

OAUTH_SECRET = json.loads((FIXTURES / "secrets" / "qbo_oauth_secret.json").read_text())
REFRESH_TOKEN = OAUTH_SECRET["refresh_token"]
CLIENT_SECRET = OAUTH_SECRET["client_secret"]


@pytest.fixture
def secretsmanager() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="ledgerlink/qbo/oauth", SecretString=json.dumps(OAUTH_SECRET))
        client.create_secret(Name="ledgerlink/qbo/webhook-verifier", SecretString="verifier-token-value")
        client.create_secret(Name="ledgerlink/broken", SecretString='{"refresh_token": "RT-LEAK", ')
        yield client


def test_json_secret_is_decoded_and_text_secret_is_returned_as_text(secretsmanager: object) -> None:
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)  # type: ignore[arg-type]

    oauth = store.get("ledgerlink/qbo/oauth")
    verifier = store.get("ledgerlink/qbo/webhook-verifier")

    assert isinstance(oauth, SecretDict)
    assert oauth == OAUTH_SECRET
    assert verifier == "verifier-token-value"


def test_reads_are_cached_for_max_age(secretsmanager) -> None:  # type: ignore[no-untyped-def]
    # given a value read once
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)
    first = store.get_json("ledgerlink/qbo/oauth")

    # when someone else changes it in Secrets Manager
    secretsmanager.put_secret_value(SecretId="ledgerlink/qbo/oauth", SecretString='{"refresh_token":"other"}')

    # then within max_age this process still uses its cached copy (no call per read)
    assert store.get_json("ledgerlink/qbo/oauth") == first
    # and with max_age 0 every read goes to Secrets Manager
    uncached = PowertoolsSecretStore(max_age_seconds=0, client=secretsmanager)
    assert uncached.get_json("ledgerlink/qbo/oauth") == {"refresh_token": "other"}


def test_invalidate_makes_the_next_read_bypass_the_cache(secretsmanager) -> None:  # type: ignore[no-untyped-def]
    # given a value read once and cached for five minutes
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)
    assert store.get_json("ledgerlink/qbo/oauth") == OAUTH_SECRET
    # and an operator who rotates it in Secrets Manager from elsewhere
    secretsmanager.put_secret_value(
        SecretId="ledgerlink/qbo/oauth", SecretString='{"refresh_token":"rotated"}'
    )
    assert store.get_json("ledgerlink/qbo/oauth") == OAUTH_SECRET

    # when this process is told its copy may be stale
    store.invalidate("ledgerlink/qbo/oauth")

    # then the next read fetches the operator's value, and later reads are cached again
    assert store.get_json("ledgerlink/qbo/oauth") == {"refresh_token": "rotated"}
    secretsmanager.put_secret_value(SecretId="ledgerlink/qbo/oauth", SecretString='{"refresh_token":"third"}')
    assert store.get_json("ledgerlink/qbo/oauth") == {"refresh_token": "rotated"}


def test_put_secret_json_stores_a_new_version_and_invalidates_the_cache(secretsmanager) -> None:  # type: ignore[no-untyped-def]
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)
    assert store.get_json("ledgerlink/qbo/oauth")["refresh_token"] == REFRESH_TOKEN
    rotated = {**OAUTH_SECRET, "refresh_token": "RT-rotated-2"}

    # when the rotated value is stored back
    store.put_json("ledgerlink/qbo/oauth", rotated)

    # then Secrets Manager holds it as the current version and this process reads it at once
    current = secretsmanager.get_secret_value(SecretId="ledgerlink/qbo/oauth")
    assert json.loads(current["SecretString"]) == rotated
    assert store.get_json("ledgerlink/qbo/oauth")["refresh_token"] == "RT-rotated-2"


def test_module_helpers_use_settings_lazily(secretsmanager, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # given the environment a Lambda gets from the stack
    for name, value in {
        "LEDGERLINK_EVENT_BUS_NAME": "bus",
        "LEDGERLINK_RAW_BUCKET_NAME": "raw",
        "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "idem",
        "LEDGERLINK_LINKS_TABLE_NAME": "links",
        "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "vendor-state",
        "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "ledgerlink/qbo/webhook-verifier",
        "LEDGERLINK_SECRETS_MAX_AGE_SECONDS": "60",
    }.items():
        monkeypatch.setenv(name, value)
    reset_default_secret_store()
    try:
        # when the module-level helpers rotate and read
        put_secret_json("ledgerlink/qbo/oauth", {**OAUTH_SECRET, "refresh_token": "RT-3"})

        # then they went to Secrets Manager with the configured max age
        assert get_secret_json("ledgerlink/qbo/oauth")["refresh_token"] == "RT-3"
        assert repr(default_secret_store()) == "PowertoolsSecretStore(max_age_seconds=60)"
    finally:
        reset_default_secret_store()


def test_errors_name_the_secret_and_never_its_value(
    secretsmanager: object, caplog: pytest.LogCaptureFixture
) -> None:
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)  # type: ignore[arg-type]
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SecretError) as missing:
        store.get("ledgerlink/absent")
    with pytest.raises(SecretError) as broken:
        store.get("ledgerlink/broken")
    with pytest.raises(SecretError) as not_json:
        store.get_json("ledgerlink/qbo/webhook-verifier")
    with pytest.raises(SecretError) as unstorable:
        store.put_json("ledgerlink/qbo/oauth", {"refresh_token": REFRESH_TOKEN, "when": object()})

    assert str(missing.value) == "secret 'ledgerlink/absent' could not be read (ResourceNotFoundException)"
    assert str(broken.value) == "secret 'ledgerlink/broken' looks like JSON but does not parse"
    assert str(not_json.value) == "secret 'ledgerlink/qbo/webhook-verifier' must be a JSON object"
    assert "not JSON-serialisable" in str(unstorable.value)
    # botocore's own DEBUG lines print response bodies (secrets included): they stay off in Lambda
    ours = [r for r in caplog.records if not r.name.startswith(("botocore", "urllib3", "moto"))]
    everything = " ".join(
        [str(e.value) + repr(e.value) for e in (missing, broken, not_json, unstorable)]
        + [f"{r.getMessage()} {r.__dict__}" for r in ours]
    )
    for secret in ("RT-LEAK", "verifier-token-value", REFRESH_TOKEN, CLIENT_SECRET):
        assert secret not in everything
    assert all(e.value.__cause__ is None for e in (missing, broken, not_json, unstorable))


def test_decoded_secrets_do_not_show_their_values_in_reprs(secretsmanager: object) -> None:
    store = PowertoolsSecretStore(max_age_seconds=300, client=secretsmanager)  # type: ignore[arg-type]
    oauth = store.get_json("ledgerlink/qbo/oauth")

    shown = f"{oauth} {oauth!r} {[oauth]} {store!r}"

    assert REFRESH_TOKEN not in shown and CLIENT_SECRET not in shown
    assert "refresh_token" in shown  # the keys are still visible for debugging
    assert oauth["refresh_token"] == REFRESH_TOKEN  # and the values usable


def test_in_memory_fake_behaves_like_the_real_store() -> None:
    fake = InMemorySecretStore({"qbo/oauth": OAUTH_SECRET, "qbo/verifier": "verifier-token-value"})

    fake.put_json("qbo/oauth", {**OAUTH_SECRET, "refresh_token": "RT-2"})

    assert fake.get_json("qbo/oauth")["refresh_token"] == "RT-2"
    assert fake.versions["qbo/oauth"] == 2
    assert fake.get("qbo/verifier") == "verifier-token-value"
    assert "verifier-token-value" not in repr(fake) and REFRESH_TOKEN not in repr(fake)
    with pytest.raises(SecretError, match="'qbo/absent' could not be read"):
        fake.get("qbo/absent")
    with pytest.raises(SecretError, match="must be a JSON object"):
        fake.get_json("qbo/verifier")
