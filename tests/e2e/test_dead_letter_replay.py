"""End to end on the local stack: a consumer that keeps failing a message sends it to the dead-letter
queue after maxReceiveCount, and ``ledgerlink dlq replay`` brings it back to its queue.

The deal sync cannot work here by construction: the stack stores a QBO OAuth secret whose client
secret the QBO sandbox does not know (the situation after a botched credential rotation), so every
attempt to re-read the changed invoice fails and the poller leaves the message for another try.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerlink import cli
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import (
    hop_steps,
    local_environment,
    post_webhook,
    queue_depth,
    recorded_delivery,
    sign,
    wait_for,
)

DELIVERY = "cloudevents_invoice_created.json"
WRONG_OAUTH_SECRET = json.dumps(
    {
        "client_id": "not-a-client-the-sandbox-knows",
        "client_secret": "wrong",
        "refresh_token": "wrong",
        "realm_id": "9341455130122367",
    }
)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    with local_environment(state_dir, secret_overrides={"qbo-oauth": WRONG_OAUTH_SECRET}) as environment:
        yield environment


def test_a_message_that_keeps_failing_is_dead_lettered_then_replay_brings_it_back(
    environment, state_dir, capsys
):
    assert environment.stack.resources is not None
    queue = environment.stack.resources.queue("deal-sync")
    body = recorded_delivery(DELIVERY)
    correlation_id = json.loads(body)[0]["id"]
    token = environment.description["qbo"]["verifier_token"]

    # given a change announced by a signed webhook, which the deal sync cannot process
    assert post_webhook(environment, body, sign(token, body)).status_code == 200

    # when the poller has offered it maxReceiveCount times
    wait_for(
        lambda: queue_depth(environment, queue.dlq_url) == 1, "the message in the dead-letter queue", 120
    )

    # then SQS moved it to the dead-letter queue, after exactly maxReceiveCount failed attempts
    assert queue_depth(environment, queue.url) == 0
    steps = hop_steps(state_dir, correlation_id)
    assert [step for step, _ in steps].count("queue") == queue.max_receive_count
    handler_outcomes = [outcome for step, outcome in steps if step == "handler"]
    assert len(handler_outcomes) == queue.max_receive_count
    assert all(outcome in ("failed", "retry") for outcome in handler_outcomes)
    assert ("dead-letter", "dead-letter") in steps

    # when the dead-letter queue is replayed with the CLI, as an operator would type it
    capsys.readouterr()
    code = cli.main(
        [
            "dlq",
            "replay",
            queue.dlq_name,
            "--endpoint-url",
            environment.stack.endpoint_url,
            "--region",
            "us-east-1",
        ]
    )

    # then the message is back on its queue and offered to the function afresh
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"moved 1 message from {queue.dlq_name} to {queue.name}; 0 failed" in printed.out
    assert queue_depth(environment, queue.dlq_url) == 0
    wait_for(
        lambda: (
            [step for step, _ in hop_steps(state_dir, correlation_id)].count("queue")
            > queue.max_receive_count
        ),
        "the replayed message received again",
    )
