"""Ingest one QBO webhook delivery: verify, parse, archive, publish.

The order is what makes the answer to Intuit honest:

1. verify the signature first: an unsigned or wrongly signed delivery is neither stored nor published;
2. parse (pure, fast, bounded: at most ``max_events`` events, see ``ledgerlink.qbo.webhooks``); a
   signed but malformed delivery is still archived (best effort) so it can be inspected, then
   refused with the offending field named. A parser bug (any other exception) archives it too;
3. archive the raw delivery; if that fails, nothing is published and the caller answers "retry";
4. publish one ``qbo.entity.changed`` event per change; if any is refused after the publisher's
   retries, the caller answers "retry". Intuit then redelivers; the events that did go out are
   published again with the same ``event_id`` (a hash of the change), which consumers deduplicate.

A well-formed CloudEvent of a type LedgerLink does not know yet (a new verb or version) is skipped:
not published, logged at WARNING, and returned in :attr:`IngestResult.unsupported` so the caller can
count it, while the rest of the delivery is accepted. Refusing the delivery instead would make
Intuit retry it for hours and possibly hold back the company's later events. Nothing is lost: the
raw delivery, skipped events included, is in the archive (step 3), and replaying the archived
document (``ledgerlink replay archive``: ``WebhookDelivery.from_json`` then :func:`replay_delivery`,
the same parse and publish without the signature check and the archiving) once the type is supported
publishes them; the changes that had already gone out come again with the same event ids.

An event, in either format, whose entity id (or merged-away id) QBO could not have issued
(``ledgerlink.qbo.ids``) is skipped the same way, with reason ``invalid_entity_id``: publishing it
would only make the deal sync fail on it, and refusing the delivery would cost its other events.

Nothing here knows about Lambda or HTTP: errors are the domain's own (see ``ERRORS`` in the handler).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledgerlink.events import Envelope
from ledgerlink.ingest.archive import WebhookDelivery, raw_object_key
from ledgerlink.ingest.ports import (
    ArchiveError,
    EventPublisher,
    RawArchive,
    ServedRealms,
    VerifierTokenSource,
)
from ledgerlink.observability import Service, correlation_scope, get_logger
from ledgerlink.qbo.changes import change_event
from ledgerlink.qbo.webhooks import (
    MAX_EVENTS_PER_DELIVERY,
    SIGNATURE_HEADER,
    EntityChange,
    ParsedDelivery,
    SkipReason,
    SourceFormat,
    UnsupportedEvent,
    parse_delivery,
    verify_signature,
)

logger = get_logger(Service.QBO_INGEST)


@dataclass(frozen=True)
class IngestPorts:
    verifier_token: VerifierTokenSource
    archive: RawArchive
    publisher: EventPublisher
    served: ServedRealms


@dataclass(frozen=True)
class IngestResult:
    delivery_id: str
    source_format: SourceFormat
    raw_object_key: str
    events: tuple[Envelope, ...]
    """One per change, all published."""
    unsupported: tuple[UnsupportedEvent, ...] = ()
    """Every skipped event (an unknown type, an invalid id): archived, not published."""

    def skipped(self, reason: SkipReason) -> int:
        return sum(1 for event in self.unsupported if event.reason == reason)


def ingest_delivery(
    delivery: WebhookDelivery, ports: IngestPorts, *, max_events: int = MAX_EVENTS_PER_DELIVERY
) -> IngestResult:
    """Verify, parse, archive and publish one delivery (see the module docstring for the order).

    Raises ``MissingSignature``/``InvalidSignature``/``MalformedWebhook`` (the sender's fault),
    ``ArchiveError``/``PublishError``/``VerifierUnavailable`` (ours, transient: the sender retries).
    """
    verify_signature(ports.verifier_token(), delivery.body, delivery.headers.get(SIGNATURE_HEADER))
    key = raw_object_key(delivery.delivery_id, delivery.received_at)
    document = delivery.archived()
    try:
        parsed = parse_delivery(delivery.body, max_events=max_events)
    except Exception:
        # Malformed (400) or a parser bug (500, logged by the caller): either way the signed delivery
        # is kept, so it can be inspected and replayed instead of lost while Intuit retries it.
        _archive_malformed(ports.archive, key, document)
        raise
    ports.archive.put(key, document.to_json())
    logger.info(
        "delivery archived",
        extra={
            "raw_object_key": key,
            "source_format": parsed.source_format,
            "changes": len(parsed.changes),
            "unsupported": len(parsed.unsupported),
        },
    )
    envelopes, skipped_events = _publish_changes(
        parsed, delivery.delivery_id, key, publisher=ports.publisher, served=ports.served
    )
    return IngestResult(
        delivery_id=delivery.delivery_id,
        source_format=parsed.source_format,
        raw_object_key=key,
        events=envelopes,
        unsupported=skipped_events,
    )


def replay_delivery(
    delivery: WebhookDelivery,
    *,
    publisher: EventPublisher,
    served: ServedRealms,
    max_events: int = MAX_EVENTS_PER_DELIVERY,
) -> IngestResult:
    """Parse and publish an archived delivery again, exactly as :func:`ingest_delivery` did at receipt,
    without checking its signature (it was checked before it was archived: only a verified delivery
    is stored, its ``intuit-signature`` kept with it) and without archiving it again.

    The same change yields the same ``event_id`` as at receipt, so consumers deduplicate a replay;
    the events name the same ``raw_object_key``. Raises ``MalformedWebhook`` (an archived malformed
    delivery) and ``PublishError``.
    """
    key = raw_object_key(delivery.delivery_id, delivery.received_at)
    parsed = parse_delivery(delivery.body, max_events=max_events)
    envelopes, skipped_events = _publish_changes(
        parsed, delivery.delivery_id, key, publisher=publisher, served=served
    )
    return IngestResult(
        delivery_id=delivery.delivery_id,
        source_format=parsed.source_format,
        raw_object_key=key,
        events=envelopes,
        unsupported=skipped_events,
    )


def _publish_changes(
    parsed: ParsedDelivery,
    delivery_id: str,
    key: str,
    *,
    publisher: EventPublisher,
    served: ServedRealms,
) -> tuple[tuple[Envelope, ...], tuple[UnsupportedEvent, ...]]:
    """Publish one event per change of a served realm; log and return what was skipped (live and replay)."""
    kept: list[tuple[EntityChange, str]] = []
    unserved: list[UnsupportedEvent] = []
    for change in parsed.changes:
        connection = served.by_realm(change.realm_id)
        if connection is None:
            unserved.append(_unserved(change, served.version))
        else:
            kept.append((change, connection.name))
    envelopes = tuple(
        change_event(change, delivery_id, key, connection=name, config_version=served.version)
        for change, name in kept
    )
    if envelopes:
        publisher.publish(envelopes)
    skipped_events = (*parsed.unsupported, *unserved)
    for (change, _), envelope in zip(kept, envelopes, strict=True):
        with correlation_scope(logger, envelope.correlation_id):
            logger.info(
                "event published",
                extra={
                    "event_id": envelope.event_id,
                    "realm_id": change.realm_id,
                    "entity": change.entity,
                    "entity_id": change.entity_id,
                    "operation": change.operation,
                },
            )
    for skipped in skipped_events:
        with correlation_scope(logger, skipped.correlation_id):
            logger.warning(
                _SKIPPED_MESSAGE[skipped.reason],
                extra={
                    "reason": skipped.reason,
                    "detail": skipped.detail,
                    "cloudevent_type": skipped.type,
                    "cloudevent_id": skipped.cloudevent_id,
                    "source_format": skipped.source_format,
                    "realm_id": skipped.realm_id,
                    "entity_id": skipped.entity_id,
                    "raw_object_key": key,
                },
            )
    return envelopes, skipped_events


def _unserved(change: EntityChange, config_version: str) -> UnsupportedEvent:
    return UnsupportedEvent(
        type=f"{change.entity}.{change.operation}",
        cloudevent_id=change.cloudevent_id,
        realm_id=change.realm_id,
        entity_id=change.entity_id,
        time=change.last_updated,
        reason="unserved_realm",
        detail=(
            f"no connection of this deployment serves realm {change.realm_id} "
            f"(configuration {config_version}); add one, then replay the archived delivery"
        ),
        source_format=change.source_format,
    )


_SKIPPED_MESSAGE: dict[SkipReason, str] = {
    "unsupported_type": "unsupported event type skipped",
    "invalid_entity_id": "event with an invalid entity id skipped",
    "unserved_realm": "event of a company no connection serves skipped",
}


def _archive_malformed(archive: RawArchive, key: str, document: WebhookDelivery) -> None:
    """Keep a signed delivery that could not be parsed; the refusal stands whether or not this works."""
    try:
        archive.put(key, document.to_json())
    except ArchiveError as error:
        logger.warning("malformed delivery not archived", extra={"raw_object_key": key, "detail": str(error)})
    else:
        logger.info("malformed delivery archived", extra={"raw_object_key": key})
