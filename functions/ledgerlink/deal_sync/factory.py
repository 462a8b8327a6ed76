"""Builds the deal sync from :class:`~ledgerlink.config.Settings`: clients, stores, the service and the
dead-letter router (built by :func:`ledgerlink.consumer.factory.dead_letter_router`, as for every flow).

The Lambda handler, the local stack, the integration tests and the benchmark all build it here, so
they run the same objects; only the AWS clients (moto or AWS), the secret store and the clock differ.
Vendor limits and breakers are shared through the vendor-state table (``shared_state_client``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import boto3

from ledgerlink.clock import Clock
from ledgerlink.config import ConfigError, EnvVar, Settings
from ledgerlink.consumer.deadletter import DeadLetterRouter
from ledgerlink.consumer.factory import dead_letter_router
from ledgerlink.consumer.ledger import EventLedger
from ledgerlink.crosswalk import LinkStore
from ledgerlink.deal_sync.ports import MetricsSink, NoMetrics, SyncConfig
from ledgerlink.deal_sync.service import DealSyncService
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import hubspot_policy, qbo_policy
from ledgerlink.hubspot.client import HubSpotAuth, HubSpotClient
from ledgerlink.mapping.errors import StageMapError
from ledgerlink.mapping.stages import (
    EstimateStatus,
    InvoiceStatus,
    StageMap,
    default_estimate_stages,
    default_invoice_stages,
)
from ledgerlink.publisher import EventBridgePublisher
from ledgerlink.qbo.client import QboClient
from ledgerlink.qbo.oauth import AlarmHook, DynamoDBTokenStateStore, QboOAuth, token_endpoint, token_policy
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

# The HubSpot rate-limit scope when the secret names no portal (one portal per deployment).
DEFAULT_PORTAL_SCOPE = "portal"
# The deal sync's idempotency records: the keys run_once("hubspot-deal-sync", event_id) uses.
LEDGER_NAMESPACE: Final = "hubspot-deal-sync"


def stage_maps(settings: Settings) -> tuple[StageMap, StageMap]:
    """(invoice, estimate) stage maps from ``LEDGERLINK_*_STAGE_MAP``; a bad one names the variable."""

    def parse(raw: str, statuses: Any, name: EnvVar, default: StageMap) -> StageMap:
        if raw.strip().lower() == "default":
            return default
        try:
            document = json.loads(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name.value} must be JSON or 'default'") from None
        try:
            return StageMap.from_config(document, statuses, where=name.value)
        except StageMapError as error:
            raise ConfigError(str(error)) from None

    return (
        parse(settings.invoice_stage_map, InvoiceStatus, EnvVar.INVOICE_STAGE_MAP, default_invoice_stages()),
        parse(
            settings.estimate_stage_map, EstimateStatus, EnvVar.ESTIMATE_STAGE_MAP, default_estimate_stages()
        ),
    )


@dataclass
class DealSyncParts:
    """The service and the pieces tests and benchmarks look into (call counters, the OAuth provider)."""

    service: DealSyncService
    qbo: QboClient
    hubspot: HubSpotClient
    oauth: QboOAuth
    http_clients: tuple[VendorHttpClient, ...]
    dead_letters: DeadLetterRouter = field(
        default_factory=lambda: DeadLetterRouter(None, max_receive_count=None, metrics=NoMetrics())
    )

    def close(self) -> None:
        for client in self.http_clients:
            client.close()


def build_deal_sync(
    settings: Settings,
    *,
    secrets: SecretStore,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    clock: Clock | None = None,
    metrics: MetricsSink | None = None,
    alarm: AlarmHook | None = None,
    publisher_sleep: Any = None,
    sqs: SQSClient | None = None,
) -> DealSyncParts:
    """``sqs`` is only used (and only created) when ``settings.dead_letter_queue_name`` or
    ``settings.max_receive_count`` is set (the function consumes a queue)."""
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    events_client: EventBridgeClient = events if events is not None else boto3.client("events")
    table = settings.vendor_state_table_name

    def shared(policy: Any, auth: Any = None) -> VendorHttpClient:
        return shared_state_client(
            policy, auth, table_name=table, dynamodb_client=dynamodb_client, clock=clock
        )

    _, token_path = token_endpoint(settings.qbo_token_url)
    token_http = shared(token_policy(settings))
    oauth = QboOAuth(
        secret_name=settings.qbo_oauth_secret_name,
        secrets=secrets,
        state=DynamoDBTokenStateStore(table, dynamodb_client),
        token_http=token_http,
        token_path=token_path,
        clock=clock,
        alarm=alarm if alarm is not None else _no_alarm,
    )
    qbo_http = shared(qbo_policy(settings), oauth)
    hubspot_auth = HubSpotAuth(secrets, settings.hubspot_secret_name)
    hubspot_http = shared(hubspot_policy(settings), hubspot_auth)
    qbo = QboClient(qbo_http, minor_version=settings.qbo_minor_version)
    hubspot = HubSpotClient(hubspot_http, scope=hubspot_auth.portal_id() or DEFAULT_PORTAL_SCOPE)
    invoice_stages, estimate_stages = stage_maps(settings)
    publisher_options: Mapping[str, Any] = {"sleep": publisher_sleep} if publisher_sleep is not None else {}
    service = DealSyncService(
        qbo=qbo,
        hubspot=hubspot,
        links=LinkStore(settings.links_table_name, dynamodb_client),
        ledger=EventLedger(
            settings.idempotency_table_name,
            settings.idempotency_ttl_seconds,
            namespace=LEDGER_NAMESPACE,
            dynamodb_client=dynamodb_client,
        ),
        publisher=EventBridgePublisher(events_client, settings.event_bus_name, **publisher_options),
        config=SyncConfig(
            time_zone=settings.company_time_zone,
            invoice_stages=invoice_stages,
            estimate_stages=estimate_stages,
        ),
        clock=clock,
        metrics=metrics,
        realm_check=_realm_check(oauth),
    )
    dead_letters = dead_letter_router(
        settings, metrics=metrics if metrics is not None else NoMetrics(), sqs=sqs, clock=clock
    )
    return DealSyncParts(
        service, qbo, hubspot, oauth, (token_http, qbo_http, hubspot_http), dead_letters=dead_letters
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
