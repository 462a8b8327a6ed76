"""The follow-up sweep: time passes without any event, so a schedule (daily by default) looks for the owed
invoices that entered a follow-up rule since the last sweep, and publishes one ``ledgerlink.followup.due``
per invoice and rule; the Teams invite Lambda then treats each like an event.

It reads LedgerLink's own store, never QBO: the calendar items of owed invoices are in the links table's
sparse index ``owed-by-due-date`` (:data:`ledgerlink.tables.LINKS_OWED_BY_DUE_DATE`), so the invoices
entering ``past_due_M`` on day ``d`` are one query (due date ``d - M``), and a sweep that covers several
days (the schedule was off, or this is the first one) is one range query per rule. The last day swept
is kept per connection in the vendor-state table; a sweep covers the days after it up to today (in the
company's zone), at most :data:`MAX_CATCH_UP_DAYS` back. Two overlapping sweeps publish the same events
(same ``event_id``) and the flow makes one meeting per invoice and rule whatever arrives twice.

``ledgerlink followups sweep`` runs the same function from the operator's shell.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from ledgerlink.config import Settings
from ledgerlink.configfile import Connection, DeploymentConfig
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.followups.rules import rules_of
from ledgerlink.outlook_items import owed_between
from ledgerlink.publisher import EventBridgePublisher

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient

# A first sweep (or one after a long pause) looks this far back for windows entered.
MAX_CATCH_UP_DAYS: Final = 30


@dataclass
class SweepReport:
    per_connection: dict[str, int] = field(default_factory=dict)
    days: dict[str, tuple[str, str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        if not self.per_connection:
            return [
                "no connection has follow-ups on (follow_up.enabled, calendar.enabled, microsoft.tenant_id)"
            ]
        return [
            f"{name}: swept {self.days[name][0]} to {self.days[name][1]}, {count} follow-up(s) due published"
            for name, count in self.per_connection.items()
        ]


def follow_up_connections(config: DeploymentConfig) -> list[Connection]:
    """Connections with follow-ups: they need the calendar flow too (its items are what is swept)."""
    return [
        c
        for c in config.connections
        if c.follow_up.enabled and c.calendar.enabled and c.tenant_id is not None
    ]


class SweepCursor:
    """The last day swept per connection: pk ``followup-sweep#<connection>``, sk ``cursor``."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client

    def _key(self, connection: str) -> dict[str, Any]:
        return {"pk": {"S": f"followup-sweep#{connection}"}, "sk": {"S": "cursor"}}

    def last_day(self, connection: str) -> date | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=self._key(connection), ConsistentRead=True
        ).get("Item")
        return date.fromisoformat(item["last_day"]["S"]) if item and "last_day" in item else None

    def advance(self, connection: str, day: date) -> None:
        """Record ``day`` as swept, unless a later day already is (the cursor only moves forward)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(connection),
                UpdateExpression="SET last_day = :day",
                ConditionExpression="attribute_not_exists(last_day) OR last_day < :day",
                ExpressionAttributeValues={":day": {"S": day.isoformat()}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


def sweep_connection(
    connection: Connection,
    config_version: str,
    *,
    links_table: str,
    cursor: SweepCursor,
    dynamodb: DynamoDBClient,
    publisher: Any,
    now: datetime,
) -> tuple[int, date, date]:
    """Publish the follow-ups due for ``connection``; (published, first day swept, last day swept)."""
    today = now.astimezone(connection.time_zone).date()
    last = cursor.last_day(connection.name)
    earliest = today - timedelta(days=MAX_CATCH_UP_DAYS)
    first_day = max(earliest, last + timedelta(days=1)) if last is not None else earliest
    if first_day > today:
        return 0, today, today
    envelopes: list[Envelope] = []
    for rule in rules_of(connection.follow_up):
        low = rule.due_date_entering_on(first_day)
        high = rule.due_date_entering_on(today)
        for item in owed_between(dynamodb, links_table, connection.name, low.isoformat(), high.isoformat()):
            assert item.due_date is not None
            entered = rule.entered_on(date.fromisoformat(item.due_date))
            envelopes.append(
                _due_envelope(connection, config_version, _invoice_key(item.pk), rule.id, entered, now)
            )
    if envelopes:
        publisher.publish(envelopes)
    cursor.advance(connection.name, today)
    return len(envelopes), first_day, today


def run_sweep(
    settings: Settings,
    config: DeploymentConfig,
    *,
    dynamodb: DynamoDBClient | None = None,
    events: EventBridgeClient | None = None,
    connection: str | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> SweepReport:
    """Sweep every follow-up connection of ``config`` (or the one named)."""
    dynamodb_client: DynamoDBClient = dynamodb if dynamodb is not None else boto3.client("dynamodb")
    events_client: EventBridgeClient = events if events is not None else boto3.client("events")
    publisher = EventBridgePublisher(events_client, settings.event_bus_name)
    cursor = SweepCursor(settings.vendor_state_table_name, dynamodb_client)
    connections: Sequence[Connection] = follow_up_connections(config)
    if connection is not None:
        named = [c for c in connections if c.name == connection]
        if not named:
            known = ", ".join(c.name for c in connections) or "none"
            raise ValueError(
                f"connection {connection!r} has no follow-ups in {config.source} (with follow-ups: {known})"
            )
        connections = named
    moment = now if now is not None else datetime.now(UTC)
    report = SweepReport()
    for each in connections:
        count, first, last = sweep_connection(
            each,
            config.version,
            links_table=settings.links_table_name,
            cursor=cursor,
            dynamodb=dynamodb_client,
            publisher=publisher,
            now=moment,
        )
        report.per_connection[each.name] = count
        report.days[each.name] = (first.isoformat(), last.isoformat())
        if progress is not None:
            progress(report.lines()[-1])
    return report


def _invoice_key(pk: str) -> str:
    realm, _, invoice_id = pk.split("#", 2)
    return f"{realm}:{invoice_id}"


def _due_envelope(
    connection: Connection, config_version: str, invoice_key: str, rule: str, entered: date, now: datetime
) -> Envelope:
    identity = f"{connection.name}|{invoice_key}|{rule}|{entered.isoformat()}"
    event_id = hashlib.sha256(identity.encode("utf-8")).hexdigest()
    return Envelope(
        source=EventSource.TEAMS_INVITE,
        detail_type=DetailType.FOLLOWUP_DUE,
        payload={
            "connection": connection.name,
            "config_version": config_version,
            "invoice_key": invoice_key,
            "rule": rule,
            "entered_on": entered.isoformat(),
            "swept_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
        },
        correlation_id=f"followup-{event_id[:24]}",
        event_id=event_id,
        occurred_at=now.astimezone(UTC).isoformat(timespec="milliseconds"),
    )
