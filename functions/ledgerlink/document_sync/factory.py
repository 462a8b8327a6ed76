"""Builds the document sync from :class:`~ledgerlink.config.Settings` and the configuration file: per
connection whose ``qbo_documents`` are enabled, its QBO and HubSpot clients, stores and service
(:class:`ConnectionsDocumentSync` routes each event to its own), and the dead-letter router.

The Lambda handler, the local stack and the tests all build it here. Vendor limits, breakers and the
OAuth refresh are shared through the vendor-state table with every other Lambda of the connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3

from ledgerlink.audit import AuditStore
from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig, deployment_config
from ledgerlink.consumer.connections import sync_by_connection
from ledgerlink.consumer.deadletter import DeadLetterRouter
from ledgerlink.consumer.factory import dead_letter_router
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import LinkStore
from ledgerlink.document_sync.deal import DealReader
from ledgerlink.document_sync.inbox import DealChanged
from ledgerlink.document_sync.numbering import DocNumbers
from ledgerlink.document_sync.ports import DocumentConfig, MetricsSink, NoMetrics
from ledgerlink.document_sync.records import DealDocumentStore
from ledgerlink.document_sync.service import DocumentSyncService
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import hubspot_policy
from ledgerlink.hubspot.client import HubSpotAuth, HubSpotClient
from ledgerlink.observability import Service, get_logger
from ledgerlink.qbo.factory import QboParts, qbo_client
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

logger = get_logger(Service.QBO_DOCUMENT_SYNC)


@dataclass
class DocumentConnectionParts:
    connection: Connection
    service: DocumentSyncService
    qbo: QboParts
    hubspot: HubSpotClient
    http_clients: tuple[VendorHttpClient, ...]


class ConnectionsDocumentSync:
    """The batch, split by connection: each event goes to the service of the connection it names. An event
    of no connection of this deployment, or naming another portal than its connection's, fails for good;
    a connection whose document sync is off ignores its events (saying why)."""

    def __init__(self, config: DeploymentConfig, parts: Mapping[str, DocumentConnectionParts]) -> None:
        self.config = config
        self.parts = dict(parts)

    @property
    def only(self) -> DocumentConnectionParts:
        if len(self.parts) != 1:
            raise ValueError(f"{len(self.parts)} connections write QBO documents: name one")
        return next(iter(self.parts.values()))

    def _route(self, event: DealChanged) -> str | Outcome:
        serving = self.config.by_name(event.connection)
        if serving is None or serving.portal_id != event.portal_id:
            return Outcome(
                OutcomeStatus.FAILED,
                reason=(
                    f"no connection of this deployment is {event.connection!r} with HubSpot portal "
                    f"{event.portal_id} (configuration {self.config.version})"
                ),
                retryable=False,
                error_type="UnservedPortal",
                scope=FailureScope.RECORD,
            )
        if serving.name not in self.parts:
            return Outcome(
                OutcomeStatus.IGNORED,
                reason=f"connection {serving.name!r} has qbo_documents.enabled = false in the configuration file",
            )
        return serving.name

    def sync(self, events: Sequence[DealChanged], remaining_ms: int | None = None) -> dict[str, Outcome]:
        return sync_by_connection(
            events,
            route=self._route,
            services={name: parts.service.sync for name, parts in self.parts.items()},
            logger=logger,
            config_version=self.config.version,
            unrouted="event not written to QBO",
            remaining_ms=remaining_ms,
        )


@dataclass
class DocumentSyncParts:
    service: ConnectionsDocumentSync
    connections: Mapping[str, DocumentConnectionParts]
    dead_letters: DeadLetterRouter = field(
        default_factory=lambda: DeadLetterRouter(None, max_receive_count=None, metrics=NoMetrics())
    )

    @property
    def only(self) -> DocumentConnectionParts:
        return self.service.only

    @property
    def http_clients(self) -> tuple[VendorHttpClient, ...]:
        return tuple(client for parts in self.connections.values() for client in parts.http_clients)

    def close(self) -> None:
        for client in self.http_clients:
            client.close()


def document_connections(config: DeploymentConfig) -> list[Connection]:
    return [c for c in config.connections if c.qbo_documents.enabled]


def build_document_sync(
    settings: Settings,
    *,
    secrets: SecretStore,
    config: DeploymentConfig | None = None,
    dynamodb: DynamoDBClient | None = None,
    clock: Clock | None = None,
    metrics: MetricsSink | None = None,
    sqs: SQSClient | None = None,
) -> DocumentSyncParts:
    """One service per connection of ``config`` with ``qbo_documents.enabled``; ``metrics`` may offer
    ``for_connection(name)``."""
    config = config if config is not None else deployment_config()
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    base_metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
    parts: dict[str, DocumentConnectionParts] = {}
    for connection in document_connections(config):
        narrowed = getattr(base_metrics, "for_connection", None)
        connection_metrics: MetricsSink = narrowed(connection.name) if callable(narrowed) else base_metrics
        parts[connection.name] = _connection_parts(
            connection,
            config,
            settings,
            secrets=secrets,
            dynamodb=dynamodb_client,
            clock=clock,
            metrics=connection_metrics,
        )
    dead_letters = dead_letter_router(settings, metrics=base_metrics, sqs=sqs, clock=clock)
    return DocumentSyncParts(ConnectionsDocumentSync(config, parts), parts, dead_letters=dead_letters)


def _connection_parts(
    connection: Connection,
    config: DeploymentConfig,
    settings: Settings,
    *,
    secrets: SecretStore,
    dynamodb: DynamoDBClient,
    clock: Clock | None,
    metrics: MetricsSink,
) -> DocumentConnectionParts:
    # The QBO grant's alarms (a revoked connection, refused client credentials) count in the flow's metrics.
    qbo = qbo_client(
        connection,
        settings,
        secrets=secrets,
        dynamodb=dynamodb,
        clock=clock,
        alarm=lambda name, _fields: metrics.count(name),
    )
    hubspot_http = shared_state_client(
        hubspot_policy(settings),
        HubSpotAuth(secrets, connection.secret_name(settings.stage, "hubspot")),
        table_name=settings.vendor_state_table_name,
        dynamodb_client=dynamodb,
        clock=clock,
    )
    hubspot = HubSpotClient(hubspot_http, scope=connection.portal_id)
    links = LinkStore(
        settings.links_table_name, dynamodb, connection=connection.name, config_version=config.version
    )
    document_config = DocumentConfig(
        connection=connection.name,
        config_version=config.version,
        portal_id=connection.portal_id,
        realm_id=connection.realm_id,
        time_zone=connection.time_zone,
        country=connection.country,
        stages=connection.document_stages,
        settings=connection.qbo_documents,
        tax_table=dict(connection.tax_codes.get(connection.country or "") or {}),
    )
    service = DocumentSyncService(
        books=qbo.client,
        crm=DealReader(hubspot),
        hubspot=hubspot,
        links=links,
        documents=DealDocumentStore(settings.links_table_name, dynamodb),
        audit=AuditStore(settings.links_table_name, dynamodb, clock=clock),
        numbers=DocNumbers(
            settings.vendor_state_table_name,
            dynamodb,
            connection=connection.name,
            numbering=connection.qbo_documents.numbering,
        ),
        config=document_config,
        clock=clock,
        metrics=metrics,
    )
    return DocumentConnectionParts(
        connection, service, qbo, hubspot, (qbo.token_http, qbo.http, hubspot_http)
    )
