"""The scheduled reconciliation (F16): the report of :func:`~ledgerlink.deal_sync.reconcile.reconcile`
for every connection, once a day by default, as the qbo_reconcile Lambda runs it. It never repairs:
fixing drift is the operator's decision (``ledgerlink reconcile --connection NAME --repair``).

:func:`reconcile_connections` is the core: it checks one connection after the other and, per connection,

- logs one WARNING line ``"reconcile drift"`` per drifted record, naming the connection, the QBO document
  (``<realm>:<Id>`` and number), its HubSpot record(s) and each drifted field with both values and the
  likely cause (docs/reconcile.md has the causes);
- counts ``DriftRecords`` (the number of drifted records; 0 when clean, so the alarm goes back to OK),
  once for the service and once with the connection as a dimension;
- counts ``UnexpectedErrors`` when the check fails (``HubSpotTokenRejected`` too when HubSpot refused the
  connection's token), logs the error and goes on with the next connection: one company's trouble
  holds back no other's report.

A Lambda has at most 15 minutes. Before each connection the core asks how much time is left: when it is
less than :data:`RESERVE_MS` plus the longest connection so far took, it stops, logs
``"reconcile stopped before the time ran out"`` naming the connections it did not reach, and counts
``ReconcileNotReached`` for each (alarmed: run ``ledgerlink reconcile --connection NAME`` from a shell,
which has no such limit). A single connection larger than the limit times the invocation out: its
``Errors`` alarm fires, and the same command is the answer.

:func:`run_scheduled_reconcile` wires the core to the deal flow exactly as its Lambda builds it
(:func:`~ledgerlink.deal_sync.factory.build_deal_sync`: the same clients and shared vendor limits as
live traffic, so the daily read keeps within both vendors' budgets).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from ledgerlink.config import Settings
from ledgerlink.configfile import DeploymentConfig
from ledgerlink.consumer.failures import refused_credentials
from ledgerlink.deal_sync.factory import build_deal_sync
from ledgerlink.deal_sync.reconcile import Reconciliation, RecordDrift, default_since, reconcile
from ledgerlink.observability import Service, get_logger
from ledgerlink.qbo.oauth import AlarmHook
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = get_logger(Service.QBO_RECONCILE)

# Time kept back before starting another connection: the report's log lines and metrics, and a margin
# for a connection that takes longer than the longest one before it.
RESERVE_MS: Final = 60_000


class Counter(Protocol):
    def count(self, name: str, value: int = 1) -> None: ...


class ConnectionCounters(Protocol):
    """A metrics sink whose counts can name the connection (:class:`ledgerlink.observability.ServiceMetrics`)."""

    def for_connection(self, connection: str) -> Counter: ...


@dataclass(frozen=True)
class ConnectionCheck:
    connection: str
    documents: int
    drifted: int


@dataclass
class ScheduledReport:
    checked: list[ConnectionCheck] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)
    """Connections not checked because the time left ran short (in order)."""
    failures: dict[str, str] = field(default_factory=dict)
    """Connection -> why its check failed."""

    @property
    def drifted(self) -> int:
        return sum(each.drifted for each in self.checked)

    def describe(self) -> dict[str, Any]:
        return {
            "connections": {
                each.connection: {"documents": each.documents, "drifted_records": each.drifted}
                for each in self.checked
            },
            "drifted_records": self.drifted,
            "not_reached": list(self.not_reached),
            "failures": dict(self.failures),
        }


def drift_log_fields(record: RecordDrift) -> dict[str, Any]:
    """The ``"reconcile drift"`` line of one record: what an operator needs to find and judge it."""
    return {
        "connection": record.connection,
        "qbo_type": record.qbo_type,
        "qbo_id": record.qbo_id,
        "qbo_number": record.number,
        "hubspot_type": record.hubspot_type,
        "hubspot_ids": list(record.hubspot_ids),
        "fields": [
            {"field": each.field, "qbo": each.qbo, "hubspot": each.hubspot, "cause": each.cause.value}
            for each in record.fields
        ],
        "drifted_fields": ",".join(each.field for each in record.fields),
    }


def reconcile_connections(
    connections: Sequence[str],
    check: Callable[[str], Reconciliation],
    *,
    metrics: ConnectionCounters,
    remaining_ms: Callable[[], int],
    reserve_ms: int = RESERVE_MS,
    monotonic: Callable[[], float] = time.monotonic,
) -> ScheduledReport:
    """Check each of ``connections`` with ``check`` (reads only) and report (module docstring)."""
    report = ScheduledReport()
    longest_ms = 0
    for index, name in enumerate(connections):
        left = remaining_ms()
        if left < reserve_ms + longest_ms:
            report.not_reached = list(connections[index:])
            logger.warning(
                "reconcile stopped before the time ran out",
                extra={
                    "connections_not_reached": report.not_reached,
                    "remaining_ms": left,
                    "longest_connection_ms": longest_ms,
                    "action": "run `ledgerlink reconcile --connection NAME` from a shell for each",
                },
            )
            for skipped in report.not_reached:
                metrics.for_connection(skipped).count("ReconcileNotReached")
            break
        counter = metrics.for_connection(name)
        started = monotonic()
        try:
            result = check(name)
        except Exception as error:  # recorded per connection; the next connection still runs
            logger.exception("reconcile of a connection failed", extra={"connection": name})
            report.failures[name] = f"{type(error).__name__}: {error}"
            counter.count("UnexpectedErrors")
            if refused_credentials(error) == "hubspot":
                counter.count("HubSpotTokenRejected")
            continue
        finally:
            longest_ms = max(longest_ms, int((monotonic() - started) * 1000))
        for record in result.drift:
            logger.warning("reconcile drift", extra=drift_log_fields(record))
        counter.count("DriftRecords", len(result.drift))
        counts = result.counts()
        report.checked.append(ConnectionCheck(name, len(result.snapshot.documents), len(result.drift)))
        logger.info("connection reconciled", extra={"connection": name, **counts})
    return report


def run_scheduled_reconcile(
    settings: Settings,
    config: DeploymentConfig,
    *,
    secrets: SecretStore,
    metrics: ConnectionCounters,
    remaining_ms: Callable[[], int],
    dynamodb: DynamoDBClient | None = None,
    since: date | None = None,
    alarm: AlarmHook | None = None,
    reserve_ms: int = RESERVE_MS,
) -> ScheduledReport:
    """The report for every connection of ``config`` over the default window (the last 400 days), read
    through the deal flow as its Lambda builds it. ``alarm`` receives the QBO grant's alarms."""
    window_start = since if since is not None else default_since(datetime.now(UTC).date())
    parts = build_deal_sync(settings, secrets=secrets, config=config, dynamodb=dynamodb, alarm=alarm)
    try:
        realms = {each.name: each.realm_id for each in config.connections}

        def check(name: str) -> Reconciliation:
            return reconcile(parts.connections[name].service, realms[name], window_start)

        return reconcile_connections(
            list(realms), check, metrics=metrics, remaining_ms=remaining_ms, reserve_ms=reserve_ms
        )
    finally:
        parts.close()
