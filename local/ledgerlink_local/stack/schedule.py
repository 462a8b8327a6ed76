"""Scheduled EventBridge rules, fired locally (moto stores a ``ScheduleExpression`` but never fires it).

:func:`parse_schedule` reads EventBridge's two forms: ``rate(<n> minute|minutes|hour|hours|day|days)``
and ``cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)`` in UTC, with ``*``,
``?``, lists, ranges, steps and month/day names (day-of-week 1 = SUN, as EventBridge counts; one
of the two day fields must be ``?``). The ``L``, ``W`` and ``#`` forms are refused with an error
that says so. :class:`Scheduler` fires each rule at its times and delivers the "Scheduled Event"
EventBridge would send to the rule's queue targets; its clock is injected so tests need not wait.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

_RATE: Final = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON: Final = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NAMES: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTHS: Final = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_DAYS: Final = {name: number for number, name in enumerate(_DAY_NAMES, 1)}
# How far ahead to look for the next cron time before declaring the expression never fires.
_CRON_HORIZON_DAYS: Final = 366 * 5


class ScheduleError(ValueError):
    """A schedule expression EventBridge (or this emulation) does not accept; the message says why."""


@dataclass(frozen=True)
class RateSchedule:
    seconds: float
    """EventBridge's rates are whole minutes at least; the local stack may fire faster (its options)."""

    def next_after(self, moment: datetime, anchor: datetime) -> datetime:
        """The next time after ``moment`` on the grid ``anchor + k * seconds`` (anchor: rule creation)."""
        elapsed = (moment - anchor).total_seconds()
        periods = int(elapsed // self.seconds) + 1
        return anchor + timedelta(seconds=periods * self.seconds)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?"
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # None: "?"; 1 = Sunday
    years: frozenset[int]

    def matches(self, moment: datetime) -> bool:
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and moment.year in self.years
            and self._day_matches(moment)
        )

    def next_after(self, moment: datetime, anchor: datetime | None = None) -> datetime:
        """The first matching minute after ``moment`` (UTC), skipping whole years, months, days and hours."""
        candidate = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=_CRON_HORIZON_DAYS)
        while candidate < limit:
            if candidate.year not in self.years:
                candidate = candidate.replace(year=candidate.year + 1, month=1, day=1, hour=0, minute=0)
            elif candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise ScheduleError("the cron expression never fires in the next five years")

    def _day_matches(self, moment: datetime) -> bool:
        weekday = (moment.isoweekday() % 7) + 1  # Monday=1..Sunday=7 -> Sunday=1..Saturday=7
        return (self.days_of_month is None or moment.day in self.days_of_month) and (
            self.days_of_week is None or weekday in self.days_of_week
        )


Schedule = RateSchedule | CronSchedule


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    rate = _RATE.match(text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value < 1:
            raise ScheduleError(f"{expression}: a rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(
                f"{expression}: EventBridge wants '1 {unit.rstrip('s')}' or 'N {unit.rstrip('s')}s'"
            )
        return RateSchedule(value * _UNIT_SECONDS[unit.rstrip("s")])
    cron = _CRON.match(text)
    if not cron:
        raise ScheduleError(f"{expression!r} is neither rate(...) nor cron(...)")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(
            f"{expression}: cron needs 6 fields (minutes hours day-of-month month day-of-week year)"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    return CronSchedule(
        minutes=_field(minutes, 0, 59, "minutes"),
        hours=_field(hours, 0, 23, "hours"),
        days_of_month=None if dom == "?" else _field(dom, 1, 31, "day-of-month"),
        months=_field(month, 1, 12, "month", _MONTHS),
        days_of_week=None if dow == "?" else _field(dow, 1, 7, "day-of-week", _DAYS),
        years=_field(year, 1970, 2199, "year"),
    )


def _field(text: str, low: int, high: int, name: str, names: dict[str, int] | None = None) -> frozenset[int]:
    if any(mark in text.upper() for mark in ("L", "W", "#")) and not (names and _only_names(text, names)):
        raise ScheduleError(f"cron {name} {text!r}: the L, W and # forms are not emulated locally")
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _number(step_text, name)
            if step < 1:
                raise ScheduleError(f"cron {name}: step must be at least 1")
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = _value(first, name, names), _value(last, name, names)
        else:
            start = _value(part, name, names)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"cron {name} {text!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _only_names(text: str, names: dict[str, int]) -> bool:
    tokens = re.split(r"[,\-/]", text.upper())
    return all(token.isdigit() or token in names or token in ("*", "?") for token in tokens)


def _value(text: str, name: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    return _number(text, name)


def _number(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ScheduleError(f"cron {name}: {text!r} is not a number") from None


@dataclass(frozen=True)
class ScheduledRule:
    name: str
    arn: str
    schedule: Schedule
    anchor: datetime
    deliver: Callable[[dict[str, Any]], None]
    """Sends the event to the rule's targets (an SQS SendMessage for a queue target)."""


def scheduled_event(rule: ScheduledRule, moment: datetime, account: str, region: str) -> dict[str, Any]:
    """The event EventBridge sends for a schedule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule.arn],
        "detail": {},
    }


class Scheduler:
    """Fires :class:`ScheduledRule` s on time, in a thread (or step by step with :meth:`fire_due`)."""

    def __init__(
        self,
        rules: Iterable[ScheduledRule],
        *,
        account: str,
        region: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_fire: Callable[[ScheduledRule, dict[str, Any]], None] | None = None,
    ) -> None:
        self._now = now
        self._account = account
        self._region = region
        self._on_fire = on_fire
        start = now()
        self._next = {rule.name: (rule, rule.schedule.next_after(start, rule.anchor)) for rule in rules}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # the thread and a test may both call fire_due

    def next_times(self) -> dict[str, datetime]:
        return {name: when for name, (_rule, when) in self._next.items()}

    def fire_due(self) -> list[str]:
        """Fire every rule whose time has come (once each, even if several periods were missed,
        as EventBridge does not catch up); returns the names fired."""
        with self._lock:
            moment = self._now()
            fired = []
            for name, (rule, when) in list(self._next.items()):
                if when <= moment:
                    event = scheduled_event(rule, when, self._account, self._region)
                    rule.deliver(event)
                    if self._on_fire is not None:
                        self._on_fire(rule, event)
                    fired.append(name)
                    self._next[name] = (rule, rule.schedule.next_after(moment, rule.anchor))
            return fired

    def start(self) -> Scheduler:
        if self._next:
            self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.fire_due()
            upcoming = min((when for _rule, when in self._next.values()), default=None)
            wait = 30.0 if upcoming is None else max(0.05, (upcoming - self._now()).total_seconds())
            self._stop.wait(min(wait, 30.0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def queue_delivery(sqs: Any, queue_url: str) -> Callable[[dict[str, Any]], None]:
    """Deliver a scheduled event to a queue target, as EventBridge does (the event JSON as the body)."""

    def deliver(event: dict[str, Any]) -> None:
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))

    return deliver
