"""QBO ingest: CPU throughput of one delivery's path, and the import time of every handler module.

Throughput covers everything the Lambda does for a delivery except the network: signature check,
JSON parse, schema validation, event building and validation, the archive document. S3 and
EventBridge are the in-memory fakes; log lines are formatted as in Lambda but written to /dev/null.
The process is pinned to one core. Import time is ``python -X importtime -c "import <pkg>.handler"``
in a fresh interpreter with PYTHONPATH=functions: the cumulative microseconds of the top-level
imports the statement triggered (the package and the handler), median of several runs.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
FUNCTIONS = REPO_ROOT / "functions"
WEBHOOKS = REPO_ROOT / "tests" / "fixtures" / "qbo_webhooks"
VERIFIER_TOKEN = "bench-verifier-token"
IMPORT_TARGET_MS = 250
IMPORT_RUNS = 7
MAX_DELIVERY_BYTES = 1024 * 1024

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with _one_core():
        results["throughput"] = _throughput()
        results["max_size_delivery"] = _max_size_delivery()
    results["import_time"] = {name: _import_time(name) for name in _handler_modules()}
    return results


def _throughput() -> dict[str, Any]:
    from ledgerlink.qbo.webhooks import compute_signature

    per_fixture: dict[str, Any] = {}
    for fixture in (
        "cloudevents_invoice_created.json",
        "cloudevents_multi_realm.json",
        "legacy_multi_realm.json",
    ):
        body = (WEBHOOKS / fixture).read_bytes()
        ingest, events = _ingestor(body, compute_signature(VERIFIER_TOKEN, body))
        ingest()  # warm the compiled schemas and caches, as a warm Lambda container has them
        timings = _time_repeatedly(ingest, seconds=1.5)
        per_fixture[fixture.removesuffix(".json")] = {
            "events_per_delivery": events(),
            "deliveries_per_second": round(len(timings) / sum(timings)),
            "events_per_second": round(len(timings) * events() / sum(timings)),
            "p50_us": round(statistics.median(timings) * 1e6),
            "p99_us": round(statistics.quantiles(timings, n=100)[98] * 1e6),
        }
    return per_fixture


def _max_size_delivery() -> dict[str, Any]:
    """A CloudEvents delivery as close to the 1 MiB limit as whole events allow: CPU time to ingest."""
    from ledgerlink.qbo.webhooks import compute_signature

    template = json.loads((WEBHOOKS / "cloudevents_multi_realm.json").read_bytes())[0]
    events: list[dict[str, Any]] = []
    size = 2
    while True:
        event = {
            **template,
            "id": f"{template['id']}-{len(events)}",
            "intuitentityid": str(10_000 + len(events)),
        }
        event_size = len(json.dumps(event)) + 2
        if size + event_size > MAX_DELIVERY_BYTES:
            break
        events.append(event)
        size += event_size
    body = json.dumps(events).encode()
    ingest, _ = _ingestor(body, compute_signature(VERIFIER_TOKEN, body))
    ingest()
    timings = _time_repeatedly(ingest, seconds=3.0, at_least=3)
    return {
        "body_bytes": len(body),
        "events": len(events),
        "p50_ms": round(statistics.median(timings) * 1e3, 1),
        "max_ms": round(max(timings) * 1e3, 1),
        "note": "CPU only; the real Lambda adds one S3 PUT and ceil(events/10) PutEvents calls",
    }


def _ingestor(body: bytes, signature: str) -> tuple[Callable[[], None], Callable[[], int]]:
    """A function that ingests ``body`` once with fresh in-memory ports, and the event count it saw."""
    from ledgerlink.ingest.fakes import InMemoryEventPublisher, InMemoryRawArchive
    from ledgerlink.ingest.service import IngestPorts, WebhookDelivery, ingest_delivery
    from ledgerlink.observability import Service, get_logger

    handler = get_logger(Service.QBO_INGEST).registered_handler
    handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115 - lives as long as the bench
    delivery = WebhookDelivery(
        delivery_id="Bq9kTgYcIAMEbXw=",
        received_at=datetime(2026, 11, 25, 14, 2, 52, tzinfo=UTC),
        headers={"intuit-signature": signature, "content-type": "application/json"},
        body=body,
    )
    last_count = [0]

    def ingest() -> None:
        publisher = InMemoryEventPublisher()
        ports = IngestPorts(
            verifier_token=lambda: VERIFIER_TOKEN, archive=InMemoryRawArchive(), publisher=publisher
        )
        ingest_delivery(delivery, ports)
        last_count[0] = len(publisher.entries)

    return ingest, lambda: last_count[0]


def _time_repeatedly(action: Callable[[], None], seconds: float, at_least: int = 20) -> list[float]:
    timings: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(timings) < at_least:
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return timings


def _handler_modules() -> list[str]:
    return sorted(path.parent.name for path in FUNCTIONS.glob("*/handler.py"))


def _import_time(package: str) -> dict[str, Any]:
    module = f"{package}.handler"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(FUNCTIONS),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    runs_ms: list[float] = []
    dev_only_ms: list[float] = []
    for _ in range(IMPORT_RUNS):
        completed = subprocess.run(  # noqa: S603 - our own interpreter on our own module name
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=environment,
            cwd=REPO_ROOT,
            check=False,
        )
        if completed.returncode != 0:
            last_line = completed.stderr.strip().splitlines()[-1] if completed.stderr else "import failed"
            return {"error": last_line}
        runs_ms.append(_top_level_cumulative_us(completed.stderr, package) / 1000)
        dev_only_ms.append(_editable_finder_us(completed.stderr) / 1000)
    median = statistics.median(runs_ms)
    without_finder = [total - dev for total, dev in zip(runs_ms, dev_only_ms, strict=True)]
    return {
        "median_ms": round(median, 1),
        "min_ms": round(min(runs_ms), 1),
        # The checkout's editable install adds a finder module to the first ledgerlink import; a
        # Lambda asset has no such thing, so this is the same median without it, for comparison.
        "median_ms_without_editable_finder": round(statistics.median(without_finder), 1),
        "runs": IMPORT_RUNS,
        "target_ms": IMPORT_TARGET_MS,
        "meets_target": median < IMPORT_TARGET_MS,
        "largest_imports_ms": _largest_children(completed.stderr, package),
    }


def _top_level_cumulative_us(importtime_output: str, package: str) -> int:
    """Sum of the cumulative times of the un-indented lines for ``package`` and its submodules.

    Interpreter start-up imports (site, encodings) are also un-indented but belong to other packages.
    """
    total = 0
    for line in importtime_output.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 1:
            name = match.group(4)
            if name == package or name.startswith(f"{package}."):
                total += int(match.group(2))
    return total


def _editable_finder_us(importtime_output: str) -> int:
    total = 0
    for line in importtime_output.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) > 1 and match.group(4).startswith("__editable__"):
            total += int(match.group(2))
    return total


def _largest_children(importtime_output: str, package: str, count: int = 5) -> dict[str, float]:
    """The direct imports of the handler that cost the most (where the time goes)."""
    children: dict[str, int] = {}
    for line in importtime_output.splitlines():
        match = _IMPORT_LINE.match(line)
        if match and len(match.group(3)) == 3:
            children[match.group(4)] = int(match.group(2))
    largest = sorted(children.items(), key=lambda item: item[1], reverse=True)[:count]
    return {name: round(us / 1000, 1) for name, us in largest}


class _one_core:
    """Pin this process to one CPU for the throughput numbers (where the OS allows it)."""

    def __enter__(self) -> None:
        self._previous: set[int] | None = None
        if hasattr(os, "sched_setaffinity"):
            self._previous = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(self._previous)})

    def __exit__(self, *_: object) -> None:
        if self._previous is not None:
            os.sched_setaffinity(0, self._previous)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
