"""A deal's line items, matched to its document's lines by ``qbo_line_id`` without a unique property.

HubSpot documents unique-value properties for contacts, companies, deals, tickets and custom objects;
no HubSpot page offers them on line items, so line items cannot be upserted by ``qbo_line_id``
(docs/mapping.md#line-items-and-their-identity). For every deal being written, :class:`LineItemSync`
instead finds the line items the deal already has, then updates, creates and archives by HubSpot id,
each step one batch call per 100 inputs for all the deals of the pass:

1. **find** them: a deal the upsert just created has none. Otherwise, when the link names this deal,
   its ``line_item_ids`` are read (``qbo_line_id`` of each; the ones a user deleted are absent);
   without such a link (first sync of an existing deal, a lost link) the deal's line-item
   associations are read, then those line items. A deal read from its link is looked up through its
   associations too when its document has lines the link does not cover (an earlier attempt may have
   created them and failed before its link was saved) or when the link lost a race (``dirty``: the
   other worker's line items may be on the deal). One associations call and one read per 100 for
   all of them.
2. **match** by ``qbo_line_id``: a line item whose key is a line of the document is updated, unless
   the read shows it carries every value already (a change to a document rarely touches all its
   lines). Two carrying the same key (two workers that raced, one of them losing the link save)
   keep the link's or the oldest, and the other is archived. A line item whose key is of this
   document but no longer one of its lines is archived; one without a key of this document (a
   user's) is left alone.
3. **create** the rest already associated with the deal (type 20, line item → deal, in the create
   input), so a create whose answer is lost still leaves them where the next look finds them. A
   create call that fails as a whole (5xx, timeout: some may have landed) is followed by one more look
   at those deals' associations and one create of what is still missing.
4. **archive** what step 2 set aside, and the line items of the link's earlier deal (a deal deleted
   and re-created in HubSpot) that were not taken over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from aws_lambda_powertools import Logger

from ledgerlink.deal_sync.ports import MetricsSink
from ledgerlink.http.errors import VendorError
from ledgerlink.hubspot.client import (
    BatchOutcome,
    Create,
    HubSpotClient,
    HubSpotError,
    ObjectsNotFound,
    Update,
)
from ledgerlink.mapping import properties as prop

logger = Logger(child=True)

# HubSpot-defined association type of a line item to its deal (v4 association types).
LINE_ITEM_TO_DEAL: Final = 20


@dataclass(frozen=True)
class Line:
    """One line of the document: its ``qbo_line_id`` and the properties to write."""

    key: str
    properties: Mapping[str, str]


@dataclass
class DealLines:
    """One deal whose line items must become its document's lines; the outcome is recorded on it."""

    deal_id: str
    prefix: str  # every qbo_line_id of the document starts with it
    lines: Sequence[Line]
    deal_is_new: bool = False  # the upsert just created the deal: it has no line items yet
    linked_ids: frozenset[str] = frozenset()  # the link's line items, when the link names this deal
    # The link lost a race (dirty): another worker may have written line items it does not list.
    link_in_doubt: bool = False
    previous_ids: frozenset[str] = frozenset()  # the link's line items, when it names another deal
    # results
    line_item_ids: frozenset[str] = frozenset()
    error: VendorError | None = None
    # working state: the live line items seen for this deal (id -> qbo_line_id, "" for none)
    found: dict[str, str] = field(default_factory=dict)

    def owns(self, qbo_line_id: str) -> bool:
        return bool(qbo_line_id) and qbo_line_id.startswith(self.prefix)

    def unmatched(self) -> list[Line]:
        present = set(self.found.values())
        return [line for line in self.lines if line.key not in present]


@dataclass
class _Plan:
    updates: dict[str, Line] = field(default_factory=dict)  # line item id -> its line
    unchanged: set[str] = field(default_factory=set)  # matched, and HubSpot already shows the line
    creates: list[Line] = field(default_factory=list)
    archive: set[str] = field(default_factory=set)
    duplicates: set[str] = field(default_factory=set)  # archived too; counted apart


class LineItemSync:
    """Brings the line items of one pass's deals in line with their documents (module docstring).

    One instance per write: what it read is only trusted within that write."""

    def __init__(self, hubspot: HubSpotClient, metrics: MetricsSink, realm_id: str) -> None:
        self.hubspot = hubspot
        self.metrics = metrics
        self.realm_id = realm_id
        self._keys: dict[str, str] = {}  # line item id -> qbo_line_id, for every live one read
        # line item id -> what HubSpot shows of the properties the sync writes (to skip no-op updates)
        self._values: dict[str, Mapping[str, str | None]] = {}
        self._properties: list[str] = [prop.QBO_LINE_ID]
        self._absent: set[str] = set()  # ids a batch read did not return (deleted in HubSpot)

    def run(self, deals: Sequence[DealLines]) -> None:
        if not deals:
            return
        for deal in deals:
            deal.found, deal.error = {}, None
        self._properties = sorted(
            {prop.QBO_LINE_ID, *(k for d in deals for line in d.lines for k in line.properties)}
        )
        # 1. find what each deal has
        self._read(id_ for deal in deals for id_ in deal.linked_ids)
        for deal in deals:
            deal.found = {i: self._keys[i] for i in deal.linked_ids if i in self._keys}
        self._look_up(
            [d for d in deals if not d.deal_is_new and (not d.linked_ids or d.link_in_doubt or d.unmatched())]
        )
        # 2. match
        plans = {deal.deal_id: self._plan(deal) for deal in deals}
        kept: dict[str, set[str]] = {deal.deal_id: set(plans[deal.deal_id].unchanged) for deal in deals}
        # 3. update, then create
        self._update(deals, plans, kept)
        self._create(deals, plans, kept)
        # 4. archive
        archive: set[str] = set()
        duplicates = 0
        for deal in deals:
            if deal.error is not None:
                continue  # the next attempt sees the same line items and decides again
            plan = plans[deal.deal_id]
            deal.line_item_ids = frozenset(kept[deal.deal_id])
            archive |= plan.archive | plan.duplicates | (deal.previous_ids - deal.line_item_ids)
            duplicates += len(plan.duplicates)
            if plan.duplicates:
                logger.info(
                    "duplicate line items archived",
                    extra={
                        "realm_id": self.realm_id,
                        "deal_id": deal.deal_id,
                        "line_item_ids": sorted(plan.duplicates),
                    },
                )
        if archive:
            self.hubspot.batch_archive("line_items", archive)
            self.metrics.count("LineItemsArchived", len(archive))
        if duplicates:
            self.metrics.count("DuplicateLineItemsArchived", duplicates)

    # ---- finding

    def _read(self, ids: Iterable[str]) -> None:
        wanted = {i for i in ids if i not in self._keys and i not in self._absent}
        if not wanted:
            return
        records = self.hubspot.batch_read("line_items", wanted, self._properties)
        for id_ in wanted:
            record = records.get(id_)
            if record is None:
                self._absent.add(id_)
            else:
                self._keys[id_] = record.prop(prop.QBO_LINE_ID)
                self._values[id_] = record.properties

    def _look_up(self, deals: Sequence[DealLines]) -> None:
        """Every live line item associated with these deals, with its qbo_line_id, into ``found``."""
        if not deals:
            return
        associated = self.hubspot.associations("deals", "line_items", [d.deal_id for d in deals])
        self._read(id_ for d in deals for id_ in associated.get(d.deal_id, ()))
        for deal in deals:
            for id_ in associated.get(deal.deal_id, ()):
                if id_ in self._keys:
                    deal.found[id_] = self._keys[id_]
        self.metrics.count("LineItemLookups", len(deals))

    # ---- matching

    def _plan(self, deal: DealLines) -> _Plan:
        plan = _Plan()
        wanted = {line.key: line for line in deal.lines}
        by_key: dict[str, list[str]] = {}
        for id_, key in deal.found.items():
            if deal.owns(key):
                by_key.setdefault(key, []).append(id_)
        for key, ids in by_key.items():
            keep = min(ids, key=lambda i: (i not in deal.linked_ids, _numeric(i)))
            plan.duplicates |= set(ids) - {keep}
            if key in wanted:
                if self._shows(keep, wanted[key]):
                    plan.unchanged.add(keep)
                else:
                    plan.updates[keep] = wanted[key]
            else:
                plan.archive.add(keep)  # a line QBO no longer has
        plan.creates = [line for key, line in wanted.items() if key not in by_key]
        return plan

    def _shows(self, line_item_id: str, line: Line) -> bool:
        """Whether the line item already carries every value the line would write. A value HubSpot
        formats otherwise (e.g. a number) only costs an update that changes nothing."""
        current = self._values.get(line_item_id)
        if current is None:
            return False
        return all((current.get(name) or "") == value for name, value in line.properties.items())

    # ---- writing

    def _update(
        self, deals: Sequence[DealLines], plans: Mapping[str, _Plan], kept: dict[str, set[str]]
    ) -> None:
        updates = [
            Update(id_, line.properties)
            for deal in deals
            for id_, line in plans[deal.deal_id].updates.items()
        ]
        if not updates:
            return
        outcome = self.hubspot.batch_update("line_items", updates)
        for deal in deals:
            plan = plans[deal.deal_id]
            for id_, line in plan.updates.items():
                if id_ in outcome.written:
                    kept[deal.deal_id].add(id_)
                    continue
                failure = outcome.failed.get(id_) or HubSpotError(f"line item {id_} not updated")
                if isinstance(failure, ObjectsNotFound):
                    # Deleted in HubSpot between the read and the update: write it again.
                    plan.creates.append(line)
                elif deal.error is None:
                    deal.error = failure
        self.metrics.count("LineItemsUpdated", len(outcome.written))

    def _create(
        self, deals: Sequence[DealLines], plans: Mapping[str, _Plan], kept: dict[str, set[str]]
    ) -> None:
        pending = [d for d in deals if d.error is None and plans[d.deal_id].creates]
        if not pending:
            return
        try:
            outcome = self._send_creates(pending, plans)
        except VendorError as error:
            # Sent once and failed as a whole: any part of it may have landed, associated with its deal
            # and carrying what this pass sent. Look again, keep what landed, create only the rest.
            logger.warning(
                "line item create failed: looking for what landed before creating again",
                extra={"realm_id": self.realm_id, "deals": len(pending), "error": type(error).__name__},
            )
            for deal in pending:
                deal.found = {}  # what the associations say now, not what was read before
            self._look_up(pending)
            for deal in pending:
                plan = plans[deal.deal_id]
                landed: dict[str, str] = {}  # qbo_line_id -> the oldest line item carrying it
                for id_, key in sorted(deal.found.items(), key=lambda item: _numeric(item[0])):
                    landed.setdefault(key, id_)
                kept[deal.deal_id].update(landed[line.key] for line in plan.creates if line.key in landed)
                plan.creates = [line for line in plan.creates if line.key not in landed]
            pending = [d for d in pending if plans[d.deal_id].creates]
            try:
                outcome = self._send_creates(pending, plans) if pending else BatchOutcome()
            except VendorError as again:
                for deal in pending:
                    deal.error = again
                return
        for deal in pending:
            for line in plans[deal.deal_id].creates:
                record = outcome.written.get(line.key)
                if record is not None:
                    kept[deal.deal_id].add(record.id)
                elif deal.error is None:
                    deal.error = outcome.failed.get(line.key) or HubSpotError("line item not created")
        self.metrics.count("LineItemsCreated", len(outcome.written))

    def _send_creates(self, deals: Sequence[DealLines], plans: Mapping[str, _Plan]) -> BatchOutcome:
        # A line's qbo_line_id names it in the call's answer: unique across the documents of a pass.
        return self.hubspot.batch_create(
            "line_items",
            [
                Create(line.key, line.properties, ((deal.deal_id, LINE_ITEM_TO_DEAL),))
                for deal in deals
                for line in plans[deal.deal_id].creates
            ],
        )


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (10**20, value)
