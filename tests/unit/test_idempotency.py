"""Run-once on Powertools Idempotency, against moto's DynamoDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink import idempotency
from ledgerlink.config import reset_settings_cache
from ledgerlink.idempotency import IdempotentRunner
from tests.conftest import FIXTURES, REPO_ROOT

TABLE = "ledgerlink-idempotency"
TTL_SECONDS = 3600
ENVELOPE = json.loads((FIXTURES / "idempotency" / "qbo_entity_changed_detail.json").read_text())


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


class Work:
    """The work being protected: counts how often it really ran, returns a JSON result."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def sync(self, event_id: str) -> dict[str, Any]:
        self.runs.append(event_id)
        return {"deal_id": "512", "event_id": event_id, "line_items": 3}


@dataclass
class FakeLambdaContext:
    remaining_millis: int
    function_name: str = "hubspot-deal-sync"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


def make_runner(client: Any) -> IdempotentRunner:
    """A runner as a handler sets it up: context registered, so in-progress records are bounded."""
    runner = IdempotentRunner(TABLE, TTL_SECONDS, dynamodb_client=client)
    runner.register_lambda_context(FakeLambdaContext(remaining_millis=60_000))  # type: ignore[arg-type]
    return runner


def records(client: Any) -> list[dict[str, Any]]:
    return client.scan(TableName=TABLE)["Items"]


def test_second_run_with_the_same_key_returns_the_stored_result_without_running(dynamodb: Any) -> None:
    # given one delivery of an entity-changed event processed once
    runner = make_runner(dynamodb)
    work = Work()
    event_id = ENVELOPE["event_id"]
    first = runner.run_once("hubspot-deal-sync", event_id, lambda: work.sync(event_id))

    # when the same event is delivered again (SQS redelivery, a replay)
    second = runner.run_once("hubspot-deal-sync", event_id, lambda: work.sync(event_id))

    # then the work ran once and the second delivery got the first result
    assert work.runs == [event_id]
    assert second == first == {"deal_id": "512", "event_id": event_id, "line_items": 3}


def test_a_different_key_runs_the_work(dynamodb: Any) -> None:
    runner = make_runner(dynamodb)
    work = Work()

    runner.run_once("hubspot-deal-sync", "event-1", lambda: work.sync("event-1"))
    runner.run_once("hubspot-deal-sync", "event-2", lambda: work.sync("event-2"))

    assert work.runs == ["event-1", "event-2"]
    assert len(records(dynamodb)) == 2


def test_the_same_key_in_another_namespace_is_separate_work(dynamodb: Any) -> None:
    runner = make_runner(dynamodb)
    work = Work()

    runner.run_once("qbo-estimate", "deal-512", lambda: work.sync("estimate"))
    runner.run_once("qbo-invoice", "deal-512", lambda: work.sync("invoice"))

    assert work.runs == ["estimate", "invoice"]
    assert sorted(item["id"]["S"].split("#")[0] for item in records(dynamodb)) == [
        "qbo-estimate",
        "qbo-invoice",
    ]


def test_records_carry_the_ttl_attribute(dynamodb: Any) -> None:
    runner = make_runner(dynamodb)
    before = int(time.time())

    runner.run_once("hubspot-deal-sync", "event-1", lambda: {"ok": True})

    (item,) = records(dynamodb)
    expiration = int(item["expiration"]["N"])
    assert before + TTL_SECONDS <= expiration <= int(time.time()) + TTL_SECONDS
    assert item["status"]["S"] == "COMPLETED"
    assert json.loads(item["data"]["S"]) == {"ok": True}


def test_work_that_raises_leaves_no_record_so_a_retry_runs_it(dynamodb: Any) -> None:
    runner = make_runner(dynamodb)
    attempts: list[int] = []

    def flaky() -> dict[str, int]:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("HubSpot unreachable")
        return {"attempt": len(attempts)}

    with pytest.raises(ConnectionError):
        runner.run_once("hubspot-deal-sync", "event-1", flaky)
    assert records(dynamodb) == []

    assert runner.run_once("hubspot-deal-sync", "event-1", flaky) == {"attempt": 2}
    assert runner.run_once("hubspot-deal-sync", "event-1", flaky) == {"attempt": 2}
    assert len(attempts) == 2


def test_registered_lambda_context_bounds_the_in_progress_record(dynamodb: Any) -> None:
    # given a handler that registered its context with 30 s left
    runner = make_runner(dynamodb)
    runner.register_lambda_context(FakeLambdaContext(remaining_millis=30_000))  # type: ignore[arg-type]
    seen: dict[str, Any] = {}

    def work() -> str:
        seen.update(records(dynamodb)[0])
        return "done"

    # when the work runs
    before_ms = int(time.time() * 1000)
    runner.run_once("hubspot-deal-sync", "event-1", work)

    # then while it ran, the record was in progress only until this invocation's own deadline
    assert seen["status"]["S"] == "INPROGRESS"
    in_progress_until = int(seen["in_progress_expiration"]["N"])
    assert before_ms + 30_000 <= in_progress_until <= int(time.time() * 1000) + 30_000


def test_bad_keys_are_named(dynamodb: Any) -> None:
    runner = make_runner(dynamodb)

    with pytest.raises(ValueError, match="key for 'hubspot-deal-sync' must be a non-empty string"):
        runner.run_once("hubspot-deal-sync", "", lambda: None)
    with pytest.raises(ValueError, match="namespace"):
        runner.run_once("a#b", "event-1", lambda: None)
    assert records(dynamodb) == []


STACK_ENV = {
    "LEDGERLINK_EVENT_BUS_NAME": "bus",
    "LEDGERLINK_RAW_BUCKET_NAME": "raw",
    "LEDGERLINK_IDEMPOTENCY_TABLE_NAME": TABLE,
    "LEDGERLINK_IDEMPOTENCY_TTL_SECONDS": "120",
    "LEDGERLINK_LINKS_TABLE_NAME": "links",
    "LEDGERLINK_VENDOR_STATE_TABLE_NAME": "vendor-state",
    "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME": "qbo/webhook",
}


def test_importing_and_decorating_read_no_environment() -> None:
    # given a fresh interpreter with none of LedgerLink's variables (reading Settings would raise)
    program = """
import ledgerlink.config as config
import ledgerlink.idempotency as idempotency

@idempotency.idempotent_on("hubspot-deal-sync", key=lambda event_id: event_id)
def sync(event_id: str) -> dict:
    return {}

print(config.get_settings.cache_info().currsize, idempotency.default_runner.cache_info().currsize)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "functions")

    # when the module is imported and a function decorated
    done = subprocess.run(  # noqa: S603 - our own interpreter running a literal program
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    # then that worked and neither the settings nor the runner were built
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"]


def test_decorated_function_uses_the_stack_table_from_settings_on_first_call(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the environment the stack gives a Lambda
    for name, value in STACK_ENV.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    idempotency.reset_default_runner()
    work = Work()

    @idempotency.idempotent_on("hubspot-deal-sync", key=lambda event_id: event_id)
    def sync(event_id: str) -> dict[str, Any]:
        return work.sync(event_id)

    try:
        # when the handler registers its context and the same event is processed twice
        idempotency.register_lambda_context(FakeLambdaContext(remaining_millis=60_000))  # type: ignore[arg-type]
        results = [sync("event-9"), sync("event-9")]

        # then it ran once, in the configured table, with the configured TTL
        assert results[0] == results[1]
        assert work.runs == ["event-9"]
        (item,) = records(dynamodb)
        assert item["id"]["S"].startswith("hubspot-deal-sync#")
        assert int(item["expiration"]["N"]) <= int(time.time()) + 120
    finally:
        idempotency.reset_default_runner()
