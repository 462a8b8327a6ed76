"""HubSpot deal sync Lambda, fed by the deal-sync SQS queue (``qbo.entity.changed`` for Invoice, Estimate,
Payment and Customer, routed by an EventBridge rule).

Thin on purpose: hand the batch to :func:`~ledgerlink.consumer.batch.process_batch`, which parses every
record (:func:`~ledgerlink.deal_sync.inbox.parse_record`), syncs them together
(:meth:`~ledgerlink.deal_sync.service.DealSyncService.sync` batches the vendor calls across the batch)
and settles each record, then let Powertools' :class:`BatchProcessor` report them: a record to retry raises :class:`RecordFailed` with its reason, so exactly those records are
returned in ``batchItemFailures`` and delivered again; the others are deleted. One bad record never
fails or repeats its neighbours.

A record that cannot succeed (malformed, an unmappable document, an unsupported currency, a revoked QBO
connection) or that failed on the queue's last allowed receive (``LEDGERLINK_MAX_RECEIVE_COUNT``) is
sent to the dead-letter queue (``LEDGERLINK_DEAD_LETTER_QUEUE_NAME``) by the function itself, with its
reason in ``ledgerlink.*`` message attributes, and reported as handled; if that send fails it is
reported failed, and the queue's redrive policy remains the backstop (docs/deal-sync.md).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerlink.config import ConfigError, get_settings
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.consumer.history import BatchHistory, batch_history
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.consumer.partial_response import consume_batch
from ledgerlink.deal_sync.factory import DealSyncParts, build_deal_sync
from ledgerlink.deal_sync.inbox import ChangeEvent, history_subject, parse_record
from ledgerlink.history import Flow, Subject
from ledgerlink.observability import Service, ServiceMetrics, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.HUBSPOT_DEAL_SYNC)
tracer = get_tracer(Service.HUBSPOT_DEAL_SYNC)
metrics = get_metrics(Service.HUBSPOT_DEAL_SYNC)


def _alarm(name: str, fields: Mapping[str, Any]) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


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
        sync=lambda changes: parts.service.sync(changes, remaining_ms=remaining_ms),
        router=parts.dead_letters,
        history=_history(),
    )


@cache
def _parts() -> DealSyncParts:
    return build_deal_sync(
        get_settings(),
        secrets=default_secret_store(),
        metrics=ServiceMetrics(Service.HUBSPOT_DEAL_SYNC),
        alarm=_alarm,
    )


@cache
def _history() -> BatchHistory[Any] | None:
    """The flow's history rows (ledgerlink.history), in the links table."""
    try:
        links_table_name = get_settings().links_table_name
    except ConfigError:
        return None  # only parts a test built by hand run without settings; a deployed function has them

    def describe(event: ChangeEvent, outcome: Outcome) -> Subject | None:
        # An event published before connections names none: the connection serving its realm does.
        serving, _ = _parts().service.connection_of(event)
        return history_subject(event, outcome, serving.name if serving is not None else None)

    return batch_history(
        Flow.DEAL_SYNC,
        describe,
        links_table_name=links_table_name,
        metrics=ServiceMetrics(Service.HUBSPOT_DEAL_SYNC),
    )


def reset_for_tests() -> None:
    """Forget the cached service and secret store (tests change the environment between runs)."""
    if _parts.cache_info().currsize:
        _parts().close()
    _parts.cache_clear()
    _history.cache_clear()
    reset_default_secret_store()
    reset_deployment_config()
