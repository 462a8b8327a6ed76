"""What the deal flow's steps are given: its ports (metrics, publication), its configuration, and the
service as one realm's pass sees it (:class:`SyncServices`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from ledgerlink.clock import Clock
from ledgerlink.consumer.outcome import Counter as MetricsSink
from ledgerlink.consumer.outcome import NoMetrics as NoMetrics
from ledgerlink.crosswalk import LinkStore
from ledgerlink.deal_sync.mapping import CompanyContext
from ledgerlink.events import Envelope
from ledgerlink.hubspot.client import HubSpotClient
from ledgerlink.mapping.stages import StageMap
from ledgerlink.qbo.client import QboClient


class EventPublisher(Protocol):
    def publish(self, envelopes: Sequence[Envelope]) -> None: ...


@dataclass(frozen=True)
class SyncConfig:
    time_zone: ZoneInfo
    invoice_stages: StageMap
    estimate_stages: StageMap
    # How long a process trusts what it read about a realm (home currency, portal currencies, SKUs).
    cache_seconds: float = 900.0
    # The connection this service syncs and the configuration file's version, named by what it publishes.
    connection: str = ""
    config_version: str = ""
    # The connection's HubSpot portal: a QBO document whose note carries the marker of one of its deals
    # is CRM-born (ledgerlink.mapping.origin); empty, no note makes a document CRM-born.
    portal_id: str = ""


class SyncServices(Protocol):
    """What one realm's pass uses of :class:`~ledgerlink.deal_sync.service.DealSyncService`: its
    collaborators and the per-realm caches it keeps across invocations."""

    qbo: QboClient
    hubspot: HubSpotClient
    links: LinkStore
    publisher: EventPublisher
    config: SyncConfig
    clock: Clock
    metrics: MetricsSink

    def context(self, realm_id: str) -> CompanyContext: ...

    def refresh_portal_currencies(self, realm_id: str) -> CompanyContext: ...

    def item_skus(self, realm_id: str, item_ids: Iterable[str]) -> dict[str, str]: ...
