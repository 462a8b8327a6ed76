"""Backfill: N invoices (1-4 lines each, 500 customers) from the QBO sandbox into the HubSpot sandbox
with both vendors' real limits on, alone and next to 1,000 live webhook events.

Setup (not measured): the sandboxes start in this process with rate limits off; the QBO demo company
gets 500 customers and ``LEDGERLINK_BENCH_BACKFILL_INVOICES`` (default 10,000) invoices through
``/_admin/seed`` (no webhooks); the HubSpot portal gets LedgerLink's properties (``setup_portal``); the
tables, bus and secrets live in moto in-process (``mock_aws``: the threaded moto server cost most of
the CPU in bench_deal_sync, and no EventBridge capture rule is needed here, so none is made). Then the
sandboxes' limits go ON (``PATCH /_admin/config {"rate_limits_enabled": true}``: QBO 500 per rolling
minute and 10 per rolling second per realm; HubSpot 100 per rolling 10 s for every call but search,
search 5 per rolling second) and their request logs are cleared.

Measured: the backfill the ``ledgerlink backfill`` command runs (``build_backfill`` + ``run_backfill``
over Customer and Invoice, the command's defaults otherwise). Reported: wall seconds; the floor the
vendors' limits set for the calls counted in the sandboxes' request logs (bench_deal_sync's
``floor_seconds`` per limit, the largest); wall over floor (goal <= 1.5); vendor calls per invoice, per
vendor and per endpoint; 429s (goal 0); and completeness from the HubSpot sandbox's state: every
invoice has exactly one deal (archived ones counted), whose amount is QBO's and whose line items (each
QBO line once) add up to it.

Phase 2 (``live``): a fresh data set (``LEDGERLINK_BENCH_BACKFILL_LIVE_INVOICES`` invoices, default
2,000) backfilled while ``LEDGERLINK_BENCH_BACKFILL_LIVE`` (default 1,000) live ``qbo.entity.changed``
events arrive at a steady rate, as webhooks would, for invoices the backfill also reads (the overlap
is the point: nothing may be written twice). They are processed as the deal-sync queue's event source
would, by its ``max_concurrency`` "Lambdas" built by ``ledgerlink.deal_sync.factory``, in batches of up
to its batch size, sharing the backfill's rate limits through the same tables. Reported: backfill wall,
live event latency (arrival to its batch's outcome) p50/p95, 429s, and the same completeness check.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
for _root in (REPO_ROOT / "local", REPO_ROOT / "functions", REPO_ROOT):
    if str(_root) not in sys.path:
        sys.path.insert(0, str(_root))

from tests.bench.bench_deal_sync import (  # noqa: E402 - after the import roots above
    HUBSPOT_SEARCH,
    HUBSPOT_TEN_SECONDLY,
    ITEMS,
    QBO_LIMITS,
    endpoint,
    floor_seconds,
    request_log,
)

INVOICES_ENV = "LEDGERLINK_BENCH_BACKFILL_INVOICES"
LIVE_ENV = "LEDGERLINK_BENCH_BACKFILL_LIVE"
LIVE_INVOICES_ENV = "LEDGERLINK_BENCH_BACKFILL_LIVE_INVOICES"
CUSTOMERS = 500
LIVE_RATE_PER_SECOND = 10.0  # how fast the live events arrive
BATCH_WINDOW_SECONDS = 1.0  # how long a "Lambda" waits for a fuller batch (SQS batching window)
ENTITIES = ("Customer", "Invoice")


def main() -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    invoices = int(os.environ.get(INVOICES_ENV, "10000"))
    live = int(os.environ.get(LIVE_ENV, "1000"))
    live_invoices = int(os.environ.get(LIVE_INVOICES_ENV, "2000"))
    result: dict[str, Any] = {"alone": scenario(invoices, live_events=0)}
    if live:
        result["with_live_events"] = scenario(live_invoices, live_events=live)
    return result


def seed(qbo_url: str, invoices: int, rng: random.Random) -> tuple[list[str], int]:
    """500 customers, then the invoices (1-4 lines each) spread over them; the invoice ids and the
    number of lines."""
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
            lines = []
            for _ in range(rng.randint(1, 4)):
                item, price = rng.choice(ITEMS)
                quantity = rng.randint(1, 12)
                lines.append(
                    {
                        "Amount": str(Decimal(price) * quantity),
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item},
                            "Qty": quantity,
                            "UnitPrice": price,
                        },
                    }
                )
            lines_total += len(lines)
            batch.append(
                {"CustomerRef": {"value": rng.choice(customers)}, "DocNumber": f"BF{n:05d}", "Line": lines}
            )
        ids.extend(post({"Invoice": batch}))
    return ids, lines_total


def create_aws() -> dict[str, Any]:
    """The deal sync's tables, its bus (no rules: nothing needs the deal.synced events here) and the
    connection's two secrets, as tests/integration/test_deal_sync_support.py makes them."""
    import boto3

    from ledgerlink.tables import IDEMPOTENCY, LINKS, LINKS_OWED_BY_DUE_DATE, VENDOR_STATE
    from tests.aws_fixtures import create_tables
    from tests.integration import test_deal_sync_support as support

    dynamodb = boto3.client("dynamodb", region_name=support.REGION)
    create_tables(
        dynamodb,
        (
            (support.TABLES["idempotency"], IDEMPOTENCY),
            (support.TABLES["links"], LINKS),
            (support.TABLES["vendor-state"], VENDOR_STATE),
        ),
        indexes={support.TABLES["links"]: (LINKS_OWED_BY_DUE_DATE,)},
    )
    events = boto3.client("events", region_name=support.REGION)
    events.create_event_bus(Name=support.BUS)
    secretsmanager = boto3.client("secretsmanager", region_name=support.REGION)
    for name, value in support_secrets().items():
        secretsmanager.create_secret(Name=name, SecretString=json.dumps(value))
    return {"dynamodb": dynamodb, "events": events, "secretsmanager": secretsmanager}


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


def scenario(invoices: int, *, live_events: int) -> dict[str, Any]:
    import requests
    from moto import mock_aws

    from infra.topology import build_topology, environment_from_cdk_json
    from ledgerlink.config import Settings
    from ledgerlink.deal_sync.backfill import BackfillOptions
    from ledgerlink.deal_sync.backfill_run import build_backfill, run_backfill
    from ledgerlink.deal_sync.factory import build_deal_sync
    from ledgerlink.deal_sync.inbox import parse_record
    from ledgerlink.hubspot.setup import setup_portal
    from ledgerlink.secrets import PowertoolsSecretStore
    from ledgerlink_local.sandboxes.core import SandboxServer
    from ledgerlink_local.sandboxes.hubspot import HubSpotSandbox
    from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID, QboSandbox
    from tests.integration import test_deal_sync_support as support

    topology = build_topology(environment_from_cdk_json("dev"), account="123456789012", region="us-east-1")
    source = topology.queue_sources[0]
    batch_size, workers = source.batch_size, source.max_concurrency or 1
    rng = random.Random(invoices * 7 + live_events)

    qbo = SandboxServer(QboSandbox(rate_limits_enabled=False)).start()
    hubspot = SandboxServer(HubSpotSandbox(rate_limits_enabled=False)).start()
    saved_env = {
        k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": support.REGION}
    )
    try:
        with mock_aws():
            import boto3

            create_aws()
            settings = Settings.from_env(support.environment(qbo.url, hubspot.url))
            config = support.load_config(support.CONFIG_FILE)
            seed_started = time.perf_counter()
            invoice_ids, lines_seeded = seed(qbo.url, invoices, rng)
            seed_seconds = time.perf_counter() - seed_started

            def secrets() -> PowertoolsSecretStore:
                return PowertoolsSecretStore(max_age_seconds=300, client=boto3.client("secretsmanager"))

            def live_parts() -> Any:
                return build_deal_sync(
                    settings,
                    secrets=secrets(),
                    config=config,
                    dynamodb=boto3.client("dynamodb"),
                    events=boto3.client("events"),
                    publisher_sleep=lambda seconds: None,
                )

            setup = live_parts()
            setup_portal(setup.hubspot)
            setup.close()

            company = qbo.sandbox.companies[DEMO_REALM_ID]  # type: ignore[attr-defined]
            all_invoices = sorted(company.objects["Invoice"])  # the demo company's own ones too
            world = support.DealSyncWorld(
                qbo, hubspot, {}, settings, setup, support.Capture(), support.RecordingMetrics()
            )
            live_records = [
                world.record("Invoice", invoice_id, "Create")
                for invoice_id in rng.sample(invoice_ids, min(live_events, len(invoice_ids)))
            ]

            for server in (qbo, hubspot):
                requests.patch(f"{server.url}/_admin/config", json={"rate_limits_enabled": True}, timeout=10)
                requests.delete(f"{server.url}/_admin/requests", timeout=10)

            run = build_backfill(
                settings,
                config,
                support.CONNECTION,
                secrets=secrets(),
                options=BackfillOptions(entities=ENTITIES),
                dynamodb=boto3.client("dynamodb"),
                events=boto3.client("events"),
            )
            live = LiveTraffic(live_records, parse_record, live_parts, batch_size, workers)
            started = time.perf_counter()
            cpu_started = time.process_time()
            live.start()
            checkpoint = run_backfill(run)
            backfill_wall = time.perf_counter() - started
            live.join()
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            for server in (qbo, hubspot):
                requests.patch(f"{server.url}/_admin/config", json={"rate_limits_enabled": False}, timeout=10)

            qbo_log, hubspot_log = request_log(qbo.url), request_log(hubspot.url)
            state = requests.get(f"{hubspot.url}/_admin/state", timeout=300).json()
            with qbo.sandbox.lock:  # type: ignore[attr-defined]
                totals = {i: Decimal(str(company.objects["Invoice"][i]["TotalAmt"])) for i in all_invoices}
                lines = {
                    i: sum(
                        1
                        for line in company.objects["Invoice"][i]["Line"]
                        if line.get("DetailType") == "SalesItemLineDetail"
                    )
                    for i in all_invoices
                }
    finally:
        qbo.stop()
        hubspot.stop()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    counts = {entity: vars(each) for entity, each in checkpoint.counts.items()}
    report: dict[str, Any] = {
        "invoices_seeded": invoices,
        "invoices_in_company": len(all_invoices),
        "lines_seeded": lines_seeded,
        "customers_seeded": CUSTOMERS,
        "seed_seconds": round(seed_seconds, 2),
        "backfill_wall_seconds": round(backfill_wall, 2),
        "process_cpu_seconds": round(cpu, 2),
        "cpu_cores": os.cpu_count(),
        "backfill_counts": counts,
        "backfill_finished": checkpoint.finished,
        **calls_and_floor(
            qbo_log, hubspot_log, backfill_wall if not live_events else wall, len(all_invoices)
        ),
        **completeness(state, DEMO_REALM_ID, totals, lines),
    }
    if live_events:
        report["live"] = live.summary(wall)
    return report


class LiveTraffic:
    """Live qbo.entity.changed events arriving at a steady rate, taken by ``workers`` concurrent
    "Lambdas" in batches of up to ``batch_size`` (each waiting up to the batching window for more), as
    the deal-sync queue's event source runs them."""

    def __init__(self, records: list[dict[str, Any]], parse: Any, build: Any, batch_size: int, workers: int):
        self.records, self.parse, self.build = records, parse, build
        self.batch_size, self.workers = batch_size, workers
        self.arrived: list[tuple[float, dict[str, Any]]] = []
        self.latencies: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.producing = bool(records)

    def start(self) -> None:
        if not self.records:
            return
        self.threads = [threading.Thread(target=self._produce, name="webhooks")]
        self.threads += [
            threading.Thread(target=self._consume, name=f"lambda-{n}") for n in range(self.workers)
        ]
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _produce(self) -> None:
        begin = time.perf_counter()
        for n, record in enumerate(self.records):
            due = begin + n / LIVE_RATE_PER_SECOND
            time.sleep(max(0.0, due - time.perf_counter()))
            with self.lock:
                self.arrived.append((time.perf_counter(), record))
        with self.lock:
            self.producing = False

    def _take(self) -> list[tuple[float, dict[str, Any]]] | None:
        first_seen: float | None = None
        while True:
            with self.lock:
                ready = len(self.arrived) >= self.batch_size or not self.producing
                if self.arrived and (
                    ready or (first_seen and time.perf_counter() - first_seen >= BATCH_WINDOW_SECONDS)
                ):
                    batch, self.arrived = self.arrived[: self.batch_size], self.arrived[self.batch_size :]
                    return batch
                if not self.arrived and not self.producing:
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

    def summary(self, wall: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def percentile(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else None

        return {
            "events": len(self.records),
            "arrival_rate_per_second": LIVE_RATE_PER_SECOND,
            "latency_seconds": {"p50": percentile(0.5), "p95": percentile(0.95), "max": percentile(1.0)},
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


def completeness(
    state: dict[str, Any], realm_id: str, totals: dict[str, Decimal], lines: dict[str, int]
) -> dict[str, Any]:
    """From the HubSpot sandbox's state: each invoice has exactly one deal (archived ones counted, so a
    deal written twice shows), its amount is QBO's TotalAmt, and it has one live line item per QBO line
    adding up to that amount; no line item was created twice."""
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
    for invoice_id, total in totals.items():
        deals = deals_by_invoice.get(f"{realm_id}:{invoice_id}", [])
        if len(deals) != 1 or deals[0]["archived"]:
            continue
        one_deal += 1
        deal = deals[0]
        amount = Decimal(deal["properties"]["amount"])
        amount_ok += amount == total
        live = [
            items[i]["properties"]
            for i in on_deal.get(str(deal["id"]), ())
            if i in items and not items[i]["archived"]
        ]
        added = sum((Decimal(p["price"]) * Decimal(p["quantity"]) for p in live), Decimal(0))
        lines_ok += len(live) == lines[invoice_id] and added == amount
    return {
        "completeness": {
            "invoices": len(totals),
            "with_exactly_one_deal": one_deal,
            "deal_amount_is_qbo_total": amount_ok,
            "line_items_one_per_line_and_add_up": lines_ok,
            "invoices_with_two_or_more_deals": sum(1 for d in deals_by_invoice.values() if len(d) > 1),
            "line_items_created": len(items),
            "line_keys_on_two_or_more_items": sum(1 for n in line_keys.values() if n > 1),
            "complete": one_deal == amount_ok == lines_ok == len(totals),
        }
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
