"""Overhead of the vendor HTTP layer per call, and DynamoDB requests per vendor call.

Against a local HTTP server (127.0.0.1), so the numbers are the layer's own cost, not a vendor's:
- a bare ``requests.Session`` GET (the floor),
- ``VendorHttpClient`` with in-process stores,
- ``VendorHttpClient`` with DynamoDB stores on moto (in-process mock: its latency is not DynamoDB's;
  the request count per call is the number that carries over to AWS).
Limits are set high enough that nothing waits: only bookkeeping is measured. The rate-limit log then
holds every call of the last minute, as a scope running at QBO's 500 per minute would.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
import requests
from moto import mock_aws

from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.dynamodb import DynamoDBBreakerStore, DynamoDBRateLimitStore
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.tables import VENDOR_STATE
from tests.unit.http.support import ScriptedVendor, make_policy, start_server

CALLS = 400
TABLE = "bench-vendor-state"
# QBO's shape (a per-second and a per-minute window) with limits nothing in this run can reach.
LIMITS = {DEFAULT_GROUP: (RateLimit(1_000_000, 1.0), RateLimit(1_000_000, 60.0))}


def _timed(call: Callable[[], Any], count: int) -> dict[str, float]:
    for _ in range(20):  # warm the connection pool
        call()
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        before = time.perf_counter()
        call()
        samples.append((time.perf_counter() - before) * 1000)
    total = time.perf_counter() - started
    samples.sort()
    return {
        "calls_per_second": round(count / total, 1),
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
    }


def main() -> dict[str, Any]:
    vendor = ScriptedVendor()
    server = start_server(vendor)
    try:
        policy = make_policy(vendor.url, rate_limits=LIMITS, read_timeout_seconds=5.0)
        session = requests.Session()
        bare = _timed(lambda: session.get(f"{vendor.url}/v3/company/1/invoice/1", timeout=5).content, CALLS)

        local = in_process_client(policy)
        in_process = _timed(lambda: local.get("/v3/company/1/invoice/1", scope="1"), CALLS)

        with mock_aws():
            dynamodb = boto3.client("dynamodb", region_name="us-east-1")
            dynamodb.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": VENDOR_STATE.partition_key, "KeyType": "HASH"},
                    {"AttributeName": VENDOR_STATE.sort_key, "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": VENDOR_STATE.partition_key, "AttributeType": "S"},
                    {"AttributeName": VENDOR_STATE.sort_key, "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            requests_made: list[str] = []

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                key = params.get("Key") or params.get("Item") or {}
                kind = "ratelimit" if key.get("pk", {}).get("S", "").startswith("ratelimit#") else "breaker"
                requests_made.append(f"{kind} {model.name}")

            dynamodb.meta.events.register("before-parameter-build.dynamodb.*", record)
            shared = VendorHttpClient(
                policy,
                rate_limit_store=DynamoDBRateLimitStore(TABLE, dynamodb),
                breaker_store=DynamoDBBreakerStore(TABLE, dynamodb),
            )
            shared_numbers = _timed(lambda: shared.get("/v3/company/1/invoice/1", scope="1"), CALLS)
            measured_calls = CALLS + 20
            counts = {name: requests_made.count(name) for name in set(requests_made)}
            (log_item,) = [
                item
                for item in dynamodb.scan(TableName=TABLE)["Items"]
                if item["pk"]["S"].startswith("ratelimit#")
            ]
    finally:
        server.shutdown()
        server.server_close()

    return {
        "calls": CALLS,
        "bare_requests": bare,
        "client_in_process_state": in_process,
        "client_dynamodb_state_on_moto": shared_numbers,
        # The rate limiter: one consistent GetItem and one conditional PutItem per admitted call (one
        # item for both QBO windows); the breaker: one GetItem per process per second.
        "dynamodb_requests_per_call": {
            name: round(n / measured_calls, 3) for name, n in sorted(counts.items())
        },
        "rate_limit_log_entries": len(log_item["log"]["B"]) // 4,
        "rate_limit_log_bytes": len(log_item["log"]["B"]),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
