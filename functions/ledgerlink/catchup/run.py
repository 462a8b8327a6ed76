"""Runs the catch-up for every connection of a deployment (or one named), wiring the real ports:
the shared QBO client (:func:`ledgerlink.qbo.factory.qbo_client`), the links table, the event bus and
the vendor-state table. Used by the qbo_catchup Lambda and by ``ledgerlink catchup``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3

from ledgerlink.catchup.service import (
    CatchupOptions,
    ConnectionReport,
    DynamoDBCursorStore,
    catch_up_connection,
)
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig
from ledgerlink.crosswalk import LinkStore
from ledgerlink.observability import Service, get_logger
from ledgerlink.publisher import EventBridgePublisher
from ledgerlink.qbo.client import CDC_ENTITIES
from ledgerlink.qbo.factory import qbo_client
from ledgerlink.qbo.oauth import AlarmHook
from ledgerlink.secrets import SecretStore, default_secret_store

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient

logger = get_logger(Service.QBO_CATCHUP)


@dataclass
class CatchupReport:
    connections: list[ConnectionReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    """Connection -> why its run failed (its cursor did not move; the next run reads the same window)."""

    @property
    def gaps(self) -> list[ConnectionReport]:
        return [each for each in self.connections if each.gap is not None]

    def lines(self) -> list[str]:
        if not self.connections and not self.failures:
            return ["no connection to catch up"]
        return [
            *(line for each in self.connections for line in each.lines()),
            *(f"{name}: FAILED: {reason}" for name, reason in self.failures.items()),
        ]


def options_from(settings: Settings) -> CatchupOptions:
    """The catch-up's options as the deployment sets them (LEDGERLINK_CATCHUP_*)."""
    unknown = sorted(set(settings.catchup_entities) - CDC_ENTITIES)
    if unknown or not settings.catchup_entities:
        raise ValueError(
            f"LEDGERLINK_CATCHUP_ENTITIES names {', '.join(unknown) or 'nothing'}; "
            f"the catch-up reads {', '.join(sorted(CDC_ENTITIES))}"
        )
    return CatchupOptions(
        entities=settings.catchup_entities,
        look_back=timedelta(seconds=settings.catchup_look_back_seconds),
        overlap=timedelta(seconds=settings.catchup_overlap_seconds),
    )


def run_catchup(
    settings: Settings,
    config: DeploymentConfig,
    *,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    secrets: SecretStore | None = None,
    connection: str | None = None,
    now: datetime | None = None,
    options: CatchupOptions | None = None,
    progress: Callable[[str], None] | None = None,
    alarm: AlarmHook | None = None,
) -> CatchupReport:
    """Catch up every connection of ``config`` (or the one named), one after the other.

    A connection whose run fails (QBO refuses, its grant is revoked) is logged and recorded in
    :attr:`CatchupReport.failures`; the others still run: one company's trouble holds back no other.
    ``alarm`` receives the QBO grant's alarms (a revoked refresh token, refused client credentials),
    which the Lambda counts as metrics."""
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    events_client: EventBridgeClient = events if events is not None else boto3.client("events")
    store = secrets if secrets is not None else default_secret_store()
    publisher = EventBridgePublisher(events_client, settings.event_bus_name)
    cursors = DynamoDBCursorStore(settings.vendor_state_table_name, dynamodb_client)
    connections = list(config.connections)
    if connection is not None:
        connections = [each for each in connections if each.name == connection]
        if not connections:
            known = ", ".join(each.name for each in config.connections) or "none"
            raise ValueError(f"no connection {connection!r} in {config.source} (connections: {known})")
    chosen = options if options is not None else options_from(settings)
    report = CatchupReport()
    for each in connections:
        try:
            result = _catch_up_one(
                each, settings, config, store, dynamodb_client, publisher, cursors, chosen, now, alarm
            )
        except Exception as error:  # recorded per connection; the caller counts it and fails the run
            logger.exception("catch-up of a connection failed", extra={"connection": each.name})
            report.failures[each.name] = f"{type(error).__name__}: {error}"
            if progress is not None:
                progress(f"{each.name}: FAILED: {type(error).__name__}: {error}")
            continue
        report.connections.append(result)
        if progress is not None:
            for line in result.lines():
                progress(line)
    return report


def _catch_up_one(
    each: Connection,
    settings: Settings,
    config: DeploymentConfig,
    store: SecretStore,
    dynamodb_client: DynamoDBClient,
    publisher: EventBridgePublisher,
    cursors: DynamoDBCursorStore,
    chosen: CatchupOptions,
    now: datetime | None,
    alarm: AlarmHook | None,
) -> ConnectionReport:
    parts = qbo_client(each, settings, secrets=store, dynamodb=dynamodb_client, alarm=alarm)
    try:
        links = LinkStore(
            settings.links_table_name,
            dynamodb_client,
            connection=each.name,
            config_version=config.version,
        )
        return catch_up_connection(
            each.name,
            each.realm_id,
            cdc=parts.client,
            links=links,
            publisher=publisher,
            cursors=cursors,
            now=now if now is not None else datetime.now(UTC),
            options=chosen,
            config_version=config.version,
        )
    finally:
        parts.close()
