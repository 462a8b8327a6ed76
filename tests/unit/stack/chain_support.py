"""The chain the hop and status tests drive: the local stack's AWS (moto's server, every resource from the
topology), its hop log and its pollers, with the functions stood in for by the tests, which publish (or
dead-letter) what the real ones would through the same instrumented boto3 calls the worker reports."""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.topology import Topology
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink_local.stack.aws import Resources, client
from ledgerlink_local.stack.hops import HopLog
from ledgerlink_local.stack.pollers import PollerConfig, QueuePoller
from ledgerlink_local.stack.runtime import FunctionRuntime, InvocationResult
from tests.conftest import FIXTURES
from tests.unit.stack.conftest import Recorder

INVOICE_CHANGED = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
DEAL_SYNCED = json.loads((FIXTURES / "infra" / "deal-synced-invoice.eventbridge.json").read_text())
# The fixtures are one chain: the deal.synced carries the QBO change's correlation id.
CORRELATION_ID = INVOICE_CHANGED["detail"]["correlation_id"]


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


def hop_lines(chain: Chain, step: str) -> list[str]:
    return [line for line in chain.console.getvalue().splitlines() if f"  {step:<11} " in line]


def status_tables(text: str) -> dict[str, list[dict[str, str]]]:
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


def calendar_synced(deal_synced: Envelope, action: str) -> Envelope:
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


def through_the_deal_sync(chain: Chain) -> Envelope:
    """The QBO change published by ingest and synced by the deal sync, which publishes its deal.synced."""
    chain.publish("qbo_ingest", str(uuid.uuid4()), Envelope.from_eventbridge(INVOICE_CHANGED))
    deal_synced = Envelope.from_eventbridge(copy.deepcopy(DEAL_SYNCED))
    chain.poll(
        "deal-sync", lambda records, request_id: chain.publish("hubspot_deal_sync", request_id, deal_synced)
    )
    return deal_synced
