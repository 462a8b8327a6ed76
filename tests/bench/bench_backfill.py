from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
for _root in (REPO_ROOT / "local", REPO_ROOT / "functions", REPO_ROOT):
    if str(_root) not in sys.path:
        sys.path.insert(0, str(_root))

from tests.bench.bench_deal_sync import (  # noqa: E402 - after the import roots above
    HUBSPOT_SEARCH,
    HUBSPOT_TEN_SECONDLY,
    QBO_LIMITS,
    endpoint,
    floor_seconds,
    invoice_lines,
    request_log,
)

INVOICES_ENV = "LEDGERLINK_BENCH_BACKFILL_INVOICES"
LIVE_ENV = "LEDGERLINK_BENCH_BACKFILL_LIVE"
DEFAULT_INVOICES = 10_000  # issue 14 item 7
DEFAULT_LIVE = 1_000
CUSTOMERS = 500
LIVE_RATE_PER_SECOND = 10.0  # how fast users create the live invoices
BATCH_WINDOW_SECONDS = 1.0  # how long a "Lambda" waits for a fuller batch (the queue source's window)
WEBHOOKS_SETTLE_SECONDS = 120.0  # how long to wait for the sandbox's last webhooks after the last change
ENTITIES = ("Customer", "Invoice")
# Stated in the output, so the numbers are never read as a run against AWS.
WHAT_IS_REAL = {
    "real_http": "QBO and HubSpot sandboxes (local/ledgerlink_local/sandboxes), rate limits on",
    "in_memory": (
        "crosswalk, idempotency ledger, QBO token state, rate-limit logs/slots/breakers "
        "(ledgerlink.deal_sync.stores.InMemoryStores), backfill checkpoint, secrets, bus, raw archive, queue"
    ),
    "why": (
        "moto cost ~70 ms CPU per crosswalk save on this 2-core machine: on moto the ratio measured the "
        "emulator, not LedgerLink (500 invoices: 44.5 x the floor)"
    ),
}


def main(argv: Sequence[str] = ()) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--invoices", type=int, default=int(os.environ.get(INVOICES_ENV, DEFAULT_INVOICES)))
    parser.add_argument("--live", type=int, default=int(os.environ.get(LIVE_ENV, DEFAULT_LIVE)))
    args = parser.parse_args(list(argv))
    from ledgerlink.observability import operator_shell_logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # The flows' JSON lines on stderr, warnings up, as in the operator's shell: stdout is the numbers'.
    with operator_shell_logging("WARNING"), QboCompany(args.invoices) as company:
        result: dict[str, Any] = {
            "what_is_real": WHAT_IS_REAL,
            "invoices_seeded": args.invoices,
            "lines_seeded": company.lines_seeded,
            "customers_seeded": CUSTOMERS,
            "seed_seconds": company.seed_seconds,
            "alone": scenario(company, live_events=0),
        }
        if args.live:
            result["with_live_events"] = scenario(company, live_events=args.live)
    return result


class QboCompany:
    """The QBO sandbox and its demo company, seeded once for both phases (seeding 10,000 invoices
    costs the sandbox minutes of CPU: it checks each new document against the others), with the
    connection's secrets (the refresh token rotates: both phases use the current one)."""

    def __init__(self, invoices: int) -> None:
        self.invoices = invoices
        self.rng = random.Random(invoices * 7)

    def __enter__(self) -> QboCompany:
        from ledgerlink.secrets import InMemorySecretStore
        from ledgerlink_local.sandboxes.core import SandboxServer
        from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID, QboSandbox

        self.sandbox = QboSandbox(rate_limits_enabled=False)
        self.server = SandboxServer(self.sandbox).start()
        self.company: Any = self.sandbox.companies[DEMO_REALM_ID]
        self.realm_id = DEMO_REALM_ID
        self.secrets = InMemorySecretStore(support_secrets())
        started = time.perf_counter()
        self.customers, _, self.lines_seeded = seed(self.server.url, self.invoices, self.rng)
        self.seed_seconds = round(time.perf_counter() - started, 2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def seed(qbo_url: str, invoices: int, rng: random.Random) -> tuple[list[str], list[str], int]:
    """500 customers, then the invoices (1-4 lines each) spread over them, through the sandbox's admin
    seed (no webhooks, no API budget): the customer ids, the invoice ids and the number of lines."""
    import requests

    def post(entities: dict[str, list[dict[str, Any]]]) -> list[str]:
        response = requests.post(f"{qbo_url}/_admin/seed", json={"entities": entities}, timeout=300)
        response.raise_for_status()
        created: list[str] = next(iter(response.json()["created"].values()))
        return created

    customers = post({"Customer": [{"DisplayName": f"Bench Customer {n:03d}"} for n in range(CUSTOMERS)]})
    ids: list[str] = []
    lines_total = 0
    for start in range(0, invoices, 500):
        batch = []
        for n in range(start, min(invoices, start + 500)):
            lines = invoice_lines(rng)
            lines_total += len(lines)
            batch.append(
                {"CustomerRef": {"value": rng.choice(customers)}, "DocNumber": f"BF{n:05d}", "Line": lines}
            )
        ids.extend(post({"Invoice": batch}))
    return customers, ids, lines_total


def support_secrets() -> dict[str, dict[str, str]]:
    from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DEMO_PORTAL_ID
    from ledgerlink_local.sandboxes.qbo import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        DEMO_REALM_ID,
        DEMO_REFRESH_TOKEN,
    )
    from tests.integration import test_deal_sync_support as support

    return {
        support.QBO_SECRET: {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "refresh_token": DEMO_REFRESH_TOKEN,
            "realm_id": DEMO_REALM_ID,
        },
        support.HUBSPOT_SECRET: {"access_token": DEMO_ACCESS_TOKEN, "portal_id": str(DEMO_PORTAL_ID)},
    }


def scenario(qbo_company: QboCompany, *, live_events: int) -> dict[str, Any]:
    """One backfill of the company into a new HubSpot portal over new in-memory stores, with
    ``live_events`` invoices created (and their webhooks delivered) meanwhile."""
    import requests

    from infra.topology import build_topology, environment_from_cdk_json
    from ledgerlink.config import Settings
    from ledgerlink.deal_sync.backfill import BackfillOptions
    from ledgerlink.deal_sync.backfill_checkpoint import MemoryCheckpointStore
    from ledgerlink.deal_sync.backfill_run import build_backfill, run_backfill
    from ledgerlink.deal_sync.factory import DealSyncParts, build_deal_sync
    from ledgerlink.deal_sync.inbox import parse_record
    from ledgerlink.deal_sync.stores import InMemoryStores
    from ledgerlink.hubspot.setup import setup_portal
    from ledgerlink_local.sandboxes.core import SandboxServer
    from ledgerlink_local.sandboxes.hubspot import HubSpotSandbox
    from tests.integration import test_deal_sync_support as support

    topology = build_topology(environment_from_cdk_json("dev"), account="123456789012", region="us-east-1")
    source = topology.queue_sources[0]
    batch_size, workers = source.batch_size, source.max_concurrency or 1
    rng = random.Random(live_events)

    qbo, company, secrets = qbo_company.server, qbo_company.company, qbo_company.secrets
    hubspot = SandboxServer(HubSpotSandbox(rate_limits_enabled=False)).start()
    receiver: WebhookReceiver | None = None
    try:
        settings = Settings.from_env(support.environment(qbo.url, hubspot.url))
        config = support.load_config(support.CONFIG_FILE)
        clock = SleepCountingClock()
        # One deployment's tables, shared by the backfill and the live Lambdas.
        stores = InMemoryStores(settings, clock=clock)

        def live_parts() -> DealSyncParts:
            return build_deal_sync(settings, secrets=secrets, config=config, stores=stores, clock=clock)

        setup = live_parts()
        setup_portal(setup.hubspot)
        setup.close()

        live = LiveTraffic(parse_record, live_parts, batch_size, workers)
        if live_events:
            receiver = WebhookReceiver(config, live.arrive).start()
            requests.patch(f"{qbo.url}/_admin/config", json={"webhook_url": receiver.url}, timeout=10)

        for server in (qbo, hubspot):
            requests.patch(f"{server.url}/_admin/config", json={"rate_limits_enabled": True}, timeout=10)
            requests.delete(f"{server.url}/_admin/requests", timeout=10)

        run = build_backfill(
            settings,
            config,
            support.CONNECTION,
            secrets=secrets,
            options=BackfillOptions(entities=ENTITIES),
            stores=stores,
            store=MemoryCheckpointStore(),
            clock=clock,
        )
        users = LiveInvoices(qbo_company.sandbox, company, qbo_company.customers, live_events, rng)
        started = time.perf_counter()
        cpu_started = time.process_time()
        if live_events:
            live.start()
        users.start()
        checkpoint = run_backfill(run)
        backfill_wall = time.perf_counter() - started
        backfill_slept = clock.slept[threading.current_thread().name]
        users.join()
        live.finish_when(lambda: live.received >= users.created or time.perf_counter() > users.deadline)
        live.join()
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        for server in (qbo, hubspot):
            requests.patch(f"{server.url}/_admin/config", json={"rate_limits_enabled": False}, timeout=10)

        qbo_log, hubspot_log = request_log(qbo.url), request_log(hubspot.url)
        state = requests.get(f"{hubspot.url}/_admin/state", timeout=300).json()
        checker = live_parts()
        try:
            expected = expected_deals(checker, qbo_company.sandbox, company, qbo_company.realm_id)
        finally:
            checker.close()
    finally:
        if receiver is not None:
            receiver.stop()
            requests.patch(f"{qbo.url}/_admin/config", json={"webhook_url": None}, timeout=10)
        hubspot.stop()

    counts = {entity: vars(each) for entity, each in checkpoint.counts.items()}
    report: dict[str, Any] = {
        "invoices_created_live": users.created,
        "invoices_in_company": len(expected),
        "backfill_wall_seconds": round(backfill_wall, 2),
        "process_cpu_seconds": round(cpu, 2),
        "cpu_cores": os.cpu_count(),
        "backfill_counts": counts,
        "backfill_finished": checkpoint.finished,
        "deal_synced_events_published": len(stores.published.envelopes),
        **calls_and_floor(qbo_log, hubspot_log, wall, len(expected)),
        "backfill_wall_breakdown_seconds": {
            # Where the backfill's own thread spent its wall time (alone: every vendor call is its own).
            "waiting_for_rate_limit_room_or_retry": round(backfill_slept, 2),
            "vendors_serving_all_calls": {
                "qbo": round(sum(e["duration_ms"] for e in qbo_log) / 1000, 2),
                "hubspot": round(sum(e["duration_ms"] for e in hubspot_log) / 1000, 2),
            },
        },
        **completeness(state, expected),
    }
    if live_events:
        report["live"] = live.summary(wall, receiver.deliveries if receiver else 0)
    return report


class SleepCountingClock:
    """The system clock, counting the seconds each thread slept in it: the HTTP layer sleeps here for
    room in a rolling window (the client-side rate limiter) and before a retry."""

    def __init__(self) -> None:
        self.slept: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.slept[threading.current_thread().name] += seconds
            time.sleep(seconds)


class LiveInvoices:
    """Users creating invoices in the QBO company at a steady rate, as through QBO's own screens: the
    company's change listener fires (hence the sandbox's signed webhooks), no API call is made."""

    def __init__(self, sandbox: Any, company: Any, customers: list[str], count: int, rng: random.Random):
        self.sandbox, self.company, self.customers, self.count = sandbox, company, customers, count
        self.bodies = [
            {
                "CustomerRef": {"value": rng.choice(customers)},
                "DocNumber": f"LV{n:05d}",
                "Line": invoice_lines(rng),
            }
            for n in range(count)
        ]
        self.created = 0
        self.deadline = float("inf")
        self.thread = threading.Thread(target=self._create, name="qbo-users")

    def start(self) -> None:
        if self.count:
            self.thread.start()

    def join(self) -> None:
        if self.count:
            self.thread.join()

    def _create(self) -> None:
        begin = time.perf_counter()
        for n, body in enumerate(self.bodies):
            due = begin + n / LIVE_RATE_PER_SECOND
            time.sleep(max(0.0, due - time.perf_counter()))
            with self.sandbox.lock:
                self.company.create("Invoice", body)
            self.created += 1
        self.deadline = time.perf_counter() + WEBHOOKS_SETTLE_SECONDS


class WebhookReceiver:
    """The QBO ingest's endpoint: each signed delivery goes through ``ingest_delivery`` (signature,
    parse, archive, publish) and every published event becomes a deal-sync queue record."""

    def __init__(self, config: Any, deliver: Callable[[list[dict[str, Any]]], None]) -> None:
        from ledgerlink.ingest.fakes import InMemoryRawArchive
        from ledgerlink.ingest.service import IngestPorts
        from ledgerlink_local.sandboxes.qbo import DEMO_VERIFIER_TOKEN

        self.deliveries = 0
        self.failures: list[str] = []
        self.ports = IngestPorts(
            verifier_token=lambda: DEMO_VERIFIER_TOKEN,
            archive=InMemoryRawArchive(),
            publisher=QueuePublisher(deliver),
            served=config,
        )
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.ingest(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/qbo"
        self.thread = threading.Thread(target=self.server.serve_forever, name="qbo-ingest", daemon=True)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ingest(self, body: bytes, headers: dict[str, str]) -> int:
        from ledgerlink.ingest.archive import WebhookDelivery
        from ledgerlink.ingest.service import ingest_delivery

        delivery = WebhookDelivery(
            delivery_id=str(uuid.uuid4()), received_at=datetime.now(UTC), headers=headers, body=body
        )
        try:
            ingest_delivery(delivery, self.ports)
        except Exception as error:  # noqa: BLE001 - reported, and answered as the ingest would (retry)
            self.failures.append(f"{type(error).__name__}: {error}"[:200])
            return 500
        self.deliveries += 1
        return 200


class QueuePublisher:
    """EventBridge → the deal-sync queue: each envelope as the SQS record the rule would deliver."""

    def __init__(self, deliver: Callable[[list[dict[str, Any]]], None]) -> None:
        self.deliver = deliver

    def publish(self, envelopes: Sequence[Any]) -> None:
        records = []
        for envelope in envelopes:
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": envelope.detail_type,
                "source": envelope.source,
                "account": "123456789012",
                "time": envelope.occurred_at,
                "region": "us-east-1",
                "resources": [],
                "detail": envelope.detail(),
            }
            records.append(
                {
                    "messageId": str(uuid.uuid4()),
                    "receiptHandle": "rh",
                    "body": json.dumps(event),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ledgerlink-test-deal-sync",
                    "awsRegion": "us-east-1",
                }
            )
        self.deliver(records)


class LiveTraffic:
    """The deal-sync queue and its ``workers`` concurrent "Lambdas", each taking batches of up to
    ``batch_size`` records (waiting up to the batching window for more), as the queue's event source
    runs them."""

    def __init__(self, parse: Any, build: Any, batch_size: int, workers: int):
        self.parse, self.build = parse, build
        self.batch_size, self.workers = batch_size, workers
        self.arrived: list[tuple[float, dict[str, Any]]] = []
        self.received = 0
        self.latencies: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.open = True

    def arrive(self, records: list[dict[str, Any]]) -> None:
        now = time.perf_counter()
        with self.lock:
            self.arrived.extend((now, record) for record in records)
            self.received += len(records)

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self._consume, name=f"lambda-{n}") for n in range(self.workers)
        ]
        for thread in self.threads:
            thread.start()

    def finish_when(self, done: Callable[[], bool]) -> None:
        """Close the queue once ``done()`` (polled; the Lambdas then drain what is left)."""
        while not done():
            time.sleep(0.1)
        with self.lock:
            self.open = False

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _take(self) -> list[tuple[float, dict[str, Any]]] | None:
        first_seen: float | None = None
        while True:
            with self.lock:
                ready = len(self.arrived) >= self.batch_size or not self.open
                if self.arrived and (
                    ready or (first_seen and time.perf_counter() - first_seen >= BATCH_WINDOW_SECONDS)
                ):
                    batch, self.arrived = self.arrived[: self.batch_size], self.arrived[self.batch_size :]
                    return batch
                if not self.arrived and not self.open:
                    return None
                if self.arrived and first_seen is None:
                    first_seen = time.perf_counter()
            time.sleep(0.05)

    def _consume(self) -> None:
        parts = self.build()
        try:
            while (batch := self._take()) is not None:
                result = parts.service.sync([self.parse(r) for _, r in batch], remaining_ms=120_000)
                done = time.perf_counter()
                with self.lock:
                    self.latencies.extend(done - arrived for arrived, _ in batch)
                    for outcome in result.values():
                        self.outcomes[outcome.status.value] += 1
                        if not outcome.ok:
                            self.failures.append(outcome.reason or "")
        finally:
            parts.close()

    def summary(self, wall: float, deliveries: int) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else None

        return {
            "events": self.received,
            "webhook_deliveries": deliveries,
            "arrival_rate_per_second": LIVE_RATE_PER_SECOND,
            "latency_seconds_receipt_to_outcome": {
                "p50": percentile(0.5),
                "p95": percentile(0.95),
                "max": percentile(1.0),
            },
            "outcomes": dict(self.outcomes),
            "failures": self.failures[:5],
            "wall_seconds_until_last_event_settled": round(wall, 2),
        }


def calls_and_floor(
    qbo_log: list[dict[str, Any]], hubspot_log: list[dict[str, Any]], wall: float, invoices: int
) -> dict[str, Any]:
    """Vendor calls from the sandboxes' request logs and the floor their limits set for them."""
    qbo_api = [e for e in qbo_log if e["path"].startswith("/v3/")]
    search = [e for e in hubspot_log if e["path"].endswith("/search")]
    floor_qbo = floor_seconds(len(qbo_api), QBO_LIMITS)
    floor_hubspot = max(
        floor_seconds(len(hubspot_log) - len(search), (HUBSPOT_TEN_SECONDLY,)),
        floor_seconds(len(search), (HUBSPOT_SEARCH,)),
    )
    floor = max(floor_qbo, floor_hubspot)
    return {
        "vendor_calls": {
            "qbo": len(qbo_log),
            "hubspot": len(hubspot_log),
            "qbo_per_invoice": round(len(qbo_log) / max(1, invoices), 4),
            "hubspot_per_invoice": round(len(hubspot_log) / max(1, invoices), 4),
            "qbo_by_endpoint": dict(Counter(endpoint(e) for e in qbo_log).most_common()),
            "hubspot_by_endpoint": dict(Counter(endpoint(e) for e in hubspot_log).most_common()),
        },
        "responses_429": {
            "qbo": sum(1 for e in qbo_log if e["status"] == 429),
            "hubspot": sum(1 for e in hubspot_log if e["status"] == 429),
        },
        "other_error_responses": sum(
            1 for e in [*qbo_log, *hubspot_log] if e["status"] >= 400 and e["status"] != 429
        ),
        "wall_seconds": round(wall, 2),
        "floor_seconds": {"qbo": floor_qbo, "hubspot": floor_hubspot, "overall": floor},
        "wall_over_floor": round(wall / floor, 2) if floor else None,
    }


def expected_deals(parts: Any, sandbox: Any, company: Any, realm_id: str) -> dict[str, dict[str, Any]]:
    """What the mapping makes of each QBO invoice (``map_invoice``, as the deal sync calls it): the deal's
    key and amount and its line items' keys and amounts, by the deal's ``qbo_invoice_id``."""
    from ledgerlink.deal_sync.mapping import map_invoice

    service = parts.only.service
    context = service.context(realm_id)
    now = datetime.now(UTC)
    with sandbox.lock:
        invoices = [dict(each) for each in company.objects["Invoice"].values()]
    expected: dict[str, dict[str, Any]] = {}
    for invoice in invoices:
        mapped = map_invoice(invoice, context, service.config.invoice_stages, now=now)
        expected[mapped.deal.id] = {
            "qbo_total": Decimal(str(invoice["TotalAmt"])),
            "amount": Decimal(mapped.deal.properties["amount"]),
            "line_items": {item.id: Decimal(item.properties["amount"]) for item in mapped.line_items},
        }
    return expected


def completeness(state: dict[str, Any], expected: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """From the HubSpot sandbox's state: each invoice has exactly one deal (archived ones counted, so a
    deal written twice shows) whose amount is the mapping's (and QBO's TotalAmt), and whose live line
    items are exactly the mapping's, with its amounts; no line item key is on two items."""
    deals_by_invoice: dict[str, list[dict[str, Any]]] = {}
    for deal in state["objects"]["deals"]:
        key = deal["properties"].get("qbo_invoice_id")
        if key:
            deals_by_invoice.setdefault(key, []).append(deal)
    items = {i["id"]: i for i in state["objects"]["line_items"]}
    on_deal: dict[str, set[str]] = {}
    for association in state["associations"]:
        if association["fromObjectType"] == "deals" and association["toObjectType"] == "line_items":
            on_deal.setdefault(str(association["fromObjectId"]), set()).add(str(association["toObjectId"]))
    line_keys = Counter(
        i["properties"].get("qbo_line_id") for i in items.values() if i["properties"].get("qbo_line_id")
    )
    one_deal = amount_ok = lines_ok = 0
    for key, want in expected.items():
        deals = deals_by_invoice.get(key, [])
        if len(deals) != 1 or deals[0]["archived"]:
            continue
        one_deal += 1
        deal = deals[0]
        amount = Decimal(deal["properties"]["amount"])
        amount_ok += amount == want["amount"] == want["qbo_total"]
        live = {
            items[i]["properties"]["qbo_line_id"]: Decimal(items[i]["properties"]["amount"])
            for i in on_deal.get(str(deal["id"]), ())
            if i in items and not items[i]["archived"]
        }
        lines_ok += live == want["line_items"]
    return {
        "completeness": {
            "invoices": len(expected),
            "with_exactly_one_deal": one_deal,
            "deal_amount_is_mapped_and_qbo_total": amount_ok,
            "line_items_exactly_the_mapped_ones": lines_ok,
            "invoices_with_two_or_more_deals": sum(1 for d in deals_by_invoice.values() if len(d) > 1),
            "line_items_created": len(items),
            "line_items_mapped": sum(len(want["line_items"]) for want in expected.values()),
            "line_keys_on_two_or_more_items": sum(1 for n in line_keys.values() if n > 1),
            "complete": one_deal == amount_ok == lines_ok == len(expected),
        }
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
