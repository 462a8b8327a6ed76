"""The ports of the ingest domain (QBO and HubSpot deliveries).

Adapters: ``archive.S3RawArchive``, ``ledgerlink.publisher.EventBridgePublisher``,
``verifier.SecretStoreVerifierToken`` (QBO), ``signing_secret.SecretStoreSigningSecrets`` (HubSpot);
fakes in ``fakes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledgerlink.events import Envelope


class ArchiveError(RuntimeError):
    """The raw delivery could not be stored; the sender must retry (nothing was acknowledged)."""

    reason = "archive_failed"


class VerifierUnavailable(RuntimeError):
    """The webhook verifier token could not be read; the sender must retry."""

    reason = "verifier_unavailable"


class SigningSecretUnavailable(RuntimeError):
    """A connection's HubSpot app client secret could not be read (or the secret lacks it); the sender
    must retry. The message names the secret and the field, never a value."""

    reason = "signing_secret_unavailable"


class VerifierTokenSource(Protocol):
    """Returns the webhook verifier token (cached by the implementation); raises VerifierUnavailable."""

    def __call__(self) -> str: ...


class RawArchive(Protocol):
    """Stores one raw delivery document under a key; storing the same key twice stores the same bytes."""

    def put(self, key: str, document: bytes) -> None:
        """Raises :class:`ArchiveError` when the document was not stored."""
        ...


class EventPublisher(Protocol):
    """Publishes envelopes; raises ``ledgerlink.publisher.PublishError`` if any was not accepted."""

    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


class Served(Protocol):
    @property
    def name(self) -> str: ...


class ServedRealms(Protocol):
    """Which QBO companies this deployment serves (``ledgerlink.configfile.DeploymentConfig``)."""

    @property
    def version(self) -> str:
        """The configuration's version (its content hash), named by every published event."""
        ...

    def by_realm(self, realm_id: str) -> Served | None:
        """The connection serving the realm, or None."""
        ...


class ServedConnection(Protocol):
    """A connection as the HubSpot ingest needs it: its name and where its secrets are."""

    @property
    def name(self) -> str: ...

    def secret_name(self, stage: str, kind: str) -> str:
        """The Secrets Manager name of the connection's secret of ``kind`` (e.g. ``hubspot``)."""
        ...


class ServedPortals(Protocol):
    """Which HubSpot portals this deployment serves (``ledgerlink.configfile.DeploymentConfig``)."""

    @property
    def version(self) -> str:
        """The configuration's version (its content hash), named by every published event."""
        ...

    def by_portal(self, portal_id: str) -> ServedConnection | None:
        """The connection serving the portal, or None."""
        ...


class SigningSecretSource(Protocol):
    """The client secret of a connection's HubSpot app, which signs its webhooks (cached by the
    implementation); raises :class:`SigningSecretUnavailable`."""

    def __call__(self, connection: ServedConnection) -> str: ...
