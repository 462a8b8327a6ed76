"""Microsoft Graph, app-only (shared room): Entra ID client-credentials tokens per connection (``auth``),
the Graph client for tenant users, Outlook calendars, events and free/busy (``client``), its errors
(``errors``), ``dateTimeTimeZone`` values (``times``) and the builder (``factory``). Used by the calendar
and Teams flows; see docs/graph.md.
"""

from __future__ import annotations

from ledgerlink.graph.auth import GraphAuth, token_policy
from ledgerlink.graph.client import (
    BusyInterval,
    GraphCalendar,
    GraphClient,
    GraphEvent,
    GraphUser,
    Schedule,
    odata_string,
)
from ledgerlink.graph.errors import (
    EventChanged,
    EventGone,
    GraphAccessDenied,
    GraphAuthError,
    GraphCredentialsRejected,
    GraphError,
    GraphRequestRejected,
    GraphTenantMismatch,
    MailboxNotFound,
    ScheduleUnavailable,
)
from ledgerlink.graph.factory import GraphParts, graph_client

__all__ = [
    "BusyInterval",
    "EventChanged",
    "EventGone",
    "GraphAccessDenied",
    "GraphAuth",
    "GraphAuthError",
    "GraphCalendar",
    "GraphClient",
    "GraphCredentialsRejected",
    "GraphError",
    "GraphEvent",
    "GraphParts",
    "GraphRequestRejected",
    "GraphTenantMismatch",
    "GraphUser",
    "MailboxNotFound",
    "Schedule",
    "ScheduleUnavailable",
    "graph_client",
    "odata_string",
    "token_policy",
]
