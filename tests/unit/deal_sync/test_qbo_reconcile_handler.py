"""The qbo_reconcile Lambda handler, thin: it hands the run its remaining time, returns the report, and
a failure outside a connection's check is counted (UnexpectedErrors) and re-raised, so it is visible."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ledgerlink.deal_sync.reconcile_schedule import ConnectionCheck, ScheduledReport

SCHEDULED_TICK = {
    "Records": [
        {
            "messageId": "0f2c9a5e-8d1b-4c3e-9a7f-2b6d4e8c1a30",
            "body": json.dumps({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        }
    ]
}


@dataclass
class LambdaContext:
    function_name: str = "ledgerlink-test-qbo-reconcile"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-qbo-reconcile"
    aws_request_id: str = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

    def get_remaining_time_in_millis(self) -> int:
        return 123_456


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> Any:
    from qbo_reconcile import handler as module

    monkeypatch.setattr(module, "get_settings", lambda: "settings")
    monkeypatch.setattr(module, "deployment_config", lambda: "config")
    monkeypatch.setattr(module, "default_secret_store", lambda: "secrets")
    return module


def test_the_run_gets_the_invocations_remaining_time_and_its_report_is_returned(
    handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(settings: Any, config: Any, **kwargs: Any) -> ScheduledReport:
        seen.update(kwargs, settings=settings, config=config)
        return ScheduledReport(checked=[ConnectionCheck("main", 12, 1)])

    monkeypatch.setattr(handler, "run_scheduled_reconcile", run)

    answer = handler.lambda_handler(SCHEDULED_TICK, LambdaContext())

    assert seen["remaining_ms"]() == 123_456
    assert (seen["settings"], seen["config"], seen["secrets"]) == ("settings", "config", "secrets")
    assert answer == {
        "connections": {"main": {"documents": 12, "drifted_records": 1}},
        "drifted_records": 1,
        "not_reached": [],
        "failures": {},
    }


def test_a_failure_outside_a_connections_check_is_counted_and_raised(
    handler: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: Any, **kwargs: Any) -> ScheduledReport:
        raise RuntimeError("the configuration file names no connection")

    monkeypatch.setattr(handler, "run_scheduled_reconcile", run)

    with pytest.raises(RuntimeError, match="names no connection"):
        handler.lambda_handler(SCHEDULED_TICK, LambdaContext())

    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(record.get("UnexpectedErrors") in (1.0, [1.0]) for record in metrics)
    assert all(record["service"] == "qbo-reconcile" for record in metrics)
