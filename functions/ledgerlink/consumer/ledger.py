"""One idempotency record per event, for a sync that works on a whole batch of events at once.

:func:`ledgerlink.idempotency.run_once` wraps one call per key; a queue-fed flow (the deal sync today)
instead claims every event of an SQS batch first, does the batched vendor work, then completes or
releases each claim. It uses the same Powertools persistence layer on the same table, with the same
record keys (``<namespace>#<md5 of the event id>``, e.g. ``hubspot-deal-sync#...``, TTL
``Settings.idempotency_ttl_seconds``), so a record written here is the record
``run_once(namespace, event_id, ...)`` would find. Each flow claims under its own namespace, so two flows
consuming the same event each process it once:

- :meth:`EventLedger.claim` writes an INPROGRESS record (a conditional put) and says whether the event
  is new, already COMPLETED (a duplicate delivery: nothing to do) or IN_PROGRESS elsewhere (retry later).
  An in-progress record expires with the invocation that wrote it (``remaining_ms``), so a timed-out
  Lambda never blocks its retry;
- :meth:`complete` stores the outcome (COMPLETED) and :meth:`release` deletes the claim of an event that
  failed, so its retry runs again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import (
    STATUS_CONSTANTS,
    BasePersistenceLayer,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from ledgerlink.idempotency import idempotency_config, idempotency_persistence

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

# DynamoDB calls of one batch run side by side; a handful of threads hides their latency.
PARALLEL_CALLS: Final = 8


class Claim(StrEnum):
    NEW = "new"
    COMPLETED = "completed"  # processed before: a duplicate delivery
    IN_PROGRESS = "in_progress"  # another invocation is processing it now


class EventLedger:
    """Claims, completes and releases idempotency records for events (see the module docstring)."""

    def __init__(
        self,
        table_name: str,
        ttl_seconds: int,
        *,
        namespace: str,
        dynamodb_client: DynamoDBClient | None = None,
        persistence: BasePersistenceLayer | None = None,
    ) -> None:
        config = idempotency_config(ttl_seconds)
        self._persistence = persistence or idempotency_persistence(table_name, dynamodb_client)
        # Configured once with this namespace, never shared with run_once's persistence objects,
        # whose key prefix changes per call.
        self._persistence.configure(config, key_prefix=namespace)

    def claim_all(self, event_ids: list[str], remaining_ms: int | None) -> dict[str, Claim]:
        with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
            claims = list(pool.map(lambda event_id: self.claim(event_id, remaining_ms), event_ids))
        return dict(zip(event_ids, claims, strict=True))

    def claim(self, event_id: str, remaining_ms: int | None) -> Claim:
        try:
            self._persistence.save_inprogress(data=event_id, remaining_time_in_millis=remaining_ms)  # type: ignore[arg-type]
        except IdempotencyItemAlreadyExistsError as existing:
            record = existing.old_data_record
            if record is None:
                try:
                    record = self._persistence.get_record(data=event_id)  # type: ignore[arg-type]
                except IdempotencyItemNotFoundError:
                    return Claim.IN_PROGRESS  # deleted between the two calls: let SQS retry
            if record is not None and record.status == STATUS_CONSTANTS["COMPLETED"]:
                return Claim.COMPLETED
            return Claim.IN_PROGRESS
        return Claim.NEW

    def complete_all(self, outcomes: Mapping[str, Mapping[str, Any]]) -> None:
        def complete(item: tuple[str, Mapping[str, Any]]) -> None:
            # Powertools types ``data`` as a dict; the key is the event id string (as run_once passes it).
            self._persistence.save_success(data=item[0], result=dict(item[1]))  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
            list(pool.map(complete, outcomes.items()))

    def release_all(self, event_ids: list[str]) -> None:
        def release(event_id: str) -> None:
            self._persistence.delete_record(data=event_id, exception=RuntimeError("sync failed"))  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=PARALLEL_CALLS) as pool:
            list(pool.map(release, event_ids))


class InMemoryPersistence(BasePersistenceLayer):
    """Powertools' persistence layer on a dict, with the DynamoDB layer's put condition (absent, expired,
    or in progress past its invocation's expiry), for an :class:`EventLedger` in tests and benchmarks.
    One instance is one table: ledgers given the same instance share their records, as Lambdas share
    the idempotency table."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            found = self.records.get(idempotency_key)
        if found is None:
            raise IdempotencyItemNotFoundError
        return found

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        with self._lock:
            old = self.records.get(data_record.idempotency_key)
            if old is not None and not _replaceable(old, now):
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self.records.pop(data_record.idempotency_key, None)


def _replaceable(record: DataRecord, now: float) -> bool:
    if record.expiry_timestamp is not None and record.expiry_timestamp < int(now):
        return True
    return (
        record.status == STATUS_CONSTANTS["INPROGRESS"]
        and record.in_progress_expiry_timestamp is not None
        and record.in_progress_expiry_timestamp < int(now * 1000)
    )
