"""HubSpot webhook ingest Lambda, behind ``POST /v1/webhooks/hubspot`` (API Gateway HTTP API, payload 2.0).

Thin on purpose, like the QBO ingest: parse the event into an :class:`~ledgerlink.apigw.HttpRequest`,
read the body (413 past ``Settings.max_webhook_bytes``, before anything else), rebuild the public URL
HubSpot called (:meth:`~ledgerlink.apigw.HttpRequest.public_url`, ``Settings.hubspot_webhook_url`` when
configured), call :func:`~ledgerlink.ingest.hubspot.ingest_hubspot_delivery`, and map every error to a
response in one place (:data:`ERROR_STATUS`). Answers 200 ``{"accepted": <events published>,
"skipped": <events of a type LedgerLink does not act on>, "delivery_id": ...}`` with no call to
HubSpot, well inside its 5-second timeout. The request's age is measured from API Gateway's receipt
(``requestContext.timeEpoch``), not from when this function got to it.

AWS clients and the ports are built on first use and reused by later invocations of the same
container; :func:`reset_for_tests` forgets them. boto3 and the X-Ray SDK are imported with the module,
for the reason the QBO ingest's docstring gives (measured there).
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
from ledgerlink.hubspot.webhooks import InvalidSignature, MalformedWebhook, MissingSignature, StaleTimestamp
from ledgerlink.ingest.archive import S3RawArchive, WebhookDelivery
from ledgerlink.ingest.hubspot import HubSpotIngestPorts, UnknownPortal, ingest_hubspot_delivery
from ledgerlink.ingest.ports import ArchiveError, SigningSecretUnavailable
from ledgerlink.ingest.signing_secret import SecretStoreSigningSecrets
from ledgerlink.observability import Service, get_logger, get_metrics, get_tracer
from ledgerlink.publisher import EventBridgePublisher, PublishError
from ledgerlink.secrets import default_secret_store, reset_default_secret_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client

logger = get_logger(Service.HUBSPOT_INGEST)
tracer = get_tracer(Service.HUBSPOT_INGEST)
metrics = get_metrics(Service.HUBSPOT_INGEST)

# The one table from error to HTTP status. 4xx: the sender's fault, retrying will not help (HubSpot
# retries every non-2xx all the same, for up to a day). 503: ours and transient: nothing was
# acknowledged that was not stored.
ERROR_STATUS: dict[type[BaseException], int] = {
    MissingSignature: 401,
    StaleTimestamp: 401,
    InvalidSignature: 401,
    UnknownPortal: 401,
    MalformedWebhook: 400,
    SigningSecretUnavailable: 503,
    ArchiveError: 503,
    PublishError: 503,
}


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="DeliveriesReceived", unit=MetricUnit.Count, value=1)
    try:
        settings = get_settings()
        request = HttpRequest.from_event(event)
        body = request.body(settings.max_webhook_bytes)
        delivery = WebhookDelivery(
            delivery_id=request.request_id,
            received_at=request.received_at,
            headers=request.headers,
            body=body,
        )
        result = ingest_hubspot_delivery(
            delivery,
            _ports(),
            public_url=request.public_url(settings.hubspot_webhook_url),
            now_ms=round(request.received_at.timestamp() * 1000),
            max_events=settings.max_webhook_events,
            method=request.method,
        )
    except Exception as error:  # noqa: BLE001 - every error becomes a response here, unmapped ones are logged
        count_rejection(error, ERROR_STATUS, Service.HUBSPOT_INGEST)
        return error_response(error, ERROR_STATUS, logger)
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=len(result.events))
    # No per-type dimension: the types come from HubSpot; the WARNING line of each skipped event names it.
    metrics.add_metric(name="UnsupportedEventsSkipped", unit=MetricUnit.Count, value=len(result.skipped))
    logger.info(
        "delivery accepted",
        extra={
            "connection": result.connection,
            "config_version": _ports().served.version,
            "portal_id": result.portal_id,
            "events": len(result.events),
            "skipped": len(result.skipped),
            "duplicates": result.duplicates,
            "raw_object_key": result.raw_object_key,
            "public_url": result.public_url,
        },
    )
    return json_response(
        200,
        {
            "accepted": len(result.events),
            "skipped": len(result.skipped),
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
def _ports() -> HubSpotIngestPorts:
    settings = get_settings()
    return HubSpotIngestPorts(
        signing_secrets=SecretStoreSigningSecrets(default_secret_store(), settings.stage),
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
