"""HubSpot deal sync Lambda, fed by the deal-sync SQS queue (``qbo.entity.changed`` for Invoice, Estimate,
Payment and Customer, routed by an EventBridge rule; dead-letter queue after ``maxReceiveCount``).

Thin on purpose: parse every record, hand the whole batch to
:meth:`~ledgerlink.sync.service.DealSyncService.sync` (which batches the vendor calls across it), then
let Powertools' :class:`BatchProcessor` report each record: a record whose outcome failed raises
:class:`RecordFailed` with its reason, so exactly the failed records are returned in
``batchItemFailures`` and retried by SQS; the others are deleted. One bad record never fails or repeats
its neighbours.

Records that can never succeed (malformed, an unmappable document, an unsupported currency, a revoked
QBO connection) are failed too: SQS counts their receives and moves them to the dead-letter queue after
``maxReceiveCount``. Their redeliveries fail at once without vendor calls (the failure is recorded in
the links table, where ``ledgerlink local status`` shows it, and logged at ERROR with the reason).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerlink.config import get_settings
from ledgerlink.observability import Service, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store, reset_default_secret_store
from ledgerlink.sync.factory import DealSyncParts, build_deal_sync
from ledgerlink.sync.inbox import ChangeEvent, MalformedRecord, parse_record
from ledgerlink.sync.service import Outcome

if TYPE_CHECKING:
    from collections.abc import Mapping

    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.HUBSPOT_DEAL_SYNC)
tracer = get_tracer(Service.HUBSPOT_DEAL_SYNC)
metrics = get_metrics(Service.HUBSPOT_DEAL_SYNC)


class RecordFailed(Exception):
    """Raised for a record whose sync failed; the message is the reason (never a secret)."""


class _PowertoolsMetrics:
    def count(self, name: str, value: int = 1) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _alarm(name: str, fields: Mapping[str, Any]) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    parsed: dict[str, ChangeEvent] = {}
    malformed: dict[str, MalformedRecord] = {}
    for record in records:
        try:
            change = parse_record(record)
        except MalformedRecord as error:
            malformed[str(record.get("messageId"))] = error
            metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
            logger.error(
                "malformed event", extra={"message_id": record.get("messageId"), "reason": str(error)}
            )
            continue
        parsed[change.message_id] = change
    outcomes: dict[str, Outcome] = {}
    if parsed:
        outcomes = _parts().service.sync(
            list(parsed.values()), remaining_ms=context.get_remaining_time_in_millis()
        )

    def record_handler(record: SQSRecord) -> str:
        if record.message_id in malformed:
            raise malformed[record.message_id]
        outcome = outcomes[record.message_id]
        if not outcome.ok:
            raise RecordFailed(outcome.reason or "sync failed")
        return outcome.status.value

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response


@cache
def _parts() -> DealSyncParts:
    return build_deal_sync(
        get_settings(), secrets=default_secret_store(), metrics=_PowertoolsMetrics(), alarm=_alarm
    )


def reset_for_tests() -> None:
    """Forget the cached service and secret store (tests change the environment between runs)."""
    if _parts.cache_info().currsize:
        _parts().close()
    _parts.cache_clear()
    reset_default_secret_store()
