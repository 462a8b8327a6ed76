"""QBO → HubSpot backfill job Lambda, fed by the ``backfill-jobs`` queue (one message at a time).

Thin on purpose: parse the :class:`~ledgerlink.deal_sync.backfill_job.JobMessage` (a start sent by
``ledgerlink backfill --in-aws``, or a continuation this function sent itself), build the
connection's backfill over the deal sync (:func:`ledgerlink.deal_sync.backfill_run.build_backfill`:
the same clients and shared limits as live traffic), and call
:func:`~ledgerlink.deal_sync.backfill_job.run_job_message`, which runs pages until the remaining time
drops below :data:`RESERVE_MS` and then re-enqueues a continuation. Metrics in one place:
``BackfillJobsFinished``, ``BackfillContinued``, ``BackfillRefused`` (a start with bad arguments: dropped, logged with the
reason), and ``UnexpectedErrors`` for any other exception (each also per connection), re-raised so SQS retries the message (then
its DLQ). The deal sync it drives counts its own (``EventsFailedPermanently``, ...) under this
function's service.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Final

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from ledgerlink.config import get_settings
from ledgerlink.configfile import deployment_config
from ledgerlink.deal_sync.backfill import Backfill, BackfillError, BackfillOptions
from ledgerlink.deal_sync.backfill_job import JobMessage, JobStatus, SqsJobQueue, run_job_message
from ledgerlink.deal_sync.backfill_run import build_backfill, checkpoint_store
from ledgerlink.observability import (
    ConnectionMetrics,
    Service,
    ServiceMetrics,
    get_logger,
    get_metrics,
    get_tracer,
)
from ledgerlink.secrets import default_secret_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.QBO_BACKFILL)
tracer = get_tracer(Service.QBO_BACKFILL)
metrics = get_metrics(Service.QBO_BACKFILL)

# Time kept back when the job pauses: the page being settled (its chunks' deal syncs) must still
# fit, then the checkpoint and the continuation message.
RESERVE_MS: Final = 120_000
# Pages of two chunks: the reserve must cover the page in flight (a checkpoint is a page boundary),
# and two chunks under shared rate limits fit in it where ten (QBO's 1000) might not. The position is
# a row count, so a job the command ran with pages of 1000 continues here all the same.
PAGE_SIZE: Final = 200


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    config = deployment_config()
    dynamodb = boto3.client("dynamodb")
    if not settings.backfill_queue_name:
        raise RuntimeError("LEDGERLINK_BACKFILL_QUEUE_NAME is not set: the job cannot continue itself")
    queue = SqsJobQueue(boto3.client("sqs"), settings.backfill_queue_name)
    runs: list[Any] = []

    def build(connection: str, options: BackfillOptions, should_stop: Callable[[], bool]) -> Backfill:
        run = build_backfill(
            settings,
            config,
            connection,
            secrets=default_secret_store(),
            options=replace(options, page_size=PAGE_SIZE),
            dynamodb=dynamodb,
            should_stop=should_stop,
            remaining_ms=context.get_remaining_time_in_millis,
            metrics=ServiceMetrics(Service.QBO_BACKFILL),
        )
        runs.append(run)
        return run.backfill

    results: dict[str, str] = {}
    for record in event.get("Records", []):
        try:
            message = JobMessage.from_json(record.get("body") or "")
        except ValueError as error:
            logger.error("backfill job message unreadable", extra={"reason": str(error)})
            metrics.add_metric(name="BackfillRefused", unit=MetricUnit.Count, value=1)
            continue
        try:
            result = run_job_message(
                message,
                build=build,
                store=checkpoint_store(settings, dynamodb),
                queue=queue,
                remaining_ms=context.get_remaining_time_in_millis,
                reserve_ms=RESERVE_MS,
            )
        except BackfillError as error:
            # Bad arguments (an unknown connection, another unfinished job's): retrying cannot help.
            logger.error(
                "backfill job refused", extra={"connection": message.connection, "reason": str(error)}
            )
            ConnectionMetrics(Service.QBO_BACKFILL, message.connection).count("BackfillRefused")
            results[message.connection] = "refused"
            continue
        except Exception:
            ConnectionMetrics(Service.QBO_BACKFILL, message.connection).count("UnexpectedErrors")
            logger.exception("backfill job failed", extra={"connection": message.connection})
            raise
        finally:
            for run in runs:
                run.close()
            runs.clear()
        results[message.connection] = result.status.value
        if result.status is JobStatus.CONTINUED:
            ConnectionMetrics(Service.QBO_BACKFILL, message.connection).count("BackfillContinued")
        if result.status is JobStatus.FINISHED:
            ConnectionMetrics(Service.QBO_BACKFILL, message.connection).count("BackfillJobsFinished")
    return {"jobs": results}
