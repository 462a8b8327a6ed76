"""Scheduled reconciliation Lambda (F16), invoked by its EventBridge schedule (daily by default).

The schedule's "Scheduled Event" reaches it through its SQS queue (as every scheduled rule of the
topology does); a batch of ticks is one run. Thin on purpose: call
:func:`ledgerlink.deal_sync.reconcile_schedule.run_scheduled_reconcile`, which reads every connection's
books and CRM and reports (never repairs) what drifted: one ``"reconcile drift"`` log line per drifted
record and ``DriftRecords`` per connection (alarmed: run ``ledgerlink reconcile --connection NAME``,
then ``--repair``). It stops before the 15 minutes run out (``ReconcileNotReached`` per connection left
over). The QBO grant's alarms (``QboConnectionRevoked``, ...) are counted here; ``UnexpectedErrors``
for any exception outside a connection's check, which is re-raised so the invocation fails and is visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerlink.config import get_settings
from ledgerlink.configfile import deployment_config
from ledgerlink.deal_sync.reconcile_schedule import run_scheduled_reconcile
from ledgerlink.observability import Service, ServiceMetrics, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.QBO_RECONCILE)
tracer = get_tracer(Service.QBO_RECONCILE)
metrics = get_metrics(Service.QBO_RECONCILE)


def _alarm(name: str, fields: Mapping[str, Any]) -> None:
    """The QBO grant's alarms (QboConnectionRevoked, QboClientRejected, ...) as this function's metrics."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        report = run_scheduled_reconcile(
            get_settings(),
            deployment_config(),
            secrets=default_secret_store(),
            metrics=ServiceMetrics(Service.QBO_RECONCILE),
            remaining_ms=context.get_remaining_time_in_millis,
            alarm=_alarm,
        )
    except Exception:
        metrics.add_metric(name="UnexpectedErrors", unit=MetricUnit.Count, value=1)
        logger.exception("reconcile failed")
        raise
    return report.describe()
