"""What the document sync talks to, and its configuration.

The real adapters: :class:`~ledgerlink.qbo.client.QboClient` (the books),
:class:`~ledgerlink.document_sync.deal.DealReader` over :class:`~ledgerlink.hubspot.client.HubSpotClient`
(the CRM), the links table (:class:`~ledgerlink.crosswalk.LinkStore`,
:class:`~ledgerlink.document_sync.records.DealDocumentStore`) and :class:`~ledgerlink.audit.AuditStore`.
The tests run the flow against the QBO and HubSpot sandboxes through them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ledgerlink.configfile import DocumentStages, QboDocumentSettings, TaxCode
from ledgerlink.consumer.outcome import Counter as MetricsSink  # noqa: F401 - the flow's ports name it
from ledgerlink.consumer.outcome import NoMetrics as NoMetrics
from ledgerlink.crosswalk import EntityKey, Link


class Books(Protocol):
    """The QBO calls the flow makes (``ledgerlink.qbo.client.QboClient``)."""

    def query(self, realm_id: str, statement: str) -> list[dict[str, Any]]: ...

    def read(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any] | None: ...

    def create(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]: ...

    def update(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]: ...

    def preferences(self, realm_id: str) -> dict[str, Any]: ...

    def company_info(self, realm_id: str) -> dict[str, Any]: ...


class Links(Protocol):
    def get_many(self, keys: Sequence[EntityKey]) -> dict[EntityKey, Link]: ...

    def claim_for_deal(self, key: EntityKey, deal_id: str) -> None: ...


@dataclass(frozen=True)
class DocumentConfig:
    connection: str
    config_version: str
    portal_id: str
    realm_id: str
    time_zone: ZoneInfo
    # ISO country of the QBO company when the configuration file says it; else QBO's CompanyInfo decides.
    country: str | None
    stages: Mapping[str, DocumentStages]
    settings: QboDocumentSettings = field(default_factory=QboDocumentSettings)
    tax_table: Mapping[str, TaxCode] = field(default_factory=dict)
    # How long the company's preferences, items and tax codes are trusted before they are read again.
    cache_seconds: float = 300.0
