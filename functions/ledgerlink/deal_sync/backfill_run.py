"""Wires one connection's backfill to the real ports: the deal sync exactly as its Lambda builds it
(:func:`ledgerlink.deal_sync.factory.build_deal_sync`: the same clients, hence the same DynamoDB-backed
rate limits, concurrency slots and breakers as live traffic), its QBO client for the pages, and the
checkpoint in the vendor-state table. Used by ``ledgerlink backfill`` and the qbo_backfill Lambda."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig
from ledgerlink.deal_sync.backfill import Backfill, BackfillError, BackfillOptions, ProgressHook
from ledgerlink.deal_sync.backfill_checkpoint import Checkpoint, CheckpointStore, DynamoDBCheckpointStore
from ledgerlink.deal_sync.factory import DealSyncParts, build_deal_sync
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient


@dataclass
class BackfillRun:
    backfill: Backfill
    parts: DealSyncParts

    def close(self) -> None:
        self.parts.close()


def find_connection(config: DeploymentConfig, name: str) -> Connection:
    for connection in config.connections:
        if connection.name == name:
            return connection
    known = ", ".join(each.name for each in config.connections) or "none"
    raise BackfillError(f"no connection {name!r} in {config.source} (connections: {known})")


def checkpoint_store(settings: Settings, dynamodb: DynamoDBClient | None = None) -> DynamoDBCheckpointStore:
    client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    return DynamoDBCheckpointStore(settings.vendor_state_table_name, client)


def build_backfill(
    settings: Settings,
    config: DeploymentConfig,
    connection: str,
    *,
    secrets: SecretStore,
    options: BackfillOptions | None = None,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
    progress: ProgressHook | None = None,
    should_stop: Callable[[], bool] | None = None,
    remaining_ms: Callable[[], int] | None = None,
    store: CheckpointStore | None = None,
    **build: Any,
) -> BackfillRun:
    """The backfill of ``connection`` over the deal sync of ``config`` (``build``: more arguments of
    :func:`~ledgerlink.deal_sync.factory.build_deal_sync`, e.g. ``metrics``, or ``stores`` for state
    kept elsewhere than DynamoDB). ``store``: the checkpoint's (default: the vendor-state table)."""
    chosen = find_connection(config, connection)
    # One DynamoDB client for the deal sync and the checkpoint, and none when neither needs it.
    needs_dynamodb = store is None or build.get("stores") is None
    dynamodb_client: DynamoDBClient | None = (
        dynamodb if dynamodb is not None or not needs_dynamodb else boto3.client("dynamodb")
    )
    parts = build_deal_sync(
        settings,
        secrets=secrets,
        config=config,
        dynamodb=dynamodb_client,
        events=events,
        clock=clock,
        **build,
    )
    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    backfill = Backfill(
        connection=chosen.name,
        realm_id=chosen.realm_id,
        qbo=parts.connections[chosen.name].qbo,
        sync=parts.service,
        store=store if store is not None else checkpoint_store(settings, dynamodb_client),
        options=options,
        clock=clock,
        progress=progress,
        should_stop=should_stop,
        remaining_ms=remaining_ms,
        **extra,
    )
    return BackfillRun(backfill, parts)


def run_backfill(run: BackfillRun) -> Checkpoint:
    """Continue (or start) the job until it is finished or asked to stop; closes the clients."""
    try:
        return run.backfill.run()
    finally:
        run.close()
