"""End to end on the local stack: a record that cannot succeed is dead-lettered by the deal sync itself,
on its first receive, with its reason; ``ledgerlink local status`` and ``ledgerlink dlq replay --dry-run``
show the reason; ``ledgerlink dlq replay`` brings the message back without the failure attributes.

The deal sync cannot work here by construction: the stack stores a QBO OAuth secret whose client
secret the QBO sandbox does not know (the situation after a botched credential rotation), so QBO
refuses the app's credentials (``invalid_client``): a failure no retry can fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerlink import cli
from ledgerlink.consumer.deadletter import describe, peek
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
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
        "realm_id": DEMO_REALM_ID,
    }
)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    with local_environment(state_dir, secret_overrides={"demo:qbo-oauth": WRONG_OAUTH_SECRET}) as environment:
        yield environment


def _replay(environment: LocalEnvironment, queue: str, *flags: str) -> list[str]:
    return [
        "dlq",
        "replay",
        queue,
        "--endpoint-url",
        environment.stack.endpoint_url,
        "--region",
        "us-east-1",
        *flags,
    ]


def test_a_message_that_cannot_succeed_is_dead_lettered_with_its_reason_and_replayed_clean(
    environment, state_dir, capsys
):
    assert environment.stack.resources is not None
    queue = environment.stack.resources.queue("deal-sync")
    sqs = environment.stack.client("sqs")
    body = recorded_delivery(DELIVERY)
    correlation_id = json.loads(body)[0]["id"]
    token = environment.description["qbo"]["verifier_token"]

    # given a change announced by a signed webhook, which the deal sync cannot process
    assert post_webhook(environment, body, sign(token, body)).status_code == 200

    # when the deal sync has had it
    wait_for(
        lambda: queue_depth(environment, queue.dlq_url) == 1, "the message in the dead-letter queue", 120
    )

    # then the function dead-lettered it itself on its first receive (no five receives, an hour apart
    # in the cloud), and the message says why. The message reaches the dead-letter queue before the
    # invocation ends: wait for SQS's delete from the source queue and the handler's hop line too.
    wait_for(lambda: queue_depth(environment, queue.url) == 0, "the source queue drained")

    def steps_once_handled() -> list[tuple[str, str | None]] | None:
        found = hop_steps(state_dir, correlation_id)
        return found if ("handler", "ok") in found else None

    steps = wait_for(steps_once_handled, "the handler's outcome in the hop log")
    assert [step for step, _ in steps].count("queue") == 1
    assert ("dead-letter", "dead-letter") in steps
    assert [outcome for step, outcome in steps if step == "handler"] == ["ok"]  # handled: SQS deletes it
    (letter,) = peek(sqs, queue.dlq_url)
    view = describe(letter)
    assert (view.kind, view.receive_count, view.source_queue) == ("permanent", 1, queue.name)
    assert "invalid_client" in view.reason
    assert view.correlation_id == correlation_id and view.subject.startswith("Invoice/")

    # and `ledgerlink local status` shows it with its reason, and the failure on record
    capsys.readouterr()
    assert cli.main(["local", "status", "--state-dir", str(state_dir)]) == 0
    status = capsys.readouterr().out
    assert "Dead-lettered messages (1;" in status
    # (the table cuts the reason at 100 characters; the whole one is in the message attributes)
    assert queue.dlq_name in status and "QBO refused the client id/secret" in status
    assert "Failures on record (links table, newest first: 1)" in status
    assert "dead-lettered" in status  # the event's outcome in the recent events

    # when an operator first asks what a replay would move
    assert cli.main(_replay(environment, queue.dlq_name, "--dry-run")) == 0

    # then the message is listed with its reason, and stays where it is
    listing = capsys.readouterr().out
    assert f"would move 1 message from {queue.dlq_name} to {queue.name}" in listing
    assert "invalid_client" in listing and correlation_id in listing
    assert queue_depth(environment, queue.dlq_url) == 1

    # when the dead-letter queue is replayed (the poller paused, to see what arrives on the queue)
    for poller in environment.stack.pollers:
        poller.stop()
    code = cli.main(_replay(environment, queue.dlq_name))

    # then the message is back on its queue as it was before it failed: same body, no failure attributes
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"{queue.dlq_name}: about 1 message waiting; moving at most 1" in printed.out
    assert f"replayed {queue.dlq_name} to {queue.name}: moved 1, skipped 0, failed 0" in printed.out
    assert queue_depth(environment, queue.dlq_url) == 0
    (back,) = peek(sqs, queue.url)
    assert back["Body"] == letter["Body"]
    assert not any(name.startswith("ledgerlink.") for name in back.get("MessageAttributes", {}))

    # and, offered to the function afresh and still failing, it is dead-lettered again with its reason
    for poller in environment.stack.pollers:
        poller.start()
    wait_for(lambda: queue_depth(environment, queue.dlq_url) == 1, "the replayed message dead-lettered again")
    wait_for(
        lambda: [step for step, _ in hop_steps(state_dir, correlation_id)].count("handler") == 2,
        "the second handler outcome in the hop log",
    )
    assert [step for step, _ in hop_steps(state_dir, correlation_id)].count("queue") == 2
    (again,) = peek(sqs, queue.dlq_url)
    assert describe(again).kind == "permanent" and "invalid_client" in describe(again).reason
