"""Scheduled rules on the local stack: a rule with a schedule fires on time and its queue gets EventBridge's
"Scheduled Event" (moto stores schedules but never fires them; the stack's scheduler does).

The first test uses the topology's CDC catch-up rule (every 15 minutes) and moves the stack's clock;
the others use the topology's follow-up sweep, on its deployed schedule and
fired every few seconds as ``LEDGERLINK_LOCAL_SWEEP_SECONDS`` makes it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from infra import topology as topo
from ledgerlink_local.stack.stack import LocalStack, StackOptions
from ledgerlink_local.stack.wiring import VendorUrls

UNUSED_VENDORS = VendorUrls(
    *(f"http://127.0.0.1:9/{name}" for name in ("qbo", "token", "hs", "graph", "token"))
)
T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def _stack(now: list[datetime], **options) -> LocalStack:
    return LocalStack(
        StackOptions(
            vendors=UNUSED_VENDORS, secret_values={}, start_pollers=False, clock=lambda: now[0], **options
        )
    ).start()


def _received(stack: LocalStack, queue_key: str) -> list[dict]:
    assert stack.resources is not None
    messages = stack.client("sqs").receive_message(
        QueueUrl=stack.resources.queue(queue_key).url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def test_a_scheduled_rule_fires_on_its_schedule_into_its_queue():
    # given the local stack with the topology's CDC catch-up rule (every 15 minutes by default)
    now = [T0]
    stack = _stack(now)
    try:
        assert stack.resources is not None and stack.scheduler is not None
        # the rule exists in EventBridge with its schedule, on the default bus (where schedules run)
        rule = stack.client("events").describe_rule(
            Name="ledgerlink-local-qbo-catchup", EventBusName="default"
        )
        assert rule["ScheduleExpression"] == "rate(15 minutes)"
        # before its time nothing fires
        now[0] += timedelta(minutes=14)
        assert stack.scheduler.fire_due() == []
        # at its time the queue gets the Scheduled Event
        now[0] += timedelta(minutes=1)
        assert stack.scheduler.fire_due() == ["ledgerlink-local-qbo-catchup"]
        (event,) = _received(stack, "qbo-catchup")
        assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
        assert event["resources"] == [stack.resources.rule_arns[topo.CATCHUP_RULE]]
        assert event["time"] == "2026-11-25T14:15:00Z"
    finally:
        stack.stop()


def test_the_follow_up_sweep_fires_daily_into_the_teams_invite_queue():
    # given the local stack as `make run` starts it (no sweep override)
    now = [T0]
    stack = _stack(now)
    try:
        assert stack.resources is not None and stack.scheduler is not None
        # then the sweep's rule is on the default bus with the deployed schedule
        rule = stack.client("events").describe_rule(
            Name="ledgerlink-local-followup-sweep", EventBusName="default"
        )
        assert rule["ScheduleExpression"] == "rate(1 day)"
        # and it does not fire within the day, and fires once the day is over
        # (the catch-up's rule fires every 15 minutes meanwhile)
        now[0] += timedelta(hours=23, minutes=59)
        assert "ledgerlink-local-followup-sweep" not in stack.scheduler.fire_due()
        now[0] += timedelta(minutes=1)
        assert "ledgerlink-local-followup-sweep" in stack.scheduler.fire_due()
        (event,) = _received(stack, "teams-invite")
        assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
        assert event["resources"] == [stack.resources.rule_arns[topo.FOLLOWUP_SWEEP_RULE]]
    finally:
        stack.stop()


def test_the_sweep_fires_every_few_seconds_when_the_local_option_says_so():
    # given the stack started with the sweep every 5 s (LEDGERLINK_LOCAL_SWEEP_SECONDS=5)
    now = [T0]
    stack = _stack(now, schedule_seconds={topo.FOLLOWUP_SWEEP_RULE: 5})
    try:
        assert stack.scheduler is not None
        # then moto still shows the deployed schedule (the wiring matches the template)
        rule = stack.client("events").describe_rule(
            Name="ledgerlink-local-followup-sweep", EventBusName="default"
        )
        assert rule["ScheduleExpression"] == "rate(1 day)"
        # and the scheduler fires it every 5 s, a Scheduled Event for each time
        fired = []
        for _ in range(3):
            now[0] += timedelta(seconds=5)
            fired += stack.scheduler.fire_due()
        assert fired == ["ledgerlink-local-followup-sweep"] * 3
        times = sorted(event["time"] for event in _received(stack, "teams-invite"))
        assert times == ["2026-11-25T14:00:05Z", "2026-11-25T14:00:10Z", "2026-11-25T14:00:15Z"]
    finally:
        stack.stop()


def test_an_override_for_a_rule_without_a_schedule_is_refused():
    with pytest.raises(ValueError, match=r"names rules without a schedule: \['qbo-entity-to-deal-sync'\]"):
        _stack([T0], schedule_seconds={"qbo-entity-to-deal-sync": 5})
