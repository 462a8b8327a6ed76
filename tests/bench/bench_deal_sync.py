"""Deal sync: 1,000 invoice-change events against the QBO and HubSpot sandboxes with their real limits.

Setup (not measured): the sandboxes start in this process; 1,000 invoices are created in the QBO demo
company with rate limits off (``/_admin/seed``, 1-4 lines each, the demo customers and items); the
HubSpot portal gets LedgerLink's properties (``setup_portal``); a moto server holds the tables, the bus
and the secrets. Then rate limits go back ON (QBO 500 per rolling minute and 10 per rolling second per
realm; HubSpot 100 per rolling 10 s for every call but search, v4 associations included, and search 5
per rolling second) and the request logs are cleared.

Measured twice: the 1,000 ``qbo.entity.changed`` Create events (new deals), then, after one change
to each invoice in QBO (a line's quantity, an added line or a removed line, a third each), their
1,000 Update events (existing deals: their line items are found, updated, created and archived by
id, line items having no unique property; docs/mapping.md). Rate limits are ON while each phase runs,
off for the edits between them. Each time the events go in SQS batches of the topology's batch size
(100), processed by as many concurrent "Lambdas" as the event source allows (``max_concurrency``, 5), each
built by ``ledgerlink.deal_sync.factory`` like the real handler, sharing rate limits, breaker, OAuth token
and tables through moto. Reported:

- vendor calls, from the sandboxes' request logs, per vendor and per endpoint, against 3 calls per
  event for a record-by-record integration (read the invoice, upsert the deal, write its line items);
- wall time against the floor the vendors' limits allow for those calls: for each limit,
  ``(ceil(calls / limit) - 1) * window`` (the first window's worth goes at once), the largest of
  them, with every HubSpot call but search counted against the 10-second limit (as the sandbox and
  the client count them; docs/http-layer.md#rate-limits); and the same floor for the
  record-by-record integration's 3,000 calls;
- 429 responses the vendors sent (the goal is zero), and whether every invoice ended as a deal whose
  amount equals QBO's TotalAmt and whose line items (each line once) add up to it;
- the client-side rate limiter's DynamoDB requests per vendor call (reads, writes, lost races).

Where the CPU goes (measured once with per-thread CPU clocks, moto 5.2.5): about 78% in the moto
server (DynamoDB UpdateItem's expression validation, and EventBridge delivering every deal.synced
event to the test capture queue), 19% in the "Lambdas" (mostly botocore and urllib3 marshalling
DynamoDB calls; LedgerLink's own code is ~1%), 3% in the vendor sandboxes. So wall time here says
little about production; the call counts and the 429s do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
for _root in (REPO_ROOT / "local", REPO_ROOT / "functions", REPO_ROOT):
    if str(_root) not in sys.path:
        sys.path.insert(0, str(_root))

EVENTS = 1000
RECORD_BY_RECORD_CALLS_PER_EVENT = 3
QBO_LIMITS = ((10, 1.0), (500, 60.0))  # per realm (api-notes §2)
HUBSPOT_TEN_SECONDLY = (100, 10.0)  # OAuth apps / Starter (api-notes §3f); the sandbox's default
HUBSPOT_SEARCH = (5, 1.0)
CUSTOMERS = ("1", "2", "3", "4", "5", "6", "7")
ITEMS = (("3", "450"), ("4", "150"), ("7", "129"), ("8", "59.99"))


def floor_seconds(calls: int, limits: tuple[tuple[int, float], ...]) -> float:
    """The least time ``calls`` need under every (limit, window) at once: the first window's worth goes
    immediately, each further window's worth one window later."""
    if calls <= 0:
        return 0.0
    return max((math.ceil(calls / limit) - 1) * window for limit, window in limits)


class RateLimitTableRequests:
    """Counts the rate limiter's GetItem and PutItem calls (and lost PutItems) on watched boto3 clients."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def watch(self, client: Any) -> None:
        for operation in ("GetItem", "PutItem"):
            client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", self._before)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self._after)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        key = params.get("Key") or params.get("Item") or {}
        if str(key.get("pk", {}).get("S", "")).startswith("ratelimit#"):
            context["ledgerlink_rate_limit"] = model.name

    def _after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        operation = context.get("ledgerlink_rate_limit")
        if operation is None:
            return
        lost = parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        with self._lock:
            self.counts[operation] += 1
            if lost:
                self.counts["PutItem lost"] += 1

    def summary(self, vendor_calls: int) -> dict[str, Any]:
        with self._lock:
            counts = dict(self.counts)
        per_call = {name: round(count / max(1, vendor_calls), 3) for name, count in counts.items()}
        return {"requests": counts, "per_vendor_call": per_call}


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    import requests

    # moto's backends are process-wide: a second server in this process would see the first's tables.
    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=10).raise_for_status()
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def invoice_lines(rng: random.Random) -> list[dict[str, Any]]:
    """1-4 sales lines of the demo company's items, 1-12 of each."""
    lines = []
    for _ in range(rng.randint(1, 4)):
        item, price = rng.choice(ITEMS)
        quantity = rng.randint(1, 12)
        lines.append(
            {
                "Amount": str(Decimal(price) * quantity),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": quantity, "UnitPrice": price},
            }
        )
    return lines


def seed_invoices(qbo_url: str, count: int) -> list[str]:
    import requests

    rng = random.Random(1000)
    invoices = []
    for n in range(count):
        lines = invoice_lines(rng)
        invoices.append(
            {"CustomerRef": {"value": rng.choice(CUSTOMERS)}, "DocNumber": f"B{n:05d}", "Line": lines}
        )
    created: list[str] = []
    for start in range(0, count, 250):
        response = requests.post(
            f"{qbo_url}/_admin/seed",
            json={"entities": {"Invoice": invoices[start : start + 250]}},
            timeout=120,
        )
        response.raise_for_status()
        created.extend(response.json()["created"]["Invoice"])
    return created


def request_log(url: str) -> list[dict[str, Any]]:
    import requests

    entries: list[dict[str, Any]] = requests.get(f"{url}/_admin/requests", timeout=30).json()["requests"]
    return entries


def endpoint(entry: dict[str, Any]) -> str:
    parts = entry["path"].strip("/").split("/")
    if parts[:2] == ["v3", "company"] and len(parts) >= 4:
        parts = ["v3", "company", "{realm}", *parts[3:]]
    return f"{entry['method']} /{'/'.join(parts)}"


def main() -> dict[str, Any]:
    """Two runs, both with the vendors' own figures as client-side limits (rolling windows): the
    default headroom, and none, to show whether the rolling windows alone keep the vendors' 429s away
    here and what the margin costs in wall time."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return {
        "default_limits": run({}),
        "default_limits_no_headroom": run({"LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS": "0"}),
    }


def run(overrides: dict[str, str]) -> dict[str, Any]:
    import requests

    from infra.topology import build_topology, environment_from_cdk_json
    from ledgerlink.config import Settings
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

    qbo = SandboxServer(QboSandbox(rate_limits_enabled=False)).start()
    hubspot = SandboxServer(HubSpotSandbox(rate_limits_enabled=False)).start()
    try:
        with moto_server():
            import boto3

            aws = support.create_aws_resources()
            settings = Settings.from_env({**support.environment(qbo.url, hubspot.url), **overrides})

            seed_started = time.perf_counter()
            invoice_ids = seed_invoices(qbo.url, EVENTS)
            seed_seconds = time.perf_counter() - seed_started

            limiter_requests = RateLimitTableRequests()

            def lambda_parts() -> Any:
                dynamodb = boto3.client("dynamodb")
                limiter_requests.watch(dynamodb)
                return build_deal_sync(
                    settings,
                    secrets=PowertoolsSecretStore(max_age_seconds=300, client=boto3.client("secretsmanager")),
                    config=support.load_config(support.CONFIG_FILE),
                    dynamodb=dynamodb,
                    events=boto3.client("events"),
                    publisher_sleep=lambda seconds: None,
                )

            setup = lambda_parts()
            setup_portal(setup.hubspot)
            setup.close()

            world = support.DealSyncWorld(
                qbo, hubspot, aws, settings, setup, support.Capture(), support.RecordingMetrics()
            )
            company = qbo.sandbox.companies[DEMO_REALM_ID]  # type: ignore[attr-defined]

            def phase(records: list[dict[str, Any]]) -> dict[str, Any]:
                """The records through ``workers`` concurrent Lambdas with the vendors' limits on; what it cost
                and what HubSpot shows afterwards."""
                batches = [
                    records[start : start + batch_size] for start in range(0, len(records), batch_size)
                ]
                for server in (qbo, hubspot):
                    requests.patch(
                        f"{server.url}/_admin/config", json={"rate_limits_enabled": True}, timeout=10
                    )
                    requests.delete(f"{server.url}/_admin/requests", timeout=10)
                limiter_requests.reset()

                outcomes: Counter[str] = Counter()
                failures: list[str] = []
                batch_seconds: list[float] = []
                lock = threading.Lock()

                def worker() -> None:
                    parts = lambda_parts()
                    try:
                        while True:
                            with lock:
                                if not batches:
                                    return
                                batch = batches.pop(0)
                            started = time.perf_counter()
                            result = parts.service.sync(
                                [parse_record(r) for r in batch], remaining_ms=120_000
                            )
                            elapsed = time.perf_counter() - started
                            with lock:
                                batch_seconds.append(elapsed)
                                for outcome in result.values():
                                    outcomes[outcome.status.value] += 1
                                    if not outcome.ok:
                                        failures.append(outcome.reason or "")
                    finally:
                        parts.close()

                started = time.perf_counter()
                cpu_started = time.process_time()
                threads = [threading.Thread(target=worker, name=f"lambda-{n}") for n in range(workers)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall = time.perf_counter() - started
                cpu = time.process_time() - cpu_started
                for server in (qbo, hubspot):
                    requests.patch(
                        f"{server.url}/_admin/config", json={"rate_limits_enabled": False}, timeout=10
                    )

                qbo_log, hubspot_log = request_log(qbo.url), request_log(hubspot.url)
                state = requests.get(f"{hubspot.url}/_admin/state", timeout=60).json()
                return {
                    **summary(qbo_log, hubspot_log, wall, cpu, batch_seconds, outcomes, failures),
                    "rate_limit_table": limiter_requests.summary(
                        sum(1 for e in [*qbo_log, *hubspot_log] if not e["path"].startswith("/oauth2/"))
                    ),
                    **hubspot_agrees(state, company, invoice_ids),
                }

            created = phase([world.record("Invoice", invoice_id, "Create") for invoice_id in invoice_ids])
            edit_invoices(world, invoice_ids)
            updated = phase([world.record("Invoice", invoice_id, "Update") for invoice_id in invoice_ids])
    finally:
        qbo.stop()
        hubspot.stop()

    baseline_calls = RECORD_BY_RECORD_CALLS_PER_EVENT * EVENTS
    baseline_floor = max(
        floor_seconds(EVENTS, QBO_LIMITS),  # one invoice read per event
        floor_seconds(baseline_calls - EVENTS, (HUBSPOT_TEN_SECONDLY,)),  # deal + line items per event
    )
    created["vendor_calls"]["record_by_record_total"] = baseline_calls
    created["vendor_calls"]["reduction_factor"] = round(
        baseline_calls / max(1, created["vendor_calls"]["total"]), 1
    )
    created["floor_seconds"]["record_by_record"] = baseline_floor
    return {
        "client_limit_overrides": overrides,
        "events": EVENTS,
        "batch_size": batch_size,
        "concurrent_lambdas": workers,
        "seed_seconds": round(seed_seconds, 2),
        "cpu_cores": os.cpu_count(),
        # The first sync of the 1,000 invoices (new deals); then one change to each in QBO (a quantity,
        # an added line or a removed line, a third each) and its Update event: existing deals.
        **created,
        "updates": updated,
    }


def edit_invoices(world: Any, invoice_ids: list[str]) -> None:
    """One change per invoice in QBO, as its users make them: a third get a line's quantity changed, a
    third a line added, a third a line removed (a quantity change where there is only one line)."""
    for n, invoice_id in enumerate(invoice_ids):
        current = world.qbo_entity("Invoice", invoice_id)
        sales = [
            {k: v for k, v in line.items() if k != "LineNum"}
            for line in current["Line"]
            if line["DetailType"] == "SalesItemLineDetail"
        ]
        item, price = ITEMS[n % len(ITEMS)]
        if n % 3 == 1:
            sales.append(
                {
                    "Amount": price,
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": price},
                }
            )
        elif n % 3 == 2 and len(sales) > 1:
            sales.pop()
        else:
            detail = dict(sales[0]["SalesItemLineDetail"])
            detail["Qty"] = int(detail["Qty"]) + 1
            sales[0] = {
                **sales[0],
                "Amount": str(Decimal(str(detail["UnitPrice"])) * detail["Qty"]),
                "SalesItemLineDetail": detail,
            }
        world.qbo_write(
            "Invoice",
            "update",
            {"Id": invoice_id, "SyncToken": current["SyncToken"], "sparse": True, "Line": sales},
        )


def summary(
    qbo_log: list[dict[str, Any]],
    hubspot_log: list[dict[str, Any]],
    wall: float,
    cpu: float,
    batch_seconds: list[float],
    outcomes: Counter[str],
    failures: list[str],
) -> dict[str, Any]:
    qbo_api = [e for e in qbo_log if e["path"].startswith("/v3/")]
    hubspot_search = [e for e in hubspot_log if e["path"].endswith("/search")]
    hubspot_ten_secondly = len(hubspot_log) - len(hubspot_search)
    floor_qbo = floor_seconds(len(qbo_api), QBO_LIMITS)
    floor_hubspot = max(
        floor_seconds(hubspot_ten_secondly, (HUBSPOT_TEN_SECONDLY,)),
        floor_seconds(len(hubspot_search), (HUBSPOT_SEARCH,)),
    )
    floor = max(floor_qbo, floor_hubspot)
    return {
        "vendor_calls": {
            "qbo": len(qbo_log),
            "qbo_by_endpoint": dict(Counter(endpoint(e) for e in qbo_log).most_common()),
            "hubspot": len(hubspot_log),
            "hubspot_by_endpoint": dict(Counter(endpoint(e) for e in hubspot_log).most_common()),
            "total": len(qbo_log) + len(hubspot_log),
            "per_event": round((len(qbo_log) + len(hubspot_log)) / EVENTS, 3),
        },
        "responses_429": {
            "qbo": sum(1 for e in qbo_log if e["status"] == 429),
            "hubspot": sum(1 for e in hubspot_log if e["status"] == 429),
        },
        "responses_429_by_endpoint": dict(
            Counter(endpoint(e) for e in [*qbo_log, *hubspot_log] if e["status"] == 429).most_common()
        ),
        "other_error_responses": sum(
            1 for e in [*qbo_log, *hubspot_log] if e["status"] >= 400 and e["status"] != 429
        ),
        "wall_seconds": round(wall, 2),
        "floor_seconds": {"qbo": floor_qbo, "hubspot": floor_hubspot, "overall": floor},
        # Everything (5 Lambdas, both sandboxes, moto) runs in this one Python process: CPU seconds close
        # to wall seconds x cores means the run was CPU-bound here, not held back by the vendors' limits.
        "process_cpu_seconds": round(cpu, 2),
        "wall_over_floor": round(wall / floor, 2) if floor else None,
        "batch_seconds": {
            "median": round(sorted(batch_seconds)[len(batch_seconds) // 2], 2) if batch_seconds else None,
            "max": round(max(batch_seconds), 2) if batch_seconds else None,
        },
        "outcomes": dict(outcomes),
        "failures": failures[:5],
    }


def hubspot_agrees(state: dict[str, Any], company: Any, invoice_ids: list[str]) -> dict[str, Any]:
    """Whether HubSpot shows every invoice right: the deal's amount is QBO's TotalAmt; its line items
    (each QBO line once) add up to it; no line key is carried by two live line items."""
    from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID

    deals = {
        d["properties"]["qbo_invoice_id"]: d
        for d in state["objects"]["deals"]
        if d["properties"].get("qbo_invoice_id") and not d["archived"]
    }
    live_items = {i["id"]: i["properties"] for i in state["objects"]["line_items"] if not i["archived"]}
    on_deal: dict[str, list[str]] = {}
    for association in state["associations"]:
        if association["fromObjectType"] == "deals" and association["toObjectType"] == "line_items":
            on_deal.setdefault(str(association["fromObjectId"]), []).append(str(association["toObjectId"]))
    keys = Counter(props.get("qbo_line_id") for props in live_items.values() if props.get("qbo_line_id"))
    amounts_match = lines_add_up = 0
    for invoice_id in invoice_ids:
        deal = deals.get(f"{DEMO_REALM_ID}:{invoice_id}")
        if deal is None:
            continue
        amount = Decimal(deal["properties"]["amount"])
        amounts_match += amount == Decimal(str(company.objects["Invoice"][invoice_id]["TotalAmt"]))
        items = [live_items[i] for i in set(on_deal.get(str(deal["id"]), [])) if i in live_items]
        total = sum(
            (
                Decimal(p["price"]) * Decimal(p["quantity"])
                - Decimal(p.get("discount") or "0") * Decimal(p["quantity"])
                for p in items
            ),
            Decimal(0),
        )
        lines_add_up += total == amount
    return {
        "deals_with_qbo_amount": amounts_match,
        "deals_whose_line_items_add_up": lines_add_up,
        "line_items_live": len(live_items),
        "line_item_keys_on_two_or_more": sum(1 for count in keys.values() if count > 1),
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
