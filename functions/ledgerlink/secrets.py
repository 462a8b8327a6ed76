"""Secrets (vendor credentials, webhook verifier tokens) read through Powertools Parameters.

Domain code depends on the :class:`SecretStore` port; Lambda code gets
:func:`default_secret_store` (Secrets Manager, cached in process for
``Settings.secrets_max_age_seconds``), unit tests use :class:`InMemorySecretStore`.

A secret whose value is a JSON object comes back as a :class:`SecretDict` (a ``dict`` whose repr
hides the values); anything else comes back as text. No value ever appears in a repr, a log line or
an exception message: errors name the secret and what went wrong, never what it holds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.config import get_settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

logger = Logger(child=True)


class SecretError(RuntimeError):
    """A secret could not be read, decoded or stored. The message names the secret, never its value."""


class SecretDict(dict[str, Any]):
    """A decoded JSON secret: an ordinary dict whose repr and str show only the keys."""

    def __repr__(self) -> str:
        return f"SecretDict(keys={sorted(self)!r}, values=<redacted>)"

    __str__ = __repr__


SecretValue = str | SecretDict


class SecretStore(Protocol):
    def get(self, name: str) -> SecretValue:
        """The current value: a :class:`SecretDict` when the secret is a JSON object, else text."""
        ...

    def get_json(self, name: str) -> SecretDict:
        """The current value, which must be a JSON object (else :class:`SecretError`)."""
        ...

    def put_json(self, name: str, value: Mapping[str, Any]) -> None:
        """Store a new version (e.g. a rotated refresh token); the next read returns it."""
        ...

    def invalidate(self, name: str) -> None:
        """Forget any cached copy: the next read of ``name`` goes to the source (an operator may have
        just rotated it, e.g. after a vendor refused the cached credentials)."""
        ...


def decode(name: str, raw: str | bytes) -> SecretValue:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(f"secret {name!r} is binary and not UTF-8 text") from None
    stripped = raw.strip()
    if stripped.startswith("{"):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            # from None: the decode error object would carry the whole document.
            raise SecretError(f"secret {name!r} looks like JSON but does not parse") from None
        if isinstance(parsed, dict):
            return SecretDict(parsed)
    return raw


def require_json(name: str, value: SecretValue) -> SecretDict:
    if not isinstance(value, SecretDict):
        raise SecretError(f"secret {name!r} must be a JSON object")
    return value


def encode(name: str, value: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(value), separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        raise SecretError(f"secret {name!r}: the new value is not JSON-serialisable") from None


class PowertoolsSecretStore:
    """Secrets Manager through a Powertools ``SecretsProvider`` (in-process cache for ``max_age_seconds``).

    One provider per store, rather than the module-level ``parameters.get_secret``, so the store owns
    its boto3 client (the local stack points it at moto) and its cache (which ``put_json`` must
    invalidate).
    """

    def __init__(self, max_age_seconds: int, client: SecretsManagerClient | None = None) -> None:
        self._max_age = max_age_seconds
        self._client = client
        self._provider: SecretsProvider | None = None
        self._stale: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PowertoolsSecretStore(max_age_seconds={self._max_age})"

    def _secrets_provider(self) -> SecretsProvider:
        if self._provider is None:
            client = self._client if self._client is not None else boto3.client("secretsmanager")
            self._client = client
            self._provider = SecretsProvider(boto3_client=client)
        return self._provider

    def get(self, name: str) -> SecretValue:
        with self._lock:
            force = name in self._stale
            self._stale.discard(name)
        try:
            raw = self._secrets_provider().get(name, max_age=self._max_age, force_fetch=force)
        except GetParameterError as error:
            if force:
                # The rotated value was not read yet: the next read must still bypass the cache.
                with self._lock:
                    self._stale.add(name)
            code = _error_code(error.__cause__ or error.__context__)
            raise SecretError(f"secret {name!r} could not be read ({code})") from None
        if not isinstance(raw, str | bytes):
            raise SecretError(f"secret {name!r} has an unexpected type {type(raw).__name__}")
        return decode(name, raw)

    def get_json(self, name: str) -> SecretDict:
        return require_json(name, self.get(name))

    def put_json(self, name: str, value: Mapping[str, Any]) -> None:
        secret_string = encode(name, value)
        provider = self._secrets_provider()
        try:
            provider.client.put_secret_value(SecretId=name, SecretString=secret_string)
        except (ClientError, BotoCoreError) as error:
            raise SecretError(f"secret {name!r} could not be stored ({_error_code(error)})") from None
        self.invalidate(name)
        logger.info("secret rotated", extra={"secret_name": name})

    def invalidate(self, name: str) -> None:
        # Marked rather than dropped from the provider's cache: the next get() asks Powertools for
        # force_fetch, and keeps asking until one read has succeeded.
        with self._lock:
            self._stale.add(name)


def _error_code(error: BaseException | None) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__ if error is not None else "unknown error"


class InMemorySecretStore:
    """Secrets held in a dict, for unit tests and the local stack's dry runs."""

    def __init__(self, secrets: Mapping[str, str | Mapping[str, Any]] | None = None) -> None:
        self._values: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        for name, value in (secrets or {}).items():
            self._values[name] = value if isinstance(value, str) else encode(name, value)
            self.versions[name] = 1

    def __repr__(self) -> str:
        return f"InMemorySecretStore(names={sorted(self._values)!r})"

    def get(self, name: str) -> SecretValue:
        try:
            raw = self._values[name]
        except KeyError:
            raise SecretError(f"secret {name!r} could not be read (ResourceNotFoundException)") from None
        return decode(name, raw)

    def get_json(self, name: str) -> SecretDict:
        return require_json(name, self.get(name))

    def put_json(self, name: str, value: Mapping[str, Any]) -> None:
        if name not in self._values:
            raise SecretError(f"secret {name!r} could not be stored (ResourceNotFoundException)")
        self._values[name] = encode(name, value)
        self.versions[name] += 1

    def invalidate(self, name: str) -> None:
        """Nothing is cached here: every read already returns the current value."""
        return None


@lru_cache(maxsize=1)
def default_secret_store() -> SecretStore:
    """The process-wide Secrets Manager store, built on first use from Settings."""
    return PowertoolsSecretStore(max_age_seconds=get_settings().secrets_max_age_seconds)


def reset_default_secret_store() -> None:
    """For tests and the local stack, which change the environment between runs."""
    default_secret_store.cache_clear()


def get_secret(name: str) -> SecretValue:
    return default_secret_store().get(name)


def get_secret_json(name: str) -> SecretDict:
    return default_secret_store().get_json(name)


def put_secret_json(name: str, value: Mapping[str, Any]) -> None:
    """Store a rotated value back (Secrets Manager PutSecretValue) and drop the cached copy."""
    default_secret_store().put_json(name, value)
