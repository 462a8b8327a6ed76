"""End-to-end latency on the local stack as `make run` wires it: webhook → deal → Outlook due date.

The whole stack runs with its deployed settings (batching windows included); only the ports are free
ones and the demo activity is off. ``LEDGERLINK_BENCH_LATENCY_INVOICES`` (50) invoices are created in
the QBO sandbox one at a time: each is sent only once the previous one's calendar event was written.
The QBO sandbox delivers each change as a signed webhook to the local gateway.

Measured from the hop log (``events.jsonl``), per invoice, from the webhook's arrival at the gateway:

- to the deal written (``ledgerlink.deal.synced`` published: the deal sync publishes it right after
  its HubSpot writes);
- to the calendar event written (``ledgerlink.calendar.synced`` published: right after the Graph write);

as p50, p95 and max, and the time each invoice's event spent waiting in each queue before its function
took it (the rule's delivery to the poller's receive, plus the function's invocation), which is what
the queues' batching windows cost: a lone message waits for the window to close before the function
is invoked.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerlink_local.stack.settings import LocalSettings, Ports
from ledgerlink_local.stack.up import LocalEnvironment, start_environment

INVOICE_STEP = 4  # demo_activity_step(4k) creates an invoice
GIVE_UP_SECONDS = 120.0


def _hops(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "events.jsonl"
    if not path.exists():
        return []
    hops = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            hops.append(json.loads(line))
        except ValueError:
            # the stack is writing this line right now: it is read complete on the next pass
            continue
    return hops


def _at(hop: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(hop["at"]).replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return -1.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(_percentile(values, 0.95) * 1000, 1),
        "max_ms": round(max(values, default=-1.0) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else -1.0,
    }


def main() -> dict[str, Any]:
    invoices = int(os.environ.get("LEDGERLINK_BENCH_LATENCY_INVOICES", "50"))
    with tempfile.TemporaryDirectory(prefix="ledgerlink-latency-") as state:
        state_dir = Path(state)
        settings = LocalSettings(
            ports=Ports(gateway=0, aws=0, qbo=0, hubspot=0, graph=0), state_dir=state_dir, demo=False
        )
        environment = start_environment(settings, console=None)
        try:
            return _run(environment, state_dir, invoices)
        finally:
            environment.stop()


def _run(environment: LocalEnvironment, state_dir: Path, invoices: int) -> dict[str, Any]:
    qbo = environment.sandboxes.sandbox("qbo")
    to_deal: list[float] = []
    to_calendar: list[float] = []
    waits: dict[str, list[float]] = {"deal-sync": [], "calendar-sync": []}
    missing = 0
    for index in range(invoices):
        change = qbo.demo_activity_step(INVOICE_STEP * index)
        deadline = time.monotonic() + GIVE_UP_SECONDS
        measured = None
        while time.monotonic() < deadline and measured is None:
            measured = _measure(_hops(state_dir), str(change["id"]))
            if measured is None:
                time.sleep(0.05)
        if measured is None:
            missing += 1
            continue
        to_deal.append(measured["deal"])
        to_calendar.append(measured["calendar"])
        for queue, wait in measured["waits"].items():
            waits.setdefault(queue, []).append(wait)
    topology = environment.stack.topology
    assert topology is not None
    windows = {
        queue.key: source.max_batching_window_seconds
        for queue in topology.queues
        for source in topology.queue_sources
        if source.queue == queue.key
    }
    return {
        "invoices": invoices,
        "invoices_without_a_calendar_event": missing,
        "webhook_to_deal_written": _summary(to_deal),
        "webhook_to_calendar_event_written": _summary(to_calendar),
        "batching_window_seconds": windows,
        "queue_wait_until_function_ran": {queue: _summary(values) for queue, values in waits.items()},
    }


def _measure(hops: list[dict[str, Any]], invoice_id: str) -> dict[str, Any] | None:
    """Seconds from the webhook to the deal and to the calendar event of one invoice, or None yet."""
    changed = next(
        (
            hop
            for hop in hops
            if hop["step"] == "published"
            and hop["details"].get("detail_type") == "qbo.entity.changed"
            and hop["details"].get("entity") == "Invoice"
            and str(hop["details"].get("entity_id")) == invoice_id
        ),
        None,
    )
    if changed is None:
        return None
    correlation = changed.get("correlation_id")
    delivery = changed["details"].get("delivery_id")
    webhook = next((h for h in hops if h["step"] == "webhook" and h["correlation_id"] == delivery), None)
    deal = next(
        (
            h
            for h in hops
            if h["step"] == "published"
            and h["correlation_id"] == correlation
            and h["details"].get("detail_type") == "ledgerlink.deal.synced"
        ),
        None,
    )
    calendar = next(
        (
            h
            for h in hops
            if h["step"] == "published"
            and h["correlation_id"] == correlation
            and h["details"].get("detail_type") == "ledgerlink.calendar.synced"
        ),
        None,
    )
    if webhook is None or deal is None or calendar is None:
        return None
    start = _at(webhook)
    waits: dict[str, float] = {}
    for queue in ("deal-sync", "calendar-sync"):
        routed = next(
            (
                h
                for h in hops
                if h["step"] == "rule" and h["correlation_id"] == correlation and queue in h["text"]
            ),
            None,
        )
        received = next(
            (
                h
                for h in hops
                if h["step"] == "queue" and h["correlation_id"] == correlation and queue in h["text"]
            ),
            None,
        )
        if routed is not None and received is not None:
            waits[queue] = _at(received) - _at(routed)
    return {"deal": _at(deal) - start, "calendar": _at(calendar) - start, "waits": waits}
