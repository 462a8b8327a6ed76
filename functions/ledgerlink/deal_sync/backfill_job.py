"""The backfill as a job in AWS, for companies too large for one Lambda invocation: a worker that
re-enqueues itself.

A :class:`JobMessage` on the ``backfill-jobs`` queue says which connection's job to run: a **start**
(``ledgerlink backfill --in-aws``: the job's arguments, no job id) or a **continuation** (the job id and
the checkpoint revision it continues from). :func:`run_job_message` runs pages until the invocation's
remaining time drops below the reserve, then sends a continuation naming the checkpoint it saved.
The checkpoint holds all the state, so a continuation that no longer matches it (the job restarted
or finished, another worker moved it on: a duplicate delivery) is dropped.

Why not Step Functions: the checkpoint already holds every bit of state a state machine would, and
the loop is "run pages, send a message": no extra service, IAM role or state machine definition, and
the very code path the command runs (docs/backfill.md#the-job-in-aws).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ledgerlink.deal_sync.backfill import BACKFILL_ENTITIES, Backfill, BackfillOptions
from ledgerlink.deal_sync.backfill_checkpoint import Checkpoint, CheckpointConflict, CheckpointStore
from ledgerlink.observability import Service, get_logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

logger = get_logger(Service.QBO_BACKFILL)


@dataclass(frozen=True)
class JobMessage:
    connection: str
    job_id: str | None = None
    """None: a start; otherwise the job this continues."""
    revision: int | None = None
    """The checkpoint revision a continuation continues from."""
    since: str | None = None
    entities: tuple[str, ...] = BACKFILL_ENTITIES
    restart: bool = False

    @property
    def is_start(self) -> bool:
        return self.job_id is None

    def to_json(self) -> str:
        body: dict[str, Any] = {"connection": self.connection}
        if self.is_start:
            body.update({"since": self.since, "entities": list(self.entities), "restart": self.restart})
        else:
            body.update({"job_id": self.job_id, "revision": self.revision})
        return json.dumps(body, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> JobMessage:
        body = json.loads(text)
        if not isinstance(body, Mapping) or not isinstance(body.get("connection"), str):
            raise ValueError("a backfill job message names its connection")
        revision = body.get("revision")
        return cls(
            connection=body["connection"],
            job_id=str(body["job_id"]) if body.get("job_id") else None,
            revision=int(revision) if revision is not None else None,
            since=body.get("since"),
            entities=tuple(body.get("entities") or BACKFILL_ENTITIES),
            restart=bool(body.get("restart", False)),
        )


class JobQueue(Protocol):
    def send(self, message: JobMessage) -> None: ...


class SqsJobQueue:
    """The ``backfill-jobs`` queue by name (its URL looked up once)."""

    def __init__(self, sqs: SQSClient, queue_name: str) -> None:
        self._sqs = sqs
        self.queue_name = queue_name
        self._url: str | None = None

    def send(self, message: JobMessage) -> None:
        if self._url is None:
            self._url = self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        self._sqs.send_message(QueueUrl=self._url, MessageBody=message.to_json())


class JobStatus(StrEnum):
    FINISHED = "finished"
    CONTINUED = "continued"  # paused for time; a continuation was sent
    DROPPED = "dropped"  # a stale or duplicate continuation, or another worker holds the job


@dataclass(frozen=True)
class JobResult:
    status: JobStatus
    checkpoint: Checkpoint | None
    reason: str = ""


BackfillBuilder = Callable[[str, BackfillOptions, Callable[[], bool]], Backfill]
"""(connection, options, should_stop) -> the connection's :class:`Backfill` (its clients built)."""


def run_job_message(
    message: JobMessage,
    *,
    build: BackfillBuilder,
    store: CheckpointStore,
    queue: JobQueue,
    remaining_ms: Callable[[], int],
    reserve_ms: int,
) -> JobResult:
    """Run ``message``'s job until it is finished or ``remaining_ms()`` drops below ``reserve_ms``."""
    fields: dict[str, Any] = {
        "connection": message.connection,
        "job_id": message.job_id,
        "revision": message.revision,
    }
    resume: Checkpoint | None = None
    if not message.is_start:
        stored = store.get(message.connection)
        if (
            stored is None
            or stored.job_id != message.job_id
            or stored.revision != message.revision
            or stored.finished
        ):
            reason = "the checkpoint moved on (restarted, finished, or continued by another message)"
            logger.info("backfill continuation dropped", extra={**fields, "reason": reason})
            return JobResult(JobStatus.DROPPED, stored, reason)
        resume = stored
        options = BackfillOptions(since=stored.since, entities=stored.entities)
    else:
        options = BackfillOptions(since=message.since, entities=message.entities, restart=message.restart)
    backfill = build(message.connection, options, lambda: remaining_ms() < reserve_ms)
    try:
        checkpoint = backfill.run(resume)
    except CheckpointConflict as error:
        logger.info("backfill job held by another worker", extra={**fields, "reason": str(error)})
        return JobResult(JobStatus.DROPPED, None, str(error))
    if checkpoint.finished:
        logger.info("backfill job finished", extra={**fields, "job_id": checkpoint.job_id})
        return JobResult(JobStatus.FINISHED, checkpoint)
    queue.send(JobMessage(message.connection, job_id=checkpoint.job_id, revision=checkpoint.revision))
    logger.info(
        "backfill job continues in a new invocation",
        extra={
            **fields,
            "job_id": checkpoint.job_id,
            "entity": checkpoint.entity,
            "position": checkpoint.position,
        },
    )
    return JobResult(JobStatus.CONTINUED, checkpoint)
