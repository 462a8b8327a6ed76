"""SQS records of the deal-sync queue → typed :class:`ChangeEvent` s.

Each message carries a ``qbo.entity.changed`` v1 envelope (:func:`~ledgerlink.consumer.records.read_envelope`
checks it); a record that does not parse raises :class:`~ledgerlink.consumer.batch.MalformedRecord` naming
the field: it can never succeed, so it goes to the dead-letter queue with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ledgerlink.consumer.batch import MalformedRecord
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.consumer.records import read_envelope
from ledgerlink.dates import epoch_ms
from ledgerlink.events import DetailType
from ledgerlink.history import Subject

# The QBO entities this Lambda syncs (infra/topology.py DEAL_SYNC_ENTITIES routes exactly these).
SYNCED_ENTITIES: Final = frozenset({"Invoice", "Estimate", "Payment", "Customer"})


@dataclass(frozen=True)
class ChangeEvent:
    message_id: str
    receive_count: int
    event_id: str
    correlation_id: str
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    last_updated_ms: int
    connection: str | None = None
    """The connection the publisher named (absent on events published before connections)."""

    def log_fields(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "event_id": self.event_id,
            "correlation_id": self.correlation_id,
            "realm_id": self.realm_id,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "operation": self.operation,
            "message_id": self.message_id,
            "receive_count": self.receive_count,
        }


def parse_record(record: Mapping[str, Any]) -> ChangeEvent:
    """One SQS record (Lambda's SQS event shape) → :class:`ChangeEvent`, or :class:`MalformedRecord`."""
    received = read_envelope(record, DetailType.QBO_ENTITY_CHANGED)
    message_id, envelope = received.message_id, received.envelope
    payload = envelope.payload
    try:
        last_updated = datetime.fromisoformat(str(payload["last_updated"]).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecord(
            f"message {message_id}: $.detail.payload.last_updated is not a date-time"
        ) from None
    return ChangeEvent(
        message_id=message_id,
        receive_count=received.receive_count,
        event_id=envelope.event_id,
        correlation_id=envelope.correlation_id,
        realm_id=str(payload["realm_id"]),
        entity=str(payload["entity"]),
        entity_id=str(payload["entity_id"]),
        operation=str(payload["operation"]),
        last_updated_ms=epoch_ms(last_updated),
        connection=str(payload["connection"]) if payload.get("connection") else None,
    )


def history_subject(event: ChangeEvent, outcome: Outcome, serving: str | None = None) -> Subject | None:
    """What a record's history row names (ledgerlink.history): the QBO document and its deal.
    ``serving``: the connection that serves the event's realm, for an event that names none."""
    connection = event.connection or serving
    if not connection:
        return None
    detail = outcome.detail
    return Subject(
        connection=connection,
        source_entity=event.entity,
        source_id=event.entity_id,
        realm_id=event.realm_id,
        source_number=detail.get("doc_number") or None,
        deal_id=detail.get("deal_id") or None,
        deal_stage=detail.get("deal_stage") or None,
    )
