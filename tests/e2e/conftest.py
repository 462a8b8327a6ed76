"""The local stack, started in-process for the end-to-end tests (what `make run` starts, on free ports).

Each test module gets its own stack and state directory; starting one takes about a second. The
stacks run with a 1 s visibility timeout, no batching window and retry delays of 1 s over a few
seconds (the deployed values, 725 s, 5 s and 2 s growing to 2 minutes for an hour, would make a
dead-letter test take an hour), and helpers to wait for what the tests look for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from infra.topology import RedeliveryPolicy
from ledgerlink.consumer.redelivery import RedeliverySchedule
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from ledgerlink_local.stack.settings import LocalSettings, Ports
from ledgerlink_local.stack.up import LocalEnvironment, Tuning, start_environment
from tests.conftest import FIXTURES

T = TypeVar("T")
WEBHOOK_PATH = "/v1/webhooks/qbo"
# Retries 1 s apart, dead-lettered as exhausted on the 9th receive (4 s of guaranteed delays).
SHORT_REDELIVERY = RedeliveryPolicy(RedeliverySchedule(base_seconds=1, cap_seconds=1), outage_span_seconds=4)


@contextmanager
def local_environment(state_dir: Path, **tuning: Any) -> Iterator[LocalEnvironment]:
    settings = LocalSettings(
        ports=Ports(gateway=0, aws=0, qbo=0, hubspot=0, graph=0), state_dir=state_dir, demo=False
    )
    defaults: dict[str, Any] = {
        "visibility_timeout_seconds": 1,
        "batching_window_seconds": 0,
        "redelivery": SHORT_REDELIVERY,
    }
    environment = start_environment(settings, console=None, tuning=Tuning(**{**defaults, **tuning}))
    try:
        yield environment
    finally:
        environment.stop()


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's state directory (where `ledgerlink` commands find its stack's endpoints)."""
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    """The module's local stack with the default test tuning; a module that needs another tuning
    defines its own ``environment``."""
    with local_environment(state_dir) as environment:
        yield environment


# The company of Intuit's recorded sample deliveries, and the local stack's connection ("demo" in
# local/config/local.toml: the QBO sandbox's demo company).
RECORDED_REALM_ID = "9341455130122367"


def recorded_delivery(name: str) -> bytes:
    """A recorded QBO webhook body, as the demo company's: the local stack serves that company only
    (another company's events are archived and skipped), so the recorded realm id is swapped for it."""
    body = (FIXTURES / "qbo_webhooks" / name).read_bytes()
    return body.replace(RECORDED_REALM_ID.encode(), DEMO_REALM_ID.encode())


def sign(verifier_token: str, body: bytes) -> str:
    """``intuit-signature``, computed here independently of the code under test."""
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def post_webhook(environment: LocalEnvironment, body: bytes, signature: str) -> requests.Response:
    return requests.post(
        environment.stack.gateway_url + WEBHOOK_PATH,
        data=body,
        headers={"Content-Type": "application/json", "intuit-signature": signature},
        timeout=30,
    )


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something (not a timing assertion: the bound only ends a hang)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def queue_depth(environment: LocalEnvironment, url: str) -> int:
    attributes = environment.stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def raw_objects(environment: LocalEnvironment) -> list[str]:
    assert environment.stack.resources is not None
    listing = environment.stack.client("s3").list_objects_v2(Bucket=environment.stack.resources.bucket_name)
    return [item["Key"] for item in listing.get("Contents", [])]


def hop_steps(state_dir: Path, correlation_id: str) -> list[tuple[str, str | None]]:
    """(step, outcome) of every hop of one correlation id, from the stack's event log."""
    log = state_dir / "events.jsonl"
    if not log.is_file():
        return []
    hops = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [(hop["step"], hop["outcome"]) for hop in hops if hop["correlation_id"] == correlation_id]


def graph_events(environment: LocalEnvironment, time_zone: str) -> list[dict[str, Any]]:
    """Every event on every calendar of the Graph sandbox's tenant, read through Graph's own API with
    the demo app's token (times in ``time_zone``)."""
    graph = environment.description["graph"]
    token = requests.post(
        graph["token_url"],
        data={
            "grant_type": "client_credentials",
            "client_id": graph["client_id"],
            "client_secret": graph["client_secret"],
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=10,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Prefer": f'outlook.timezone="{time_zone}"'}
    base = graph["base_url"]
    users = requests.get(f"{base}/users?$top=100", headers=headers, timeout=10).json()["value"]
    found: list[dict[str, Any]] = []
    for user in users:
        reply = requests.get(
            f"{base}/users/{user['userPrincipalName']}/events?$top=100", headers=headers, timeout=10
        )
        if reply.status_code == 200:
            found.extend(reply.json()["value"])
    return found
