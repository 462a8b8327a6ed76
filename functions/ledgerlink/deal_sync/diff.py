"""The deal flow's diff: what HubSpot holds against what a sync of the current QBO data would write.

One engine serves ``ledgerlink reconcile`` (:mod:`~ledgerlink.deal_sync.reconcile`) and ``ledgerlink plan``
(:mod:`~ledgerlink.deal_sync.plan`), reads only, never writes:

1. **QBO**: every Invoice and Estimate whose ``TxnDate`` is in the window (``select * ... where TxnDate >=``,
   paged by the client), their item SKUs (cached by the service);
2. **map** each with the pure mapping (:mod:`~ledgerlink.deal_sync.mapping`) under a
   :class:`~ledgerlink.deal_sync.ports.SyncConfig` (the deployed one, or the file ``plan`` is given): the
   deal properties the flow would write; a CRM-born document (:mod:`~ledgerlink.deal_sync.crm_born`)
   writes the books' properties only, so only those are compared;
3. **HubSpot**: one search for every live deal of the realm dated in the window (or undated), 200 per
   page: a deal claims the document its ``qbo_invoice_id`` / ``qbo_estimate_id`` names (the crosswalk's
   deal first), a deal without a key the one document of its number (a duplicate); a deal naming a
   document outside the window is read back in QBO (``Id IN (...)``, 100 per query) to tell "deleted in
   QBO" from "dated earlier now"; then the deals' line items (v4 associations, batch reads) for the
   line-item total. (Deals by ``idProperty`` batch reads would be read-after-write consistent, but the
   local sandbox's unique-value index missed deals there; see the report.)
4. **diff**: per document, the deal properties whose values differ (numbers compared as numbers, dates
   and date-times as instants), the crosswalk link (:mod:`ledgerlink.crosswalk`) and what QBO's version is.

HubSpot's search stops at 10,000 results and may trail writes by a few seconds (HubSpot's docs): a
check right after a repair may still see old values for that long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.dates import epoch_ms
from ledgerlink.deal_sync.crm_born import books_properties, crm_deal
from ledgerlink.deal_sync.documents import entity_version
from ledgerlink.deal_sync.mapping import CompanyContext, DealMapping, map_estimate, map_invoice
from ledgerlink.deal_sync.ports import SyncConfig, SyncServices
from ledgerlink.deal_sync.realm import document_item_ids
from ledgerlink.hubspot.client import HubSpotObject
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.errors import MappingError

DOCUMENTS: Final = ("Invoice", "Estimate")
ID_PROPERTY: Final = {"Invoice": prop.QBO_INVOICE_ID, "Estimate": prop.QBO_ESTIMATE_ID}
# What every deal read asks for besides the mapped properties.
BASE_DEAL_PROPERTIES: Final = (
    prop.QBO_INVOICE_ID,
    prop.QBO_ESTIMATE_ID,
    prop.QBO_REALM_ID,
    prop.QBO_DOC_NUMBER,
    prop.QBO_CUSTOMER_ID,
    prop.QBO_TXN_DATE,
    prop.QBO_BALANCE,
    prop.QBO_STATUS,
    "amount",
    "deal_currency_code",
    "dealname",
    "pipeline",
    "dealstage",
)
LINE_ITEM_PROPERTIES: Final = ("amount", prop.QBO_LINE_ID)

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    return None


@dataclass(frozen=True)
class PropertyChange:
    """One deal property a sync would change: HubSpot shows ``old``, the flow would write ``new``."""

    property: str
    old: str
    new: str


@dataclass
class DocumentState:
    """One QBO document in the window and what HubSpot holds for it."""

    entity: str
    entity_id: str
    realm_id: str
    raw: Mapping[str, Any]
    link: Link | None
    mapping: DealMapping | None = None
    mapping_error: str | None = None
    expected: dict[str, str] = field(default_factory=dict)  # what the flow writes on the deal
    deal: HubSpotObject | None = None  # the deal naming it by its QBO key (idProperty)
    extra_deals: list[HubSpotObject] = field(default_factory=list)  # other live deals naming it
    crm_born: bool = False
    version: tuple[int, int] = (0, 0)
    line_item_total: Decimal | None = None  # of the line items LedgerLink wrote on the deal

    @property
    def key(self) -> str:
        return f"{self.realm_id}:{self.entity_id}"

    @property
    def entity_key(self) -> EntityKey:
        return EntityKey(self.realm_id, self.entity, self.entity_id)

    @property
    def number(self) -> str:
        return str(self.raw.get("DocNumber") or "")

    @property
    def customer_id(self) -> str:
        return str((self.raw.get("CustomerRef") or {}).get("value") or "")

    @property
    def synced_version_current(self) -> bool:
        """The crosswalk says HubSpot was given this QBO version (or a newer one)."""
        return self.link is not None and self.link.already_synced(*self.version)

    def changes(self) -> list[PropertyChange]:
        """The deal properties the flow would change (all of them when there is no deal)."""
        shown = self.deal.properties if self.deal is not None else {}
        return [
            PropertyChange(name, str(shown.get(name) or ""), value)
            for name, value in sorted(self.expected.items())
            if not same_value(str(shown.get(name) or ""), value)
        ]


@dataclass
class Snapshot:
    """The realm's documents in the window, and HubSpot's deals that no document in it claims."""

    connection: str
    realm_id: str
    since: date
    documents: dict[str, DocumentState]  # by "<realm>:<Id>" of an Invoice, "<realm>:estimate-<Id>" else
    orphans: list[tuple[str, str, HubSpotObject, Link | None]] = field(default_factory=list)
    """(entity, QBO Id, deal, link) of live deals whose QBO document QBO no longer has."""
    window_deals: list[HubSpotObject] = field(default_factory=list)  # every live deal of the realm found

    def document(self, entity: str, entity_id: str) -> DocumentState | None:
        return self.documents.get(_doc_key(entity, f"{self.realm_id}:{entity_id}"))


def _doc_key(entity: str, qbo_key: str) -> str:
    # Invoices and estimates may share an Id in QBO: the snapshot keys them apart.
    return qbo_key if entity == "Invoice" else f"estimate:{qbo_key}"


def read_snapshot(
    service: SyncServices,
    realm_id: str,
    since: date,
    *,
    config: SyncConfig | None = None,
    progress: Progress = _quiet,
    with_line_items: bool = True,
) -> Snapshot:
    """Read QBO and HubSpot for ``realm_id`` (documents dated ``since`` or later) and map under
    ``config`` (default: the service's). Reads only."""
    config = config if config is not None else service.config
    now = datetime.fromtimestamp(service.clock.now(), UTC)
    context = service.context(realm_id)
    raws: dict[str, list[dict[str, Any]]] = {}
    for entity in DOCUMENTS:
        # The date is formatted by this code, never taken from input: the statement carries no free text.
        statement = f"select * from {entity} where TxnDate >= '{since.isoformat()}'"  # noqa: S608
        raws[entity] = service.qbo.query(realm_id, statement)
        progress(f"read {len(raws[entity])} {entity.lower()}s from QBO (TxnDate >= {since.isoformat()})")
    links = service.links.get_many(
        EntityKey(realm_id, entity, str(raw.get("Id"))) for entity in DOCUMENTS for raw in raws[entity]
    )
    item_ids = {item for entity in DOCUMENTS for raw in raws[entity] for item in document_item_ids(raw)}
    skus = service.item_skus(realm_id, item_ids) if item_ids else {}

    documents: dict[str, DocumentState] = {}
    for entity in DOCUMENTS:
        for raw in raws[entity]:
            entity_id = str(raw.get("Id"))
            state = DocumentState(
                entity, entity_id, realm_id, raw, links.get(EntityKey(realm_id, entity, entity_id))
            )
            state.version = entity_version(raw, context)
            _map(state, context, config, now, skus)
            documents[_doc_key(entity, state.key)] = state
    snapshot = Snapshot(config.connection, realm_id, since, documents)

    wanted = sorted(
        {name for state in documents.values() for name in state.expected} | set(BASE_DEAL_PROPERTIES)
    )
    _claim_window_deals(service, snapshot, wanted, since, progress)
    if with_line_items:
        _read_line_items(service, snapshot)
    return snapshot


def _map(
    state: DocumentState,
    context: CompanyContext,
    config: SyncConfig,
    now: datetime,
    skus: Mapping[str, str],
) -> None:
    try:
        if state.entity == "Invoice":
            state.mapping = map_invoice(state.raw, context, config.invoice_stages, now=now, item_skus=skus)
        else:
            state.mapping = map_estimate(state.raw, context, config.estimate_stages, now=now, item_skus=skus)
    except MappingError as error:
        state.mapping_error = str(error)
        return
    deal = crm_deal(state.link, state.raw, config.portal_id)
    if deal is not None:
        state.crm_born = True
        state.expected = books_properties(state.entity, state.raw, state.mapping)
    else:
        state.expected = dict(state.mapping.deal.properties)


def _claim_window_deals(
    service: SyncServices, snapshot: Snapshot, wanted: Sequence[str], since: date, progress: Progress
) -> None:
    """Every live deal of the realm dated in the window (or undated): the ones no document's QBO key
    claims are a second deal of a document (same number), or a deal whose document is gone from QBO."""
    realm = {"propertyName": prop.QBO_REALM_ID, "operator": "EQ", "value": snapshot.realm_id}
    start = str(epoch_ms(datetime(since.year, since.month, since.day, tzinfo=UTC)))
    deals = service.hubspot.search(
        "deals",
        [
            {"filters": [realm, {"propertyName": prop.QBO_TXN_DATE, "operator": "GTE", "value": start}]},
            {"filters": [realm, {"propertyName": prop.QBO_TXN_DATE, "operator": "NOT_HAS_PROPERTY"}]},
        ],
        list(wanted),
    )
    snapshot.window_deals = deals
    by_number: dict[str, list[DocumentState]] = {}
    for state in snapshot.documents.values():
        if state.number:
            by_number.setdefault(state.number, []).append(state)
    gone: dict[str, dict[str, HubSpotObject]] = {entity: {} for entity in DOCUMENTS}
    unkeyed: list[HubSpotObject] = []
    # The deal the crosswalk names first (it is the one the flow writes), then the oldest.
    for deal in sorted(deals, key=lambda d: (len(d.id), d.id)):
        named = [
            (entity, deal.prop(ID_PROPERTY[entity]))
            for entity in DOCUMENTS
            if deal.prop(ID_PROPERTY[entity]).startswith(f"{snapshot.realm_id}:")
        ]
        if not named:
            unkeyed.append(deal)
        for entity, qbo_key in named:
            owner = snapshot.documents.get(_doc_key(entity, qbo_key))
            if owner is None:
                gone[entity][qbo_key.split(":", 1)[1]] = deal
            elif owner.deal is None:
                owner.deal = deal
            elif owner.link is not None and owner.link.hubspot_id == deal.id:
                owner.extra_deals.append(owner.deal)
                owner.deal = deal
            else:
                owner.extra_deals.append(deal)
    progress(f"read {len(deals)} deals of realm {snapshot.realm_id} from HubSpot")
    for deal in unkeyed:
        # A deal without a QBO key (made or copied by a person): claimed by the one document of its number.
        candidates = by_number.get(deal.prop(prop.QBO_DOC_NUMBER), [])
        if len(candidates) > 1:
            invoices = [c for c in candidates if c.entity == "Invoice"]
            candidates = invoices if len(invoices) == 1 else candidates
        if len(candidates) == 1 and candidates[0].deal is not None:
            candidates[0].extra_deals.append(deal)
    for entity, deals_by_id in gone.items():
        if not deals_by_id:
            continue
        # Outside the window now (its date changed), or deleted: only QBO can say.
        still = service.qbo.read_many(snapshot.realm_id, entity, deals_by_id)
        missing = [entity_id for entity_id in deals_by_id if entity_id not in still]
        links = service.links.get_many(
            EntityKey(snapshot.realm_id, entity, entity_id) for entity_id in missing
        )
        for entity_id in missing:
            snapshot.orphans.append(
                (
                    entity,
                    entity_id,
                    deals_by_id[entity_id],
                    links.get(EntityKey(snapshot.realm_id, entity, entity_id)),
                )
            )


def _read_line_items(service: SyncServices, snapshot: Snapshot) -> None:
    """The total of the line items LedgerLink wrote on each deal (``qbo_line_id`` of its document)."""
    states = [
        s
        for s in snapshot.documents.values()
        if s.deal is not None and s.mapping is not None and not s.crm_born
    ]
    if not states:
        return
    associated = service.hubspot.associations("deals", "line_items", [s.deal.id for s in states if s.deal])
    item_ids = {item for items in associated.values() for item in items}
    items = service.hubspot.batch_read("line_items", item_ids, list(LINE_ITEM_PROPERTIES)) if item_ids else {}
    for state in states:
        assert state.deal is not None and state.mapping is not None
        total = Decimal(0)
        for item_id in associated.get(state.deal.id, []):
            item = items.get(item_id)
            if item is not None and state.mapping.owns_line(item.prop(prop.QBO_LINE_ID)):
                total += decimal_or_none(item.prop("amount")) or Decimal(0)
        state.line_item_total = total


def same_value(shown: str, written: str) -> bool:
    """Whether HubSpot's ``shown`` value is what writing ``written`` gives: the same text, the same
    number ("1250" and "1250.00"), or the same instant (epoch ms and ISO-8601, dates at midnight UTC)."""
    left, right = shown.strip(), written.strip()
    if left == right:
        return True
    if not left or not right:
        return False
    numbers = decimal_or_none(left), decimal_or_none(right)
    if numbers[0] is not None and numbers[1] is not None and not (_is_epoch(left) or _is_epoch(right)):
        return numbers[0] == numbers[1]
    instants = _instant(left), _instant(right)
    return instants[0] is not None and instants[0] == instants[1]


def _is_epoch(text: str) -> bool:
    return text.isdigit() and len(text) >= 11


def decimal_or_none(text: str) -> Decimal | None:
    """A HubSpot number property's value as a Decimal, None when empty or not a number."""
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _instant(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return epoch_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return epoch_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
