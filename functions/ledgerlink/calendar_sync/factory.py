"""Builds the calendar sync from :class:`~ledgerlink.config.Settings` and the configuration file: per
connection its Graph and HubSpot clients, its Outlook item store and its service
(:class:`ConnectionsCalendarSync` routes each event to its own), and the dead-letter router.

The Lambda handler, the local stack, the integration tests and the benchmark all build it here. Vendor
limits and breakers are shared through the vendor-state table (``shared_state_client``): Outlook's
budget is per app and mailbox, whichever Lambda spends it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from ledgerlink.calendar_sync.inbox import DealSynced
from ledgerlink.calendar_sync.mailboxes import DynamoDBOwnerMailboxCache, MailboxResolver
from ledgerlink.calendar_sync.ports import CalendarConfig, MetricsSink, NoMetrics
from ledgerlink.calendar_sync.service import CalendarSyncService
from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig, deployment_config
from ledgerlink.consumer.connections import sync_by_connection
from ledgerlink.consumer.deadletter import DeadLetterRouter
from ledgerlink.consumer.factory import dead_letter_router
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.graph.client import GraphClient
from ledgerlink.graph.factory import graph_client
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import hubspot_policy
from ledgerlink.hubspot.client import HubSpotAuth, HubSpotClient
from ledgerlink.observability import Service, get_logger
from ledgerlink.outlook_items import OutlookItemStore
from ledgerlink.publisher import EventBridgePublisher
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

# The function's own logger: the connection and configuration version go on each connection's lines.
logger = get_logger(Service.OUTLOOK_CALENDAR_SYNC)


@dataclass
class CalendarConnectionParts:
    connection: Connection
    service: CalendarSyncService
    graph: GraphClient
    hubspot: HubSpotClient
    items: OutlookItemStore
    http_clients: tuple[VendorHttpClient, ...]


class ConnectionsCalendarSync:
    """The batch, split by connection: each event goes to the service of the connection it names (or,
    for an event without one, the connection serving its realm). An event of no connection of this
    deployment fails for good with that reason; a connection whose calendar sync is off, or that has no
    Microsoft tenant, ignores its events (saying why)."""

    def __init__(self, config: DeploymentConfig, parts: Mapping[str, CalendarConnectionParts]) -> None:
        self.config = config
        self.parts = dict(parts)

    @property
    def only(self) -> CalendarConnectionParts:
        if len(self.parts) != 1:
            raise ValueError(f"{len(self.parts)} connections with a calendar: name one")
        return next(iter(self.parts.values()))

    def _route(self, event: DealSynced) -> str | Outcome:
        serving = self.config.by_realm(event.realm_id)
        if serving is None or (event.connection is not None and event.connection != serving.name):
            reason = (
                f"no connection of this deployment serves realm {event.realm_id} as "
                f"{event.connection or 'any connection'} (configuration {self.config.version})"
            )
            return Outcome(
                OutcomeStatus.FAILED,
                reason=reason,
                retryable=False,
                error_type="UnservedRealm",
                scope=FailureScope.RECORD,
            )
        if serving.name not in self.parts:
            why = (
                "has no microsoft.tenant_id" if serving.tenant_id is None else "has calendar.enabled = false"
            )
            return Outcome(
                OutcomeStatus.IGNORED, reason=f"connection {serving.name!r} {why} in the configuration file"
            )
        return serving.name

    def sync(self, events: Sequence[DealSynced], remaining_ms: int | None = None) -> dict[str, Outcome]:
        return sync_by_connection(
            events,
            route=self._route,
            services={name: parts.service.sync for name, parts in self.parts.items()},
            logger=logger,
            config_version=self.config.version,
            unrouted="event not synced to a calendar",
            remaining_ms=remaining_ms,
        )


@dataclass
class CalendarSyncParts:
    service: ConnectionsCalendarSync
    connections: Mapping[str, CalendarConnectionParts]
    dead_letters: DeadLetterRouter = field(
        default_factory=lambda: DeadLetterRouter(None, max_receive_count=None, metrics=NoMetrics())
    )

    @property
    def only(self) -> CalendarConnectionParts:
        return self.service.only

    @property
    def http_clients(self) -> tuple[VendorHttpClient, ...]:
        return tuple(client for parts in self.connections.values() for client in parts.http_clients)

    def close(self) -> None:
        for client in self.http_clients:
            client.close()


def calendar_connections(config: DeploymentConfig) -> list[Connection]:
    """The connections whose invoices go on calendars: calendar sync on, and a Microsoft tenant."""
    return [c for c in config.connections if c.calendar.enabled and c.tenant_id is not None]


def build_calendar_sync(
    settings: Settings,
    *,
    secrets: SecretStore,
    config: DeploymentConfig | None = None,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    clock: Clock | None = None,
    metrics: MetricsSink | None = None,
    publisher_sleep: Any = None,
    sqs: SQSClient | None = None,
) -> CalendarSyncParts:
    """One service per calendar connection of ``config`` (default: the configuration file of
    ``LEDGERLINK_CONFIG_FILE``); ``metrics`` may offer ``for_connection(name)``."""
    config = config if config is not None else deployment_config()
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    events_client: EventBridgeClient = events if events is not None else boto3.client("events")
    publisher_options: Mapping[str, Any] = {"sleep": publisher_sleep} if publisher_sleep is not None else {}
    publisher = EventBridgePublisher(events_client, settings.event_bus_name, **publisher_options)
    base_metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
    owner_cache = DynamoDBOwnerMailboxCache(settings.vendor_state_table_name, dynamodb_client)
    parts: dict[str, CalendarConnectionParts] = {}
    for connection in calendar_connections(config):
        narrowed = getattr(base_metrics, "for_connection", None)
        connection_metrics: MetricsSink = narrowed(connection.name) if callable(narrowed) else base_metrics
        parts[connection.name] = _connection_parts(
            connection,
            config,
            settings,
            secrets=secrets,
            dynamodb=dynamodb_client,
            publisher=publisher,
            clock=clock,
            metrics=connection_metrics,
            owner_cache=owner_cache,
        )
    dead_letters = dead_letter_router(settings, metrics=base_metrics, sqs=sqs, clock=clock)
    return CalendarSyncParts(ConnectionsCalendarSync(config, parts), parts, dead_letters=dead_letters)


def _connection_parts(
    connection: Connection,
    config: DeploymentConfig,
    settings: Settings,
    *,
    secrets: SecretStore,
    dynamodb: DynamoDBClient,
    publisher: EventBridgePublisher,
    clock: Clock | None,
    metrics: MetricsSink,
    owner_cache: DynamoDBOwnerMailboxCache,
) -> CalendarConnectionParts:
    table = settings.vendor_state_table_name

    def shared(policy: Any, auth: Any = None) -> VendorHttpClient:
        return shared_state_client(policy, auth, table_name=table, dynamodb_client=dynamodb, clock=clock)

    graph_parts = graph_client(connection, settings, secrets=secrets, dynamodb=dynamodb, clock=clock)
    graph = graph_parts.client
    hubspot_http = shared(
        hubspot_policy(settings), HubSpotAuth(secrets, connection.secret_name(settings.stage, "hubspot"))
    )
    hubspot = HubSpotClient(hubspot_http, scope=connection.portal_id)
    calendar_config = CalendarConfig(
        connection=connection.name,
        config_version=config.version,
        portal_id=connection.portal_id,
        accounts_receivable_mailbox=connection.accounts_receivable_mailbox,
        settings=connection.calendar,
    )
    items = OutlookItemStore(
        settings.links_table_name, dynamodb, connection=connection.name, config_version=config.version
    )
    service = CalendarSyncService(
        calendar=graph,
        mailboxes=MailboxResolver(calendar_config, hubspot, graph, owner_cache, clock),
        items=items,
        publisher=publisher,
        config=calendar_config,
        metrics=metrics,
    )
    return CalendarConnectionParts(
        connection, service, graph, hubspot, items, (graph_parts.token_http, graph_parts.http, hubspot_http)
    )
