"""Scheduled rules: EventBridge schedule expressions and firing on time with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledgerlink_local.stack.schedule import (
    CronSchedule,
    RateSchedule,
    ScheduledRule,
    ScheduleError,
    Scheduler,
    parse_schedule,
)

T0 = datetime(2026, 11, 25, 14, 33, 17, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_rate_expressions(expression, seconds):
    assert parse_schedule(expression) == RateSchedule(seconds)


def test_a_rate_fires_on_the_grid_of_its_creation_time():
    schedule = parse_schedule("rate(5 minutes)")
    assert schedule.next_after(T0, anchor=T0) == T0 + timedelta(minutes=5)
    assert schedule.next_after(T0 + timedelta(minutes=7), anchor=T0) == T0 + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 12 * * ? *)", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),  # noon UTC every day
        ("cron(15 10 ? * 6 *)", datetime(2026, 11, 27, 10, 15, tzinfo=UTC)),  # Fridays (6 = FRI)
        ("cron(0/15 * * * ? *)", datetime(2026, 11, 25, 14, 45, tzinfo=UTC)),
        ("cron(0 8 1 * ? *)", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("cron(0 18 ? * MON-FRI *)", datetime(2026, 11, 25, 18, 0, tzinfo=UTC)),
        ("cron(0 0 1 JAN ? 2027)", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("cron(30 2 ? * SUN *)", datetime(2026, 11, 29, 2, 30, tzinfo=UTC)),
    ],
)
def test_cron_expressions_find_the_next_minute(expression, expected):
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    assert schedule.next_after(T0) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("every 5 minutes", "neither rate"),
        ("rate(1 minutes)", "1 minute"),
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 12 * * *)", "6 fields"),
        ("cron(0 12 * * * *)", "exactly one"),
        ("cron(0 12 ? * ? *)", "exactly one"),
        ("cron(61 12 * * ? *)", "within 0-59"),
        ("cron(0 12 L * ? *)", "not emulated"),
        ("cron(0 12 ? * 6#3 *)", "not emulated"),
        ("cron(0 12 * * ? 2100)", "never fires"),
    ],
)
def test_bad_or_unsupported_expressions_are_refused_with_the_reason(expression, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(expression).next_after(T0, T0)


def test_the_scheduler_fires_each_rule_on_time_with_eventbridges_scheduled_event():
    now = [T0]
    delivered: list[dict] = []
    rule = ScheduledRule(
        name="ledgerlink-local-catch-up",
        arn="arn:aws:events:us-east-1:123456789012:rule/ledgerlink-local-catch-up",
        schedule=parse_schedule("rate(1 minute)"),
        anchor=T0,
        deliver=delivered.append,
    )
    scheduler = Scheduler([rule], account="123456789012", region="us-east-1", now=lambda: now[0])
    # before its time nothing fires
    now[0] = T0 + timedelta(seconds=59)
    assert scheduler.fire_due() == [] and delivered == []
    # at its time it fires once, with the event EventBridge sends
    now[0] = T0 + timedelta(seconds=60)
    assert scheduler.fire_due() == ["ledgerlink-local-catch-up"]
    event = delivered[0]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [rule.arn] and event["detail"] == {}
    assert event["time"] == "2026-11-25T14:34:17Z"
    # several missed periods fire once, then the grid continues
    now[0] = T0 + timedelta(minutes=5, seconds=30)
    assert scheduler.fire_due() == ["ledgerlink-local-catch-up"]
    assert len(delivered) == 2
    assert scheduler.next_times()["ledgerlink-local-catch-up"] == T0 + timedelta(minutes=6)
