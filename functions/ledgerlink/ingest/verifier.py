"""The webhook verifier token, read from a :class:`~ledgerlink.secrets.SecretStore`.

The secret holds Intuit's Verifier Token as plain text (how the Intuit portal shows it), or a JSON
object with a ``verifier_token`` field. The store caches it for ``Settings.secrets_max_age_seconds``,
so a rotated token is picked up without a redeploy.
"""

from __future__ import annotations

from ledgerlink.ingest.ports import VerifierUnavailable
from ledgerlink.secrets import SecretDict, SecretError, SecretStore

JSON_FIELD = "verifier_token"


class SecretStoreVerifierToken:
    """:class:`~ledgerlink.ingest.ports.VerifierTokenSource` over a secret store."""

    def __init__(self, store: SecretStore, secret_name: str) -> None:
        self._store = store
        self._secret_name = secret_name

    def __repr__(self) -> str:
        return f"SecretStoreVerifierToken(secret_name={self._secret_name!r})"

    def __call__(self) -> str:
        try:
            value = self._store.get(self._secret_name)
        except SecretError as error:
            raise VerifierUnavailable(str(error)) from None
        if isinstance(value, SecretDict):
            token = value.get(JSON_FIELD)
            if not isinstance(token, str) or not token.strip():
                raise VerifierUnavailable(
                    f"secret {self._secret_name!r} is a JSON object without a {JSON_FIELD!r} string"
                )
            return token.strip()
        if not value.strip():
            raise VerifierUnavailable(f"secret {self._secret_name!r} is empty")
        return value.strip()
