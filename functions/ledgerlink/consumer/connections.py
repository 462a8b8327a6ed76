"""One batch split by connection: every queue-fed flow builds a service per connection and hands each of them
its own events, so nothing of one connection (QBO company, HubSpot portal, Microsoft tenant) is ever handled
by another's clients, limits or log lines.

:func:`sync_by_connection` is that split. The flow says, per event, which connection serves it or why none
does (``route``: a name, or an :class:`~ledgerlink.consumer.outcome.Outcome` — failed for good when the event
names no connection of the deployment, ignored when its connection has the flow off); each connection's
events are then synced together under that connection's log scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger

from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.observability import connection_scope


class RoutedEvent(Protocol):
    @property
    def message_id(self) -> str: ...

    def log_fields(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=RoutedEvent)
ConnectionSync = Callable[[list[E], int | None], Mapping[str, Outcome]]


def sync_by_connection(
    events: Sequence[E],
    *,
    route: Callable[[E], str | Outcome],
    services: Mapping[str, ConnectionSync[E]],
    logger: Logger,
    config_version: str,
    unrouted: str,
    remaining_ms: int | None = None,
) -> dict[str, Outcome]:
    """An outcome per SQS message id: each event synced by its connection's service, or refused with the
    outcome ``route`` gave (logged as ``unrouted``: an error when failed, else info)."""
    outcomes: dict[str, Outcome] = {}
    by_connection: dict[str, list[E]] = {}
    for event in events:
        routed = route(event)
        if isinstance(routed, Outcome):
            outcomes[event.message_id] = routed
            log = logger.error if routed.status is OutcomeStatus.FAILED else logger.info
            log(unrouted, extra={**event.log_fields(), "reason": routed.reason})
            continue
        by_connection.setdefault(routed, []).append(event)
    for name, connection_events in by_connection.items():
        with connection_scope(logger, name, config_version):
            outcomes.update(services[name](connection_events, remaining_ms))
    return outcomes
