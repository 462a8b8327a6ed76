"""Reconciliation (F16): do the books and the CRM still agree, and if not, why; repair through the flow.

:func:`reconcile` reads one connection with the diff engine (:mod:`~ledgerlink.deal_sync.diff`) and checks,
for the documents of the window (docs/reconcile.md):

- every QBO invoice and estimate has exactly one deal (``missing_deal``, ``duplicate_deals``);
- amount, balance, status, currency, due date and line-item total agree;
- every deal LedgerLink made still has its QBO document (deleted in QBO, deal not marked deleted);
- per customer, the sum of open balances agrees between QBO and HubSpot.

Each drifted record (:class:`RecordDrift`) names its QBO document and HubSpot record, and per field both
values and the likely cause (:class:`Cause`), told from the crosswalk link (QBO newer than the link:
a change not yet synced) and HubSpot's property history (``sourceType`` of the last change).

:func:`repair` re-syncs the drifted records through the normal flow, never a writer of its own: it marks
their crosswalk links dirty (so the flow does not skip a version it already synced) and hands
:meth:`DealSyncService.sync <ledgerlink.deal_sync.service.DealSyncService.sync>` one event per document
with an event id of this run (the ledger drops repeated ids), then checks again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Protocol

from ledgerlink.consumer.outcome import Outcome
from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.deal_sync.diff import (
    DocumentState,
    Progress,
    Snapshot,
    decimal_or_none,
    read_snapshot,
    same_value,
)
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.deal_sync.ports import SyncServices
from ledgerlink.hubspot.client import HubSpotObject
from ledgerlink.mapping import properties as prop

DEFAULT_WINDOW_DAYS: Final = 400
# The time a repair's batch may take (the flow's idempotency claims expire after it): an operator's run.
REPAIR_BUDGET_MS: Final = 15 * 60 * 1000
# The compared deal properties, by the name the report gives the field.
FIELDS: Final = {
    "amount": "amount",
    "balance": prop.QBO_BALANCE,
    "status": prop.QBO_STATUS,
    "currency": "deal_currency_code",
    "due_date": prop.QBO_DUE_DATE,
}
# HubSpot property-history sourceType values of writes made through the API (an app such as LedgerLink)
# or computed by HubSpot; any other source is a person (CRM_UI, MOBILE_*, IMPORT, ...) or a workflow.
# HubSpot documents sourceType without listing every value: unverified, hence the wide "other" reading.
API_SOURCES: Final = frozenset({"API", "INTEGRATION", "CALCULATED"})
AUTOMATION_SOURCES: Final = frozenset({"AUTOMATION_PLATFORM", "WORKFLOWS"})


class Cause(StrEnum):
    CHANGED_IN_HUBSPOT = "changed_in_hubspot"
    QBO_CHANGE_NOT_SYNCED = "qbo_change_not_synced"
    NEVER_SYNCED = "never_synced"
    DEAL_DELETED_IN_HUBSPOT = "deal_deleted_in_hubspot"
    DOCUMENT_DELETED_IN_QBO = "document_deleted_in_qbo"
    DUPLICATE_DEAL = "duplicate_deal"
    CONFIGURATION_CHANGED = "configuration_changed"
    TIME_PASSED = "time_passed"
    UNMAPPABLE = "unmappable"
    DOCUMENT_DRIFT = "document_drift"
    UNKNOWN = "unknown"


ADVICE: Final = {
    Cause.CHANGED_IN_HUBSPOT: "changed in HubSpot ({source}); --repair restores QBO's value when [reconcile] qbo_wins",
    Cause.QBO_CHANGE_NOT_SYNCED: "QBO's version is newer than the one synced (a lost webhook): run ledgerlink catchup, or --repair",
    Cause.NEVER_SYNCED: "no crosswalk link: no webhook for it ever arrived; run ledgerlink catchup (ledgerlink backfill beyond 30 days), or --repair",
    Cause.DEAL_DELETED_IN_HUBSPOT: "the deal LedgerLink wrote was deleted in HubSpot; --repair writes it again",
    Cause.DOCUMENT_DELETED_IN_QBO: "the document was deleted in QBO but its deal is not marked deleted; --repair marks it",
    Cause.DUPLICATE_DEAL: "more than one live deal names this document; merge or delete the extra deal in HubSpot (the flow deletes nothing in the CRM)",
    Cause.CONFIGURATION_CHANGED: "LedgerLink wrote this value; the configuration or mapping now gives another: --repair",
    Cause.TIME_PASSED: "the due date passed since the last sync (no QBO change re-syncs it): --repair",
    Cause.UNMAPPABLE: "QBO's document cannot be mapped ({source}); fix it in QBO",
    Cause.DOCUMENT_DRIFT: "explained by the drift of its documents ({source})",
    Cause.UNKNOWN: "no known cause ({source}); --repair writes QBO's values",
}


@dataclass(frozen=True)
class FieldDrift:
    field: str
    qbo: str | None
    hubspot: str | None
    cause: Cause
    source: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "qbo": self.qbo,
            "hubspot": self.hubspot,
            "cause": self.cause.value,
            "detail": ADVICE[self.cause].format(source=self.source or "-"),
        }


@dataclass
class RecordDrift:
    """One drifted record: a QBO document (or customer) and its HubSpot record(s)."""

    connection: str
    qbo_type: str  # Invoice | Estimate | Customer
    qbo_id: str  # "<realm>:<Id>"
    number: str  # DocNumber, or the customer's name
    hubspot_type: str  # deal | company
    hubspot_ids: tuple[str, ...]
    fields: list[FieldDrift]
    document: DocumentState | None = None
    link: Link | None = None

    @property
    def entity_id(self) -> str:
        return self.qbo_id.split(":", 1)[1]

    @property
    def causes(self) -> set[Cause]:
        return {each.cause for each in self.fields}

    @property
    def label(self) -> str:
        return f"{self.qbo_type} {self.qbo_id}" + (f" #{self.number}" if self.number else "")

    def describe(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "qbo": {"type": self.qbo_type, "id": self.qbo_id, "number": self.number},
            "hubspot": {
                "type": self.hubspot_type,
                "id": self.hubspot_ids[0] if self.hubspot_ids else None,
                "ids": list(self.hubspot_ids),
            },
            "fields": [each.describe() for each in self.fields],
        }


@dataclass
class Reconciliation:
    snapshot: Snapshot
    drift: list[RecordDrift]

    def counts(self) -> dict[str, int]:
        docs = self.snapshot.documents.values()
        return {
            "invoices": sum(1 for d in docs if d.entity == "Invoice"),
            "estimates": sum(1 for d in docs if d.entity == "Estimate"),
            "deals": len({deal.id for deal in _all_deals(self.snapshot)}),
            "drifted_records": len(self.drift),
        }


def default_since(today: date) -> date:
    return today - timedelta(days=DEFAULT_WINDOW_DAYS)


def reconcile(
    service: SyncServices, realm_id: str, since: date, *, progress: Progress | None = None
) -> Reconciliation:
    """Read and check one connection's realm (module docstring). Reads only."""
    say = progress or (lambda line: None)
    snapshot = read_snapshot(service, realm_id, since, progress=say)
    drift: list[RecordDrift] = []
    history_wanted: dict[str, set[str]] = {}
    pending: list[tuple[RecordDrift, DocumentState]] = []
    connection = service.config.connection
    for state in sorted(snapshot.documents.values(), key=lambda s: (s.entity, _numeric(s.entity_id))):
        record = _document_drift(connection, state)
        if record is None:
            continue
        drift.append(record)
        if state.deal is not None and any(f.cause is Cause.UNKNOWN for f in record.fields):
            history_wanted.setdefault(state.deal.id, set()).update(
                FIELDS.get(f.field, f.field) for f in record.fields if f.cause is Cause.UNKNOWN
            )
            pending.append((record, state))
    if history_wanted:
        asked = sorted(
            {name for each in history_wanted.values() for name in each if name != "line_item_total"}
        )
        histories = service.hubspot.batch_read_history("deals", history_wanted, asked) if asked else {}
        for record, state in pending:
            assert state.deal is not None
            record.fields = [
                _cause_from_history(f, histories.get(state.deal.id, {}), state) for f in record.fields
            ]
    for entity, entity_id, deal, link in snapshot.orphans:
        if deal.prop(prop.QBO_STATUS) == "deleted":
            continue
        drift.append(
            RecordDrift(
                connection,
                entity,
                f"{realm_id}:{entity_id}",
                deal.prop(prop.QBO_DOC_NUMBER),
                "deal",
                (deal.id,),
                [
                    FieldDrift(
                        "qbo_status", "deleted", deal.prop(prop.QBO_STATUS), Cause.DOCUMENT_DELETED_IN_QBO
                    )
                ],
                link=link,
            )
        )
    drift.extend(_customer_drift(service, snapshot, drift))
    say(f"checked: {len(snapshot.documents)} documents, {len(drift)} drifted records")
    return Reconciliation(snapshot, drift)


def _document_drift(connection: str, state: DocumentState) -> RecordDrift | None:
    deals = [deal for deal in (state.deal, *state.extra_deals) if deal is not None]
    record = RecordDrift(
        connection,
        state.entity,
        state.key,
        state.number,
        "deal",
        tuple(deal.id for deal in deals),
        [],
        document=state,
        link=state.link,
    )
    if state.mapping_error is not None:
        record.fields.append(FieldDrift("mapping", None, None, Cause.UNMAPPABLE, state.mapping_error))
        return record
    if state.deal is None:
        if state.link is not None and state.link.hubspot_id:
            cause, shown = Cause.DEAL_DELETED_IN_HUBSPOT, f"deal {state.link.hubspot_id} gone"
        else:
            cause, shown = Cause.NEVER_SYNCED, None
        if state.extra_deals:
            cause = Cause.DUPLICATE_DEAL if len(state.extra_deals) > 1 else cause
        record.fields.append(FieldDrift("deal", state.key, shown, cause))
        return record
    if state.extra_deals:
        record.fields.append(FieldDrift("deal_count", "1", str(len(deals)), Cause.DUPLICATE_DEAL))
    behind = not state.synced_version_current
    for name, property_name in FIELDS.items():
        if property_name not in state.expected:
            continue
        written, shown = state.expected[property_name], state.deal.prop(property_name)
        if same_value(shown, written):
            continue
        if behind:
            cause = Cause.QBO_CHANGE_NOT_SYNCED
        elif name == "status" and written == "overdue":
            cause = Cause.TIME_PASSED
        else:
            cause = Cause.UNKNOWN  # told from the property's history below
        record.fields.append(FieldDrift(name, written, shown, cause))
    if state.line_item_total is not None and not state.crm_born and state.mapping is not None:
        expected_total = decimal_or_none(state.expected.get("amount", "")) or Decimal(0)
        if expected_total != state.line_item_total:
            record.fields.append(
                FieldDrift(
                    "line_item_total",
                    str(expected_total),
                    str(state.line_item_total),
                    Cause.QBO_CHANGE_NOT_SYNCED if behind else Cause.UNKNOWN,
                )
            )
    return record if record.fields else None


def _cause_from_history(
    drift: FieldDrift, history: Mapping[str, list[dict[str, Any]]], state: DocumentState
) -> FieldDrift:
    if drift.cause is not Cause.UNKNOWN:
        return drift
    entries = history.get(FIELDS.get(drift.field, drift.field)) or []
    if not entries:
        return FieldDrift(drift.field, drift.qbo, drift.hubspot, Cause.UNKNOWN, "no property history")
    last = entries[0]
    source_type = str(last.get("sourceType") or "")
    who = " ".join(str(v) for v in (source_type, last.get("sourceId"), last.get("timestamp")) if v)
    if source_type in API_SOURCES:
        if drift.qbo is not None and any(
            same_value(str(earlier.get("value") or ""), drift.qbo) for earlier in entries[1:]
        ):
            # The deal already held the value today's mapping gives, and an API write replaced it while QBO
            # did not change: another app (or a script) changed it, not LedgerLink under a new mapping.
            # (HubSpot's history does not say reliably which app wrote a value, hence the deduction.)
            return FieldDrift(
                drift.field,
                drift.qbo,
                drift.hubspot,
                Cause.CHANGED_IN_HUBSPOT,
                f"another app, through the API: {who}",
            )
        # LedgerLink (or another app) wrote the value, and QBO did not change since: the mapping did.
        return FieldDrift(drift.field, drift.qbo, drift.hubspot, Cause.CONFIGURATION_CHANGED, who)
    kind = "a workflow" if source_type in AUTOMATION_SOURCES else "a person"
    return FieldDrift(drift.field, drift.qbo, drift.hubspot, Cause.CHANGED_IN_HUBSPOT, f"{kind}: {who}")


def _all_deals(snapshot: Snapshot) -> list[HubSpotObject]:
    found: dict[str, HubSpotObject] = {deal.id: deal for deal in snapshot.window_deals}
    for state in snapshot.documents.values():
        for deal in (state.deal, *state.extra_deals):
            if deal is not None:
                found[deal.id] = deal
    return list(found.values())


def _customer_drift(
    service: SyncServices, snapshot: Snapshot, drift: Sequence[RecordDrift]
) -> list[RecordDrift]:
    """Per customer, QBO's open balance (its invoices in the window) against the deals' ``qbo_balance``."""
    realm = snapshot.realm_id
    qbo: dict[str, Decimal] = {}
    names: dict[str, str] = {}
    for state in snapshot.documents.values():
        if state.entity != "Invoice" or not state.customer_id:
            continue
        key = f"{realm}:{state.customer_id}"
        qbo[key] = qbo.get(key, Decimal(0)) + (
            decimal_or_none(str(state.raw.get("Balance") or "0")) or Decimal(0)
        )
        names[key] = str((state.raw.get("CustomerRef") or {}).get("name") or "")
    invoice_of = {
        deal.id: state
        for state in snapshot.documents.values()
        if state.entity == "Invoice"
        for deal in (state.deal, *state.extra_deals)
        if deal is not None
    }
    hubspot: dict[str, Decimal] = {}
    for deal in _all_deals(snapshot):
        if not (deal.prop(prop.QBO_INVOICE_ID) or deal.id in invoice_of):
            continue
        if deal.prop(prop.QBO_STATUS) == "deleted":
            continue
        key = deal.prop(prop.QBO_CUSTOMER_ID)
        if key:
            hubspot[key] = hubspot.get(key, Decimal(0)) + (
                decimal_or_none(deal.prop(prop.QBO_BALANCE)) or Decimal(0)
            )
    drifted_docs: dict[str, list[str]] = {}
    for record in drift:
        document = record.document
        if document is not None:
            customer = f"{realm}:{document.customer_id}"
        else:
            customer = next(
                (d.prop(prop.QBO_CUSTOMER_ID) for d in _all_deals(snapshot) if d.id in record.hubspot_ids), ""
            )
        if customer:
            drifted_docs.setdefault(customer, []).append(record.label)
    keys = sorted(k for k in set(qbo) | set(hubspot) if qbo.get(k, Decimal(0)) != hubspot.get(k, Decimal(0)))
    links = service.links.get_many(EntityKey(realm, "Customer", k.split(":", 1)[1]) for k in keys if ":" in k)
    found = []
    for key in keys:
        link = links.get(EntityKey(realm, "Customer", key.split(":", 1)[1])) if ":" in key else None
        explained = drifted_docs.get(key, [])
        found.append(
            RecordDrift(
                service.config.connection,
                "Customer",
                key,
                names.get(key, ""),
                "company",
                (link.hubspot_id,) if link is not None and link.hubspot_id else (),
                [
                    FieldDrift(
                        "open_balance",
                        str(qbo.get(key, Decimal(0))),
                        str(hubspot.get(key, Decimal(0))),
                        Cause.DOCUMENT_DRIFT if explained else Cause.UNKNOWN,
                        ", ".join(explained) if explained else "no document of the window explains it",
                    )
                ],
                link=link,
            )
        )
    return found


# ---- repair


class Syncs(Protocol):
    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]: ...


@dataclass
class RepairResult:
    repaired: list[RecordDrift] = field(default_factory=list)  # re-synced through the flow
    left: list[tuple[RecordDrift, str]] = field(default_factory=list)  # not touched, and why
    failed: list[tuple[RecordDrift, str]] = field(default_factory=list)  # the flow's failure reason
    fixed: list[RecordDrift] = field(default_factory=list)  # repaired, and clean on the check after
    after: Reconciliation | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "repaired": [r.qbo_id for r in self.repaired],
            "fixed": [r.qbo_id for r in self.fixed],
            "left": [{"qbo_id": r.qbo_id, "reason": why} for r, why in self.left],
            "failed": [{"qbo_id": r.qbo_id, "reason": why} for r, why in self.failed],
            "drift_after": len(self.after.drift) if self.after is not None else None,
        }


def repair_event_id(realm_id: str, entity: str, entity_id: str, operation: str, run_id: str) -> str:
    """A fresh event id per document and repair run: the flow's ledger drops ids it completed before."""
    identity = f"{realm_id}|{entity}|{entity_id}|{operation}|repair|{run_id}"
    return hashlib.sha256(identity.encode()).hexdigest()


def repair(
    service: SyncServices,
    flow: Syncs,
    result: Reconciliation,
    *,
    qbo_wins: bool,
    run_id: str,
    progress: Progress | None = None,
    remaining_ms: int = REPAIR_BUDGET_MS,
) -> RepairResult:
    """Re-sync the drifted documents through ``flow`` (the deal sync), then check the realm again."""
    say = progress or (lambda line: None)
    outcome = RepairResult()
    realm = result.snapshot.realm_id
    now_ms = int(service.clock.now() * 1000)
    events: dict[str, tuple[RecordDrift, ChangeEvent]] = {}
    for record in result.drift:
        why = _left_because(record, qbo_wins)
        if why is not None:
            outcome.left.append((record, why))
            continue
        if record.qbo_type == "Customer":
            continue  # repaired through its documents (below)
        deleted = Cause.DOCUMENT_DELETED_IN_QBO in record.causes
        operation = "Delete" if deleted else "Update"
        state = record.document
        if record.link is not None:
            # The flow skips a version its link says it synced; a dirty link forces the re-write.
            service.links.mark_dirty(record.link.key)
        event_id = repair_event_id(realm, record.qbo_type, record.entity_id, operation, run_id)
        events[event_id] = (
            record,
            ChangeEvent(
                message_id=f"repair-{run_id}-{len(events) + 1}",
                receive_count=1,
                event_id=event_id,
                correlation_id=f"reconcile-{run_id}",
                realm_id=realm,
                entity=record.qbo_type,
                entity_id=record.entity_id,
                operation=operation,
                last_updated_ms=state.version[0] if state is not None and not deleted else now_ms,
                connection=service.config.connection,
            ),
        )
    if events:
        say(f"repairing {len(events)} records through the deal flow")
        outcomes = flow.sync([event for _, event in events.values()], remaining_ms=remaining_ms)
        for record, event in events.values():
            synced = outcomes[event.message_id]
            if synced.ok:
                outcome.repaired.append(record)
            else:
                outcome.failed.append((record, synced.reason or synced.status.value))
    repaired_ids = {r.qbo_id for r in outcome.repaired}
    for record in result.drift:
        if record.qbo_type == "Customer" and record.qbo_id not in {r.qbo_id for r, _ in outcome.left}:
            outcome.repaired.append(record)  # through its documents
            repaired_ids.add(record.qbo_id)
    outcome.after = reconcile(service, realm, result.snapshot.since, progress=say)
    still = {(r.qbo_type, r.qbo_id) for r in outcome.after.drift}
    outcome.fixed = [r for r in outcome.repaired if (r.qbo_type, r.qbo_id) not in still]
    return outcome


def _left_because(record: RecordDrift, qbo_wins: bool) -> str | None:
    causes = record.causes
    if record.qbo_type == "Customer":
        if Cause.DOCUMENT_DRIFT in causes:
            return None
        return "no drifted document explains it; check the deals' qbo_customer_id and qbo_balance"
    if Cause.UNMAPPABLE in causes:
        return "QBO's document cannot be mapped; fix it in QBO"
    if Cause.DUPLICATE_DEAL in causes:
        return "a duplicate deal: merge or delete the extra deal in HubSpot (the flow deletes nothing there)"
    if Cause.CHANGED_IN_HUBSPOT in causes and not qbo_wins:
        people = ", ".join(f.field for f in record.fields if f.cause is Cause.CHANGED_IN_HUBSPOT)
        return f"changed in HubSpot ({people}) and [reconcile] qbo_wins is false: the HubSpot values stay"
    if Cause.DOCUMENT_DELETED_IN_QBO in causes and record.link is None:
        return "deleted in QBO, but no crosswalk link names the deal: mark it deleted in HubSpot by hand"
    return None


def run_id_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _numeric(value: str) -> tuple[int, str]:
    return (len(value), value)
