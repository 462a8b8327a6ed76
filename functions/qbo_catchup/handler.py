"""QBO CDC catch-up Lambda, invoked by its EventBridge schedule (every 15 minutes by default).

The schedule's "Scheduled Event" reaches it through its SQS queue (as every scheduled rule of the
topology does); it may also be invoked directly with ``{"connection": "<name>"}``. Thin on purpose: find
the connection the event names (a scheduled tick names none: every connection runs; a batch of ticks is
one run), call :func:`ledgerlink.catchup.run.run_catchup`, and
turn the outcome into metrics in one place: the QBO grant's alarms (``QboConnectionRevoked``, ...), ``CatchupGapTooLong`` per connection whose cursor was beyond
CDC's 30 days (alarmed: run ``ledgerlink backfill``), ``CatchupPublished``, and ``UnexpectedErrors``
for any exception, which is re-raised so the invocation fails and is visible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerlink.catchup.run import run_catchup
from ledgerlink.config import get_settings
from ledgerlink.configfile import deployment_config
from ledgerlink.observability import Service, get_logger, get_metrics, get_tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.QBO_CATCHUP)
tracer = get_tracer(Service.QBO_CATCHUP)
metrics = get_metrics(Service.QBO_CATCHUP)


def _alarm(name: str, fields: Mapping[str, Any]) -> None:
    """The QBO grant's alarms (QboConnectionRevoked, QboClientRejected, ...) as this function's metrics."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class CatchupFailed(RuntimeError):
    """One or more connections' catch-up failed (each logged with its error and connection)."""


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    named = _named_connection(event)
    try:
        report = run_catchup(get_settings(), deployment_config(), connection=named, alarm=_alarm)
    except Exception:
        metrics.add_metric(name="UnexpectedErrors", unit=MetricUnit.Count, value=1)
        logger.exception("catch-up failed", extra={"connection": named or "all"})
        raise
    metrics.add_metric(name="CatchupGapTooLong", unit=MetricUnit.Count, value=len(report.gaps))
    if report.failures:
        # Every connection ran; those that failed fail the invocation, so the tick is retried.
        metrics.add_metric(name="UnexpectedErrors", unit=MetricUnit.Count, value=len(report.failures))
        raise CatchupFailed("catch-up failed for " + ", ".join(sorted(report.failures)))
    metrics.add_metric(
        name="CatchupPublished",
        unit=MetricUnit.Count,
        value=sum(each.published for each in report.connections),
    )
    return {
        "connections": {
            each.connection: {
                "published": each.published,
                "gap_seconds": int(each.gap.total_seconds()) if each.gap is not None else 0,
                "cursor": each.cursor.isoformat(),
            }
            for each in report.connections
        }
    }


def _named_connection(event: Mapping[str, Any]) -> str | None:
    """The connection a direct invocation names; None (all) for scheduled ticks from the queue."""
    if "Records" in event:
        names = set()
        for record in event["Records"]:
            body = json.loads(record.get("body") or "{}")
            if not isinstance(body, dict) or body.get("connection") is None:
                return None  # a scheduled tick: every connection, whatever else the batch holds
            names.add(str(body["connection"]))
        return names.pop() if len(names) == 1 else None
    named = event.get("connection")
    return str(named) if named is not None else None
