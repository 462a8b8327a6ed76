"""The ``ledgerlink.deal.synced`` event: one for each invoice deal written, published before its link is
recorded (so a failed publication is retried with the deal), carrying the correlation id of the event
that caused it. Its schema is ``schemas/events/ledgerlink.deal.synced.v1.json``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from ledgerlink.dates import parse_qbo_date, start_of_day
from ledgerlink.deal_sync.documents import Doc
from ledgerlink.deal_sync.mapping import CompanyContext
from ledgerlink.deal_sync.matching import first_email
from ledgerlink.deal_sync.ports import EventPublisher, MetricsSink
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.mapping import properties as prop


def publish_synced(
    publisher: EventPublisher,
    metrics: MetricsSink,
    docs: list[Doc],
    context: CompanyContext,
    *,
    connection: str = "",
    config_version: str = "",
) -> None:
    """Publish the event of each written invoice deal; a failed publication fails those documents."""
    if not docs:
        return
    envelopes = [
        deal_synced_envelope(doc, context, connection=connection, config_version=config_version)
        for doc in docs
    ]
    try:
        publisher.publish(envelopes)
    except Exception as error:  # noqa: BLE001 - not published: the deals are re-synced and re-published
        for doc in docs:
            doc.fail(error)
        return
    metrics.count("DealSyncedPublished", len(envelopes))


def deal_synced_envelope(
    doc: Doc, context: CompanyContext, *, connection: str = "", config_version: str = ""
) -> Envelope:
    """The ``ledgerlink.deal.synced`` event of one written invoice deal (schema in schemas/events/)."""
    assert doc.deal_id is not None
    raw = doc.raw or {}
    properties = doc.mapping.deal.properties if doc.mapping is not None else {}
    due = raw.get("DueDate")
    due_date = (
        start_of_day(
            parse_qbo_date(due, entity=f"Invoice {doc.entity_id}", field="DueDate"), context.time_zone
        ).isoformat()
        if due
        else None
    )
    last_updated = (raw.get("MetaData") or {}).get("LastUpdatedTime")
    customer_ref = raw.get("CustomerRef") or {}
    email = first_email((raw.get("BillEmail") or {}).get("Address"))
    version = doc.version or (0, 0)
    identity = f"{doc.deal_id}|{doc.key.realm_id}:{doc.entity_id}|{version[0]}|{version[1]}|{doc.status}"
    cause = max(doc.causes, key=lambda event: event.last_updated_ms) if doc.causes else None
    occurred = (
        datetime.fromtimestamp(version[0] / 1000, UTC) if version[0] else datetime.now(UTC)
    ).isoformat(timespec="milliseconds")
    if doc.crm_deal is not None:
        # A CRM-born invoice's deal stays where the salesperson put it: what HubSpot shows, not the map's.
        pipeline, deal_stage = doc.pipeline, doc.deal_stage
    else:
        pipeline = properties.get("pipeline") if doc.mapping else None
        deal_stage = properties.get("dealstage") if doc.mapping else None
    payload = {
        "deal_id": doc.deal_id,
        "invoice_id": doc.entity_id,
        "invoice_key": f"{doc.key.realm_id}:{doc.entity_id}",
        "realm_id": doc.key.realm_id,
        "doc_number": str(raw.get("DocNumber") or "").strip(),
        "status": doc.status,
        "amount": properties.get("amount") if doc.mapping else None,
        "balance": properties.get(prop.QBO_BALANCE) if doc.mapping else None,
        "currency": doc.mapping.currency if doc.mapping else None,
        "due_date": due_date,
        "time_zone": context.time_zone.key,
        "customer": {
            "qbo_customer_id": f"{doc.key.realm_id}:{customer_ref['value']}"
            if customer_ref.get("value")
            else None,
            "company_id": doc.company_id,
            "contact_id": doc.contact_id,
            "email": email,
            "name": (str(customer_ref.get("name")).strip() or None) if customer_ref.get("name") else None,
        },
        "owner_id": doc.owner_id,
        "pipeline": pipeline,
        "deal_stage": deal_stage,
        "last_updated": str(last_updated) if last_updated else None,
        "sync_token": version[1],
    }
    if connection:
        payload["connection"] = connection
    if config_version:
        payload["config_version"] = config_version
    return Envelope(
        source=EventSource.HUBSPOT_DEAL_SYNC,
        detail_type=DetailType.DEAL_SYNCED,
        payload=payload,
        correlation_id=cause.correlation_id if cause is not None else doc.key.pk,
        event_id=hashlib.sha256(identity.encode("utf-8")).hexdigest(),
        occurred_at=occurred,
    )
