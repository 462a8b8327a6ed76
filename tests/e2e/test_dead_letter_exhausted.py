"""End to end on the local stack: a record whose failure is retryable is given back to SQS until the
queue's last allowed receive, where the deal sync dead-letters it itself as ``exhausted``, with the
reason (SQS's redrive, one receive later, would have moved it without one).

QBO answers 503 to every API read here (an outage injected in the QBO sandbox); the OAuth token
endpoint still works, so the failure is the outage itself, retryable every time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ledgerlink.config import EnvVar
from ledgerlink.consumer.deadletter import describe, peek
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import hop_steps, local_environment, queue_depth, wait_for


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    # Each receive retries QBO's 503s with backoff inside the HTTP layer before giving the record back,
    # which under a loaded CI machine can outlast a 1 s visibility timeout and cause an extra receive:
    # give this module a visibility timeout longer than one handler run.
    # Retries wait at least until QBO's circuit breaker lets its probe through: a 1 s cool-down (30 s
    # deployed) keeps the queue's nine receives within a minute.
    with local_environment(
        state_dir,
        visibility_timeout_seconds=4,
        function_variables={EnvVar.BREAKER_COOL_DOWN_SECONDS.value: "1"},
    ) as environment:
        yield environment


def test_a_record_that_keeps_failing_is_dead_lettered_on_its_last_receive_as_exhausted(
    environment, state_dir
):
    assert environment.stack.resources is not None
    queue = environment.stack.resources.queue("deal-sync")
    qbo = environment.description["qbo"]
    # given QBO down for API reads (every call under /v3/company/ answers 503)
    requests.post(
        f"{qbo['base_url']}/_admin/faults", json={"kind": "503", "path_prefix": "/v3/company/"}, timeout=10
    ).raise_for_status()

    # when a new invoice is created in QBO (its webhook reaches the stack)
    change = environment.sandboxes.sandbox("qbo").demo_activity_step(0)
    wait_for(
        lambda: queue_depth(environment, queue.dlq_url) == 1, "the message in the dead-letter queue", 120
    )

    # then it was offered maxReceiveCount times, given back each time but the last ...
    published = [
        json.loads(line)
        for line in (state_dir / "events.jsonl").read_text().splitlines()
        if '"published"' in line and f'"entity_id":"{change["id"]}"' in line
    ]
    correlation_id = published[0]["correlation_id"]

    # (the message reaches the dead-letter queue before its last invocation ends: wait for that
    # invocation's hop line and SQS's delete from the source queue)
    def steps_after_the_last_receive() -> list[tuple[str, str | None]] | None:
        found = hop_steps(state_dir, correlation_id)
        return found if [step for step, _ in found].count("handler") == queue.max_receive_count else None

    steps = wait_for(steps_after_the_last_receive, "the last handler outcome in the hop log")
    wait_for(lambda: queue_depth(environment, queue.url) == 0, "the source queue drained")
    assert [step for step, _ in steps].count("queue") == queue.max_receive_count
    handler = [outcome for step, outcome in steps if step == "handler"]
    assert handler == ["retry"] * (queue.max_receive_count - 1) + ["ok"]
    # ... where the function dead-lettered it itself (one dead-letter hop: SQS's redrive never had to)
    assert [outcome for step, outcome in steps if step == "dead-letter"] == ["dead-letter"]
    (letter,) = peek(environment.stack.client("sqs"), queue.dlq_url)
    view = describe(letter)
    assert (view.kind, view.receive_count, view.correlation_id) == (
        "exhausted",
        queue.max_receive_count,
        correlation_id,
    )
    assert "503" in view.reason or "circuit" in view.reason.lower(), view.reason
