"""QBO ingest: CPU throughput of one delivery's path, handler import time, and the ingest cold start.

Throughput covers everything the Lambda does for a delivery except the network: signature check,
JSON parse, schema validation, event building and validation, the archive document. S3 and
EventBridge are the in-memory fakes; log lines are formatted as in Lambda but written to /dev/null.
The process is pinned to one core.

Import time is ``python -X importtime -c "import <pkg>.handler"`` in a fresh interpreter with
PYTHONPATH=functions: the cumulative microseconds of the top-level imports the statement triggered
(the package and the handler), median of several runs. It is measured twice:

- ``in_lambda_environment`` (what the target is about): the variables the Lambda runtime sets
  (``LAMBDA_TASK_ROOT``, ``_X_AMZN_TRACE_ID``, ...), so Powertools' Tracer is enabled, as with the
  stack's active tracing, and the X-Ray SDK uses its local sampler;
- ``outside_lambda`` (tests, the local stack): the Tracer is disabled, but importing the X-Ray SDK
  still builds its centralized-sampling poller, two botocore X-Ray clients (about 100 ms here),
  which it never builds inside Lambda.

Adversarial (``adversarial``): the whole handler (API Gateway event in, response out, in-memory
S3/EventBridge, one core) on ``FUZZ_CASES`` mutated recorded deliveries from the seeded generator in
tests/webhook_cases.py (three in four signed), then on each named adversarial body there, signed:
the count of each status, the slowest generated case, and the time of each adversarial body. An
earlier version answered several of them 500, and took over 10 s (the function's timeout) on one.

Cold start (``cold_start``) is a fresh interpreter in the Lambda environment that imports the
handler and then invokes it twice with a signed delivery, its AWS clients pointed at a moto server
on 127.0.0.1 in this process (``AWS_ENDPOINT_URL``): import, first invocation (which creates the
clients and reads the verifier secret), their sum, and the second (warm) invocation. Moto's own
handling is included; the network to AWS is not.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
FUNCTIONS = REPO_ROOT / "functions"
WEBHOOKS = REPO_ROOT / "tests" / "fixtures" / "qbo_webhooks"
VERIFIER_TOKEN = "bench-verifier-token"
IMPORT_TARGET_MS = 250
IMPORT_RUNS = 7
COLD_START_RUNS = 7
MAX_DELIVERY_BYTES = 1024 * 1024
FUZZ_CASES = 2000
FUZZ_SEED = 20261125
INGEST_ENVIRONMENT = {
    "LEDGERLINK_EVENT_BUS_NAME": "ledgerlink-bench",
    "LEDGERLINK_RAW_BUCKET_NAME": "ledgerlink-bench-raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": "ledgerlink-bench-idempotency",
    "LEDGERLINK_LINKS_TABLE_NAME": "ledgerlink-bench-links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "ledgerlink-bench-vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "ledgerlink/bench/qbo-webhook",
    "LEDGERLINK_CONFIG_FILE": str(REPO_ROOT / "tests" / "fixtures" / "config" / "recorded-realms.toml"),
}
# The realms of the recorded deliveries (tests/fixtures/config/recorded-realms.toml).
RECORDED_REALMS = {"9341455130122367": "sample", "4620816365215648290": "second"}

_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def main() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with _one_core():
        results["throughput"] = _throughput()
        results["max_size_delivery"] = _max_size_delivery()
        results["adversarial"] = _adversarial()
    results["import_time"] = {name: _import_time(name) for name in _handler_modules()}
    results["cold_start"] = {"qbo_ingest": _cold_start()}
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


def _adversarial() -> dict[str, Any]:
    """Generated and named adversarial bodies through the handler: statuses, slowest, per-case times."""
    from ledgerlink.qbo.webhooks import compute_signature
    from tests.webhook_cases import ADVERSARIAL, generated_bodies

    invoke = _handler_with_fakes()
    statuses: dict[str, int] = {}
    timings: list[float] = []
    slowest: dict[str, Any] = {"ms": 0.0}
    for number, body in enumerate(generated_bodies(FUZZ_CASES, FUZZ_SEED)):
        signature = compute_signature(VERIFIER_TOKEN, body) if number % 4 else None
        status, seconds = invoke(body, signature, f"fuzz-{number}")
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        timings.append(seconds)
        if seconds * 1e3 > slowest["ms"]:
            slowest = {
                "ms": round(seconds * 1e3, 2),
                "case": number,
                "body_bytes": len(body),
                "status": status,
            }
    named: dict[str, Any] = {}
    for case in ADVERSARIAL:
        body = case.body
        signature = compute_signature(VERIFIER_TOKEN, body)
        # The first run of a large body also pays for the allocator and a garbage collection.
        runs = [invoke(body, signature, "adversarial") for _ in range(3)]
        named[case.name] = {
            "statuses": sorted({status for status, _ in runs}),
            "first_ms": round(runs[0][1] * 1e3, 1),
            "best_ms": round(min(seconds for _, seconds in runs) * 1e3, 1),
            "body_bytes": len(body),
        }
    return {
        "generated": {
            "cases": FUZZ_CASES,
            "seed": FUZZ_SEED,
            "statuses": dict(sorted(statuses.items())),
            "p50_us": round(statistics.median(timings) * 1e6),
            "p99_us": round(statistics.quantiles(timings, n=100)[98] * 1e6),
            "slowest": slowest,
        },
        "named": named,
        "note": "whole handler, in-memory S3/EventBridge; signed named cases; >=500 would be a bug",
    }


def _handler_with_fakes() -> Callable[[bytes, str | None, str], tuple[int, float]]:
    """The Lambda handler with in-memory ports; a function that invokes it once: (status, seconds)."""
    from ledgerlink.config import reset_settings_cache
    from ledgerlink.ingest.fakes import FakeServedRealms, InMemoryEventPublisher, InMemoryRawArchive

    SERVED = FakeServedRealms(RECORDED_REALMS)
    from ledgerlink.ingest.service import IngestPorts
    from ledgerlink.observability import Service, get_logger

    os.environ.update(INGEST_ENVIRONMENT)
    reset_settings_cache()
    from qbo_ingest import handler

    get_logger(Service.QBO_INGEST).registered_handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]  # noqa: SIM115 - lives as long as the bench

    class Context:
        function_name = "ledgerlink-bench-qbo-ingest"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-bench-qbo-ingest"
        aws_request_id = "5b9e3c1a-0d7f-4e2b-8a64-1f3c5d7e9b20"

    def invoke(body: bytes, signature: str | None, request_id: str) -> tuple[int, float]:
        ports = IngestPorts(
            verifier_token=lambda: VERIFIER_TOKEN,
            archive=InMemoryRawArchive(),
            publisher=InMemoryEventPublisher(),
            served=SERVED,
        )
        handler._ports = lambda: ports  # type: ignore[assignment]  # fresh fakes per delivery
        event = _apigw_event(body, signature, request_id)
        # Powertools prints every metric line on stdout: keep the benchmark's own output readable.
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            response = handler.lambda_handler(event, Context())
            seconds = time.perf_counter() - started
        return response["statusCode"], seconds

    return invoke


def _ingestor(body: bytes, signature: str) -> tuple[Callable[[], None], Callable[[], int]]:
    """A function that ingests ``body`` once with fresh in-memory ports, and the event count it saw."""
    from ledgerlink.ingest.fakes import FakeServedRealms, InMemoryEventPublisher, InMemoryRawArchive

    SERVED = FakeServedRealms(RECORDED_REALMS)
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
            verifier_token=lambda: VERIFIER_TOKEN,
            archive=InMemoryRawArchive(),
            publisher=publisher,
            served=SERVED,
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


def _import_time(package: str, functions_dir: Path = FUNCTIONS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ledgerlink-task-") as task_root:
        in_lambda = _import_time_in(package, _lambda_environment(Path(task_root), functions_dir))
    outside = _import_time_in(package, _base_environment(functions_dir))
    return {
        "target_ms": IMPORT_TARGET_MS,
        "meets_target": "median_ms" in in_lambda and in_lambda["median_ms"] < IMPORT_TARGET_MS,
        "in_lambda_environment": in_lambda,
        "outside_lambda": outside,
    }


def _import_time_in(package: str, environment: Mapping[str, str]) -> dict[str, Any]:
    module = f"{package}.handler"
    runs_ms: list[float] = []
    stderr = ""
    for _ in range(IMPORT_RUNS):
        completed = subprocess.run(  # noqa: S603 - our own interpreter on our own module name
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=dict(environment),
            cwd=REPO_ROOT,
            check=False,
        )
        if completed.returncode != 0:
            last_line = completed.stderr.strip().splitlines()[-1] if completed.stderr else "import failed"
            return {"error": last_line}
        stderr = completed.stderr
        runs_ms.append(_top_level_cumulative_us(stderr, package) / 1000)
    return {
        "median_ms": round(statistics.median(runs_ms), 1),
        "min_ms": round(min(runs_ms), 1),
        "runs": IMPORT_RUNS,
        "largest_imports_ms": _largest_children(stderr, package),
    }


def _base_environment(functions_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(functions_dir),
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _lambda_environment(task_root: Path, functions_dir: Path) -> dict[str, str]:
    """The variables the Lambda runtime sets that change what the handler's imports do."""
    return {
        **_base_environment(functions_dir),
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": "ledgerlink-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "_X_AMZN_TRACE_ID": "Root=1-6745e0bc-4b7e2c1d3f5a6b7c8d9e0f1a;Parent=53995c3f42cd8ad8;Sampled=1",
        # The X-Ray SDK sends finished subsegments over UDP: keep them on this machine's loopback.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }


def _top_level_cumulative_us(importtime_output: str, package: str) -> int:
    """Sum of the cumulative times of the un-indented lines for ``package`` and its submodules.

    Interpreter start-up imports (site, encodings) are also un-indented but belong to other packages.
    """
    return sum(cumulative for name, cumulative, _ in _top_level_blocks(importtime_output, package))


def _largest_children(importtime_output: str, package: str, count: int = 5) -> dict[str, float]:
    """The direct imports of the handler package that cost the most (where the time goes)."""
    children: dict[str, int] = {}
    for _, _, block in _top_level_blocks(importtime_output, package):
        for level, name, cumulative in block:
            if level == 1:
                children[name] = children.get(name, 0) + cumulative
    largest = sorted(children.items(), key=lambda item: item[1], reverse=True)[:count]
    return {name: round(us / 1000, 1) for name, us in largest}


def _top_level_blocks(
    importtime_output: str, package: str
) -> Iterator[tuple[str, int, list[tuple[int, str, int]]]]:
    """Each top-level import of ``package`` with the nested imports it triggered.

    ``-X importtime`` prints a module after the modules it imported, two spaces deeper per level,
    so the lines between two un-indented lines are the later one's subtree. (Imports made at
    interpreter start-up, such as the editable-install finder under ``site``, belong to ``site``.)
    """
    block: list[tuple[int, str, int]] = []
    for line in importtime_output.splitlines():
        match = _IMPORT_LINE.match(line)
        if match is None:
            continue
        level = (len(match.group(3)) - 1) // 2
        name, cumulative = match.group(4), int(match.group(2))
        if level > 0:
            block.append((level, name, cumulative))
            continue
        if name == package or name.startswith(f"{package}."):
            yield name, cumulative, block
        block = []


# Runs in a fresh interpreter: the handler import, then two invocations, timed from inside.
_COLD_START_SCRIPT = """
import json, sys, time
events = json.loads(open(sys.argv[1], encoding="utf-8").read())

class Context:
    function_name = "ledgerlink-bench-qbo-ingest"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-bench-qbo-ingest"
    aws_request_id = "5b9e3c1a-0d7f-4e2b-8a64-1f3c5d7e9b20"

started = time.perf_counter()
from qbo_ingest.handler import lambda_handler
imported = time.perf_counter()
first = lambda_handler(events[0], Context())
first_done = time.perf_counter()
second = lambda_handler(events[1], Context())
second_done = time.perf_counter()
print("COLD_START " + json.dumps({
    "statuses": [first["statusCode"], second["statusCode"]],
    "import_ms": (imported - started) * 1e3,
    "first_invocation_ms": (first_done - imported) * 1e3,
    "second_invocation_ms": (second_done - first_done) * 1e3,
}))
"""


def _cold_start(functions_dir: Path = FUNCTIONS, runs: int = COLD_START_RUNS) -> dict[str, Any]:
    """Import plus first invocation of the QBO ingest handler in a fresh interpreter, against moto."""
    from ledgerlink.qbo.webhooks import compute_signature

    body = (WEBHOOKS / "cloudevents_multi_realm.json").read_bytes()
    samples: list[dict[str, float]] = []
    with _moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="ledgerlink-task-") as task_root:
        signature = compute_signature(VERIFIER_TOKEN, body)
        events_file = Path(task_root) / "events.json"
        environment = {
            **_lambda_environment(Path(task_root), functions_dir),
            **INGEST_ENVIRONMENT,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        for run in range(runs):
            events = [_apigw_event(body, signature, request_id=f"cold-{run}-{n}") for n in (1, 2)]
            events_file.write_text(json.dumps(events), encoding="utf-8")
            completed = subprocess.run(  # noqa: S603 - our own interpreter, our own script
                [sys.executable, "-c", _COLD_START_SCRIPT, str(events_file)],
                capture_output=True,
                text=True,
                env=environment,
                cwd=REPO_ROOT,
                check=False,
            )
            marked = [line for line in completed.stdout.splitlines() if line.startswith("COLD_START ")]
            if completed.returncode != 0 or not marked:
                last_line = completed.stderr.strip().splitlines()[-1] if completed.stderr else "no result"
                return {"error": last_line}
            sample = json.loads(marked[-1].removeprefix("COLD_START "))
            if sample["statuses"] != [200, 200]:
                return {"error": f"the handler answered {sample['statuses']}"}
            samples.append(sample)

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 1)

    return {
        "runs": runs,
        "import_ms": median([s["import_ms"] for s in samples]),
        "first_invocation_ms": median([s["first_invocation_ms"] for s in samples]),
        "cold_start_ms": median([s["import_ms"] + s["first_invocation_ms"] for s in samples]),
        "second_invocation_ms": median([s["second_invocation_ms"] for s in samples]),
        "delivery": "cloudevents_multi_realm.json (7 events: 1 S3 PUT, 1 PutEvents)",
        "note": "AWS calls answered by moto on 127.0.0.1; no network latency to AWS included",
    }


def _apigw_event(body: bytes, signature: str | None, request_id: str) -> dict[str, Any]:
    """The recorded API Gateway v2 event for ``POST /v1/webhooks/qbo``, carrying ``body``.

    No ``intuit-signature`` header when ``signature`` is None; a body that is not UTF-8 goes
    base64-encoded, as API Gateway sends it.
    """
    event: dict[str, Any] = json.loads((WEBHOOKS / "apigw_v2_event.json").read_text(encoding="utf-8"))
    event["headers"]["content-length"] = str(len(body))
    if signature is not None:
        event["headers"]["intuit-signature"] = signature
    try:
        event["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
    event["requestContext"]["requestId"] = request_id
    return event


@contextmanager
def _moto_server() -> Iterator[str]:
    """A moto server on loopback with the bucket, bus and verifier secret the handler expects."""
    import boto3
    from moto.server import ThreadedMotoServer

    request_log = logging.getLogger("werkzeug")  # one line per request on stderr otherwise
    previous_level = request_log.level
    request_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, across servers: start from none.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        options: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
        }
        boto3.client("s3", **options).create_bucket(Bucket=INGEST_ENVIRONMENT["LEDGERLINK_RAW_BUCKET_NAME"])
        boto3.client("events", **options).create_event_bus(
            Name=INGEST_ENVIRONMENT["LEDGERLINK_EVENT_BUS_NAME"]
        )
        boto3.client("secretsmanager", **options).create_secret(
            Name=INGEST_ENVIRONMENT["LEDGERLINK_QBO_WEBHOOK_SECRET_NAME"], SecretString=VERIFIER_TOKEN
        )
        yield endpoint
    finally:
        server.stop()
        request_log.setLevel(previous_level)


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
