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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ledgerlink.cli.status import QueueDepth, queue_depths, table
from ledgerlink.consumer.deadletter import DeadLetterView, describe, peek
from ledgerlink.crosswalk import Failure, LinkStore
from ledgerlink_local.stack.hops import Hop, event_subject, read_hops
from ledgerlink_local.stack.settings import EVENT_LOG, LOCAL_JSON
from ledgerlink_local.stack.wiring import VendorUrls, local_topology

if TYPE_CHECKING:
    from infra.topology import Topology


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


def _names() -> Topology:
    """The local stack's topology, for its names (they do not depend on where the vendors are)."""
    nowhere = "http://127.0.0.1"
    return local_topology(VendorUrls(nowhere, nowhere, nowhere, nowhere, nowhere))


def links_table_name() -> str:
    """The local stack's links table."""
    return _names().table("links").name


def queue_consumers() -> dict[str, str]:
    """Each local work queue's name -> the function its event source feeds (deal sync, calendar sync)."""
    topology = _names()
    return {topology.queue(source.queue).name: source.function for source in topology.queue_sources}


def recorded_failures(dynamodb: Any, limit: int) -> list[Failure]:
    """The flows' failures on record in the links table, newest first (retrying ones too)."""
    return LinkStore(links_table_name(), dynamodb).recent_failures(limit)


def failure_flows(events: Iterable[EventSummary]) -> dict[str, str]:
    """Event id -> the flow it failed in, from the hop log (a failure on record names its event)."""
    return {event_id: event.flow for event in events for event_id in event.event_ids if event.flow}


@dataclass(frozen=True)
class EventSummary:
    """One event's way through one flow: the hops from its publication to the consuming function's
    outcome (``flow``: that function, or empty when no rule matched the event)."""

    correlation_id: str
    last_at: str
    subject: str
    path: str
    outcome: str
    vendor_calls: int
    receives: int = 0
    flow: str = ""
    event_ids: tuple[str, ...] = ()
    """The ids of the events that entered the flow (a failure on record names one of them)."""


@dataclass(frozen=True)
class WebhookSummary:
    request_id: str
    at: str
    request: str
    status: str
    events: int


_PATH_STEPS = ("webhook", "archived", "published", "rule", "queue", "handler", "dead-letter", "schedule")
# The event every chain starts from; the events the flows publish are named by their type.
_ROOT_DETAIL_TYPE = "qbo.entity.changed"


def summarise(
    hops: Iterable[Hop], consumers: Mapping[str, str] | None = None
) -> tuple[list[WebhookSummary], list[EventSummary]]:
    """Group hops by correlation id: webhook requests (gateway request ids) and the events they caused,
    one :class:`EventSummary` per flow an event went through (an invoice's QBO change through the deal
    sync, then its ``deal.synced`` through the calendar sync: the chain keeps one correlation id).

    ``consumers`` maps a queue's name to the function it feeds (the topology's event sources), so a
    flow whose queue has not been polled yet is still named; without it, flows are named from the
    hops. Vendor calls a function made for a whole batch carry the invocation's request id; they count
    for every event of that batch (each event's handler hop names the request id).
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
            for leg in _legs(group, consumers or {}):
                requests = {
                    str(hop.details["request_id"])
                    for hop in leg.own
                    if hop.step == "handler" and hop.details.get("request_id")
                }
                calls = sum(vendor_calls_per_request.get(request, 0) for request in requests)
                events.append(_event_summary(correlation_id, leg, calls))
        # else: only the calls of a batch invocation (labelled with its request id), counted above
    return webhooks, events


@dataclass
class _Leg:
    """The hops of one flow of one correlation id: ``own`` (what entered it and what its consumer did)
    and, in ``hops``, the events its consumer published as well (in order)."""

    queue: str
    function: str = ""
    hops: list[Hop] = field(default_factory=list)
    own: list[Hop] = field(default_factory=list)

    def add(self, hop: Hop, *, own: bool = True) -> None:
        if not any(hop is seen for seen in self.hops):
            self.hops.append(hop)
        if own and not any(hop is seen for seen in self.own):
            self.own.append(hop)


def _legs(group: list[Hop], consumers: Mapping[str, str]) -> list[_Leg]:
    """Split one correlation id's hops into the flows they went through (see :func:`summarise`).

    A rule that matched sends the event just published to a queue: both hops open (or join) that
    queue's flow. Queue hops name their queue; the consuming function's hops (handler, vendor,
    dead-letter) name the function, whose queue the queue hops tell. What that function publishes is
    the end of its flow and the start of the next; routed back to its own queue (the Teams invite's
    sweep publishes the followup.due events it consumes itself), it starts a new flow of that queue
    rather than joining the one that published it. A scheduled event's hop joins the queue it
    delivered to.
    """
    legs: list[_Leg] = []
    by_queue: dict[str, _Leg] = {}  # each queue's current flow
    by_function: dict[str, _Leg] = {}  # each consuming function's current flow

    def open_leg(queue: str, *, claim_function: bool = True) -> _Leg:
        leg = _Leg(queue=queue, function=consumers.get(queue, ""))
        legs.append(leg)
        by_queue[queue] = leg
        if leg.function and claim_function:
            by_function[leg.function] = leg
        return leg

    def leg_of_queue(queue: str) -> _Leg:
        return by_queue[queue] if queue in by_queue else open_leg(queue)

    def leg_of_function(function: str) -> _Leg:
        if function not in by_function:
            by_function[function] = leg_of_queue(f"function:{function}")
            by_function[function].function = function
        return by_function[function]

    def routed_back(queue: str, published: Hop | None) -> bool:
        """The event just published comes from the consumer of ``queue`` while it handles (or after it
        handled) a record of the queue's current flow: a new flow of the same queue, not more of that
        one. (More events it publishes then join that new flow, which has received nothing yet.)"""
        leg = by_queue.get(queue)
        publisher = str(published.details.get("function") or "") if published is not None else ""
        return (
            leg is not None
            and bool(publisher)
            and publisher == leg.function
            and any(hop.step == "queue" for hop in leg.own)
        )

    last_published: Hop | None = None
    pending_schedule: Hop | None = None
    for hop in group:
        function = str(hop.details.get("function") or "")
        if hop.step == "published":
            last_published = hop
            if function in by_function:
                by_function[function].add(hop, own=False)  # its consumer's output
        elif hop.step == "rule":
            queue = str(hop.details.get("queue") or _after(hop.text, " matched -> queue "))
            if queue:
                if routed_back(queue, last_published):
                    # The publisher's own hops still belong to the flow it is handling; its function's
                    # hops move to the new flow when the queue hands that flow's record over.
                    leg = open_leg(queue, claim_function=False)
                else:
                    leg = leg_of_queue(queue)
                if last_published is not None:
                    leg.add(last_published)
                leg.add(hop)
            elif last_published is not None and str(last_published.details.get("function")) in by_function:
                by_function[str(last_published.details.get("function"))].add(hop, own=False)
            else:  # published by a function no queue feeds (ingest), and no rule wanted it
                leg = leg_of_queue("")
                if last_published is not None:
                    leg.add(last_published)
                leg.add(hop)
        elif hop.step == "schedule":
            pending_schedule = hop
        elif hop.step == "queue":
            queue = str(hop.details.get("queue") or hop.text.split(" -> ", 1)[0])
            leg = leg_of_queue(queue)
            consumer = function or _between(hop.text, " -> ", " (receive")
            if consumer and not leg.function:
                leg.function = consumer
            if consumer:
                by_function[consumer] = leg  # what it does next is for this record
            if pending_schedule is not None:
                leg.add(pending_schedule)
                pending_schedule = None
            leg.add(hop)
        elif function:
            leg_of_function(function).add(hop)
        else:
            leg_of_queue("").add(hop)
    return [leg for leg in legs if leg.own]


def _after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1].strip() if marker in text else ""


def _between(text: str, start: str, end: str) -> str:
    return _after(text, start).split(end, 1)[0].strip() if start in text else ""


def _event_summary(correlation_id: str, leg: _Leg, vendor_calls: int) -> EventSummary:
    own = leg.own
    published = next((hop for hop in own if hop.step == "published"), None)
    schedule = next((hop for hop in own if hop.step == "schedule"), None)
    subject = f"Scheduled Event {schedule.details.get('rule') or ''}".strip() if schedule else "?"
    if published is not None:
        details = published.details
        subject = event_subject(details).strip() or f"{details.get('detail_type')}/"
        detail_type = str(details.get("detail_type") or "")
        if (details.get("invoice_id") or details.get("invoice_key")) and detail_type != _ROOT_DETAIL_TYPE:
            subject = f"{detail_type.removeprefix('ledgerlink.')} {subject}"
    path: list[str] = []
    for hop in leg.hops:
        if hop.step in _PATH_STEPS and hop.step not in path:
            path.append(hop.step)
    return EventSummary(
        correlation_id=correlation_id,
        last_at=leg.hops[-1].at[11:19],
        subject=subject,
        path=" > ".join(path),
        outcome=_outcome(own),
        vendor_calls=vendor_calls,
        receives=sum(1 for hop in own if hop.step == "queue"),
        flow=leg.function or leg.queue,
        event_ids=tuple(
            dict.fromkeys(
                str(hop.details["event_id"])
                for hop in own
                if hop.step == "published" and hop.details.get("event_id")
            )
        ),
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
    webhooks, events = summarise(read_hops(state_dir / EVENT_LOG), queue_consumers())
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
            failures = recorded_failures(client("dynamodb", endpoint, region), limit)
            print_failures(failures, out, failure_flows(events))
        except BrokenPipeError:
            raise  # the reader of the output has gone: ledgerlink.cli.main ends the command quietly
        except Exception as error:  # noqa: BLE001 - the tables above stand; say what is missing
            print(f"\n(dead letters or failures unreadable: {type(error).__name__}: {error})", file=out)
            status = 1
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
            ("time", "correlation id", "what", "flow", "hops", "receives", "outcome", "vendor calls"),
            (
                (
                    e.last_at,
                    e.correlation_id,
                    e.subject,
                    e.flow or "-",
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


def print_failures(failures: Sequence[Failure], out: TextIO, flows: Mapping[str, str] | None = None) -> None:
    """The failures table; ``flows`` (event id -> flow, :func:`failure_flows`) says which flow each
    failed in, "-" for an event the hop log no longer has."""
    print(f"\nFailures on record (links table, newest first: {len(failures)})", file=out)
    if not failures:
        return
    print(
        table(
            ("failed at", "flow", "what", "event id", "retryable", "receive", "reason"),
            (
                (
                    failure.failed_at[11:19],
                    (flows or {}).get(failure.event_id, "-"),
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
