"""The verifier token comes from the secret store, as plain text or a JSON object; never leaks."""

from __future__ import annotations

import pytest

from ledgerlink.ingest.ports import VerifierUnavailable
from ledgerlink.ingest.verifier import SecretStoreVerifierToken
from ledgerlink.secrets import InMemorySecretStore

NAME = "ledgerlink/test/qbo-webhook"
TOKEN = "f3a9c2e1-7b64-4d0a-9e85-2c1b0f6d4a37"


def test_a_plain_text_secret_is_the_token() -> None:
    store = InMemorySecretStore({NAME: f"{TOKEN}\n"})
    assert SecretStoreVerifierToken(store, NAME)() == TOKEN


def test_a_json_secret_holds_the_token_in_verifier_token() -> None:
    store = InMemorySecretStore({NAME: {"verifier_token": TOKEN, "note": "rotated 2026-11"}})
    assert SecretStoreVerifierToken(store, NAME)() == TOKEN


def test_a_json_secret_without_the_field_is_unavailable_and_says_which_field() -> None:
    store = InMemorySecretStore({NAME: {"token": TOKEN}})
    with pytest.raises(VerifierUnavailable, match="without a 'verifier_token' string") as caught:
        SecretStoreVerifierToken(store, NAME)()
    assert TOKEN not in str(caught.value)


def test_a_missing_secret_is_unavailable_naming_the_secret() -> None:
    with pytest.raises(VerifierUnavailable, match="ledgerlink/test/qbo-webhook"):
        SecretStoreVerifierToken(InMemorySecretStore(), NAME)()


def test_an_empty_secret_is_unavailable() -> None:
    with pytest.raises(VerifierUnavailable, match="is empty"):
        SecretStoreVerifierToken(InMemorySecretStore({NAME: "  "}), NAME)()


def test_the_repr_names_the_secret_only() -> None:
    source = SecretStoreVerifierToken(InMemorySecretStore({NAME: TOKEN}), NAME)
    source()
    assert TOKEN not in repr(source)
