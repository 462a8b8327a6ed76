"""Ingest one HubSpot webhook delivery: check, parse, find the portal, verify, archive, publish.

The order is forced by how HubSpot signs: each connection's HubSpot app has its own client secret, and
only the body says which portal (so which app) sent a delivery. So:

1. both signature headers present and the timestamp within five minutes of the receipt (401 otherwise):
   cheap, and a replayed old request goes no further;
2. parse the body (pure and bounded, ``ledgerlink.hubspot.webhooks``; 400 naming the field);
3. the connection serving the delivery's portal (``served.by_portal``); none is a 401 with reason
   ``unknown_portal``: without a connection there is no secret, so the delivery cannot be told from a
   forgery. It is not archived (nothing unverified is stored), and HubSpot retries it for a day;
4. that connection's signing secret (503 ``signing_secret_unavailable`` when it cannot be read);
5. verify the v3 signature over the public URL HubSpot called (401);
6. archive the raw delivery under ``hubspot/raw/...`` with the headers that re-verify it, noting that it
   was verified (``"verified": "v3"``) and against which URL; if that fails, nothing is published and
   the caller answers "retry" (503);
7. publish one ``hubspot.deal.changed`` per relevant event (:func:`classify`); if any is refused after
   the publisher's retries the caller answers "retry", and HubSpot's next attempt publishes the same
   event ids again, which consumers deduplicate.

An event of a type LedgerLink does not act on (a contact change, a line item's association change, a
generic event of an object type it does not know) is skipped: logged at WARNING, counted, kept in the
archived delivery, and the rest of the delivery is accepted. :func:`replay_hubspot_delivery` publishes
an archived delivery again through the same classification and envelopes (``ledgerlink replay archive``).

**Duplicates.** HubSpot says ``eventId`` is not guaranteed unique and that it may deliver an event more
than once, so the envelope's ``event_id`` is a hash of what the event says happened (:func:`change_key`):
the portal, the type (and object type id), the object, the property and its new value, the moment, and
the merge and association ids. Every delivery of the same change has the same ``event_id``; identical
events inside one delivery are published once. Delivery order is not guaranteed either: consumers act
on the deal as it is when they re-read it, never on what an event claims.

Nothing here knows about Lambda or HTTP: errors are the domain's own (see ``ERROR_STATUS`` in the handler).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.hubspot.webhooks import (
    SIGNATURE_V3_HEADER,
    TIMESTAMP_HEADER,
    HubSpotEvent,
    check_request,
    delivery_portal_id,
    parse_delivery,
    verify_v3,
)
from ledgerlink.ingest.archive import (
    HUBSPOT_ARCHIVED_HEADERS,
    HUBSPOT_KEY_PREFIX,
    WebhookDelivery,
    raw_object_key,
)
from ledgerlink.ingest.ports import EventPublisher, RawArchive, ServedPortals, SigningSecretSource
from ledgerlink.observability import Service, connection_scope, correlation_scope, get_logger

logger = get_logger(Service.HUBSPOT_INGEST)

Change = Literal[
    "stage_changed",
    "property_changed",
    "created",
    "deleted",
    "merged",
    "restored",
    "associations_changed",
    "line_item_changed",
]
ObjectType = Literal["deal", "line_item"]

# A deal.propertyChange of these is a stage change (a pipeline move changes the stage too).
STAGE_PROPERTIES: Final = frozenset({"dealstage", "pipeline"})
DEAL_CHANGE_BY_ACTION: Final[dict[str, Change]] = {
    "creation": "created",
    "deletion": "deleted",
    "merge": "merged",
    "restore": "restored",
    "associationChange": "associations_changed",
}
LINE_ITEM_ACTIONS: Final = frozenset({"creation", "propertyChange", "deletion"})
DEAL_TYPE_ID: Final = "0-3"
MAX_PUBLISHED_VALUE_CHARS: Final = 4096
"""A longer ``propertyValue`` is published as null (the consumer re-reads the object anyway; the archive
keeps the value): one event must fit an EventBridge entry (256 KB) whatever property was subscribed."""


class UnverifiedArchive(ValueError):
    """An archived document that does not record that its signature was checked at receipt."""

    reason = "unverified_archive"


class UnknownPortal(RuntimeError):
    """No connection of this deployment serves the delivery's portal, so no secret can verify it."""

    reason = "unknown_portal"


@dataclass(frozen=True)
class HubSpotIngestPorts:
    signing_secrets: SigningSecretSource
    archive: RawArchive
    publisher: EventPublisher
    served: ServedPortals


@dataclass(frozen=True)
class Classified:
    """What LedgerLink makes of a relevant event."""

    change: Change
    object_type: ObjectType
    deal_id: str | None


@dataclass(frozen=True)
class HubSpotIngestResult:
    delivery_id: str
    connection: str
    portal_id: str
    raw_object_key: str
    public_url: str
    events: tuple[Envelope, ...]
    """One per distinct relevant event, all published."""
    skipped: tuple[HubSpotEvent, ...] = ()
    """Events of a type LedgerLink does not act on: archived, not published."""
    duplicates: int = 0
    """Relevant events identical to one before them in the delivery (published once)."""


def ingest_hubspot_delivery(
    delivery: WebhookDelivery,
    ports: HubSpotIngestPorts,
    *,
    public_url: str,
    now_ms: int,
    max_events: int,
    method: str = "POST",
) -> HubSpotIngestResult:
    """Check, parse, verify, archive and publish one delivery (see the module docstring for the order).

    ``public_url`` is the URL HubSpot called (rebuilt by the caller, ``HttpRequest.public_url``);
    ``now_ms`` the receipt time in epoch milliseconds. Raises ``MissingSignature`` /
    ``StaleTimestamp`` / ``InvalidSignature`` / :class:`UnknownPortal` (401), ``MalformedWebhook``
    (400), ``SigningSecretUnavailable`` / ``ArchiveError`` / ``PublishError`` (503).
    """
    signature = delivery.headers.get(SIGNATURE_V3_HEADER)
    timestamp = delivery.headers.get(TIMESTAMP_HEADER)
    check_request(signature, timestamp, now_ms)
    events = parse_delivery(delivery.body, max_events=max_events)
    portal_id = delivery_portal_id(events)
    connection = ports.served.by_portal(portal_id)
    if connection is None:
        raise UnknownPortal(
            f"no connection of this deployment serves HubSpot portal {portal_id} (configuration "
            f"{ports.served.version}), so no secret can verify its delivery: add a connection for the "
            "portal, with its app's client secret"
        )
    version = ports.served.version
    with connection_scope(logger, connection.name, version):
        secret = ports.signing_secrets(connection)
        verify_v3(secret, method, public_url, delivery.body, timestamp, signature, now_ms)
        key = raw_object_key(delivery.delivery_id, delivery.received_at, prefix=HUBSPOT_KEY_PREFIX)
        document = WebhookDelivery(
            delivery_id=delivery.delivery_id,
            received_at=delivery.received_at,
            headers=delivery.headers,
            body=delivery.body,
            verified="v3",
            public_url=public_url,
        ).archived(HUBSPOT_ARCHIVED_HEADERS)
        ports.archive.put(key, document.to_json())
        logger.info(
            "delivery archived",
            extra={"raw_object_key": key, "portal_id": portal_id, "events": len(events)},
        )
        envelopes, skipped, duplicates = _publish_events(
            events, portal_id, key, connection.name, version, delivery.delivery_id, ports.publisher
        )
    return HubSpotIngestResult(
        delivery_id=delivery.delivery_id,
        connection=connection.name,
        portal_id=portal_id,
        raw_object_key=key,
        public_url=public_url,
        events=envelopes,
        skipped=tuple(skipped),
        duplicates=duplicates,
    )


def replay_hubspot_delivery(
    delivery: WebhookDelivery, *, publisher: EventPublisher, served: ServedPortals, max_events: int
) -> HubSpotIngestResult:
    """Parse and publish an archived delivery again, exactly as :func:`ingest_hubspot_delivery` did at
    receipt, without the timestamp and signature checks and without archiving it again.

    Its signature was checked before it was archived; the document says so (``"verified": "v3"``, and
    the ``public_url`` it was checked against). It cannot be checked again: HubSpot's v3 signature
    covers a timestamp that is refused once more than five minutes old. A document without that record
    was not stored by a verified ingest and is refused (:class:`UnverifiedArchive`). Raises
    ``MalformedWebhook``, :class:`UnknownPortal` (no connection serves the portal any more) and
    ``PublishError``. The same events yield the same ``event_id`` as at receipt.
    """
    if delivery.verified != "v3":
        raise UnverifiedArchive(
            f"archived delivery {delivery.delivery_id} does not record a verified signature "
            f"(verified: {delivery.verified!r})"
        )
    events = parse_delivery(delivery.body, max_events=max_events)
    portal_id = delivery_portal_id(events)
    connection = served.by_portal(portal_id)
    if connection is None:
        raise UnknownPortal(
            f"no connection of this deployment serves HubSpot portal {portal_id} (configuration "
            f"{served.version})"
        )
    key = raw_object_key(delivery.delivery_id, delivery.received_at, prefix=HUBSPOT_KEY_PREFIX)
    with connection_scope(logger, connection.name, served.version):
        envelopes, skipped, duplicates = _publish_events(
            events, portal_id, key, connection.name, served.version, delivery.delivery_id, publisher
        )
    return HubSpotIngestResult(
        delivery_id=delivery.delivery_id,
        connection=connection.name,
        portal_id=portal_id,
        raw_object_key=key,
        public_url=delivery.public_url or "",
        events=envelopes,
        skipped=skipped,
        duplicates=duplicates,
    )


def _publish_events(
    events: Sequence[HubSpotEvent],
    portal_id: str,
    key: str,
    connection: str,
    version: str,
    delivery_id: str,
    publisher: EventPublisher,
) -> tuple[tuple[Envelope, ...], tuple[HubSpotEvent, ...], int]:
    """Classify, deduplicate and publish a delivery's events; log what was skipped (live and replay).
    Returns the envelopes published, the events skipped and the count of duplicates."""
    relevant: dict[str, tuple[HubSpotEvent, Classified]] = {}
    skipped: list[HubSpotEvent] = []
    duplicates = 0
    for event in events:
        classified = classify(event)
        if classified is None:
            skipped.append(event)
            continue
        event_key = change_key(event)
        if event_key in relevant:
            duplicates += 1
            continue
        relevant[event_key] = (event, classified)
    envelopes = tuple(
        deal_changed_event(
            event,
            classified,
            event_key,
            connection=connection,
            config_version=version,
            delivery_id=delivery_id,
            raw_key=key,
        )
        for event_key, (event, classified) in relevant.items()
    )
    if envelopes:
        publisher.publish(envelopes)
    for envelope in envelopes:
        with correlation_scope(logger, envelope.correlation_id):
            payload = envelope.payload
            logger.info(
                "event published",
                extra={
                    "event_id": envelope.event_id,
                    "portal_id": portal_id,
                    "change": payload["change"],
                    "object_type": payload["object_type"],
                    "object_id": payload["object_id"],
                    "deal_id": payload["deal_id"],
                    "hubspot_event_id": payload["hubspot_event_id"],
                },
            )
    for event in skipped:
        logger.warning(
            "unsupported event type skipped",
            extra={
                "reason": "unsupported_type",
                "subscription_type": event.subscription_type,
                "object_type_id": event.object_type_id,
                "object_id": event.object_id,
                "hubspot_event_id": event.event_id,
                "portal_id": portal_id,
                "raw_object_key": key,
            },
        )
    if duplicates:
        logger.info(
            "duplicate events published once",
            extra={"duplicates": duplicates, "raw_object_key": key},
        )
    return envelopes, tuple(skipped), duplicates


def classify(event: HubSpotEvent) -> Classified | None:
    """The change a deal or line-item event announces; None for any other event (skipped)."""
    name, action = event.object_name, event.action
    if name == "deal":
        if action == "propertyChange":
            change: Change = (
                "stage_changed" if event.property_name in STAGE_PROPERTIES else "property_changed"
            )
            return Classified(change, "deal", event.object_id)
        known = DEAL_CHANGE_BY_ACTION.get(action)
        if known is None:
            return None
        return Classified(known, "deal", _deal_id(event, known))
    if name == "line_item" and action in LINE_ITEM_ACTIONS:
        # Which deal a line item belongs to is not in the event: the consumer reads it from HubSpot.
        return Classified("line_item_changed", "line_item", None)
    return None


def _deal_id(event: HubSpotEvent, change: Change) -> str:
    if change == "merged":
        # The deal that remains: HubSpot names it newObjectId (a merge that made a new record) or
        # primaryObjectId; objectId is the event's subject otherwise.
        return event.new_object_id or event.primary_object_id or event.object_id
    if change == "associations_changed":
        kind = (event.association_type or "").upper()
        if kind.startswith("DEAL_TO_") and event.from_object_id:
            return event.from_object_id
        if kind.endswith("_TO_DEAL") and event.to_object_id:
            return event.to_object_id
        if event.from_object_type_id == DEAL_TYPE_ID and event.from_object_id:
            return event.from_object_id
        if event.to_object_type_id == DEAL_TYPE_ID and event.to_object_id:
            return event.to_object_id
    return event.object_id


def change_key(event: HubSpotEvent) -> str:
    """SHA-256 (hex) of what the event says happened, the same for every delivery of it: not
    ``eventId`` (not unique, HubSpot says) nor ``attemptNumber`` (grows with each retry)."""
    identity: list[Any] = [
        event.portal_id,
        event.subscription_type,
        event.object_type_id,
        event.object_id,
        event.property_name,
        event.property_value,
        event.occurred_at_ms,
        list(event.merged_object_ids),
        event.primary_object_id,
        event.new_object_id,
        event.association_type,
        event.from_object_type_id,
        event.from_object_id,
        event.to_object_type_id,
        event.to_object_id,
        event.association_removed,
    ]
    # JSON keeps None apart from "" and a list apart from its items, so no two events share a key text.
    text = json.dumps(identity, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def deal_changed_event(
    event: HubSpotEvent,
    classified: Classified,
    event_key: str,
    *,
    connection: str,
    config_version: str,
    delivery_id: str,
    raw_key: str,
) -> Envelope:
    """The ``hubspot.deal.changed`` envelope of one event (schemas/events/hubspot.deal.changed.v1.json)."""
    value = event.property_value
    if value is not None and len(value) > MAX_PUBLISHED_VALUE_CHARS:
        value = None
    payload: dict[str, Any] = {
        "connection": connection,
        "config_version": config_version,
        "portal_id": event.portal_id,
        "change": classified.change,
        "object_type": classified.object_type,
        "object_id": event.object_id,
        "deal_id": classified.deal_id,
        "subscription_type": event.subscription_type,
        "property_name": event.property_name,
        "property_value": value,
        "change_source": event.change_source,
        "source_id": event.source_id,
        "app_id": event.app_id,
        "subscription_id": event.subscription_id,
        "occurred_at_ms": event.occurred_at_ms,
        "hubspot_event_id": event.event_id,
        "attempt_number": event.attempt_number,
        "merged_object_ids": list(event.merged_object_ids),
        "delivery_id": delivery_id,
        "raw_object_key": raw_key,
    }
    return Envelope(
        source=EventSource.HUBSPOT_INGEST,
        detail_type=DetailType.HUBSPOT_DEAL_CHANGED,
        payload=payload,
        correlation_id=event_key,
        event_id=event_key,
        occurred_at=iso_ms(event.occurred_at_ms),
    )


def iso_ms(epoch_ms: int) -> str:
    """``2026-11-25T14:02:52.123Z`` for epoch milliseconds (exact: no float on the way)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
