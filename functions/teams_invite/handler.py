"""Teams invite Lambda, fed by the teams-invite SQS queue: ``ledgerlink.calendar.synced`` (the last hop of
the chain), ``ledgerlink.followup.due`` (published by the sweep) and the sweep's schedule. Makes a Teams
follow-up meeting when an unpaid invoice comes due or goes overdue, and cancels it when the invoice is
settled first (docs/followups.md).

Thin on purpose, like the other queue-fed handlers: parse, sync through the per-connection services
(:class:`~ledgerlink.followups.factory.ConnectionsFollowUps`), settle each record, answer SQS with the
records to retry.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from ledgerlink.config import ConfigError, get_settings
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.consumer.history import BatchHistory, batch_history
from ledgerlink.consumer.partial_response import consume_batch
from ledgerlink.followups.factory import FollowUpParts, build_follow_ups
from ledgerlink.followups.inbox import history_subject, parse_record
from ledgerlink.history import Flow
from ledgerlink.observability import Service, ServiceMetrics, get_logger, get_metrics, get_tracer
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = get_logger(Service.TEAMS_INVITE)
tracer = get_tracer(Service.TEAMS_INVITE)
metrics = get_metrics(Service.TEAMS_INVITE)


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
        sync=lambda triggers: parts.service.sync(triggers, remaining_ms=remaining_ms),
        router=parts.dead_letters,
        history=_history(),
    )


@cache
def _parts() -> FollowUpParts:
    return build_follow_ups(
        get_settings(), secrets=default_secret_store(), metrics=ServiceMetrics(Service.TEAMS_INVITE)
    )


@cache
def _history() -> BatchHistory[Any] | None:
    """The flow's history rows (ledgerlink.history), in the links table."""
    try:
        links_table_name = get_settings().links_table_name
    except ConfigError:
        return None  # only parts a test built by hand run without settings; a deployed function has them
    return batch_history(
        Flow.FOLLOWUPS,
        history_subject,
        links_table_name=links_table_name,
        metrics=ServiceMetrics(Service.TEAMS_INVITE),
    )


def reset_for_tests() -> None:
    """Forget the cached service and secret store (tests change the environment between runs)."""
    if _parts.cache_info().currsize:
        _parts().close()
    _parts.cache_clear()
    _history.cache_clear()
    reset_default_secret_store()
    reset_deployment_config()
