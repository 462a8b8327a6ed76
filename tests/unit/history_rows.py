"""A sync-history row as the flows record it (ledgerlink.history), for the tests of what reads them:
`ledgerlink status`, `trace` and the `ui` page."""

from __future__ import annotations

from typing import Any

from ledgerlink.history import Category, Flow, HistoryRow, RecordOutcome


def history_row(**changes: Any) -> HistoryRow:
    """Invoice 1006 (Id 130) of the demo connection, written by the deal sync at once; ``changes``
    override any field."""
    fields: dict[str, Any] = {
        "connection": "demo",
        "flow": Flow.DEAL_SYNC,
        "at": "2026-12-02T06:30:01.000Z",
        "message_id": "m-1",
        "receive_count": 1,
        "outcome": RecordOutcome.WRITTEN,
        "category": Category.NONE,
        "reason": "",
        "correlation_id": "corr-1",
        "event_id": "e-1",
        "source_entity": "Invoice",
        "source_id": "130",
        "source_number": "1006",
    }
    return HistoryRow(**{**fields, **changes})
