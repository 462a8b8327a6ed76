"""The historical backfill: the QBO → HubSpot deal flow run over a company's history.

:class:`Backfill` pages through every matching QBO document with the query API and hands each row to
the deal sync itself (:meth:`ledgerlink.deal_sync.service.DealSyncService.sync`) as a synthetic
:class:`~ledgerlink.deal_sync.inbox.ChangeEvent`, in chunks of at most 100 (the SQS batch size the
service batches its HubSpot writes for). Nothing here writes to HubSpot: mapping, matching, the
crosswalk and exactly-once are the deal sync's own.

- **Event ids** are the ones the webhook ingest and the CDC catch-up give the same version
  (:func:`ledgerlink.qbo.changes.row_change` → :attr:`~ledgerlink.qbo.webhooks.EntityChange.change_id`):
  the deal sync's ledger drops a version already synced under that id, and the crosswalk version check
  (a link newer than the event: stale) drops the rest. A backfill next to live traffic, a second
  backfill, or a resumed one writes nothing twice. Message ids are synthetic
  (``backfill:<job>:<entity>:<row>``).
- **Order**: Customer, Estimate, Invoice, Payment (of those asked); each as
  ``select * from <Entity> [where MetaData.LastUpdatedTime >= '<since>'] ORDERBY MetaData.CreateTime``,
  one page of up to 1000 at a time (``STARTPOSITION``/``MAXRESULTS``). Creation time never changes, so
  a document edited during the run keeps its place, and new ones come last; each page re-reads the last
  :attr:`BackfillOptions.overlap` rows of the one before (skipping those ids) so a few deletions
  between pages shift nothing past the checkpoint. ``select count(*)`` gives the total for the ETA.
- **Checkpoint** (:mod:`ledgerlink.deal_sync.backfill_checkpoint`): saved after each page is settled,
  conditionally; a run finds it and continues; other arguments than the unfinished job's are refused
  unless ``restart``; a finished job is recorded as finished and the next run starts a new job.
- **Failures**: a chunk's retryable failures are synced again with backoff, at most
  :attr:`BackfillOptions.retries` times, then counted as failed; permanent ones are counted and
  listed. The deal sync records both in the links table, as for live events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.dates import epoch_ms
from ledgerlink.deal_sync.backfill_checkpoint import (
    MAX_LISTED_FAILURES,
    Checkpoint,
    CheckpointStore,
    EntityCounts,
    FailedDocument,
)
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.observability import Service, get_logger
from ledgerlink.qbo.changes import row_change
from ledgerlink.qbo.client import MAX_RESULTS

logger = get_logger(Service.HUBSPOT_DEAL_SYNC)

# The order a backfill reads entities in: customers first (the companies and contacts deals name),
# then estimates and invoices (the deals), then payments (which re-check the invoices they pay).
BACKFILL_ENTITIES: Final = ("Customer", "Estimate", "Invoice", "Payment")
CHUNK_SIZE: Final = 100  # the deal-sync queue's batch size; the service batches HubSpot writes at 100


class BackfillError(ValueError):
    """The backfill cannot run as asked (bad arguments, another job's checkpoint); says what to do."""


class Sync(Protocol):
    """The deal sync (:class:`~ledgerlink.deal_sync.service.DealSyncService` or ``ConnectionsSync``)."""

    def sync(self, events: Sequence[ChangeEvent], remaining_ms: int | None = None) -> dict[str, Outcome]: ...


class PageReader(Protocol):
    """The QBO query API (:class:`~ledgerlink.qbo.client.QboClient`)."""

    def query_page(
        self, realm_id: str, statement: str, start: int, max_results: int = MAX_RESULTS
    ) -> list[dict[str, Any]]: ...

    def count(self, realm_id: str, statement: str) -> int: ...


@dataclass(frozen=True)
class BackfillOptions:
    since: str | None = None
    """Only documents last updated at or after this ISO date or date-time (QBO compares a date in the
    company's time zone: unverified); None for all history."""
    entities: tuple[str, ...] = BACKFILL_ENTITIES
    restart: bool = False
    """Start a new job even though an unfinished one's checkpoint exists (its arguments may differ)."""
    page_size: int = MAX_RESULTS
    chunk_size: int = CHUNK_SIZE
    overlap: int = 20
    """Rows of the previous page read again (and skipped by id) at the start of each page."""
    retries: int = 5
    """How many times a chunk's retryable failures are synced again before they count as failed
    (with the default backoff about a minute: long enough for a killed run's in-progress claims, which
    last :attr:`chunk_budget_ms`, to expire)."""
    backoff_seconds: float = 2.0
    """The first retry's delay; doubled each time (a Retry-After the outcome names wins if longer)."""
    max_backoff_seconds: float = 60.0
    chunk_budget_ms: int = 60_000
    """The time the deal sync is told one chunk has (its in-progress claims expire after it, so a
    killed run's chunk is claimable again by the next run; it also bounds isolating a failing record)."""

    def checked(self) -> BackfillOptions:
        unknown = [e for e in self.entities if e not in BACKFILL_ENTITIES]
        if unknown or not self.entities:
            raise BackfillError(
                f"--entities names {', '.join(unknown) or 'nothing'}; the backfill reads "
                + ", ".join(BACKFILL_ENTITIES)
            )
        if self.since is not None:
            parse_since(self.since)
        if not 1 <= self.page_size <= MAX_RESULTS or not 0 <= self.overlap < self.page_size:
            raise BackfillError(f"page size {self.page_size} / overlap {self.overlap} out of range")
        if not 1 <= self.chunk_size <= CHUNK_SIZE:
            raise BackfillError(f"chunk size {self.chunk_size} is not 1..{CHUNK_SIZE}")
        # Always read in the backfill's order, whatever order they were named in.
        ordered = tuple(e for e in BACKFILL_ENTITIES if e in self.entities)
        return replace(self, entities=ordered)


def parse_since(text: str) -> datetime | date:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BackfillError(f"--since {text!r} is not an ISO date (2024-01-31) or date-time") from None
    if moment.tzinfo is None:
        raise BackfillError(f"--since {text!r} has no UTC offset (add Z or +hh:mm)")
    return moment


def statement(entity: str, since: str | None, *, count: bool = False) -> str:
    """The query of one entity's rows for the job (``since`` validated by :func:`parse_since`)."""
    what = "count(*)" if count else "*"
    where = ""
    if since is not None:
        literal = parse_since(since).isoformat()
        where = f" where MetaData.LastUpdatedTime >= '{literal}'"
    order = "" if count else " ORDERBY MetaData.CreateTime"
    return f"select {what} from {entity}{where}{order}"  # noqa: S608 - entity and since are validated


ProgressHook = Callable[[Checkpoint], None]


class Backfill:
    """One connection's backfill job: :meth:`run` continues (or starts) it until it is finished or
    ``should_stop`` says to pause (the checkpoint then holds where to continue)."""

    def __init__(
        self,
        *,
        connection: str,
        realm_id: str,
        qbo: PageReader,
        sync: Sync,
        store: CheckpointStore,
        options: BackfillOptions | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: ProgressHook | None = None,
        should_stop: Callable[[], bool] | None = None,
        remaining_ms: Callable[[], int] | None = None,
    ) -> None:
        self.connection = connection
        self.realm_id = realm_id
        self.qbo = qbo
        self.sync_service = sync
        self.store = store
        self.options = (options or BackfillOptions()).checked()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.sleep = sleep
        self.progress = progress
        self.should_stop = should_stop or (lambda: False)
        # The invocation's time left (a Lambda), bounding what each chunk is told it has.
        self.remaining_ms = remaining_ms

    # ---- the job

    def begin(self) -> Checkpoint:
        """The checkpoint to continue: the stored unfinished job with these arguments, or a new job
        (none stored, the stored one finished, or ``restart``). Raises :class:`BackfillError` when an
        unfinished job has other arguments."""
        options = self.options
        stored = self.store.get(self.connection)
        if stored is not None and not stored.finished and not options.restart:
            if not stored.same_arguments(options.since, options.entities):
                raise BackfillError(
                    f"an unfinished backfill of {self.connection} (job {stored.job_id}, since "
                    f"{stored.since or 'the beginning'}, entities {','.join(stored.entities)}) has other "
                    "arguments: run it with those to continue it, or pass --restart to start over"
                )
            return stored
        now = self._now()
        fresh = Checkpoint(
            connection=self.connection,
            job_id=uuid.uuid4().hex[:12],
            since=options.since,
            entities=options.entities,
            entity=options.entities[0],
            started_at=now,
            updated_at=now,
            revision=stored.revision if stored is not None else 0,
        )
        saved = self.store.save(fresh)
        logger.info(
            "backfill started",
            extra={
                "connection": self.connection,
                "job_id": saved.job_id,
                "since": saved.since,
                "entities": ",".join(saved.entities),
                "replaces": stored.job_id if stored is not None else None,
            },
        )
        return saved

    def run(self, checkpoint: Checkpoint | None = None) -> Checkpoint:
        """Pages until the job is finished or ``should_stop()``; returns the last saved checkpoint."""
        current = checkpoint if checkpoint is not None else self.begin()
        while not current.finished:
            if self.should_stop():
                logger.info("backfill paused", extra=self._fields(current))
                return current
            current = self.run_page(current)
            if self.progress is not None:
                self.progress(current)
        return current

    def run_page(self, checkpoint: Checkpoint) -> Checkpoint:
        """Read and settle one page of the current entity, then save the checkpoint (conditionally)."""
        state = checkpoint.copy()
        entity = state.entity
        counts = state.counts_for(entity)
        query = statement(entity, state.since)
        if counts.total is None:
            counts.total = self.qbo.count(self.realm_id, statement(entity, state.since, count=True))
        start = max(0, state.position - self.options.overlap)
        rows = self.qbo.query_page(self.realm_id, query, start + 1, self.options.page_size)
        recent = set(state.recent_ids)
        fresh = [(start + index, row) for index, row in enumerate(rows) if str(row.get("Id")) not in recent]
        for begin in range(0, len(fresh), self.options.chunk_size):
            self._settle(state, entity, fresh[begin : begin + self.options.chunk_size])
        state.position = start + len(rows)
        keep = self.options.overlap
        state.recent_ids = tuple(str(row.get("Id")) for row in rows[len(rows) - keep :]) if keep else ()
        if len(rows) < self.options.page_size:
            later = state.entities.index(entity) + 1
            if later < len(state.entities):
                state.entity = state.entities[later]
                state.position = 0
                state.recent_ids = ()
            else:
                state.finished_at = self._now()
        state.updated_at = self._now()
        saved = self.store.save(state)
        logger.info(
            "backfill page settled",
            extra={**self._fields(saved), "page_entity": entity, "rows": len(rows), "new": len(fresh)},
        )
        return saved

    # ---- one chunk

    def _settle(self, state: Checkpoint, entity: str, rows: list[tuple[int, dict[str, Any]]]) -> None:
        events = [self._event(state.job_id, entity, offset, row) for offset, row in rows]
        counts = state.counts_for(entity)
        counts.seen += len(events)
        pending = events
        outcomes: dict[str, Outcome] = {}
        for attempt in range(self.options.retries + 1):
            answered = self.sync_service.sync(pending, remaining_ms=self._budget_ms())
            outcomes.update(answered)
            retry = [e for e in pending if _retryable(answered.get(e.message_id))]
            if not retry or attempt == self.options.retries:
                break
            delay = min(self.options.max_backoff_seconds, self.options.backoff_seconds * 2**attempt)
            after = max((answered[e.message_id].retry_after or 0.0) for e in retry)
            logger.warning(
                "backfill chunk has retryable failures; syncing them again",
                extra={**self._fields(state), "failed": len(retry), "attempt": attempt + 1, "delay": delay},
            )
            self.sleep(min(self.options.max_backoff_seconds, max(delay, after)))
            pending = retry
        for event in events:
            _count(counts, outcomes.get(event.message_id))
            outcome = outcomes.get(event.message_id)
            if outcome is not None and not outcome.ok and len(state.failures) < MAX_LISTED_FAILURES:
                state.failures.append(
                    FailedDocument(entity, event.entity_id, outcome.reason or "", outcome.retryable)
                )

    def _event(self, job_id: str, entity: str, offset: int, row: dict[str, Any]) -> ChangeEvent:
        change = row_change(self.realm_id, entity, row, "backfill")
        updated = datetime.fromisoformat(change.last_updated[:23].rstrip("Z") + "+00:00")
        return ChangeEvent(
            message_id=f"backfill:{job_id}:{entity}:{offset}",
            receive_count=1,
            event_id=change.change_id,
            correlation_id=change.change_id,
            realm_id=self.realm_id,
            entity=entity,
            entity_id=change.entity_id,
            operation=change.operation,
            last_updated_ms=epoch_ms(updated),
            connection=self.connection,
        )

    def _budget_ms(self) -> int:
        budget = self.options.chunk_budget_ms
        left = self.remaining_ms() if self.remaining_ms is not None else None
        return budget if left is None else max(0, min(budget, left))

    def _now(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), UTC).isoformat(timespec="seconds")

    def _fields(self, checkpoint: Checkpoint) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "job_id": checkpoint.job_id,
            "entity": checkpoint.entity,
            "position": checkpoint.position,
            "finished": checkpoint.finished,
        }


def _retryable(outcome: Outcome | None) -> bool:
    return outcome is not None and not outcome.ok and outcome.retryable


def _count(counts: EntityCounts, outcome: Outcome | None) -> None:
    if outcome is None or outcome.status is OutcomeStatus.FAILED:
        counts.failed += 1
    elif outcome.status is OutcomeStatus.SYNCED:
        counts.written += 1
    elif outcome.status in (OutcomeStatus.STALE, OutcomeStatus.DUPLICATE):
        counts.already_synced += 1
    else:
        counts.unchanged += 1
