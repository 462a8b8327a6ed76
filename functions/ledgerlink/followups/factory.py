"""Builds the follow-up flow from :class:`~ledgerlink.config.Settings` and the configuration file: per
connection with follow-ups its Graph and HubSpot clients, its Outlook item store and its service
(:class:`ConnectionsFollowUps` routes each trigger to its own, and runs the scheduled sweep), and the
dead-letter router. The Lambda handler, the tests and the benchmark all build it here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig, deployment_config
from ledgerlink.consumer.deadletter import DeadLetterRouter
from ledgerlink.consumer.factory import dead_letter_router
from ledgerlink.consumer.outcome import NoMetrics, Outcome, OutcomeStatus
from ledgerlink.followups.inbox import CalendarSynced, FollowUpDue, SweepRequested, Trigger, log_fields
from ledgerlink.followups.service import FollowUpConfig, FollowUpService, MetricsSink
from ledgerlink.followups.sweep import follow_up_connections, run_sweep
from ledgerlink.graph.client import GraphClient
from ledgerlink.graph.factory import graph_client
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import hubspot_policy
from ledgerlink.hubspot.client import HubSpotAuth, HubSpotClient
from ledgerlink.observability import Service, connection_scope, get_logger
from ledgerlink.outlook_items import OutlookItemStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs.client import SQSClient

logger = get_logger(Service.TEAMS_INVITE)


@dataclass
class FollowUpConnectionParts:
    connection: Connection
    service: FollowUpService
    graph: GraphClient
    hubspot: HubSpotClient
    items: OutlookItemStore
    http_clients: tuple[VendorHttpClient, ...]


class ConnectionsFollowUps:
    """The batch: sweeps run over every follow-up connection; the other triggers go to their connection's
    service. A trigger of a connection without follow-ups is ignored, saying why."""

    def __init__(
        self,
        config: DeploymentConfig,
        parts: Mapping[str, FollowUpConnectionParts],
        *,
        settings: Settings,
        dynamodb: DynamoDBClient,
        events: EventBridgeClient,
        metrics: MetricsSink,
    ) -> None:
        self.config = config
        self.parts = dict(parts)
        self.settings = settings
        self.dynamodb = dynamodb
        self.events = events
        self.metrics = metrics

    @property
    def only(self) -> FollowUpConnectionParts:
        if len(self.parts) != 1:
            raise ValueError(f"{len(self.parts)} connections with follow-ups: name one")
        return next(iter(self.parts.values()))

    def sync(self, triggers: Sequence[Trigger], remaining_ms: int | None = None) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        by_connection: dict[str, list[CalendarSynced | FollowUpDue]] = {}
        for trigger in triggers:
            if isinstance(trigger, SweepRequested):
                outcomes[trigger.message_id] = self._sweep(trigger)
                continue
            name = trigger.connection
            if name not in self.parts:
                known = self.config.by_name(name)
                why = "is not a connection of this deployment" if known is None else "has follow-ups off"
                outcomes[trigger.message_id] = Outcome(
                    OutcomeStatus.IGNORED,
                    reason=f"connection {name!r} {why} (configuration {self.config.version})",
                )
                logger.info(
                    "trigger ignored",
                    extra={**log_fields(trigger), "reason": outcomes[trigger.message_id].reason},
                )
                continue
            by_connection.setdefault(name, []).append(trigger)
        for name, connection_triggers in by_connection.items():
            with connection_scope(logger, name, self.config.version):
                outcomes.update(self.parts[name].service.sync(connection_triggers))
        return outcomes

    def _sweep(self, trigger: SweepRequested) -> Outcome:
        try:
            report = run_sweep(
                self.settings,
                self.config,
                dynamodb=self.dynamodb,
                events=self.events,
                now=trigger.requested_at,
            )
        except Exception as error:  # noqa: BLE001 - classified into the record's outcome
            outcome = Outcome.failure(error)
            logger.warning("follow-up sweep failed", extra={**log_fields(trigger), "reason": outcome.reason})
            return outcome
        total = sum(report.per_connection.values())
        self.metrics.count("FollowUpsDuePublished", total)
        logger.info("follow-up sweep", extra={**log_fields(trigger), "lines": report.lines()})
        return Outcome(OutcomeStatus.SYNCED, detail={"followups_due": str(total)})


@dataclass
class FollowUpParts:
    service: ConnectionsFollowUps
    connections: Mapping[str, FollowUpConnectionParts]
    dead_letters: DeadLetterRouter = field(
        default_factory=lambda: DeadLetterRouter(None, max_receive_count=None, metrics=NoMetrics())
    )

    @property
    def only(self) -> FollowUpConnectionParts:
        return self.service.only

    def close(self) -> None:
        for parts in self.connections.values():
            for client in parts.http_clients:
                client.close()


def build_follow_ups(
    settings: Settings,
    *,
    secrets: Any,
    config: DeploymentConfig | None = None,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    clock: Clock | None = None,
    metrics: MetricsSink | None = None,
    sqs: SQSClient | None = None,
) -> FollowUpParts:
    config = config if config is not None else deployment_config()
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    events_client: EventBridgeClient = events if events is not None else boto3.client("events")
    base_metrics: MetricsSink = metrics if metrics is not None else NoMetrics()
    parts: dict[str, FollowUpConnectionParts] = {}
    for connection in follow_up_connections(config):
        narrowed = getattr(base_metrics, "for_connection", None)
        connection_metrics: MetricsSink = narrowed(connection.name) if callable(narrowed) else base_metrics
        graph = graph_client(connection, settings, secrets=secrets, dynamodb=dynamodb_client, clock=clock)
        hubspot_http = shared_state_client(
            hubspot_policy(settings),
            HubSpotAuth(secrets, connection.secret_name(settings.stage, "hubspot")),
            table_name=settings.vendor_state_table_name,
            dynamodb_client=dynamodb_client,
            clock=clock,
        )
        hubspot = HubSpotClient(hubspot_http, scope=connection.portal_id)
        items = OutlookItemStore(
            settings.links_table_name,
            dynamodb_client,
            connection=connection.name,
            config_version=config.version,
        )
        service = FollowUpService(
            meetings=graph.client,
            directory=hubspot,
            items=items,
            config=FollowUpConfig(
                connection=connection.name,
                config_version=config.version,
                settings=connection.follow_up,
                outlook_time_zone=connection.calendar.outlook_time_zone,
            ),
            clock=clock,
            metrics=connection_metrics,
        )
        parts[connection.name] = FollowUpConnectionParts(
            connection, service, graph.client, hubspot, items, (graph.token_http, graph.http, hubspot_http)
        )
    router = ConnectionsFollowUps(
        config, parts, settings=settings, dynamodb=dynamodb_client, events=events_client, metrics=base_metrics
    )
    return FollowUpParts(
        router, parts, dead_letters=dead_letter_router(settings, metrics=base_metrics, sqs=sqs, clock=clock)
    )
