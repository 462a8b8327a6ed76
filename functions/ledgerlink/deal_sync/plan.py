"""Plan before apply (F17): the HubSpot changes a sync under a configuration file would make, written nowhere.

:func:`plan` maps the current QBO documents under the connection's settings of the given configuration
file (its stage maps, time zone, portal) with the diff engine (:mod:`~ledgerlink.deal_sync.diff`, the one
``reconcile`` uses) and lists, per deal, every mapped property whose value would change: record,
property, old → new. A document without a deal would create one (every property, old empty). Line items
are not planned (``reconcile`` checks their total). Only reads are made: QBO queries, the crosswalk and
HubSpot searches and batch reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from ledgerlink.deal_sync.diff import DocumentState, Progress, PropertyChange, read_snapshot
from ledgerlink.deal_sync.ports import SyncConfig, SyncServices


@dataclass(frozen=True)
class PlannedRecord:
    """One deal a sync would write, and how."""

    qbo_type: str
    qbo_id: str
    number: str
    deal_id: str | None  # None: the sync would create the deal
    changes: tuple[PropertyChange, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "qbo": {"type": self.qbo_type, "id": self.qbo_id, "number": self.number},
            "hubspot": {"type": "deal", "id": self.deal_id},
            "action": "update" if self.deal_id else "create",
            "changes": [{"property": c.property, "old": c.old, "new": c.new} for c in self.changes],
        }


@dataclass
class Plan:
    records: list[PlannedRecord]
    documents: int
    unmappable: list[tuple[str, str]]  # (qbo id, why) of documents the configuration cannot map

    @property
    def changes(self) -> int:
        return sum(len(record.changes) for record in self.records)


def plan(
    service: SyncServices,
    realm_id: str,
    config: SyncConfig,
    since: date,
    *,
    progress: Progress | None = None,
) -> Plan:
    """What a sync of ``realm_id``'s documents dated ``since`` or later would change under ``config``."""
    snapshot = read_snapshot(service, realm_id, since, config=config, progress=progress or (lambda _: None))
    records: list[PlannedRecord] = []
    unmappable: list[tuple[str, str]] = []
    for state in sorted(snapshot.documents.values(), key=_order):
        if state.mapping_error is not None:
            unmappable.append((state.key, state.mapping_error))
            continue
        changes = state.changes()
        if changes:
            deal_id = state.deal.id if state.deal is not None else None
            records.append(PlannedRecord(state.entity, state.key, state.number, deal_id, tuple(changes)))
    return Plan(records, len(snapshot.documents), unmappable)


def _order(state: DocumentState) -> tuple[str, int, str]:
    return (state.entity, len(state.entity_id), state.entity_id)
