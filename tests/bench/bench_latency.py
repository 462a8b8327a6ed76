"""End-to-end latency on the local stack as `make run` wires it: webhook → deal → Outlook due date → Teams
invite, hop by hop, and what a burst costs in vendor calls.

The whole stack runs with its deployed settings (batching windows included); only the ports are free
ones and the demo activity is off.

1. **Single invoices**: ``LEDGERLINK_BENCH_LATENCY_INVOICES`` (50) invoices are created in the QBO
   sandbox one at a time, each only once the previous one went through the whole chain. Every other
   one is entered already past its due date (the demo's late invoices), so it also gets its Teams
   follow-up meeting. The QBO sandbox delivers each change as a signed webhook to the local gateway.
   From the hop log (``events.jsonl``), per invoice, from the webhook's arrival at the gateway: the
   deal written (``ledgerlink.deal.synced`` published right after the HubSpot writes), the calendar
   event written (``ledgerlink.calendar.synced`` published right after the Graph write) and the
   meeting written (the Teams invite's ``POST …/events`` answered 201); and each hop's share: ingest,
   each queue's wait (rule delivery → the function's receive: what its batching window costs), each
   function's work.
2. **Burst**: ``LEDGERLINK_BENCH_BURST`` (1000) invoices created as fast as QBO takes them, announced
   in webhooks of 100; when every calendar event is written,
   the vendor calls per event of each function and the batch sizes its invocations had — batching
   under load, which the latency settings must not give up.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ledgerlink_local.stack.settings import LocalSettings, Ports
from ledgerlink_local.stack.up import LocalEnvironment, start_environment

INVOICE_STEP = 4  # demo_activity_step(4k) creates an invoice; for odd k it is entered past due
GIVE_UP_SECONDS = 120.0
BURST_GIVE_UP_SECONDS = 900.0
BURST_DELIVERY = 100
FUNCTIONS = ("qbo_ingest", "hubspot_deal_sync", "outlook_calendar_sync", "teams_invite")
_BATCH = re.compile(r"\(batch of (\d+),")


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


def _at(hop: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(hop["at"]).replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return -1.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _changed(hops: list[dict[str, Any]]) -> dict[str, str]:
    """Invoice id -> the correlation id of its qbo.entity.changed event."""
    return {
        str(h["details"].get("entity_id")): h["correlation_id"]
        for h in hops
        if h["step"] == "published" and h["details"].get("detail_type") == "qbo.entity.changed"
    }


def _wait_announced(state_dir: Path, before: int, invoices: set[str]) -> None:
    """Until every one of ``invoices`` was published by the ingest (its webhook delivered)."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline and not invoices <= set(_changed(_hops(state_dir)[before:])):
        time.sleep(0.2)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(_percentile(values, 0.50) * 1000, 1),
        "p95_ms": round(_percentile(values, 0.95) * 1000, 1),
        "max_ms": round(max(values, default=-1.0) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else -1.0,
    }


def main() -> dict[str, Any]:
    invoices = int(os.environ.get("LEDGERLINK_BENCH_LATENCY_INVOICES", "50"))
    burst = int(os.environ.get("LEDGERLINK_BENCH_BURST", "1000"))
    with tempfile.TemporaryDirectory(prefix="ledgerlink-latency-") as state:
        state_dir = Path(state)
        settings = LocalSettings(
            ports=Ports(gateway=0, aws=0, qbo=0, hubspot=0, graph=0), state_dir=state_dir, demo=False
        )
        environment = start_environment(settings, console=None)
        try:
            result = _singles(environment, state_dir, invoices)
            if burst:
                result["burst"] = _burst(environment, state_dir, burst, start_step=INVOICE_STEP * invoices)
            return result
        finally:
            environment.stop()


# ---- single invoices


def _singles(environment: LocalEnvironment, state_dir: Path, invoices: int) -> dict[str, Any]:
    qbo = environment.sandboxes.sandbox("qbo")
    totals: dict[str, list[float]] = {"deal": [], "calendar": [], "meeting": []}
    segments: dict[str, list[float]] = {}
    incomplete = 0
    for index in range(invoices):
        change = qbo.demo_activity_step(INVOICE_STEP * index)
        late = index % 2 == 1
        deadline = time.monotonic() + GIVE_UP_SECONDS
        measured = None
        while time.monotonic() < deadline and measured is None:
            measured = _chain(_hops(state_dir), str(change["id"]), with_meeting=late)
            if measured is None:
                time.sleep(0.05)
        if measured is None:
            incomplete += 1
            continue
        for name, value in measured["totals"].items():
            totals[name].append(value)
        for name, value in measured["segments"].items():
            segments.setdefault(name, []).append(value)
    topology = environment.stack.topology
    assert topology is not None
    windows = {source.queue: source.max_batching_window_seconds for source in topology.queue_sources}
    return {
        "invoices": invoices,
        "invoices_that_did_not_complete": incomplete,
        "webhook_to_deal_written": _summary(totals["deal"]),
        "webhook_to_calendar_event_written": _summary(totals["calendar"]),
        "webhook_to_meeting_written": _summary(totals["meeting"]),
        "batching_window_seconds": windows,
        "hop_by_hop": {name: _summary(values) for name, values in segments.items()},
    }


def _first(hops: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for hop in hops:
        if (
            all(
                (hop.get(key) if key in ("step", "correlation_id") else hop["details"].get(key)) == value
                for key, value in match.items()
                if not key.startswith("_")
            )
            and match.get("_text", "") in hop["text"]
        ):
            return hop
    return None


def _chain(hops: list[dict[str, Any]], invoice_id: str, *, with_meeting: bool) -> dict[str, Any] | None:
    """Seconds from the webhook to each write of one invoice, and per hop; None until complete."""
    changed = next(
        (
            h
            for h in hops
            if h["step"] == "published"
            and h["details"].get("detail_type") == "qbo.entity.changed"
            and h["details"].get("entity") == "Invoice"
            and str(h["details"].get("entity_id")) == invoice_id
        ),
        None,
    )
    if changed is None:
        return None
    correlation = changed["correlation_id"]
    webhook = _first(hops, step="webhook", correlation_id=changed["details"].get("delivery_id"))
    steps = {
        "deal_queued": _first(hops, step="rule", correlation_id=correlation, _text="deal-sync"),
        "deal_received": _first(hops, step="queue", correlation_id=correlation, _text="deal-sync"),
        "deal": _first(
            hops, step="published", correlation_id=correlation, detail_type="ledgerlink.deal.synced"
        ),
        "calendar_queued": _first(hops, step="rule", correlation_id=correlation, _text="calendar-sync"),
        "calendar_received": _first(hops, step="queue", correlation_id=correlation, _text="calendar-sync"),
        "calendar": _first(
            hops, step="published", correlation_id=correlation, detail_type="ledgerlink.calendar.synced"
        ),
    }
    if with_meeting:
        steps.update(
            teams_queued=_first(hops, step="rule", correlation_id=correlation, _text="teams-invite"),
            teams_received=_first(hops, step="queue", correlation_id=correlation, _text="teams-invite"),
            meeting=_first(
                hops,
                step="vendor",
                correlation_id=correlation,
                function="teams_invite",
                _text="/events -> 201",
            ),
        )
    if webhook is None or any(hop is None for hop in steps.values()):
        return None
    t = {name: _at(hop) for name, hop in steps.items() if hop is not None}
    start = _at(webhook)
    segments = {
        "1 gateway -> qbo.entity.changed published (ingest)": _at(changed) - start,
        "2 deal-sync queue wait (rule -> receive)": t["deal_received"] - t["deal_queued"],
        "3 deal sync (receive -> deal.synced published)": t["deal"] - t["deal_received"],
        "4 calendar-sync queue wait": t["calendar_received"] - t["calendar_queued"],
        "5 calendar sync (receive -> calendar.synced published)": t["calendar"] - t["calendar_received"],
    }
    totals = {"deal": t["deal"] - start, "calendar": t["calendar"] - start}
    if with_meeting:
        segments["6 teams-invite queue wait"] = t["teams_received"] - t["teams_queued"]
        segments["7 teams invite (receive -> meeting created)"] = t["meeting"] - t["teams_received"]
        totals["meeting"] = t["meeting"] - start
    return {"totals": totals, "segments": segments}


# ---- burst


def _burst(environment: LocalEnvironment, state_dir: Path, count: int, *, start_step: int) -> dict[str, Any]:
    """``count`` invoices as fast as QBO takes them, announced in webhooks of :data:`BURST_DELIVERY`
    changes: one delivery of a thousand changes outlasted the ingest's 10-second timeout on the local
    stack (moto answers PutEvents far slower than EventBridge), and Intuit's retries come minutes later. Only invoices with future due dates: a burst of overdue ones would fill the
    accounts-receivable mailbox's follow-up slots, which is a different question."""
    qbo = environment.sandboxes.sandbox("qbo")
    before = len(_hops(state_dir))
    started = time.monotonic()
    created: list[str] = []
    for index in range(count):
        # even k: demo_activity_step(4k) is an invoice due in the future
        created.append(str(qbo.demo_activity_step(start_step + 2 * INVOICE_STEP * index)["id"]))
        if len(created) % BURST_DELIVERY == 0:
            _wait_announced(state_dir, before, set(created))
    wanted = set(created)
    done: set[str] = set()
    while done != wanted and time.monotonic() - started < BURST_GIVE_UP_SECONDS:
        hops = _hops(state_dir)[before:]
        published = {
            h["correlation_id"]
            for h in hops
            if h["step"] == "published" and h["details"].get("detail_type") == "ledgerlink.calendar.synced"
        }
        changed = _changed(hops)
        done = {invoice for invoice in wanted if changed.get(invoice) in published}
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    hops = _hops(state_dir)[before:]
    calls: Counter[str] = Counter(h["details"].get("function") for h in hops if h["step"] == "vendor")
    batches: dict[str, list[int]] = {}
    seen: set[tuple[str, str]] = set()
    for hop in hops:
        if hop["step"] != "handler":
            continue
        function = str(hop["details"].get("function"))
        request = str(hop["details"].get("request_id"))
        if (function, request) in seen:
            continue
        seen.add((function, request))
        match = _BATCH.search(hop["text"])
        batches.setdefault(function, []).append(int(match.group(1)) if match else 1)
    return {
        "invoices": count,
        "invoices_through_the_calendar": len(done),
        "seconds_until_every_calendar_event_written": round(elapsed, 1),
        "vendor_calls_per_invoice": {f: round(calls[f] / count, 2) for f in FUNCTIONS if calls[f]},
        "invocations": {f: len(sizes) for f, sizes in batches.items()},
        "mean_batch_size": {f: round(statistics.fmean(sizes), 1) for f, sizes in batches.items() if sizes},
    }
