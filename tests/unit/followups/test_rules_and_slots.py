"""When a follow-up is due (rules) and when its meeting is (slots): weekends, DST days, the lead time,
the organizer's busy time, and a full calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledgerlink.configfile import FollowUpSettings
from ledgerlink.followups.rules import BEFORE_DUE, PAST_DUE, FollowUpRule, rules_of
from ledgerlink.followups.slots import Busy, NoFreeSlot, first_free_slot

NEW_YORK = ZoneInfo("America/New_York")
SETTINGS = FollowUpSettings(enabled=True, meeting_minutes=30, lead_time_hours=24)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


# ---- rules


def test_the_default_rule_is_one_day_past_due() -> None:
    assert [rule.id for rule in rules_of(FollowUpSettings())] == ["past_due_1"]
    assert [r.id for r in rules_of(FollowUpSettings(days_before_due=(3,), days_past_due=(1, 7)))] == [
        "before_due_3",
        "past_due_1",
        "past_due_7",
    ]


@pytest.mark.parametrize(
    ("rule", "today", "in_force"),
    [
        (FollowUpRule(PAST_DUE, 1), date(2026, 3, 10), False),  # the due date itself
        (FollowUpRule(PAST_DUE, 1), date(2026, 3, 11), True),
        (FollowUpRule(PAST_DUE, 1), date(2026, 4, 30), True),  # created long overdue: still followed up
        (FollowUpRule(BEFORE_DUE, 3), date(2026, 3, 6), False),
        (FollowUpRule(BEFORE_DUE, 3), date(2026, 3, 7), True),
        (FollowUpRule(BEFORE_DUE, 3), date(2026, 3, 10), True),
        (FollowUpRule(BEFORE_DUE, 3), date(2026, 3, 11), False),  # overdue: the past-due rules take over
    ],
)
def test_a_rule_is_in_force_from_the_day_it_is_entered(
    rule: FollowUpRule, today: date, in_force: bool
) -> None:
    assert rule.in_force(date(2026, 3, 10), today) is in_force


def test_the_sweep_finds_the_due_dates_entering_a_rule_on_a_day() -> None:
    assert FollowUpRule(PAST_DUE, 1).due_date_entering_on(date(2026, 3, 11)) == date(2026, 3, 10)
    assert FollowUpRule(BEFORE_DUE, 3).due_date_entering_on(date(2026, 3, 7)) == date(2026, 3, 10)
    assert FollowUpRule.parse("past_due_14") == FollowUpRule(PAST_DUE, 14)
    with pytest.raises(ValueError, match="not a follow-up rule"):
        FollowUpRule.parse("whenever")


# ---- slots


def test_the_first_slot_is_the_next_working_mornings_opening_after_the_lead_time() -> None:
    # given Thursday 10:15 in New York and a free organizer
    now = local("2026-06-04T10:15:00")
    # then the first slot is on Friday at 10:30 (24 h later, on the half hour)
    slot = first_free_slot(now, NEW_YORK, SETTINGS, [])
    assert (slot.start, slot.end) == (local("2026-06-05T10:30:00"), local("2026-06-05T11:00:00"))


def test_weekends_are_skipped() -> None:
    # given Friday 16:50: 24 h later is Saturday
    slot = first_free_slot(local("2026-06-05T16:50:00"), NEW_YORK, SETTINGS, [])
    # then Monday 09:00
    assert slot.start == local("2026-06-08T09:00:00")


def test_busy_time_is_skipped() -> None:
    now = local("2026-06-04T08:00:00")
    busy = [Busy(local("2026-06-05T09:00:00").astimezone(UTC), local("2026-06-05T12:00:00").astimezone(UTC))]
    assert first_free_slot(now, NEW_YORK, SETTINGS, busy).start == local("2026-06-05T12:00:00")


@pytest.mark.parametrize(
    ("now", "expected_utc"),
    [("2026-03-06T08:00:00", "2026-03-09T13:00:00"), ("2026-10-30T08:00:00", "2026-11-02T14:00:00")],
)
def test_business_hours_stay_local_across_dst_changes(now: str, expected_utc: str) -> None:
    # given a Friday before New York's spring-forward (8 March) and fall-back (1 November) Sundays
    slot = first_free_slot(local(now), NEW_YORK, replace_hours(SETTINGS, 72), [])
    # then the Monday slot is at 09:00 local, whose UTC instant moved by the DST change
    assert slot.start.astimezone(NEW_YORK).hour == 9
    assert slot.start.astimezone(UTC) == datetime.fromisoformat(expected_utc).replace(tzinfo=UTC)
    assert slot.end - slot.start == timedelta(minutes=30)


def test_a_local_time_that_does_not_exist_is_never_a_slot() -> None:
    # given business hours 01:00-04:00 on the spring-forward Sunday (02:00-03:00 does not exist)
    settings = FollowUpSettings(
        meeting_minutes=30, lead_time_hours=0, business_hours=("01:00", "04:00"), working_days=("sun",)
    )
    busy = [Busy(local("2026-03-08T01:00:00").astimezone(UTC), local("2026-03-08T01:30:00").astimezone(UTC))]
    slot = first_free_slot(local("2026-03-08T00:00:00"), NEW_YORK, settings, busy)
    # then 01:30-02:00 is skipped too (its end does not exist), and the slot is 03:00 EDT
    assert slot.start == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_a_full_calendar_has_no_slot_and_says_so() -> None:
    now = local("2026-06-04T08:00:00")
    busy = [Busy(now.astimezone(UTC), (now + timedelta(days=30)).astimezone(UTC))]
    with pytest.raises(NoFreeSlot, match=r"no free 30-minute slot in ar@x\.example's business hours"):
        first_free_slot(now, NEW_YORK, SETTINGS, busy, organizer="ar@x.example")


def replace_hours(settings: FollowUpSettings, lead_time_hours: int) -> FollowUpSettings:
    return replace(settings, lead_time_hours=lead_time_hours)
