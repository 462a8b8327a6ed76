"""Scheduled rules on the local stack: a rule with a schedule fires on time and its queue gets EventBridge's
"Scheduled Event" (moto stores schedules but never fires them; the stack's scheduler does).

The topology has no scheduled rule yet (the catch-up jobs come later), so this test adds one to it,
the way a later ``RuleSpec`` with a ``schedule_expression`` will, and moves the stack's clock.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

from infra import topology as topo
from ledgerlink_local.stack import stack as stack_module
from ledgerlink_local.stack.stack import LocalStack, StackOptions
from ledgerlink_local.stack.wiring import VendorUrls


@dataclasses.dataclass(frozen=True)
class ScheduledRuleSpec(topo.RuleSpec):
    schedule_expression: str | None = None


UNUSED_VENDORS = VendorUrls(
    *(f"http://127.0.0.1:9/{name}" for name in ("qbo", "token", "hs", "graph", "token"))
)


def test_a_scheduled_rule_fires_on_its_schedule_into_its_queue(monkeypatch):
    real_topology = stack_module.local_topology

    def with_catch_up(*args, **kwargs):
        topology = real_topology(*args, **kwargs)
        catch_up = ScheduledRuleSpec(
            key="catch-up",
            name=topo.resource_name(topology.stage, "qbo-catch-up"),
            description="every 15 minutes: CDC catch-up",
            event_pattern={},
            target_queue="deal-sync",
            max_event_age_seconds=3600,
            retry_attempts=3,
            schedule_expression="rate(15 minutes)",
        )
        return dataclasses.replace(topology, rules=(*topology.rules, catch_up))

    monkeypatch.setattr(stack_module, "local_topology", with_catch_up)
    now = [datetime(2026, 11, 25, 14, 0, tzinfo=UTC)]
    stack = LocalStack(
        StackOptions(vendors=UNUSED_VENDORS, secret_values={}, start_pollers=False, clock=lambda: now[0])
    ).start()
    try:
        assert stack.resources is not None and stack.scheduler is not None
        queue = stack.resources.queue("deal-sync")
        sqs = stack.client("sqs")
        # the rule exists in EventBridge with its schedule, on the default bus (where schedules run)
        rule = stack.client("events").describe_rule(
            Name="ledgerlink-local-qbo-catch-up", EventBusName="default"
        )
        assert rule["ScheduleExpression"] == "rate(15 minutes)"
        # before its time nothing fires
        now[0] += timedelta(minutes=14)
        assert stack.scheduler.fire_due() == []
        # at its time the queue gets the Scheduled Event
        now[0] += timedelta(minutes=1)
        assert stack.scheduler.fire_due() == ["ledgerlink-local-qbo-catch-up"]
        messages = sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1)["Messages"]
        event = json.loads(messages[0]["Body"])
        assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
        assert event["resources"] == [stack.resources.rule_arns["catch-up"]]
        assert event["time"] == "2026-11-25T14:15:00Z"
    finally:
        stack.stop()
