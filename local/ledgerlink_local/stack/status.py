"""``ledgerlink local status``: what the running local stack holds and what happened to recent events.

Reads ``<state dir>/local.json`` for the AWS endpoint, asks SQS (moto) for every queue's depth and its
dead-letter queue's, reads the dead-lettered messages with their reasons (without consuming them:
:func:`ledgerlink.consumer.deadletter.peek`), the failures on record in the links table, and the hop log
``<state dir>/events.jsonl`` for the recent webhooks and events with their outcome. Prints readable
tables; works (events only) when the stack is down.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ledgerlink.consumer.deadletter import DeadLetterView, describe, peek
from ledgerlink.crosswalk import Failure, LinkStore
from ledgerlink_local.stack.hops import Hop, read_hops
from ledgerlink_local.stack.settings import EVENT_LOG, LOCAL_JSON
from ledgerlink_local.stack.wiring import VendorUrls, local_topology


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], max_width: int = 48) -> str:
    """A plain-text table, columns as wide as their widest cell (cut at ``max_width``)."""
    cells = [[str(cell) for cell in headers]] + [[str(cell) for cell in row] for row in rows]
    cells = [
        [cell if len(cell) <= max_width else cell[: max_width - 1] + "…" for cell in row] for row in cells
    ]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    dlq_name: str | None
    dlq_visible: int
    max_receive_count: int | None


def queue_depths(sqs: Any) -> list[QueueDepth]:
    """Every queue that has a dead-letter queue (with the latter's depth), then any other non-DLQ queue."""
    urls: list[str] = sqs.list_queues().get("QueueUrls", [])
    attributes = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        for url in urls
    }
    by_arn = {attrs.get("QueueArn"): url for url, attrs in attributes.items()}
    dlq_urls = set()
    depths = []
    for url, attrs in sorted(attributes.items()):
        policy = attrs.get("RedrivePolicy")
        if not policy:
            continue
        redrive = json.loads(policy)
        dlq_url = by_arn.get(redrive.get("deadLetterTargetArn"))
        dlq_urls.add(dlq_url)
        depths.append(
            QueueDepth(
                name=url.rsplit("/", 1)[-1],
                visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                dlq_name=dlq_url.rsplit("/", 1)[-1] if dlq_url else None,
                dlq_visible=int(attributes.get(dlq_url, {}).get("ApproximateNumberOfMessages", 0))
                if dlq_url
                else 0,
                max_receive_count=int(redrive.get("maxReceiveCount", 0)) or None,
            )
        )
    for url, attrs in sorted(attributes.items()):
        if url in dlq_urls or attrs.get("RedrivePolicy"):
            continue
        depths.append(
            QueueDepth(
                name=url.rsplit("/", 1)[-1],
                visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                dlq_name=None,
                dlq_visible=0,
                max_receive_count=None,
            )
        )
    return depths


def dead_letters(sqs: Any, depths: Iterable[QueueDepth], limit: int) -> list[tuple[str, DeadLetterView]]:
    """(dead-letter queue, message explained) for up to ``limit`` messages of each non-empty DLQ, which
    keep their place in the queue."""
    found: list[tuple[str, DeadLetterView]] = []
    for depth in depths:
        if not depth.dlq_name or not depth.dlq_visible:
            continue
        url = sqs.get_queue_url(QueueName=depth.dlq_name)["QueueUrl"]
        views = [describe(message) for message in peek(sqs, url, limit)]
        found.extend((depth.dlq_name, view) for view in sorted(views, key=lambda v: v.failed_at or ""))
    return found


def links_table_name() -> str:
    """The local stack's links table (names do not depend on where the vendors are)."""
    nowhere = "http://127.0.0.1"
    topology = local_topology(VendorUrls(nowhere, nowhere, nowhere, nowhere, nowhere))
    return topology.table("links").name


def recorded_failures(dynamodb: Any, limit: int) -> list[Failure]:
    """The deal sync's failures on record in the links table, newest first (retrying ones too)."""
    return LinkStore(links_table_name(), dynamodb).recent_failures(limit)


@dataclass(frozen=True)
class EventSummary:
    correlation_id: str
    last_at: str
    subject: str
    path: str
    outcome: str
    vendor_calls: int
    receives: int = 0


@dataclass(frozen=True)
class WebhookSummary:
    request_id: str
    at: str
    request: str
    status: str
    events: int


_PATH_STEPS = ("webhook", "archived", "published", "rule", "queue", "handler", "dead-letter", "schedule")


def summarise(hops: Iterable[Hop]) -> tuple[list[WebhookSummary], list[EventSummary]]:
    """Group hops by correlation id: webhook requests (gateway request ids) and the events they caused.

    Vendor calls a function made for a whole batch carry the invocation's request id; they count for
    every event of that batch (each event's handler hop names the request id).
    """
    hops = list(hops)
    groups: OrderedDict[str, list[Hop]] = OrderedDict()
    for hop in hops:
        if hop.correlation_id:
            groups.setdefault(hop.correlation_id, []).append(hop)
    published_per_delivery: dict[str, int] = {}
    vendor_calls_per_request: dict[str, int] = {}
    for hop in hops:
        delivery = hop.details.get("delivery_id") if hop.step == "published" else None
        if delivery:
            published_per_delivery[str(delivery)] = published_per_delivery.get(str(delivery), 0) + 1
        if hop.step == "vendor" and hop.details.get("request_id"):
            request = str(hop.details["request_id"])
            vendor_calls_per_request[request] = vendor_calls_per_request.get(request, 0) + 1
    webhooks: list[WebhookSummary] = []
    events: list[EventSummary] = []
    for correlation_id, group in groups.items():
        steps = {hop.step for hop in group}
        if steps & {"webhook", "gateway"}:
            arrival = next((hop for hop in group if hop.step in ("webhook", "gateway")), group[0])
            answer = next((hop for hop in reversed(group) if hop.step in ("response", "gateway")), None)
            webhooks.append(
                WebhookSummary(
                    request_id=correlation_id,
                    at=arrival.at[11:19],
                    request=arrival.text.split(" (", 1)[0],
                    status=str(answer.details.get("status")) if answer else "waiting",
                    events=published_per_delivery.get(correlation_id, 0),
                )
            )
        elif steps & set(_PATH_STEPS):
            requests = {
                str(hop.details["request_id"])
                for hop in group
                if hop.step == "handler" and hop.details.get("request_id")
            }
            calls = sum(vendor_calls_per_request.get(request, 0) for request in requests)
            events.append(_event_summary(correlation_id, group, calls))
        # else: only the calls of a batch invocation (labelled with its request id), counted above
    return webhooks, events


def _event_summary(correlation_id: str, group: list[Hop], vendor_calls: int) -> EventSummary:
    published = next((hop for hop in group if hop.step == "published"), None)
    subject = "scheduled" if any(hop.step == "schedule" for hop in group) else "?"
    if published is not None:
        details = published.details
        subject = f"{details.get('entity') or details.get('detail_type')}/{details.get('entity_id') or ''} "
        subject += str(details.get("operation") or "")
    path: list[str] = []
    for hop in group:
        if hop.step in _PATH_STEPS and hop.step not in path:
            path.append(hop.step)
    return EventSummary(
        correlation_id=correlation_id,
        last_at=group[-1].at[11:19],
        subject=subject.strip(),
        path=" > ".join(path),
        outcome=_outcome(group),
        vendor_calls=vendor_calls,
        receives=sum(1 for hop in group if hop.step == "queue"),
    )


def _outcome(group: list[Hop]) -> str:
    last_receive = max((index for index, hop in enumerate(group) if hop.step == "queue"), default=-1)
    if any(hop.step == "dead-letter" and hop.outcome == "dead-letter" for hop in group[last_receive + 1 :]):
        return "dead-lettered"
    for hop in reversed(group):
        if hop.step == "dead-letter" and hop.outcome == "dead-letter":
            return "dead-lettered"
        if hop.step == "handler":
            return {"ok": "done", "retry": "retrying", "failed": "failed, retrying"}.get(
                hop.outcome or "", hop.outcome or "?"
            )
        if hop.step == "queue":
            return "queued"
        if hop.step == "rule":
            return "no rule matched" if "no rule" in hop.text else "routed"
        if hop.step == "published":
            return "published" if hop.outcome == "ok" else "publish failed"
    return "?"


def run_status(state_dir: Path, out: TextIO, limit: int = 15) -> int:
    local_json = state_dir / LOCAL_JSON
    if not local_json.is_file():
        print(f"no local stack description at {local_json}; start one with `make run`", file=out)
        return 1
    description = json.loads(local_json.read_text(encoding="utf-8"))
    endpoint = str(description["aws"]["endpoint_url"])
    region = str(description["aws"]["region"])
    print(f"gateway  {description.get('gateway_url')}    aws  {endpoint}    state  {state_dir}", file=out)
    status = 0
    try:
        from ledgerlink_local.stack.aws import client

        sqs = client("sqs", endpoint, region)
        depths = queue_depths(sqs)
    except Exception as error:  # noqa: BLE001 - a stopped stack is a normal answer here
        print(
            f"\nno local stack answers at {endpoint} ({type(error).__name__}); is `make run` running?",
            file=out,
        )
        status = 1
    else:
        print("\nQueues", file=out)
        print(
            table(
                ("queue", "waiting", "in flight", "max receives", "dead-letter queue", "dead-lettered"),
                (
                    (
                        depth.name,
                        str(depth.visible),
                        str(depth.in_flight),
                        str(depth.max_receive_count or "-"),
                        depth.dlq_name or "-",
                        str(depth.dlq_visible) if depth.dlq_name else "-",
                    )
                    for depth in depths
                ),
                max_width=60,
            ),
            file=out,
        )
        try:
            print_dead_letters(dead_letters(sqs, depths, limit), out)
            print_failures(recorded_failures(client("dynamodb", endpoint, region), limit), out)
        except Exception as error:  # noqa: BLE001 - the tables above stand; say what is missing
            print(f"\n(dead letters or failures unreadable: {type(error).__name__}: {error})", file=out)
            status = 1
    webhooks, events = summarise(read_hops(state_dir / EVENT_LOG))
    print(f"\nRecent webhooks (last {min(limit, len(webhooks))} of {len(webhooks)})", file=out)
    print(
        table(
            ("time", "request id", "request", "status", "events"),
            ((w.at, w.request_id, w.request, w.status, str(w.events)) for w in webhooks[-limit:]),
        ),
        file=out,
    )
    print(f"\nRecent events (last {min(limit, len(events))} of {len(events)})", file=out)
    print(
        table(
            ("time", "correlation id", "what", "hops", "receives", "outcome", "vendor calls"),
            (
                (
                    e.last_at,
                    e.correlation_id,
                    e.subject,
                    e.path,
                    str(e.receives),
                    e.outcome,
                    str(e.vendor_calls),
                )
                for e in events[-limit:]
            ),
            max_width=72,
        ),
        file=out,
    )
    return status


def print_dead_letters(letters: Sequence[tuple[str, DeadLetterView]], out: TextIO) -> None:
    print(
        f"\nDead-lettered messages ({len(letters)}; `ledgerlink dlq replay <queue>` moves them back)",
        file=out,
    )
    if not letters:
        return
    print(
        table(
            ("failed at", "queue", "kind", "receive", "what", "correlation id", "reason"),
            (
                (
                    (view.failed_at or "-")[11:19] or "-",
                    queue,
                    view.kind,
                    str(view.receive_count or "-"),
                    view.subject,
                    view.correlation_id or "-",
                    view.reason,
                )
                for queue, view in letters
            ),
            max_width=100,
        ),
        file=out,
    )


def print_failures(failures: Sequence[Failure], out: TextIO) -> None:
    print(f"\nFailures on record (links table, newest first: {len(failures)})", file=out)
    if not failures:
        return
    print(
        table(
            ("failed at", "what", "event id", "retryable", "receive", "reason"),
            (
                (
                    failure.failed_at[11:19],
                    f"{failure.entity}/{failure.entity_id}",
                    failure.event_id[:12],
                    "yes" if failure.retryable else "no",
                    str(failure.receive_count),
                    failure.reason,
                )
                for failure in failures
            ),
            max_width=100,
        ),
        file=out,
    )
