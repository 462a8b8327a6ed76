"""QBO document sync Lambda, fed by the document-sync SQS queue (``hubspot.deal.changed`` events, routed by an
EventBridge rule): a QBO Estimate when a deal reaches a quote stage, its Invoice when the deal is won.

Thin on purpose: :func:`~ledgerlink.consumer.batch.process_batch` parses every record
(:func:`~ledgerlink.document_sync.inbox.parse_record`), the per-connection services
(:class:`~ledgerlink.document_sync.factory.ConnectionsDocumentSync`) act on each deal as HubSpot shows it
now, and each record is settled: done, given back to SQS with a delay, or sent to the dead-letter queue
with its reason by the function itself (docs/document-sync.md).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ledgerlink.config import ConfigError, get_settings
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.consumer.history import BatchHistory, batch_history
from ledgerlink.consumer.partial_response import consume_batch
from ledgerlink.document_sync.factory import DocumentSyncParts, build_document_sync
from ledgerlink.document_sync.inbox import history_subject, parse_record
from ledgerlink.history import Flow
from ledgerlink.observability import Service, ServiceMetrics, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.QBO_DOCUMENT_SYNC)
tracer = get_tracer(Service.QBO_DOCUMENT_SYNC)
metrics = get_metrics(Service.QBO_DOCUMENT_SYNC)


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
def _parts() -> DocumentSyncParts:
    return build_document_sync(
        get_settings(), secrets=default_secret_store(), metrics=ServiceMetrics(Service.QBO_DOCUMENT_SYNC)
    )


@cache
def _history() -> BatchHistory[Any] | None:
    """The flow's history rows (ledgerlink.history), in the links table."""
    try:
        links_table_name = get_settings().links_table_name
    except ConfigError:
        return None  # only parts a test built by hand run without settings; a deployed function has them
    return batch_history(
        Flow.DOCUMENT_SYNC,
        history_subject,
        links_table_name=links_table_name,
        metrics=ServiceMetrics(Service.QBO_DOCUMENT_SYNC),
    )


def reset_for_tests() -> None:
    """Forget the cached service and secret store (tests change the environment between runs)."""
    if _parts.cache_info().currsize:
        _parts().close()
    _parts.cache_clear()
    _history.cache_clear()
    reset_default_secret_store()
    reset_deployment_config()
