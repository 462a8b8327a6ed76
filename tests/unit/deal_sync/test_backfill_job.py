"""The backfill job's messages: a start runs the job, a run short of time re-enqueues a continuation
naming the checkpoint it saved, and a continuation the checkpoint has moved past is dropped."""

from __future__ import annotations

from collections.abc import Callable

from ledgerlink.deal_sync.backfill import Backfill, BackfillOptions
from ledgerlink.deal_sync.backfill_checkpoint import MemoryCheckpointStore
from ledgerlink.deal_sync.backfill_job import JobMessage, JobStatus, run_job_message
from tests.unit.deal_sync.test_backfill_checkpoint import FakeQbo, FakeSync, row


class Queue:
    def __init__(self) -> None:
        self.sent: list[JobMessage] = []

    def send(self, message: JobMessage) -> None:
        self.sent.append(message)


def builder(
    store: MemoryCheckpointStore, sync: FakeSync
) -> Callable[[str, BackfillOptions, Callable[[], bool]], Backfill]:
    qbo = FakeQbo({"Invoice": [row(str(n)) for n in range(1, 6)]})

    def build(connection: str, options: BackfillOptions, should_stop: Callable[[], bool]) -> Backfill:
        paged = BackfillOptions(
            since=options.since, entities=options.entities, restart=options.restart, page_size=2, overlap=0
        )
        return Backfill(
            connection=connection,
            realm_id="123",
            qbo=qbo,
            sync=sync,
            store=store,
            options=paged,
            should_stop=should_stop,
        )

    return build


def test_a_job_short_of_time_continues_itself_until_it_finishes_and_stale_continuations_are_dropped() -> None:
    store, sync, queue = MemoryCheckpointStore(), FakeSync(), Queue()
    build = builder(store, sync)

    # each invocation has time for one page: the stop check answers "time left" once, then "stop"
    def invocation(message: JobMessage) -> JobStatus:
        answers = iter([1000, 0])
        return run_job_message(
            message,
            build=build,
            store=store,
            queue=queue,
            remaining_ms=lambda: next(answers, 0),
            reserve_ms=500,
        ).status

    statuses = [invocation(JobMessage("demo", entities=("Invoice",)))]
    while queue.sent and len(statuses) < 10:
        statuses.append(invocation(queue.sent[-1]))
        if statuses[-1] is JobStatus.FINISHED:
            break
    # then it took several invocations, continuing itself, and synced every invoice once
    assert statuses[-1] is JobStatus.FINISHED and set(statuses[:-1]) == {JobStatus.CONTINUED}
    assert sorted(e.entity_id for batch in sync.batches for e in batch) == ["1", "2", "3", "4", "5"]
    # and an old continuation delivered again is dropped without syncing anything
    batches = len(sync.batches)
    assert invocation(queue.sent[0]) is JobStatus.DROPPED
    assert len(sync.batches) == batches


def test_a_message_round_trips_as_json() -> None:
    start = JobMessage("demo", since="2024-01-01", entities=("Invoice",), restart=True)
    assert JobMessage.from_json(start.to_json()) == start
    continuation = JobMessage("demo", job_id="abc", revision=4)
    assert JobMessage.from_json(continuation.to_json()) == continuation
