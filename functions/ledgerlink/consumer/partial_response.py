"""One SQS batch in a queue-fed Lambda, and the answer it gives SQS: :func:`consume_batch` runs
:func:`~ledgerlink.consumer.batch.process_batch` and turns what it decided for each record into
Powertools' partial batch response.

A record to retry is reported in ``batchItemFailures`` (Powertools' :class:`BatchProcessor` lists the
records whose handler raised), so exactly those are delivered again; the others (done, or
dead-lettered by the function itself) are deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ledgerlink.consumer.batch import E, Parse, Sync, process_batch
from ledgerlink.consumer.deadletter import DeadLetterRouter, Disposition, Routed
from ledgerlink.consumer.history import BatchHistory

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class RecordFailed(Exception):
    """Raised for a record SQS should deliver again; the message is the reason (never a secret)."""


def partial_batch_response(
    event: Mapping[str, Any], context: LambdaContext, routed: Mapping[str, Routed]
) -> dict[str, Any]:
    def record_handler(record: SQSRecord) -> str:
        result = routed[record.message_id]
        if result.disposition is Disposition.RETRY:
            raise RecordFailed(result.reason or "sync failed")
        return result.disposition.value

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=dict(event), record_handler=record_handler, processor=processor, context=context
    )
    return response


def consume_batch(
    event: Mapping[str, Any],
    context: LambdaContext,
    *,
    parse: Parse[E],
    sync: Sync[E],
    router: DeadLetterRouter,
    history: BatchHistory[E] | None = None,
) -> dict[str, Any]:
    """What a queue-fed handler does with its event: settle every record (and write its history row),
    answer SQS."""
    routed = process_batch(event.get("Records") or [], parse=parse, sync=sync, router=router, history=history)
    return partial_batch_response(event, context, routed)
