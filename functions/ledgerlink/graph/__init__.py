"""Microsoft Graph, app-only (shared room): Entra ID client-credentials tokens per connection (``auth``),
the Graph client for tenant users and Outlook calendar events (``client``), its errors (``errors``) and
the builder (``factory``). Used by the calendar flow and, later, the Teams flow; see docs/graph.md.
"""

from __future__ import annotations

from ledgerlink.graph.auth import GraphAuth, token_policy
from ledgerlink.graph.client import GraphCalendar, GraphClient, GraphEvent, GraphUser, odata_string
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
)
from ledgerlink.graph.factory import GraphParts, graph_client

__all__ = [
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
    "graph_client",
    "odata_string",
    "token_policy",
]
