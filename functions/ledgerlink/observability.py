"""Powertools Logger, Tracer and Metrics, one of each per service, shared by a handler and its domain.

A handler and the domain code it calls ask for the same service name and get the same instances, so
a correlation id set by the handler's decorator (or by :func:`correlation_scope`) appears on every
log line either of them writes. Nothing is created at import time of this module.

Service names are the Lambda folder names with dashes; every metric lands in :data:`METRICS_NAMESPACE`
with the service as a dimension.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

METRICS_NAMESPACE: Final = "LedgerLink"


class Service:
    """Powertools service names, one per Lambda."""

    QBO_INGEST = "qbo-ingest"
    HUBSPOT_DEAL_SYNC = "hubspot-deal-sync"
    OUTLOOK_CALENDAR_SYNC = "outlook-calendar-sync"
    TEAMS_INVITE = "teams-invite"
    HUBSPOT_INGEST = "hubspot-ingest"
    QBO_DOCUMENT_SYNC = "qbo-document-sync"
    QBO_CATCHUP = "qbo-catchup"
    QBO_BACKFILL = "qbo-backfill"
    QBO_RECONCILE = "qbo-reconcile"


@cache
def get_logger(service: str) -> Logger:
    """Structured JSON logger; log with ``extra={...}``, never with f-strings."""
    return Logger(service=service)


# The libraries whose calls each service's tracer records (X-Ray SDK patch names). A service absent
# here gets the SDK's patch_all, which, during the cold start, imports and patches every supported
# library that is installed (here botocore, requests and sqlite3). The QBO ingest Lambda
# calls nothing but AWS, so it patches botocore only: every AWS call keeps its subsegment, and its
# import in Lambda is about 20 ms shorter (tests/bench/bench_ingest.py). The HubSpot ingest calls
# nothing but AWS either.
TRACED_MODULES: Final[Mapping[str, tuple[str, ...]]] = {
    Service.QBO_INGEST: ("botocore",),
    Service.HUBSPOT_INGEST: ("botocore",),
}


@cache
def get_tracer(service: str) -> Tracer:
    """X-Ray tracer (disabled outside Lambda and when POWERTOOLS_TRACE_DISABLED is set).

    Patches only the libraries :data:`TRACED_MODULES` lists for the service, else all supported.
    """
    return Tracer(service=service, patch_modules=TRACED_MODULES.get(service))


@cache
def get_metrics(service: str) -> Metrics:
    """CloudWatch EMF metrics in the LedgerLink namespace, with the service as a dimension."""
    return Metrics(namespace=METRICS_NAMESPACE, service=service)


@contextmanager
def operator_shell_logging(level: str) -> Iterator[None]:
    """While a ``ledgerlink`` command runs a flow's code in the operator's shell (backfill, catchup,
    reconcile --repair, ...): the services' JSON log lines go to stderr, and only from ``level`` up, so
    that stdout carries the command's own output (its progress, tables and ``--format json``) alone.

    Every service's logger is created first (each is cached, so code that asks for one later gets the
    same instance and does not reset its level), then put back as it was when the command ends (an
    in-process caller, a test, keeps its own logging)."""
    import logging

    saved: list[tuple[logging.Logger, int, list[tuple[logging.StreamHandler[Any], Any, int]]]] = []
    for service in _service_names():
        standard = logging.getLogger(get_logger(service).name)
        streams = [
            (handler, handler.stream, handler.level)
            for handler in standard.handlers
            if isinstance(handler, logging.StreamHandler)
        ]
        saved.append((standard, standard.level, streams))
        standard.setLevel(level.upper())
        for handler, _, _ in streams:
            if handler.stream is not sys.stderr:
                _swap_stream(handler, sys.stderr)
            # A module's Logger(child=True) sets its own level (INFO unless POWERTOOLS_LOG_LEVEL says
            # otherwise), and may be created only after this point, by a lazy import: its lines reach
            # the service's handlers by propagation, so the level is enforced on the handlers.
            handler.setLevel(level.upper())
    try:
        yield
    finally:
        for standard, previous_level, streams in saved:
            standard.setLevel(previous_level)
            for handler, stream, handler_level in streams:
                _swap_stream(handler, stream)
                handler.setLevel(handler_level)


def _swap_stream(handler: Any, stream: Any) -> None:
    """``handler.setStream`` without its flush of the old stream failing: a logger created while
    something else owned stdout (a test's capture, a closed pipe) may hold a stream closed since, and a
    closed stream has nothing left to flush."""
    with handler.lock:
        with suppress(ValueError):  # "I/O operation on closed file"
            handler.flush()
        handler.stream = stream


# The service a module's ``Logger(child=True)`` belongs to where POWERTOOLS_SERVICE_NAME is not set (the
# operator's shell): Powertools' own default name, so those children get a parent that writes JSON too.
_UNNAMED_SERVICE: Final = "service_undefined"


def _service_names() -> tuple[str, ...]:
    named = tuple(value for name, value in vars(Service).items() if name.isupper() and isinstance(value, str))
    return (*named, _UNNAMED_SERVICE)


@contextmanager
def correlation_scope(logger: Logger, correlation_id: str) -> Iterator[None]:
    """Log with ``correlation_id`` inside the block, then go back to the invocation's own.

    One webhook delivery announces several changes; each change carries its own correlation id
    through the rest of the choreography, and the ingest log lines about it should carry it too.
    """
    previous = logger.get_correlation_id()
    logger.set_correlation_id(correlation_id)
    try:
        yield
    finally:
        logger.set_correlation_id(previous)


@contextmanager
def connection_scope(logger: Logger, connection: str, config_version: str) -> Iterator[None]:
    """Every line ``logger`` writes inside the block names the connection and the configuration version
    it works under (one batch can hold several connections' events)."""
    logger.append_keys(connection=connection, config_version=config_version)
    try:
        yield
    finally:
        logger.remove_keys(["connection", "config_version"])


class ServiceMetrics:
    """A flow's metrics sink (``count``), dimension ``service``: what the alarms watch."""

    def __init__(self, service: str) -> None:
        self.service = service

    def count(self, name: str, value: int = 1) -> None:
        get_metrics(self.service).add_metric(name=name, unit=MetricUnit.Count, value=value)

    def for_connection(self, connection: str) -> ConnectionMetrics:
        return ConnectionMetrics(self.service, connection)


class ConnectionMetrics(ServiceMetrics):
    """One connection's metrics: each counted once per service (alarms) and once per service and
    connection (dashboards: which connection is failing), so every metric can name its connection."""

    def __init__(self, service: str, connection: str) -> None:
        super().__init__(service)
        self.connection = connection

    def count(self, name: str, value: int = 1) -> None:
        super().count(name, value)
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=value,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": self.service, "connection": self.connection},
        ):
            pass
