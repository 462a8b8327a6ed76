"""The documents of one realm's pass: an invoice or estimate on its way to a HubSpot deal, and what the
steps of the pass (:mod:`~ledgerlink.deal_sync.realm`, :mod:`~ledgerlink.deal_sync.customer_links`,
:mod:`~ledgerlink.deal_sync.writes`, :mod:`~ledgerlink.deal_sync.published`) record on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.dates import epoch_ms, parse_qbo_datetime
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.deal_sync.mapping import CompanyContext, DealMapping
from ledgerlink.hubspot.client import ObjectsNotFound

DELETED_STATUS: Final = "deleted"


@dataclass
class Doc:
    """One invoice or estimate to bring to HubSpot in this batch."""

    entity: str
    entity_id: str
    key: EntityKey
    link: Link | None
    raw: Mapping[str, Any] | None = None  # None: QBO no longer has it
    events: list[ChangeEvent] = field(default_factory=list)  # events that name it directly
    causes: list[ChangeEvent] = field(default_factory=list)  # every event that made it part of the batch
    version: tuple[int, int] | None = None
    outcome: Outcome | None = None
    mapping: DealMapping | None = None
    deal_id: str | None = None
    line_item_ids: frozenset[str] = frozenset()
    company_id: str | None = None
    contact_id: str | None = None
    owner_id: str | None = None
    status: str | None = None
    gone: list[ObjectsNotFound] = field(default_factory=list)  # records HubSpot refused as deleted
    # CRM-born (ledgerlink.deal_sync.crm_born): the HubSpot deal the document was created for, written
    # by id with the books' properties only; None for a document QBO users made.
    crm_deal: str | None = None
    # The CRM-born document's deal was gone from HubSpot, so it was written like a QBO-born one (a deal
    # of its own) and its link loses its origin (crosswalk.NO_ORIGIN).
    taken_over: bool = False
    # What the CRM-born document's deal shows (the salesperson's), for ledgerlink.deal.synced.
    pipeline: str | None = None
    deal_stage: str | None = None

    @property
    def deleted(self) -> bool:
        return self.raw is None

    def fail(self, error: BaseException) -> None:
        if isinstance(error, ObjectsNotFound):
            self.gone.append(error)
        if self.outcome is None or self.outcome.ok:
            self.outcome = Outcome.failure(error)

    def write_again(self) -> None:
        """Forget what the last write attempt produced (the mapping and version stay)."""
        self.outcome = None
        self.gone = []
        self.deal_id = self.company_id = self.contact_id = self.owner_id = self.status = None
        self.pipeline = self.deal_stage = None
        self.line_item_ids = frozenset()


def entity_version(entity: Mapping[str, Any], context: CompanyContext) -> tuple[int, int]:
    """(LastUpdatedTime in epoch ms, SyncToken): QBO's timestamp has whole seconds, the token breaks ties."""
    label = f"{entity.get('Id')}"
    raw_time = (entity.get("MetaData") or {}).get("LastUpdatedTime")
    ms = (
        epoch_ms(
            parse_qbo_datetime(raw_time, context.time_zone, entity=label, field="MetaData.LastUpdatedTime")
        )
        if raw_time
        else 0
    )
    try:
        token = int(str(entity.get("SyncToken", "0")))
    except ValueError:
        token = 0
    return ms, token


def lost_race() -> Outcome:
    return Outcome(
        OutcomeStatus.FAILED,
        reason="a newer version of this entity was synced concurrently; the next attempt re-writes the newest",
        retryable=True,
        error_type="ConcurrentSync",
    )
