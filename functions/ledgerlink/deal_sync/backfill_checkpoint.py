"""The backfill's checkpoint: one per connection in the vendor-state table (pk ``backfill#<connection>``,
sk ``checkpoint``).

It holds everything a run needs to continue where the last one stopped: the job id, the job's
arguments (``since``, ``entities``), the entity being read, the position in its query, the ids of the
last rows settled (the page overlap, docs/backfill.md#how), the counts so far, and the start, update
and finish times. It is saved after each page is settled, with a conditional write on its
``revision``: two workers holding the same revision cannot both advance it; the second gets
:class:`CheckpointConflict` and stops.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class CheckpointConflict(RuntimeError):
    """Another worker advanced (or restarted) the checkpoint since this one read it."""


@dataclass
class EntityCounts:
    seen: int = 0
    written: int = 0
    """Synced: HubSpot now shows the document (created or updated)."""
    already_synced: int = 0
    """Stale or duplicate: HubSpot already showed this version (a second run, live traffic first)."""
    unchanged: int = 0
    """Nothing to write (e.g. a document never synced and gone)."""
    failed: int = 0
    total: int | None = None
    """QBO's count(*) for the job's filter when the entity was started (for the ETA)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "written": self.written,
            "already_synced": self.already_synced,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "total": self.total,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EntityCounts:
        total = data.get("total")
        return cls(
            seen=int(data.get("seen", 0)),
            written=int(data.get("written", 0)),
            already_synced=int(data.get("already_synced", 0)),
            unchanged=int(data.get("unchanged", 0)),
            failed=int(data.get("failed", 0)),
            total=int(total) if total is not None else None,
        )


@dataclass(frozen=True)
class FailedDocument:
    entity: str
    entity_id: str
    reason: str
    retryable: bool


@dataclass
class Checkpoint:
    connection: str
    job_id: str
    since: str | None
    """The ``--since`` of the job (ISO date or date-time, as given), or None for all history."""
    entities: tuple[str, ...]
    entity: str
    """The entity being read (the first of ``entities`` at the start; the last one when finished)."""
    position: int = 0
    """Rows of ``entity``'s query settled so far (0-based offset of the next row to read)."""
    recent_ids: tuple[str, ...] = ()
    """Ids of the last rows settled: the next page re-reads that overlap and skips them."""
    counts: dict[str, EntityCounts] = field(default_factory=dict)
    failures: list[FailedDocument] = field(default_factory=list)
    """Documents that failed (the first :data:`MAX_LISTED_FAILURES`); all are also in the links table."""
    started_at: str = ""
    updated_at: str = ""
    finished_at: str | None = None
    revision: int = 0
    """Bumped by every save; a save is conditional on the revision read."""

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    def same_arguments(self, since: str | None, entities: tuple[str, ...]) -> bool:
        return self.since == since and tuple(self.entities) == tuple(entities)

    def counts_for(self, entity: str) -> EntityCounts:
        return self.counts.setdefault(entity, EntityCounts())

    def as_json(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "job_id": self.job_id,
            "since": self.since,
            "entities": list(self.entities),
            "entity": self.entity,
            "position": self.position,
            "recent_ids": list(self.recent_ids),
            "counts": {name: counts.as_json() for name, counts in self.counts.items()},
            "failures": [
                {"entity": f.entity, "entity_id": f.entity_id, "reason": f.reason, "retryable": f.retryable}
                for f in self.failures
            ],
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], revision: int) -> Checkpoint:
        return cls(
            connection=str(data["connection"]),
            job_id=str(data["job_id"]),
            since=data.get("since"),
            entities=tuple(str(e) for e in data.get("entities", ())),
            entity=str(data["entity"]),
            position=int(data.get("position", 0)),
            recent_ids=tuple(str(i) for i in data.get("recent_ids", ())),
            counts={name: EntityCounts.from_json(c) for name, c in (data.get("counts") or {}).items()},
            failures=[
                FailedDocument(str(f["entity"]), str(f["entity_id"]), str(f["reason"]), bool(f["retryable"]))
                for f in data.get("failures", ())
            ],
            started_at=str(data.get("started_at", "")),
            updated_at=str(data.get("updated_at", "")),
            finished_at=data.get("finished_at"),
            revision=revision,
        )

    def copy(self) -> Checkpoint:
        return Checkpoint.from_json(self.as_json(), self.revision)


MAX_LISTED_FAILURES = 100


class CheckpointStore(Protocol):
    def get(self, connection: str) -> Checkpoint | None: ...

    def save(self, checkpoint: Checkpoint) -> Checkpoint:
        """Store ``checkpoint`` if the stored one still has its revision (or none is stored when its
        revision is 0); returns it with the new revision. Raises :class:`CheckpointConflict`."""
        ...


class DynamoDBCheckpointStore:
    """The checkpoint in the vendor-state table: the state as JSON, its revision as a number."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self._client = client

    @staticmethod
    def key(connection: str) -> dict[str, Any]:
        return {"pk": {"S": f"backfill#{connection}"}, "sk": {"S": "checkpoint"}}

    def get(self, connection: str) -> Checkpoint | None:
        item = self._client.get_item(
            TableName=self.table_name, Key=self.key(connection), ConsistentRead=True
        ).get("Item")
        if not item or "state" not in item:
            return None
        return Checkpoint.from_json(json.loads(item["state"]["S"]), int(item["revision"]["N"]))

    def save(self, checkpoint: Checkpoint) -> Checkpoint:
        saved = replace(checkpoint, revision=checkpoint.revision + 1)
        condition = "attribute_not_exists(pk)" if checkpoint.revision == 0 else "revision = :expected"
        values: dict[str, Any] = {
            ":state": {"S": json.dumps(saved.as_json(), sort_keys=True)},
            ":revision": {"N": str(saved.revision)},
            ":job": {"S": saved.job_id},
        }
        if checkpoint.revision != 0:
            values[":expected"] = {"N": str(checkpoint.revision)}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self.key(checkpoint.connection),
                UpdateExpression="SET #state = :state, revision = :revision, job_id = :job",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise CheckpointConflict(
                    f"the backfill checkpoint of {checkpoint.connection} moved on since revision "
                    f"{checkpoint.revision} (another worker runs it, or it was restarted)"
                ) from None
            raise
        return saved


class MemoryCheckpointStore:
    """In-memory :class:`CheckpointStore` for tests."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[dict[str, Any], int]] = {}

    def get(self, connection: str) -> Checkpoint | None:
        found = self.items.get(connection)
        return Checkpoint.from_json(found[0], found[1]) if found else None

    def save(self, checkpoint: Checkpoint) -> Checkpoint:
        current = self.items.get(checkpoint.connection)
        current_revision = current[1] if current else 0
        if current_revision != checkpoint.revision:
            raise CheckpointConflict(
                f"the backfill checkpoint of {checkpoint.connection} is at revision {current_revision}, "
                f"not {checkpoint.revision}"
            )
        saved = replace(checkpoint, revision=checkpoint.revision + 1)
        self.items[checkpoint.connection] = (json.loads(json.dumps(saved.as_json())), saved.revision)
        return saved
