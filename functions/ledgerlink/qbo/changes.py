"""The ``qbo.entity.changed`` envelope of one QBO change, as every producer publishes it.

Shared so that the webhook ingest and the CDC catch-up (ledgerlink.catchup) build the same event for the
same change: the same payload fields and the same ``event_id`` (:attr:`EntityChange.change_id`), which
the deal sync's ledger deduplicates on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.qbo.webhooks import EntityChange, SourceFormat, normalize_timestamp


def change_event(
    change: EntityChange,
    delivery_id: str,
    raw_key: str | None,
    *,
    connection: str | None = None,
    config_version: str | None = None,
) -> Envelope:
    """The ``qbo.entity.changed`` envelope for one change.

    ``event_id`` and ``occurred_at`` depend only on the change, so every delivery of it (a retry, the
    other format, a replayed archive) yields the same event id. The correlation id is the CloudEvent
    id when there is one (Intuit's own id for the change), otherwise the change id.
    """
    payload: dict[str, Any] = {
        "realm_id": change.realm_id,
        "entity": change.entity,
        "entity_id": change.entity_id,
        "operation": change.operation,
        "last_updated": change.last_updated,
        "delivery_id": delivery_id,
        "source_format": change.source_format,
    }
    if raw_key is not None:
        payload["raw_object_key"] = raw_key
    if change.cloudevent_id is not None:
        payload["cloudevent_id"] = change.cloudevent_id
    if change.deleted_id is not None:
        payload["deleted_id"] = change.deleted_id
    if connection is not None:
        payload["connection"] = connection
    if config_version is not None:
        payload["config_version"] = config_version
    return Envelope(
        source=EventSource.QBO_INGEST,
        detail_type=DetailType.QBO_ENTITY_CHANGED,
        payload=payload,
        correlation_id=change.cloudevent_id or change.change_id,
        event_id=change.change_id,
        occurred_at=change.last_updated,
    )


def row_change(
    realm_id: str, entity: str, row: Mapping[str, Any], source_format: SourceFormat
) -> EntityChange:
    """The change a QBO object read by CDC or by query stands for, at the version it shows.

    Neither source carries an operation: ``Delete`` for a CDC tombstone (``status: "Deleted"``),
    ``Create`` when ``CreateTime`` equals ``LastUpdatedTime``, else ``Update``. The CDC catch-up and the
    backfill both derive it here, so one version read by either gives one change id
    (:attr:`EntityChange.change_id`) and the deal sync's ledger drops the second."""
    meta = row.get("MetaData") or {}
    if str(row.get("status", "")).lower() == "deleted":
        operation = "Delete"
    elif meta.get("CreateTime") is not None and _same_instant(meta["CreateTime"], meta["LastUpdatedTime"]):
        operation = "Create"
    else:
        operation = "Update"
    return EntityChange(
        realm_id=realm_id,
        entity=entity,
        entity_id=str(row["Id"]),
        operation=operation,
        last_updated=normalize_timestamp(str(meta["LastUpdatedTime"]), f"{entity}.MetaData.LastUpdatedTime"),
        source_format=source_format,
    )


def _same_instant(left: Any, right: Any) -> bool:
    return datetime.fromisoformat(str(left)) == datetime.fromisoformat(str(right))
