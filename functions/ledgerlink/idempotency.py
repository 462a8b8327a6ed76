"""Run a piece of work once per business key, with Powertools Idempotency on DynamoDB.

The idempotency table (``EnvVar.IDEMPOTENCY_TABLE_NAME``; key ``id``, TTL ``expiration``, see
:mod:`ledgerlink.tables`) records each key's result for ``Settings.idempotency_ttl_seconds``. A
second run with the same key returns the stored result without running the work again; a run that
raised leaves no record, so a retry runs the work again.

Nothing is built at import: the Powertools persistence layer and config are created on first use
(``default_runner``), so importing this module, or decorating with :func:`idempotent_on`, reads no
environment. Usage::

    result = run_once("hubspot-deal-sync", envelope.event_id, lambda: sync_deal(envelope))

    @idempotent_on("qbo-estimate", key=lambda deal: f"{deal.portal_id}:{deal.id}")
    def create_estimate(deal: Deal) -> dict[str, str]: ...

In a handler, call :func:`register_lambda_context` first so a record left "in progress" by a
timed-out invocation expires with that invocation instead of blocking retries until the TTL.

Results are stored as JSON: ``fn`` must return JSON-compatible data (dict, list, str, int, bool,
None); a replay returns the decoded JSON. While another invocation holds the same key in progress,
Powertools raises ``IdempotencyAlreadyInProgressError``: treat it as retryable (fail the SQS record).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from ledgerlink.config import get_settings
from ledgerlink.tables import IDEMPOTENCY

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_dynamodb.client import DynamoDBClient

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "IdempotencyAlreadyInProgressError",
    "IdempotentRunner",
    "default_runner",
    "idempotency_config",
    "idempotency_persistence",
    "idempotent_on",
    "register_lambda_context",
    "reset_default_runner",
    "run_once",
]


def idempotency_config(ttl_seconds: int) -> IdempotencyConfig:
    """How long a record lives (``ttl_seconds``, positive); a missing key is an error, never a skip."""
    if ttl_seconds <= 0:
        raise ValueError(f"idempotency TTL must be positive, got {ttl_seconds}")
    return IdempotencyConfig(expires_after_seconds=ttl_seconds, raise_on_no_idempotency_key=True)


def idempotency_persistence(
    table_name: str, dynamodb_client: DynamoDBClient | None = None
) -> DynamoDBPersistenceLayer:
    """The Powertools persistence layer on the idempotency table's key and TTL attributes."""
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=IDEMPOTENCY.partition_key,
        expiry_attr=IDEMPOTENCY.ttl_attribute or "expiration",
        boto3_client=dynamodb_client,
    )


class IdempotentRunner:
    """Runs work once per (namespace, key). Records are ``<namespace>#<md5 of key>`` in the table."""

    def __init__(
        self,
        table_name: str,
        ttl_seconds: int,
        *,
        dynamodb_client: DynamoDBClient | None = None,
        persistence: BasePersistenceLayer | None = None,
    ) -> None:
        self.table_name = table_name
        self.config = idempotency_config(ttl_seconds)
        self.persistence = persistence or idempotency_persistence(table_name, dynamodb_client)

    def register_lambda_context(self, context: LambdaContext) -> None:
        self.config.register_lambda_context(context)

    def run_once(self, namespace: str, key: str, fn: Callable[[], R]) -> R:
        """``fn()`` the first time ``key`` is seen in ``namespace``; its stored result afterwards."""
        if not namespace or "#" in namespace:
            raise ValueError(f"idempotency namespace must be non-empty and without '#', got {namespace!r}")
        if not isinstance(key, str) or not key:
            raise ValueError(f"idempotency key for {namespace!r} must be a non-empty string, got {key!r}")

        # The namespace becomes the record's key prefix, so one key can be used by several operations
        # ("deal-sync" and "estimate" for the same deal id) without colliding.
        @idempotent_function(
            data_keyword_argument="idempotency_key",
            persistence_store=self.persistence,
            config=self.config,
            key_prefix=namespace,
        )
        def once(idempotency_key: str) -> Any:
            return fn()

        result: R = once(idempotency_key=key)
        return result


@lru_cache(maxsize=1)
def default_runner() -> IdempotentRunner:
    """The process-wide runner on the idempotency table from Settings, built on first use."""
    settings = get_settings()
    return IdempotentRunner(settings.idempotency_table_name, settings.idempotency_ttl_seconds)


def reset_default_runner() -> None:
    """For tests and the local stack, which change the environment between runs."""
    default_runner.cache_clear()


def run_once(namespace: str, key: str, fn: Callable[[], R]) -> R:
    return default_runner().run_once(namespace, key, fn)


def register_lambda_context(context: LambdaContext) -> None:
    default_runner().register_lambda_context(context)


def idempotent_on(namespace: str, key: Callable[P, str]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: run the function once per ``key(*args, **kwargs)`` in ``namespace``.

    Safe at import time: the runner (and the environment) is only touched when the function is called.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return default_runner().run_once(
                namespace, key(*args, **kwargs), lambda: function(*args, **kwargs)
            )

        return wrapper

    return decorate
