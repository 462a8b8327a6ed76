"""Outlook calendar sync Lambda, fed by the calendar-sync SQS queue (``ledgerlink.deal.synced`` events,
routed by an EventBridge rule): puts each invoice's due date on the right Outlook calendar, moves it
with the invoice and removes it when the invoice is paid, voided or deleted.

Thin on purpose: :func:`~ledgerlink.consumer.batch.process_batch` parses every record
(:func:`~ledgerlink.calendar_sync.inbox.parse_record`), the per-connection services
(:class:`~ledgerlink.calendar_sync.factory.ConnectionsCalendarSync`) sync them, and each record is
settled: done, given back to SQS with a delay, or sent to the dead-letter queue with its reason by the
function itself (docs/calendar-sync.md). The partial batch response names exactly the records to retry.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ledgerlink.calendar_sync.factory import CalendarSyncParts, build_calendar_sync
from ledgerlink.calendar_sync.inbox import history_subject, parse_record
from ledgerlink.config import ConfigError, get_settings
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.consumer.history import BatchHistory, batch_history
from ledgerlink.consumer.partial_response import consume_batch
from ledgerlink.history import Flow
from ledgerlink.observability import Service, ServiceMetrics, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.OUTLOOK_CALENDAR_SYNC)
tracer = get_tracer(Service.OUTLOOK_CALENDAR_SYNC)
metrics = get_metrics(Service.OUTLOOK_CALENDAR_SYNC)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parts = _parts()
    remaining_ms = context.get_remaining_time_in_millis()
    return consume_batch(
        event,
        context,
        parse=parse_record,
        sync=lambda events: parts.service.sync(events, remaining_ms=remaining_ms),
        router=parts.dead_letters,
        history=_history(),
    )


@cache
def _parts() -> CalendarSyncParts:
    return build_calendar_sync(
        get_settings(), secrets=default_secret_store(), metrics=ServiceMetrics(Service.OUTLOOK_CALENDAR_SYNC)
    )


@cache
def _history() -> BatchHistory[Any] | None:
    """The flow's history rows (ledgerlink.history), in the links table."""
    try:
        links_table_name = get_settings().links_table_name
    except ConfigError:
        return None  # only parts a test built by hand run without settings; a deployed function has them
    return batch_history(
        Flow.CALENDAR_SYNC,
        history_subject,
        links_table_name=links_table_name,
        metrics=ServiceMetrics(Service.OUTLOOK_CALENDAR_SYNC),
    )


def reset_for_tests() -> None:
    """Forget the cached service and secret store (tests change the environment between runs)."""
    if _parts.cache_info().currsize:
        _parts().close()
    _parts.cache_clear()
    _history.cache_clear()
    reset_default_secret_store()
    reset_deployment_config()
