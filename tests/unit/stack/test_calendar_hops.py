"""The calendar flow on the hop log and in ``ledgerlink local status``: an invoice's QBO change goes through
the deal sync, its ``deal.synced`` through the calendar-sync queue to the calendar sync, which publishes
``calendar.synced``.

The local stack's own resources are created in moto's server from the topology (bus, rules, queues,
tables), EventBridge delivery is moto's and the pollers are the stack's; only the two functions are
stood in for by the test, publishing (or dead-lettering) what the real ones would, through the same
instrumented boto3 calls the worker reports to the stack.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.topology import Topology
from ledgerlink.consumer.deadletter import DeadLetterRouter, RecordFailure, SqsDeadLetterQueue
from ledgerlink.crosswalk import Failure, LinkStore
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink_local.stack.aws import MotoServer, Resources, client, provision
from ledgerlink_local.stack.hops import HopLog, read_hops
from ledgerlink_local.stack.pollers import PollerConfig, QueuePoller
from ledgerlink_local.stack.runtime import FunctionRuntime, InvocationResult
from ledgerlink_local.stack.stack import rule_routes
from ledgerlink_local.stack.status import queue_consumers, run_status, summarise
from ledgerlink_local.stack.wiring import VendorUrls, local_topology
from tests.conftest import FIXTURES
from tests.unit.stack.conftest import Recorder

INVOICE_CHANGED = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
DEAL_SYNCED = json.loads((FIXTURES / "infra" / "deal-synced-invoice.eventbridge.json").read_text())
# The fixtures are one chain: the deal.synced carries the QBO change's correlation id.
CORRELATION_ID = INVOICE_CHANGED["detail"]["correlation_id"]
MAILBOX_UNKNOWN = "Graph does not know mailbox 'ap-owner@example.com' (ErrorInvalidUser); fix the deal owner"


class Counts:
    def count(self, name: str, value: int = 1) -> None:
        return None


@dataclass
class Chain:
    """The local stack's AWS, hop log and pollers, and the stand-ins' way to report their calls."""

    topology: Topology
    resources: Resources
    hops: HopLog
    console: io.StringIO
    state_dir: Path
    reported: Recorder

    def runtime(self, key: str) -> FunctionRuntime:
        spec = self.topology.function(key)
        return FunctionRuntime(
            key=spec.key,
            name=spec.name,
            handler=spec.handler,
            timeout_seconds=spec.timeout_seconds,
            memory_mb=spec.memory_mb,
            environment={},
            code_root=Path("functions"),
        )

    def report(self, function_key: str, request_id: str) -> None:
        """Hand the calls made so far to the hop log as the worker of ``function_key`` would."""
        for message in self.reported.drain():
            self.hops.call(self.runtime(function_key), request_id, message)

    def publish(self, function_key: str, request_id: str, envelope: Envelope) -> None:
        events = client("events", self.resources.endpoint_url)
        events.put_events(Entries=[envelope.to_put_events_entry(self.topology.event_bus.name)])
        self.report(function_key, request_id)

    def poll(self, queue_key: str, stand_in: Callable[[list[dict[str, Any]], str], None]) -> None:
        """One batch of ``queue_key`` through its event source, the function replaced by ``stand_in``."""
        (source,) = [s for s in self.topology.queue_sources if s.queue == queue_key]
        queue = self.resources.queue(queue_key)
        config = PollerConfig(
            function=source.function,
            queue_name=queue.name,
            queue_url=queue.url,
            queue_arn=queue.arn,
            region=self.resources.region,
            batch_size=source.batch_size,
            max_batching_window_seconds=0,
            report_batch_item_failures=source.report_batch_item_failures,
            max_receive_count=queue.max_receive_count,
            poll_wait_seconds=0,
        )

        def invoke(event: dict[str, Any], request_id: str) -> InvocationResult:
            stand_in(event["Records"], request_id)
            self.report(source.function, request_id)
            return InvocationResult(request_id, True, {"batchItemFailures": []}, duration_ms=12.0)

        poller = QueuePoller(config, client("sqs", self.resources.endpoint_url), invoke, self.hops)
        assert poller.poll_once() is not None, f"nothing arrived in {queue.name}"


@pytest.fixture
def chain(tmp_path: Path, reported: Recorder) -> Iterator[Chain]:
    moto = MotoServer().start()
    try:
        nowhere = "http://127.0.0.1:9"
        topology = local_topology(VendorUrls(nowhere, nowhere, nowhere, nowhere, nowhere))
        resources = provision(topology, moto.endpoint_url, secret_values={})
        (tmp_path / "local.json").write_text(
            json.dumps(
                {
                    "gateway_url": "http://127.0.0.1:9",
                    "aws": {"endpoint_url": moto.endpoint_url, "region": resources.region},
                }
            )
        )
        console = io.StringIO()
        hops = HopLog(
            stream=console,
            path=tmp_path / "events.jsonl",
            rules=rule_routes(topology),
            raw_bucket=topology.bucket.name,
            dead_letter_queues=[queue.dlq_name for queue in topology.queues],
        )
        reported.drain()  # provisioning's own calls are not the functions'
        yield Chain(topology, resources, hops, console, tmp_path, reported)
    finally:
        moto.stop()


def _calendar_synced(deal_synced: Envelope, action: str) -> Envelope:
    """What the calendar sync publishes after writing the invoice's due date (schema v1)."""
    payload = deal_synced.payload
    return Envelope(
        source=EventSource.OUTLOOK_CALENDAR_SYNC,
        detail_type=DetailType.CALENDAR_SYNCED,
        correlation_id=deal_synced.correlation_id,
        payload={
            "connection": payload["connection"],
            "config_version": payload["config_version"],
            "action": action,
            "invoice_key": payload["invoice_key"],
            "invoice_id": payload["invoice_id"],
            "realm_id": payload["realm_id"],
            "doc_number": payload["doc_number"],
            "deal_id": payload["deal_id"],
            "status": payload["status"],
            "balance": payload["balance"],
            "currency": payload["currency"],
            "due_date": "2026-12-25",
            "time_zone": payload["time_zone"],
            "mailbox": "finance@example.com",
            "mailbox_source": "accounts_receivable",
            "event_id": "AAMkAGI2TG93AAA=",
            "customer": payload["customer"],
            "owner_id": payload["owner_id"],
            "last_updated": payload["last_updated"],
            "sync_token": payload["sync_token"],
        },
    )


def _through_the_deal_sync(chain: Chain) -> Envelope:
    """The QBO change published by ingest and synced by the deal sync, which publishes its deal.synced."""
    chain.publish("qbo_ingest", str(uuid.uuid4()), Envelope.from_eventbridge(INVOICE_CHANGED))
    deal_synced = Envelope.from_eventbridge(copy.deepcopy(DEAL_SYNCED))
    chain.poll(
        "deal-sync", lambda records, request_id: chain.publish("hubspot_deal_sync", request_id, deal_synced)
    )
    return deal_synced


def _lines(chain: Chain, step: str) -> list[str]:
    return [line for line in chain.console.getvalue().splitlines() if f"  {step:<11} " in line]


def test_a_synced_deal_reaches_the_calendar_sync_and_its_calendar_synced_is_on_the_hop_log(
    chain: Chain,
) -> None:
    # given an invoice's change synced to its deal, and the deal.synced that published
    deal_synced = _through_the_deal_sync(chain)

    # when the calendar sync's event source hands it over and the calendar sync writes the due date
    chain.poll(
        "calendar-sync",
        lambda records, request_id: chain.publish(
            "outlook_calendar_sync", request_id, _calendar_synced(deal_synced, "created")
        ),
    )

    # then the hop lines show the deal.synced routed to the calendar queue, handed to the calendar sync,
    # and the calendar.synced it published, all under the webhook's correlation id
    published = _lines(chain, "published")
    assert any(
        "ledgerlink.deal.synced Invoice/1042 open -> ledgerlink-local-events" in line for line in published
    )
    assert any(
        "ledgerlink.calendar.synced Invoice/1042 created -> ledgerlink-local-events" in line
        for line in published
    )
    assert any(
        "ledgerlink-local-deal-synced-to-calendar-sync matched -> queue ledgerlink-local-calendar-sync"
        in line
        for line in _lines(chain, "rule")
    )
    max_receives = chain.topology.queue("calendar-sync").max_receive_count
    assert any(
        f"ledgerlink-local-calendar-sync -> outlook_calendar_sync (receive 1/{max_receives})" in line
        for line in _lines(chain, "queue")
    )
    assert any("outlook_calendar_sync ok" in line for line in _lines(chain, "handler"))
    assert all(
        CORRELATION_ID in line
        for step in ("published", "rule", "queue", "handler")
        for line in _lines(chain, step)
    )

    # and the status has one row per flow: the QBO change through the deal sync, its deal through the
    # calendar sync, each done once, and the calendar.synced on its way to the Teams invite
    _, events = summarise(read_hops(chain.state_dir / "events.jsonl"), queue_consumers())
    rows = [(e.correlation_id, e.flow, e.subject, e.path, e.receives, e.outcome) for e in events]
    assert rows == [
        (
            CORRELATION_ID,
            "hubspot_deal_sync",
            "Invoice/1042 Update",
            "published > rule > queue > handler",
            1,
            "done",
        ),
        (
            CORRELATION_ID,
            "outlook_calendar_sync",
            "deal.synced Invoice/1042 open",
            "published > rule > queue > handler",
            1,
            "done",
        ),
        (
            CORRELATION_ID,
            "teams_invite",
            "calendar.synced Invoice/1042 created",
            "published > rule",
            0,
            "routed",
        ),
    ]
    calendar = events[1]
    assert calendar.event_ids == (deal_synced.event_id,)


def test_status_shows_the_calendar_queue_its_dead_letters_and_the_calendar_flows_failures(
    chain: Chain,
) -> None:
    # given a deal.synced whose owner's mailbox Graph does not know: the calendar sync records the
    # failure and dead-letters the record itself, with the reason
    deal_synced = _through_the_deal_sync(chain)
    sqs = client("sqs", chain.resources.endpoint_url)
    dynamodb = client("dynamodb", chain.resources.endpoint_url)
    dlq_name = chain.topology.queue("calendar-sync").dlq_name
    router = DeadLetterRouter(
        SqsDeadLetterQueue(dlq_name, sqs),
        max_receive_count=chain.topology.queue("calendar-sync").max_receive_count,
        metrics=Counts(),
        now=lambda: datetime.now(UTC),
    )

    def cannot_write(records: list[dict[str, Any]], request_id: str) -> None:
        failed_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        LinkStore(chain.topology.table("links").name, dynamodb).record_failures(
            [
                Failure(
                    event_id=deal_synced.event_id,
                    reason=MAILBOX_UNKNOWN,
                    error_type="MailboxNotFound",
                    retryable=False,
                    message_id=records[0]["messageId"],
                    receive_count=1,
                    realm_id=str(deal_synced.payload["realm_id"]),
                    entity="Invoice",
                    entity_id=str(deal_synced.payload["invoice_id"]),
                    failed_at=failed_at,
                )
            ]
        )
        router.route(
            records, {records[0]["messageId"]: RecordFailure(reason=MAILBOX_UNKNOWN, retryable=False)}
        )

    chain.poll("calendar-sync", cannot_write)

    # when the status is asked
    out = io.StringIO()
    assert run_status(chain.state_dir, out) == 0
    tables = _tables(out.getvalue())

    # then the calendar queue is listed with its dead-letter queue holding the record
    (calendar_queue,) = [row for row in tables["Queues"] if row["queue"] == "ledgerlink-local-calendar-sync"]
    assert calendar_queue == {
        "queue": "ledgerlink-local-calendar-sync",
        "waiting": "0",
        "in flight": "0",
        "max receives": str(chain.topology.queue("calendar-sync").max_receive_count),
        "dead-letter queue": dlq_name,
        "dead-lettered": "1",
    }
    # and the dead letter, with its reason
    (letter,) = tables["Dead-lettered messages"]
    assert (letter["queue"], letter["kind"], letter["reason"]) == (dlq_name, "permanent", MAILBOX_UNKNOWN)
    assert letter["correlation id"] == CORRELATION_ID
    # and the failure on record, named as the calendar flow's
    (failure,) = tables["Failures on record"]
    assert (failure["flow"], failure["what"], failure["retryable"]) == (
        "outlook_calendar_sync",
        "Invoice/1042",
        "no",
    )
    # and the event's two flows: the deal sync done, the calendar sync dead-lettered
    assert [(row["flow"], row["what"], row["outcome"]) for row in tables["Recent events"]] == [
        ("hubspot_deal_sync", "Invoice/1042 Update", "done"),
        ("outlook_calendar_sync", "deal.synced Invoice/1042 open", "dead-lettered"),
    ]


def _tables(text: str) -> dict[str, list[dict[str, str]]]:
    """The status's tables by title, each row as {header: cell} (columns found from the rule line)."""
    found: dict[str, list[dict[str, str]]] = {}
    for block in text.split("\n\n")[1:]:
        lines = block.splitlines()
        title = lines[0].split(" (")[0]
        if len(lines) < 3:
            found[title] = []
            continue
        header, rule, *rows = lines[1:]
        spans, start = [], 0
        for dashes in rule.split("  "):
            spans.append((start, start + len(dashes)))
            start += len(dashes) + 2
        names = [header[a:b].strip() for a, b in spans]
        found[title] = [
            {
                name: row[a : (b if index < len(spans) - 1 else None)].strip()
                for index, (name, (a, b)) in enumerate(zip(names, spans, strict=True))
            }
            for row in rows
        ]
    return found
