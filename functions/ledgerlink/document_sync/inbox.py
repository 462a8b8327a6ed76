"""SQS records of the document-sync queue → typed :class:`DealChanged` events.

Each message carries a ``hubspot.deal.changed`` v1 envelope: what a HubSpot webhook said happened to a deal
or one of its line items (:func:`~ledgerlink.consumer.records.read_envelope` checks the schema). The flow
treats it as a hint only: HubSpot does not promise order or uniqueness, so every event makes the flow
re-read the deal and act on what the deal says now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerlink.consumer.outcome import Outcome
from ledgerlink.consumer.records import read_envelope
from ledgerlink.events import DetailType
from ledgerlink.history import Subject

STAGE_PROPERTY = "dealstage"


@dataclass(frozen=True)
class DealChanged:
    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    connection: str
    config_version: str
    portal_id: str
    change: str
    object_type: str
    object_id: str
    deal_id: str | None
    property_name: str | None
    property_value: str | None
    change_source: str | None
    occurred_at_ms: int
    merged_object_ids: tuple[str, ...]
    source_id: str | None = None
    app_id: str | None = None

    @property
    def own_write(self) -> bool:
        """Whether the change was made by the app the webhook is for — LedgerLink's own API write, echoed
        back: HubSpot names the writing app in ``sourceId`` (unverified: seen in payloads and the sandbox,
        not stated by HubSpot's guide; docs/document-sync.md)."""
        return bool(self.app_id) and self.source_id == self.app_id

    @property
    def claimed_stage(self) -> str | None:
        """The stage the webhook said the deal moved to (None when it was not a stage change)."""
        return self.property_value if self.property_name == STAGE_PROPERTY else None

    def log_fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "message_id": self.message_id,
            "portal_id": self.portal_id,
            "change": self.change,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "deal_id": self.deal_id,
            "change_source": self.change_source,
            "receive_count": self.receive_count,
        }


def parse_record(record: Mapping[str, Any]) -> DealChanged:
    """One SQS record → :class:`DealChanged`; :class:`~ledgerlink.consumer.batch.MalformedRecord` otherwise."""
    received = read_envelope(record, DetailType.HUBSPOT_DEAL_CHANGED)
    envelope = received.envelope
    payload = envelope.payload
    return DealChanged(
        message_id=received.message_id,
        receive_count=received.receive_count,
        event_id=envelope.event_id,
        correlation_id=envelope.correlation_id,
        connection=str(payload["connection"]),
        config_version=str(payload["config_version"]),
        portal_id=str(payload["portal_id"]),
        change=str(payload["change"]),
        object_type=str(payload["object_type"]),
        object_id=str(payload["object_id"]),
        deal_id=_optional(payload.get("deal_id")),
        property_name=_optional(payload.get("property_name")),
        property_value=_optional(payload.get("property_value")),
        change_source=_optional(payload.get("change_source")),
        occurred_at_ms=int(payload["occurred_at_ms"]),
        merged_object_ids=tuple(str(value) for value in payload.get("merged_object_ids") or ()),
        source_id=_optional(payload.get("source_id")),
        app_id=_optional(payload.get("app_id")),
    )


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def history_subject(event: DealChanged, outcome: Outcome) -> Subject | None:
    """What a record's history row names (ledgerlink.history): the deal and the QBO documents written."""
    deal_id = event.deal_id or (event.object_id if event.object_type == "deal" else None)
    if not deal_id:
        return None
    detail = outcome.detail
    return Subject(
        connection=event.connection,
        source_entity="deal",
        source_id=deal_id,
        deal_id=deal_id,
        deal_stage=event.property_value if event.property_name == "dealstage" else None,
        estimate_id=detail.get("estimate_id") or None,
        estimate_number=detail.get("estimate_number") or None,
        invoice_id=detail.get("invoice_id") or None,
        invoice_number=detail.get("invoice_number") or None,
    )
