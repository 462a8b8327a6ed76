"""What the calendar flow talks to: its ports (Graph's calendar, the deal owners' directory, the
mailbox cache, publication, metrics) and its configuration.

:class:`~ledgerlink.graph.client.GraphClient` is the real calendar; the tests run the flow against the
Graph sandbox through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledgerlink.configfile import CalendarSettings
from ledgerlink.consumer.outcome import Counter as MetricsSink  # noqa: F401 - the flow's ports name it
from ledgerlink.consumer.outcome import NoMetrics as NoMetrics
from ledgerlink.events import Envelope
from ledgerlink.graph.client import GraphEvent, GraphUser


class Calendar(Protocol):
    """The Graph calls the flow makes (``ledgerlink.graph.client.GraphClient``)."""

    def find_user(self, email: str) -> GraphUser | None: ...

    def create_event(self, mailbox: str, body: Mapping[str, Any], *, transaction_id: str) -> GraphEvent: ...

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent | None: ...

    def update_event(
        self, mailbox: str, event_id: str, changes: Mapping[str, Any], *, etag: str
    ) -> GraphEvent: ...

    def delete_event(self, mailbox: str, event_id: str) -> bool: ...

    def cancel_event(self, mailbox: str, event_id: str, comment: str) -> bool: ...


class OwnerDirectory(Protocol):
    """HubSpot's owners: the e-mail of a deal owner (None when the owner is unknown or archived)."""

    def owner_email(self, owner_id: str) -> str | None: ...


class EventPublisher(Protocol):
    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


@dataclass(frozen=True)
class CalendarConfig:
    connection: str
    config_version: str
    portal_id: str
    accounts_receivable_mailbox: str | None
    settings: CalendarSettings = field(default_factory=CalendarSettings)
    # How long a resolved deal owner's mailbox is trusted (the directory changes rarely).
    owner_cache_seconds: float = 24 * 3600.0
