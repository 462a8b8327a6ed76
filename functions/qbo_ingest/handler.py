"""QBO webhook ingest Lambda, behind ``POST /v1/webhooks/qbo`` (API Gateway HTTP API, payload format 2.0).

Thin on purpose: parse the event into an :class:`~ledgerlink.apigw.HttpRequest`, read the body
(413 past ``Settings.max_webhook_bytes``, before anything else), call
:func:`~ledgerlink.ingest.service.ingest_delivery`, and map every error to a response in one place
(:data:`ERROR_STATUS`). Answers 200 ``{"accepted": <events published>, "skipped": <events of a
type LedgerLink does not know yet, or with an entity id QBO could not have issued>, "delivery_id":
...}`` with no call to Intuit, well inside Intuit's 3 s deadline. Skipped events stay in the
archived raw delivery (those of an unknown type can be replayed once it is supported).

AWS clients and the ports are built on first use and reused by later invocations of the same
container; :func:`reset_for_tests` forgets them.

boto3 and the X-Ray SDK (through the Tracer) are imported with the module on purpose. Deferring them
to the first invocation was tried on a copy and measured with the cold-start benchmark
(tests/bench/bench_ingest.py, cold start = import + first invocation): it moved about 100 ms from the
import into the first request and saved nothing overall,
and Lambda may initialise an environment before any request reaches it (on-demand "proactive
initialization"), when import work delays no request but first-invocation work always does.
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from ledgerlink.apigw import (
    HttpRequest,
    count_rejection,
    error_response,
    json_response,
)
from ledgerlink.config import get_settings
from ledgerlink.configfile import deployment_config
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.ingest.archive import S3RawArchive
from ledgerlink.ingest.ports import ArchiveError, VerifierUnavailable
from ledgerlink.ingest.service import IngestPorts, WebhookDelivery, ingest_delivery
from ledgerlink.ingest.verifier import SecretStoreVerifierToken
from ledgerlink.observability import Service, get_logger, get_metrics, get_tracer
from ledgerlink.publisher import EventBridgePublisher, PublishError
from ledgerlink.qbo.webhooks import InvalidSignature, MalformedWebhook, MissingSignature
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

logger = get_logger(Service.QBO_INGEST)
tracer = get_tracer(Service.QBO_INGEST)
metrics = get_metrics(Service.QBO_INGEST)

# The one table from error to HTTP status. 4xx: the sender's fault, retrying will not help.
# 503: ours and transient, Intuit retries (and nothing was acknowledged that was not stored).
ERROR_STATUS: dict[type[BaseException], int] = {
    MissingSignature: 401,
    InvalidSignature: 401,
    MalformedWebhook: 400,
    VerifierUnavailable: 503,
    ArchiveError: 503,
    PublishError: 503,
}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="DeliveriesReceived", unit=MetricUnit.Count, value=1)
    try:
        request = HttpRequest.from_event(event)
        body = request.body(get_settings().max_webhook_bytes)
        delivery = WebhookDelivery(
            delivery_id=request.request_id,
            received_at=request.received_at,
            headers=request.headers,
            body=body,
        )
        result = ingest_delivery(delivery, _ports(), max_events=get_settings().max_webhook_events)
    except Exception as error:  # noqa: BLE001 - every error becomes a response here, unmapped ones are logged
        count_rejection(error, ERROR_STATUS, Service.QBO_INGEST)
        return error_response(error, ERROR_STATUS, logger)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(result.events))
    # No per-type or per-id dimension: both come from Intuit, and a new version rolled out across
    # entities would make one billed metric per type. The WARNING log line of each skipped event
    # has its type, id and reason.
    metrics.add_metric(
        name="UnsupportedEventsSkipped", unit=MetricUnit.Count, value=result.skipped("unsupported_type")
    )
    metrics.add_metric(
        name="InvalidEventsSkipped", unit=MetricUnit.Count, value=result.skipped("invalid_entity_id")
    )
    metrics.add_metric(
        name="UnservedRealmEventsSkipped", unit=MetricUnit.Count, value=result.skipped("unserved_realm")
    )
    logger.info(
        "delivery accepted",
        extra={
            "events": len(result.events),
            "skipped": len(result.unsupported),
            "invalid_skipped": result.skipped("invalid_entity_id"),
            "unserved_skipped": result.skipped("unserved_realm"),
            "config_version": _ports().served.version,
            "source_format": result.source_format,
            "raw_object_key": result.raw_object_key,
        },
    )
    return json_response(
        200,
        {
            "accepted": len(result.events),
            "skipped": len(result.unsupported),
            "delivery_id": result.delivery_id,
        },
    )


def backoff_sleep(seconds: float) -> None:
    """How the publisher waits between PutEvents attempts; tests replace it to record the waits."""
    time.sleep(seconds)


def _backoff_sleep(seconds: float) -> None:
    # Looked up at call time, so a replaced backoff_sleep applies to publishers built earlier.
    backoff_sleep(seconds)


@cache
def _s3() -> S3Client:
    return boto3.client("s3")


@cache
def _events() -> EventBridgeClient:
    return boto3.client("events")


@cache
def _ports() -> IngestPorts:
    settings = get_settings()
    return IngestPorts(
        verifier_token=SecretStoreVerifierToken(default_secret_store(), settings.qbo_webhook_secret_name),
        archive=S3RawArchive(_s3(), settings.raw_bucket_name),
        publisher=EventBridgePublisher(_events(), settings.event_bus_name, sleep=_backoff_sleep),
        served=deployment_config(),
    )


# The cached factories themselves, captured here so a test that replaces one can still reset them all.
_CACHED_FACTORIES = (_s3, _events, _ports)


def reset_for_tests() -> None:
    """Forget the cached clients, ports and secret store (tests change the environment between runs)."""
    for cached in _CACHED_FACTORIES:
        cached.cache_clear()
    reset_deployment_config()
    reset_default_secret_store()
