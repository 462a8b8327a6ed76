"""The event envelope every Lambda publishes and consumes on EventBridge.

An EventBridge entry carries ``Source`` and ``DetailType``; its ``Detail`` is the
envelope: ``schema_version``, ``event_id`` (unique per event), ``correlation_id``
(follows one change through the whole choreography), ``occurred_at`` and the
``payload``. Each detail-type has a schema ``schemas/events/<detail-type>.v<N>.json``
describing the whole Detail; :func:`validate_detail` applies it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledgerlink import schemas


class EventSource:
    """EventBridge ``Source`` values, one per producing Lambda."""

    QBO_INGEST = "ledgerlink.qbo"
    HUBSPOT_DEAL_SYNC = "ledgerlink.hubspot"
    OUTLOOK_CALENDAR_SYNC = "ledgerlink.outlook"
    TEAMS_INVITE = "ledgerlink.teams"
    HUBSPOT_INGEST = "ledgerlink.hubspot.webhooks"


class DetailType:
    """EventBridge ``DetailType`` values; each has schemas/events/<value>.v<schema_version>.json."""

    QBO_ENTITY_CHANGED = "qbo.entity.changed"
    DEAL_SYNCED = "ledgerlink.deal.synced"
    CALENDAR_SYNCED = "ledgerlink.calendar.synced"
    FOLLOWUP_DUE = "ledgerlink.followup.due"
    HUBSPOT_DEAL_CHANGED = "hubspot.deal.changed"


SCHEMA_VERSION = "1"


class EnvelopeError(ValueError):
    """An event does not match its detail-type's schema; the message names the field."""


@dataclass(frozen=True)
class Envelope:
    source: str
    detail_type: str
    payload: Mapping[str, Any]
    correlation_id: str
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    schema_version: str = SCHEMA_VERSION

    def detail(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "occurred_at": self.occurred_at,
            "payload": dict(self.payload),
        }

    def to_put_events_entry(self, event_bus_name: str) -> dict[str, Any]:
        """The PutEvents entry; validates the detail first so nothing off-contract leaves the process."""
        detail = self.detail()
        validate_detail(self.detail_type, detail)
        return {
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": json.dumps(detail, separators=(",", ":"), sort_keys=True),
            "EventBusName": event_bus_name,
        }

    @classmethod
    def from_eventbridge(cls, event: Mapping[str, Any]) -> Envelope:
        """Parse an EventBridge event (as delivered to SQS or a Lambda target) and validate its detail."""
        detail_type = str(event.get("detail-type", ""))
        detail = event.get("detail")
        if isinstance(detail, str):
            detail = json.loads(detail)
        if not isinstance(detail, dict):
            raise EnvelopeError("$.detail: must be an object")
        validate_detail(detail_type, detail)
        return cls(
            source=str(event.get("source", "")),
            detail_type=detail_type,
            payload=detail["payload"],
            correlation_id=detail["correlation_id"],
            event_id=detail["event_id"],
            occurred_at=detail["occurred_at"],
            schema_version=detail["schema_version"],
        )


def schema_path(detail_type: str, schema_version: str = SCHEMA_VERSION) -> str:
    return f"events/{detail_type}.v{schema_version}.json"


def validate_detail(detail_type: str, detail: Mapping[str, Any]) -> None:
    version = str(detail.get("schema_version", SCHEMA_VERSION))
    try:
        error = schemas.first_error(schema_path(detail_type, version), dict(detail))
    except FileNotFoundError:
        raise EnvelopeError(f"no schema for detail-type {detail_type!r} version {version!r}") from None
    if error is not None:
        raise EnvelopeError(f"{detail_type} v{version} {schemas.describe(error)}")
