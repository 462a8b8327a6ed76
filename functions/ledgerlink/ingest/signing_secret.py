"""The client secret a connection's HubSpot app signs its webhooks with, read from a SecretStore.

It lives in the connection's HubSpot secret (``Connection.secret_name(stage, "hubspot")``, the JSON
object that already holds the app's ``access_token``), in the field :data:`JSON_FIELD`. The store
caches it for ``Settings.secrets_max_age_seconds``, so a rotated secret is picked up without a
redeploy. No value appears in an error or a repr: errors name the secret and the field.
"""

from __future__ import annotations

from typing import Final

from ledgerlink.ingest.ports import ServedConnection, SigningSecretUnavailable
from ledgerlink.secrets import SecretError, SecretStore

JSON_FIELD: Final = "client_secret"
SECRET_KIND: Final = "hubspot"  # noqa: S105 (a kind of secret, not a password)


class SecretStoreSigningSecrets:
    """:class:`~ledgerlink.ingest.ports.SigningSecretSource` over a secret store, for one stage."""

    def __init__(self, store: SecretStore, stage: str) -> None:
        self._store = store
        self._stage = stage

    def __repr__(self) -> str:
        return f"SecretStoreSigningSecrets(stage={self._stage!r})"

    def __call__(self, connection: ServedConnection) -> str:
        name = connection.secret_name(self._stage, SECRET_KIND)
        try:
            value = self._store.get_json(name)
        except SecretError as error:
            raise SigningSecretUnavailable(str(error)) from None
        secret = value.get(JSON_FIELD)
        if not isinstance(secret, str) or not secret.strip():
            raise SigningSecretUnavailable(
                f"secret {name!r} has no {JSON_FIELD!r} string: put the client secret of connection "
                f"{connection.name}'s HubSpot app there (HubSpot signs its webhooks with it)"
            )
        return secret.strip()
