"""In-memory implementations of the ingest ports, for unit tests, benchmarks and the local stack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledgerlink.events import Envelope
from ledgerlink.ingest.ports import ArchiveError
from ledgerlink.publisher import PublishError


class InMemoryRawArchive:
    """Keeps documents in a dict; ``fail_with`` makes every put raise, as an unreachable S3 would."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail_with: str | None = None

    def put(self, key: str, document: bytes) -> None:
        if self.fail_with is not None:
            raise ArchiveError(f"could not store the raw delivery ({self.fail_with})")
        self.objects[key] = document


class InMemoryEventPublisher:
    """Records what a bus would receive, as PutEvents entries (so every detail is schema-validated).

    ``refuse_event_ids`` makes those envelopes fail the way refused PutEvents entries do, after the
    others have been published.
    """

    def __init__(self, event_bus_name: str = "ledgerlink-test") -> None:
        self.event_bus_name = event_bus_name
        self.entries: list[dict[str, Any]] = []
        self.refuse_event_ids: set[str] = set()

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        entries = [envelope.to_put_events_entry(self.event_bus_name) for envelope in envelopes]
        refused = [
            e for e, env in zip(entries, envelopes, strict=True) if env.event_id in self.refuse_event_ids
        ]
        self.entries.extend(e for e in entries if not any(e is r for r in refused))
        if refused:
            raise PublishError(len(refused), len(entries), {"InternalFailure": len(refused)})

    def details(self) -> list[dict[str, Any]]:
        """The Detail of every published entry, parsed."""
        return [json.loads(entry["Detail"]) for entry in self.entries]


@dataclass(frozen=True)
class FakeConnection:
    name: str

    def secret_name(self, stage: str, kind: str) -> str:
        """Shaped like ``Connection.secret_name``'s, for the kinds the ingest reads."""
        return f"ledgerlink/{stage}/connections/{self.name}/{kind}/app"


class FakeServedRealms:
    """Realm id -> connection name, as a configuration file would list them."""

    def __init__(self, realms: dict[str, str], version: str = "test-config") -> None:
        self.realms = dict(realms)
        self.version = version

    def by_realm(self, realm_id: str) -> FakeConnection | None:
        name = self.realms.get(realm_id)
        return FakeConnection(name) if name is not None else None


class FakeServedPortals:
    """HubSpot portal id -> connection name, as a configuration file would list them."""

    def __init__(self, portals: dict[str, str], version: str = "test-config") -> None:
        self.portals = dict(portals)
        self.version = version

    def by_portal(self, portal_id: str) -> FakeConnection | None:
        name = self.portals.get(portal_id)
        return FakeConnection(name) if name is not None else None
