"""When the meeting is: the first slot of the configured length inside the connection's business hours,
in the company's time zone, on a working day, at least the lead time ahead, where the organizer is free.

Slots start on the half hour (or on the meeting length, if shorter) from the start of business hours.
Local times are turned into instants with the company's zone, so a DST change day has its real hours:
a slot whose local start or end does not exist that day (the spring-forward gap) is skipped, and an
ambiguous one (the autumn repeat) takes its first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from ledgerlink.configfile import FollowUpSettings

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead a slot is looked for (and the organizer's schedule read).
HORIZON_DAYS: Final = 14
SLOT_STEP_MINUTES: Final = 30


@dataclass(frozen=True)
class Busy:
    start: datetime  # aware
    end: datetime


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware, in the company's zone
    end: datetime


class NoFreeSlot(LookupError):
    """No free slot in the window: the organizer's calendar is full (or business hours are too short)."""

    retryable = False
    reason = "no_free_slot"


def search_window(now: datetime, settings: FollowUpSettings) -> tuple[datetime, datetime]:
    """The instants a slot may fall in (for reading the organizer's schedule)."""
    start = now + timedelta(hours=settings.lead_time_hours)
    return start, start + timedelta(days=HORIZON_DAYS)


def first_free_slot(
    now: datetime, zone: ZoneInfo, settings: FollowUpSettings, busy: Sequence[Busy], *, organizer: str = ""
) -> Slot:
    earliest, latest = search_window(now, settings)
    length = timedelta(minutes=settings.meeting_minutes)
    step = timedelta(minutes=min(SLOT_STEP_MINUTES, settings.meeting_minutes))
    opens, closes = (time.fromisoformat(value) for value in settings.business_hours)
    working = {DAY_NAMES.index(day) for day in settings.working_days}
    first_day = earliest.astimezone(zone).date()
    for offset in range(HORIZON_DAYS + 1):
        day = first_day + timedelta(days=offset)
        if day.weekday() not in working:
            continue
        for start, end in _day_slots(day, zone, opens, closes, length, step):
            if start < earliest or end > latest:
                continue
            if not any(b.start < end and start < b.end for b in busy):
                return Slot(start, end)
    raise NoFreeSlot(
        f"no free {settings.meeting_minutes}-minute slot in {organizer or 'the organizer'}'s business hours "
        f"({opens:%H:%M}-{closes:%H:%M} {zone.key}, {', '.join(settings.working_days)}) in the "
        f"{HORIZON_DAYS} days after the {settings.lead_time_hours} h lead time; free some time, then replay"
    )


def _day_slots(
    day: date, zone: ZoneInfo, opens: time, closes: time, length: timedelta, step: timedelta
) -> Iterable[tuple[datetime, datetime]]:
    cursor = datetime.combine(day, opens)
    last = datetime.combine(day, closes)
    while cursor + length <= last:
        start, end = _instant(cursor, zone), _instant(cursor + length, zone)
        # (Aware datetimes in one zone subtract as wall-clock times: compare in UTC.)
        if start is not None and end is not None and end.astimezone(UTC) - start.astimezone(UTC) == length:
            yield start, end
        cursor += step


def _instant(local: datetime, zone: ZoneInfo) -> datetime | None:
    """``local`` wall-clock time in ``zone`` as an aware datetime, or None when that time does not exist."""
    aware = local.replace(tzinfo=zone, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != local:
        return None
    return round_trip
