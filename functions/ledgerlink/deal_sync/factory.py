"""Builds the deal sync from :class:`~ledgerlink.config.Settings` and the configuration file: per
connection its clients, stores and service (:class:`ConnectionsSync` routes each event to its own),
and the dead-letter router (built by :func:`ledgerlink.consumer.factory.dead_letter_router`, as for every flow).

The Lambda handler, the local stack, the integration tests and the benchmark all build it here, so
they run the same objects; only the AWS clients (moto or AWS), the secret store and the clock differ.
Vendor limits and breakers are shared through the vendor-state table (``shared_state_client``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import boto3

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig, deployment_config
from ledgerlink.consumer.deadletter import DeadLetterRouter
from ledgerlink.consumer.factory import dead_letter_router
from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.ledger import EventLedger
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import LinkStore
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.deal_sync.ports import EventPublisher, MetricsSink, NoMetrics, SyncConfig
from ledgerlink.deal_sync.service import DealSyncService
from ledgerlink.deal_sync.stores import AwsStores, DealSyncStores
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.policy import hubspot_policy, qbo_policy
from ledgerlink.hubspot.client import HubSpotAuth, HubSpotClient
from ledgerlink.observability import Service, connection_scope, get_logger
from ledgerlink.qbo.client import QboClient
from ledgerlink.qbo.oauth import AlarmHook, QboOAuth, token_endpoint, token_policy
from ledgerlink.secrets import SecretStore

# The function's own logger (a child logger cannot carry keys): the connection and the configuration
# version are appended to every line of that connection's part of a batch.
logger = get_logger(Service.HUBSPOT_DEAL_SYNC)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

# The deal sync's idempotency records: the keys run_once("hubspot-deal-sync:<connection>", event_id) uses.
LEDGER_NAMESPACE: Final = "hubspot-deal-sync"


@dataclass
class ConnectionParts:
    """One connection's own service, clients and OAuth provider (its secrets, budgets and mapping)."""

    connection: Connection
    service: DealSyncService
    qbo: QboClient
    hubspot: HubSpotClient
    oauth: QboOAuth
    http_clients: tuple[VendorHttpClient, ...]


class ConnectionsSync:
    """The batch, split by connection: each event goes to the service of the connection serving its
    realm, which syncs it with that connection's credentials, limits and mapping. Nothing crosses: an
    event whose realm no connection serves (or that names another connection than its realm's) fails
    for good with that reason, and each connection's part of the batch runs with the connection and
    the configuration version on every log line."""

    def __init__(self, config: DeploymentConfig, parts: Mapping[str, ConnectionParts], clock: Clock) -> None:
        self.config = config
        self.parts = dict(parts)
        self.clock = clock

    @property
    def only(self) -> ConnectionParts:
        """The one connection (tests and tools of a one-connection deployment)."""
        if len(self.parts) != 1:
            raise ValueError(f"{len(self.parts)} connections: name one")
        return next(iter(self.parts.values()))

    @property
    def links(self) -> LinkStore:
        return self.only.service.links

    @property
    def ledger(self) -> EventLedger:
        return self.only.service.ledger

    def connection_of(self, event: ChangeEvent) -> tuple[Connection | None, str]:
        """The connection that syncs ``event``, or None and why not."""
        serving = self.config.by_realm(event.realm_id)
        if serving is None:
            return None, (
                f"no connection of this deployment serves realm {event.realm_id} "
                f"(configuration {self.config.version}); add one to the configuration file, then replay"
            )
        if event.connection is not None and event.connection != serving.name:
            return None, (
                f"the event names connection {event.connection!r}, but realm {event.realm_id} is "
                f"connection {serving.name!r}'s (configuration {self.config.version})"
            )
        return serving, ""

    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        by_connection: dict[str, list[ChangeEvent]] = {}
        for event in events:
            connection, refusal = self.connection_of(event)
            if connection is None:
                outcomes[event.message_id] = Outcome(
                    OutcomeStatus.FAILED,
                    reason=refusal,
                    retryable=False,
                    error_type="UnservedRealm",
                    scope=FailureScope.SHARED,
                )
                logger.error("event of no connection", extra={**event.log_fields(), "reason": refusal})
                continue
            by_connection.setdefault(connection.name, []).append(event)
        started = self.clock.now()
        for name, connection_events in by_connection.items():
            left = (
                None
                if remaining_ms is None
                else max(0, remaining_ms - int((self.clock.now() - started) * 1000))
            )
            with connection_scope(logger, name, self.config.version):
                outcomes.update(self.parts[name].service.sync(connection_events, remaining_ms=left))
        return outcomes


@dataclass
class DealSyncParts:
    """The service and the pieces tests and benchmarks look into (call counters, the OAuth provider)."""

    service: ConnectionsSync
    connections: Mapping[str, ConnectionParts]
    dead_letters: DeadLetterRouter = field(
        default_factory=lambda: DeadLetterRouter(None, max_receive_count=None, metrics=NoMetrics())
    )

    @property
    def only(self) -> ConnectionParts:
        return self.service.only

    @property
    def qbo(self) -> QboClient:
        return self.only.qbo

    @property
    def hubspot(self) -> HubSpotClient:
        return self.only.hubspot

    @property
    def oauth(self) -> QboOAuth:
        return self.only.oauth

    @property
    def http_clients(self) -> tuple[VendorHttpClient, ...]:
        return tuple(client for parts in self.connections.values() for client in parts.http_clients)

    def close(self) -> None:
        for client in self.http_clients:
            client.close()


def build_deal_sync(
    settings: Settings,
    *,
    secrets: SecretStore,
    config: DeploymentConfig | None = None,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    clock: Clock | None = None,
    metrics: MetricsSink | None = None,
    alarm: AlarmHook | None = None,
    publisher_sleep: Any = None,
    sqs: SQSClient | None = None,
    stores: DealSyncStores | None = None,
) -> DealSyncParts:
    """One service per connection of ``config`` (default: the configuration file of
    ``LEDGERLINK_CONFIG_FILE``). ``metrics`` may offer ``for_connection(name)`` for a sink whose
    metrics carry the connection as a dimension. ``sqs`` is only used (and only created) when
    ``settings.dead_letter_queue_name`` or ``settings.max_receive_count`` is set. ``stores``: where the
    state lives (default :class:`~ledgerlink.deal_sync.stores.AwsStores` over ``dynamodb`` and
    ``events``; :class:`~ledgerlink.deal_sync.stores.InMemoryStores` for a run without AWS)."""
    config = config if config is not None else deployment_config()
    if stores is None:
        stores = AwsStores(
            settings,
            dynamodb=dynamodb if dynamodb is not None else boto3.client("dynamodb"),
            events=events if events is not None else boto3.client("events"),
            clock=clock,
            publisher_sleep=publisher_sleep,
        )
    publisher = stores.publisher()
    base_metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
    parts = {
        connection.name: _connection_parts(
            connection,
            config,
            settings,
            secrets=secrets,
            stores=stores,
            publisher=publisher,
            clock=clock,
            metrics=_for_connection(base_metrics, connection.name),
            alarm=alarm if alarm is not None else _no_alarm,
        )
        for connection in config.connections
    }
    dead_letters = dead_letter_router(settings, metrics=base_metrics, sqs=sqs, clock=clock)
    return DealSyncParts(
        ConnectionsSync(config, parts, clock if clock is not None else SystemClock()),
        parts,
        dead_letters=dead_letters,
    )


def _for_connection(metrics: MetricsSink, name: str) -> MetricsSink:
    narrowed = getattr(metrics, "for_connection", None)
    return narrowed(name) if callable(narrowed) else metrics


def _connection_parts(
    connection: Connection,
    config: DeploymentConfig,
    settings: Settings,
    *,
    secrets: SecretStore,
    stores: DealSyncStores,
    publisher: EventPublisher,
    clock: Clock | None,
    metrics: MetricsSink,
    alarm: AlarmHook,
) -> ConnectionParts:
    shared = stores.vendor_client

    _, token_path = token_endpoint(settings.qbo_token_url)
    token_http = shared(token_policy(settings))
    # The connection's own secret, hence its own rotating refresh token and single-refresh lease.
    oauth = QboOAuth(
        secret_name=connection.secret_name(settings.stage, "qbo-oauth"),
        secrets=secrets,
        state=stores.token_state(),
        token_http=token_http,
        token_path=token_path,
        clock=clock,
        alarm=alarm,
    )
    qbo_http = shared(qbo_policy(settings), oauth)
    hubspot_auth = HubSpotAuth(secrets, connection.secret_name(settings.stage, "hubspot"))
    hubspot_http = shared(hubspot_policy(settings), hubspot_auth)
    qbo = QboClient(qbo_http, minor_version=settings.qbo_minor_version)
    # Rate limits are per realm (the QBO client's scope) and per portal (this scope), as the vendors count.
    hubspot = HubSpotClient(hubspot_http, scope=connection.portal_id)
    service = DealSyncService(
        qbo=qbo,
        hubspot=hubspot,
        links=stores.links(connection.name, config.version),
        ledger=stores.ledger(f"{LEDGER_NAMESPACE}:{connection.name}"),
        publisher=publisher,
        config=sync_config(connection, config),
        clock=clock,
        metrics=metrics,
        realm_check=_realm_check(oauth),
    )
    return ConnectionParts(connection, service, qbo, hubspot, oauth, (token_http, qbo_http, hubspot_http))


def sync_config(connection: Connection, config: DeploymentConfig) -> SyncConfig:
    """What the flow maps one connection's documents with, under configuration file ``config``."""
    return SyncConfig(
        time_zone=connection.time_zone,
        invoice_stages=connection.invoice_stages,
        estimate_stages=connection.estimate_stages,
        connection=connection.name,
        config_version=config.version,
        portal_id=connection.portal_id,
    )


def _no_alarm(name: str, fields: Mapping[str, Any]) -> None:
    return None


def _realm_check(oauth: QboOAuth) -> Any:
    def check(realm_id: str) -> str | None:
        connected = oauth.realm_id()
        if connected is not None and connected != realm_id:
            return f"no QBO connection for realm {realm_id}: secret {oauth.secret_name!r} is for realm {connected}"
        return None

    return check
