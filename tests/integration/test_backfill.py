"""The historical backfill on moto and the QBO/HubSpot sandboxes, driving the real deal sync: the demo
company's documents end up in HubSpot once each, a second run, live traffic next to it and a resumed
run write nothing twice, and ``--since``/``--entities`` filter what it reads."""

from __future__ import annotations

import argparse
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from ledgerlink.configfile import load as load_config
from ledgerlink.deal_sync.backfill import Backfill, BackfillError, BackfillOptions
from ledgerlink.deal_sync.backfill_checkpoint import Checkpoint, DynamoDBCheckpointStore
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import CONFIG_FILE, CONNECTION, REGION, DealSyncWorld

world = support.world  # the fixture

# Small pages so the demo company takes several, with an overlap, as a large company would.
PAGES = {"page_size": 3, "overlap": 1}


def backfill(
    world: DealSyncWorld, progress: Callable[[Checkpoint], None] | None = None, **options: Any
) -> Backfill:
    return Backfill(
        connection=CONNECTION,
        realm_id=DEMO_REALM_ID,
        qbo=world.parts.qbo,
        sync=world.parts.service,
        store=DynamoDBCheckpointStore(world.settings.vendor_state_table_name, world.aws["dynamodb"]),
        options=BackfillOptions(**{**PAGES, **options}),
        sleep=lambda seconds: None,
        progress=progress,
    )


def documents(world: DealSyncWorld, entity: str) -> set[str]:
    company = world.qbo.sandbox.companies[DEMO_REALM_ID]  # type: ignore[attr-defined]
    with world.qbo.sandbox.lock:
        return {str(each["Id"]) for each in company.objects.get(entity, {}).values()}


def deal_keys(world: DealSyncWorld) -> list[str]:
    """``Invoice:<qbo_invoice_id>`` / ``Estimate:<qbo_estimate_id>`` of every deal in the portal,
    archived or not (duplicates kept)."""
    keys = []
    for deal in world.hubspot_state()["objects"]["deals"]:
        props = deal["properties"]
        if props.get("qbo_invoice_id"):
            keys.append(f"Invoice:{props['qbo_invoice_id']}")
        elif props.get("qbo_estimate_id"):
            keys.append(f"Estimate:{props['qbo_estimate_id']}")
    return keys


def hubspot_writes(world: DealSyncWorld) -> list[str]:
    return [
        f"{entry['method']} {entry['path']}"
        for entry in world.requests_to(world.hubspot)
        if entry["method"] in ("POST", "PATCH", "PUT", "DELETE") and "/search" not in entry["path"]
    ]


def assert_each_document_has_one_deal(
    world: DealSyncWorld, entities: tuple[str, ...] = ("Invoice", "Estimate")
) -> None:
    keys = deal_keys(world)
    assert [key for key, n in Counter(keys).items() if n > 1] == []
    for entity in entities:
        ids = {key.rsplit(":", 1)[-1] for key in keys if key.startswith(entity + ":")}
        assert documents(world, entity) <= ids, entity
    # every deal carries its line items, once each
    lines = world.objects("line_items")
    by_line = Counter(props.get("qbo_line_id") for props in lines.values())
    assert [line for line, n in by_line.items() if n > 1] == []
    for deal in world.deals().values():
        assert world.associated("deals", deal["id"], "line_items"), deal["properties"]


def pointed_at_the_test_world(world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The command module, finding "AWS" (moto here) and the test world's settings."""
    from ledgerlink.cli import backfill as command
    from ledgerlink.cli.endpoints import Endpoint

    monkeypatch.setattr(
        command, "resolve_endpoint", lambda *args, **kwargs: Endpoint(None, REGION, "--aws", local=False)
    )
    monkeypatch.setattr(
        command,
        "function_settings",
        lambda endpoint, state_dir, key: (world.settings, load_config(CONFIG_FILE), "the test's settings"),
    )
    return command


class Interrupted(Exception):
    """The test's stand-in for a kill: raised from the progress hook after some pages."""


def test_a_backfill_makes_one_deal_per_document_with_line_items_companies_and_contacts(
    world: DealSyncWorld,
) -> None:
    # given the demo company in QBO (customers, estimates, invoices, payments) and nothing in HubSpot
    assert deal_keys(world) == []
    # when the backfill runs over every entity
    done = backfill(world).run()
    # then it finished, and every invoice and estimate has exactly one deal with its line items
    assert done.finished
    assert_each_document_has_one_deal(world)
    # and the customers are companies and contacts, associated with their deals
    assert world.objects("companies") and world.objects("contacts")
    for deal in world.deals().values():
        assert world.associated("deals", deal["id"], "companies")
    counts = done.counts
    assert counts["Invoice"].seen == counts["Invoice"].total == len(documents(world, "Invoice"))
    assert counts["Estimate"].seen == len(documents(world, "Estimate"))
    assert counts["Invoice"].written == counts["Invoice"].seen and counts["Invoice"].failed == 0
    assert list(counts) == ["Customer", "Estimate", "Invoice", "Payment"]
    qbo_calls, hubspot_calls = world.parts.qbo.calls, world.parts.hubspot.calls
    print(
        f"vendor calls for {counts['Invoice'].seen} invoices, {counts['Estimate'].seen} estimates, "
        f"{counts['Customer'].seen} customers, {counts['Payment'].seen} payments: "
        f"QBO {qbo_calls}, HubSpot {hubspot_calls}"
    )


def test_a_second_run_writes_nothing(world: DealSyncWorld) -> None:
    # given a finished backfill
    first = backfill(world).run()
    requests_cleared = world.hubspot_admin("DELETE", "requests")
    assert requests_cleared
    # when it runs again with the same arguments
    second = backfill(world).run()
    # then it is a new job that read every document again and wrote nothing to HubSpot
    assert second.finished and second.job_id != first.job_id
    assert hubspot_writes(world) == []
    for entity, counts in second.counts.items():
        assert counts.written == 0 and counts.failed == 0, entity
        assert counts.already_synced + counts.unchanged == counts.seen, entity
    assert_each_document_has_one_deal(world)


def test_a_backfill_next_to_live_events_for_the_same_documents_writes_nothing_twice(
    world: DealSyncWorld,
) -> None:
    # given every invoice synced by the live flow (its webhook events) first
    invoices = sorted(documents(world, "Invoice"))
    outcomes = world.sync([world.change("Invoice", invoice_id) for invoice_id in invoices])
    assert all(outcome.ok for outcome in outcomes.values())
    world.hubspot_admin("DELETE", "requests")
    # when the backfill reads the same invoices at the same versions
    done = backfill(world, entities=("Invoice",)).run()
    # then it wrote nothing for them: HubSpot already shows those versions
    assert done.counts["Invoice"].already_synced == len(invoices)
    assert done.counts["Invoice"].written == 0
    assert hubspot_writes(world) == []
    # and live events arriving after the backfill (redeliveries) write nothing either
    world.hubspot_admin("DELETE", "requests")
    world.sync([world.change("Invoice", invoice_id) for invoice_id in invoices])
    assert hubspot_writes(world) == []
    assert_each_document_has_one_deal(world, ("Invoice",))


def test_a_killed_backfill_continues_from_its_checkpoint_and_writes_each_document_once(
    world: DealSyncWorld,
) -> None:
    # given a backfill killed after its second page
    pages: list[Checkpoint] = []

    def kill_after_two(checkpoint: Checkpoint) -> None:
        pages.append(checkpoint)
        if len(pages) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        backfill(world, progress=kill_after_two).run()
    stored = DynamoDBCheckpointStore(world.settings.vendor_state_table_name, world.aws["dynamodb"]).get(
        CONNECTION
    )
    assert stored is not None and not stored.finished
    # when it runs again
    resumed: list[Checkpoint] = []
    done = backfill(world, progress=resumed.append).run()
    # then it continued the same job from where the checkpoint was, and finished it
    assert done.finished and done.job_id == stored.job_id
    first = resumed[0]
    assert (first.entity, first.position) != ("Customer", 0)
    assert sum(c.seen for c in first.counts.values()) > sum(c.seen for c in stored.counts.values())
    # and every document was written once: one deal each, no duplicate line item
    assert_each_document_has_one_deal(world)
    invoices = done.counts["Invoice"]
    assert invoices.seen == len(documents(world, "Invoice")) and invoices.failed == 0


def test_a_kill_in_the_middle_of_a_page_writes_nothing_twice_when_run_again(world: DealSyncWorld) -> None:
    # given a backfill killed after its first chunk of invoices was synced, before the page was saved
    service = world.parts.service
    real_sync = service.sync
    calls: list[int] = []

    def sync_then_die(events: Any, remaining_ms: int | None = None) -> Any:
        answered = real_sync(events, remaining_ms)
        if events and events[0].entity == "Invoice":
            calls.append(len(events))
            raise Interrupted
        return answered

    killed = Backfill(
        connection=CONNECTION,
        realm_id=DEMO_REALM_ID,
        qbo=world.parts.qbo,
        sync=type("Dying", (), {"sync": staticmethod(sync_then_die)})(),
        store=DynamoDBCheckpointStore(world.settings.vendor_state_table_name, world.aws["dynamodb"]),
        options=BackfillOptions(page_size=3, overlap=1, chunk_size=2),
        sleep=lambda seconds: None,
    )
    with pytest.raises(Interrupted):
        killed.run()
    assert calls == [2]
    # when it runs again
    done = backfill(world, chunk_size=2).run()
    # then the invoices of the first chunk count as already synced (the deal sync's ledger), and
    # every document has one deal
    assert done.finished
    assert done.counts["Invoice"].already_synced >= 2
    assert_each_document_has_one_deal(world)


def test_since_and_entities_filter_what_is_read(world: DealSyncWorld) -> None:
    # given an invoice created now, after the demo company's history
    since = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0)
    created = world.qbo_write(
        "Invoice",
        "create",
        {
            "CustomerRef": {"value": "6"},
            "Line": [
                {
                    "Amount": "42.00",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 1, "UnitPrice": "42.00"},
                }
            ],
        },
    )
    # when the backfill reads invoices only, since then
    done = backfill(world, since=since.isoformat(), entities=("Invoice",)).run()
    # then it read and synced that invoice only: no estimate, customer or payment
    assert list(done.counts) == ["Invoice"]
    assert done.counts["Invoice"].seen == 1 and done.counts["Invoice"].written == 1
    assert [key.rsplit(":", 1)[-1] for key in deal_keys(world)] == [created["Id"]]


def test_other_arguments_than_the_unfinished_jobs_are_refused_unless_restarted(world: DealSyncWorld) -> None:
    # given an unfinished job for invoices
    pages: list[Checkpoint] = []

    def stop(checkpoint: Checkpoint) -> None:
        pages.append(checkpoint)
        raise Interrupted

    with pytest.raises(Interrupted):
        backfill(world, entities=("Invoice",), progress=stop).run()
    # when a run asks for estimates, then again with --restart
    with pytest.raises(BackfillError, match="--restart"):
        backfill(world, entities=("Estimate",)).begin()
    done = backfill(world, entities=("Estimate",), restart=True).run()
    # then the refused run changed nothing, and the restarted one is a new job over estimates
    assert done.finished and done.job_id != pages[0].job_id and list(done.counts) == ["Estimate"]


def test_the_command_prints_progress_lines_and_a_summary_table(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the command pointed at "AWS" (moto here) with the test's settings
    command = pointed_at_the_test_world(world, monkeypatch)
    # and no rate-limit log in the vendor-state table yet (the test world's setup calls left some)
    dynamodb, table = world.aws["dynamodb"], world.settings.vendor_state_table_name
    for item in dynamodb.scan(TableName=table)["Items"]:
        if item["pk"]["S"].startswith("ratelimit#"):
            dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    command.register(parser)
    # when `ledgerlink backfill --aws --connection demo --entities Invoice` runs (not a TTY)
    status = command.run_backfill_command(
        parser.parse_args(["--aws", "--connection", CONNECTION, "--entities", "Invoice"]), out
    )
    # then it exits 0, printed plain progress lines, and the summary table per entity
    text = out.getvalue()
    assert status == 0, text
    assert "\r" not in text
    invoices = len(documents(world, "Invoice"))
    assert f"{CONNECTION}: Invoice {invoices}/{invoices}" in text
    assert any(line.split()[:3] == ["Invoice", str(invoices), str(invoices)] for line in text.splitlines())
    # and the command's QBO and HubSpot calls were counted in the vendor-state table's shared rate-limit
    # logs, the very buckets the Lambdas draw on: one budget for live traffic and the backfill
    items = dynamodb.scan(TableName=table)["Items"]
    buckets = {item["pk"]["S"] for item in items if item["pk"]["S"].startswith("ratelimit#")}
    assert any(DEMO_REALM_ID in bucket for bucket in buckets), buckets
    assert any("hubspot" in bucket for bucket in buckets), buckets
    # and `backfill status` prints the finished checkpoint
    out = io.StringIO()
    status = command.run_status_command(
        parser.parse_args(["status", "--aws", "--connection", CONNECTION]), out
    )
    assert status == 0 and "finished" in out.getvalue()


class CountdownContext:
    """A Lambda context whose remaining time is ample for the first ``ample_calls`` questions, then
    just under the job's reserve: each invocation runs a couple of pages and must continue itself."""

    function_name = "ledgerlink-test-qbo-backfill"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-qbo-backfill"
    aws_request_id = "5b0f7e2a-0000-4000-8000-00000000bf11"

    def __init__(self, reserve_ms: int, ample_calls: int = 3) -> None:
        self.reserve_ms = reserve_ms
        self.left = ample_calls

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return self.reserve_ms * 10 if self.left >= 0 else self.reserve_ms - 1


def test_the_aws_job_continues_across_invocations_until_it_finishes(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the qbo_backfill Lambda configured like the deployed function, and its queue
    from ledgerlink.config import EnvVar, reset_settings_cache
    from ledgerlink.configfile import reset_for_tests as reset_deployment_config
    from ledgerlink.secrets import reset_default_secret_store

    queue_name = "ledgerlink-test-backfill-jobs"
    sqs = world.aws["sqs"]
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    for name, value in support.environment(world.qbo.url, world.hubspot.url).items():
        monkeypatch.setenv(str(name), value)
    monkeypatch.setenv(EnvVar.BACKFILL_QUEUE_NAME.value, queue_name)
    reset_settings_cache()
    reset_deployment_config()
    reset_default_secret_store()
    from qbo_backfill import handler

    def invoke(body: str) -> dict[str, Any]:
        record = {"messageId": f"m{len(bodies)}", "receiptHandle": "rh", "body": body, "attributes": {}}
        answer: dict[str, Any] = handler.lambda_handler(
            {"Records": [record]}, CountdownContext(handler.RESERVE_MS)
        )
        return answer

    def next_message() -> str | None:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return None
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        return str(messages[0]["Body"])

    bodies: list[str] = []
    answers: list[str] = []
    try:
        # when `ledgerlink backfill --in-aws` sends the start, and each invocation's continuation is delivered
        from ledgerlink.deal_sync.backfill_job import JobMessage

        body: str | None = JobMessage(CONNECTION).to_json()
        while body is not None and len(bodies) < 10:
            bodies.append(body)
            answers.append(invoke(body)["jobs"][CONNECTION])
            body = next_message()
        # and a continuation is delivered a second time
        duplicate = invoke(bodies[1])["jobs"][CONNECTION]
    finally:
        reset_settings_cache()
        reset_deployment_config()
        reset_default_secret_store()
    # then the job took more than one invocation, each but the last continuing itself, and finished
    assert len(answers) >= 2 and set(answers[:-1]) == {"continued"} and answers[-1] == "finished"
    # and the duplicate continuation was dropped
    assert duplicate == "dropped"
    stored = DynamoDBCheckpointStore(world.settings.vendor_state_table_name, world.aws["dynamodb"]).get(
        CONNECTION
    )
    assert stored is not None and stored.finished
    assert_each_document_has_one_deal(world)


class ClosedPipe(io.StringIO):
    """stdout after `| head` has read what it wanted."""

    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_the_command_exits_quietly_on_a_broken_pipe(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the command's output going to a pipe already closed
    command = pointed_at_the_test_world(world, monkeypatch)
    parser = argparse.ArgumentParser()
    command.register(parser)
    errors = io.StringIO()
    monkeypatch.setattr("sys.stderr", errors)
    # when it runs, then it exits 0 and says nothing on stderr
    status = command.run_backfill_command(
        parser.parse_args(["--aws", "--connection", CONNECTION]), ClosedPipe()
    )
    assert status == 0 and errors.getvalue() == ""
