"""Free/busy for the Graph sandbox: ``POST /users/{id}/calendar/getSchedule`` (v1.0 ``calendar:
getSchedule``), answered from the calendars the sandbox holds.

What Microsoft documents (api-reference/v1.0/api/calendar-getschedule.md, resources/scheduleinformation.md,
scheduleitem.md, freebusyerror.md, workinghours.md, concepts/outlook-get-free-busy-schedule.md):

- the body names ``schedules`` (SMTP addresses), ``startTime``/``endTime`` (``dateTimeTimeZone``) and
  ``availabilityViewInterval`` (minutes; default 30, at least 5, at most 1440);
- the answer is 200 with one ``scheduleInformation`` per address asked for: ``scheduleId``,
  ``availabilityView`` (one digit per interval: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working
  elsewhere), ``scheduleItems`` (``status``, ``start``, ``end`` and, for events of normal or personal
  sensitivity, ``isPrivate``, ``subject``, ``location``), ``workingHours``; an address it cannot
  identify gets an ``error`` (``responseCode``, ``message``) in place of a schedule;
- start and end times in the answer are UTC unless ``Prefer: outlook.timezone`` names a zone (not the
  zone of ``startTime``);
- the window must be shorter than 62 days, and at most 20 addresses are looked up at once.

What Graph was seen doing (Microsoft's docs repository, issues and pull requests), reproduced here:

- an item is the whole event when it only partly overlaps the window (the reference page's sample has an
  08:30-09:30 item in a 09:00-18:00 window; Exchange's availability docs say the same);
- overlapping items merge into the slot's strongest status (the sample's busy 12-14 and tentative 12-13
  give "22" for 12-14);
- an unresolvable address → ``{"scheduleId", "error": {"message": "Unable to resolve e-mail address <a>
  to an Active Directory object.", "responseCode": "5009"}}`` and nothing else (issue 11225);
- 400 ``ErrorTimeIntervalTooBig`` "... The allowed limit = 62 days; the actual limit = 63 days." (pull
  request 19703), ``ErrorMailboxDataArrayTooBig`` "There are too many target users in the EmailAddress
  array. The allowed size = 100; the actual size = 101." (issue 7047: Graph allowed 100 where the docs
  say 20; the sandbox holds to the documented 20, configurable), ``ErrorInvalidMergedFreeBusyInterval``
  for an interval outside 5-1440 minutes or longer than the window, ``ErrorInvalidTimeInterval`` "The
  time duration specified for FreeBusyViewOptions.TimeWindow is invalid." (used here for an end not
  after the start);
- parameter names bind whatever their case and the interval may be a numeric string (Microsoft's own
  free/busy guide posts ``"Schedules"``, ``"StartTime"`` and ``"availabilityViewInterval": "15"`` to
  ``.../calendar/getschedule``).

*Assumptions* (unverified): slots run in absolute time from the window's start, so a window over a DST
change has as many slots as its real length (46 half hours for 2026-03-08 in New York); the strength
order is oof > busy > tentative > workingElsewhere > free, and an item of status ``unknown`` is listed
but leaves its slots free; the view's digit for working elsewhere is 4 (the scheduleInformation page)
where the free/busy guide says 0 — configurable (``availability_working_elsewhere_digit``); private and
confidential events list no subject or location; working hours are a fixed Monday-Friday 08:00-17:00 in
the user's zone (the sandbox has no mailboxSettings); a user without a mailbox gets the error
``ErrorMailRecipientNotFound``; missing parameters → 400 ``ErrorInvalidParameter``; an unknown time zone →
400 ``TimeZoneNotSupportedException`` (as for events); ``availabilityViewInterval: null`` means the
default (a 2019 report says Graph answered 500).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledgerlink_local.sandboxes.graph.datetimes import format_local
from ledgerlink_local.sandboxes.graph.events import GraphProblem, StoredEvent, parse_zoned
from ledgerlink_local.sandboxes.graph.identity import TenantUser

SCHEDULE_INFORMATION_CONTEXT = "$metadata#Collection(microsoft.graph.scheduleInformation)"
PARAMETERS = ("schedules", "startTime", "endTime", "availabilityViewInterval")
DEFAULT_INTERVAL_MINUTES = 30
MIN_INTERVAL_MINUTES = 5
MAX_INTERVAL_MINUTES = 1440
MAX_WINDOW_DAYS = 62  # "must be less than 62 days" (guide); Graph's error says "allowed limit = 62 days"
MAX_SCHEDULES = 20  # the guide's figure (Graph was seen allowing 100)
VIEW_DIGITS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
# Which status a slot shows when several items overlap it (*assumption* beyond busy > tentative).
STRENGTH = {"unknown": 0, "free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}
WORKING_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
HIDDEN_SENSITIVITIES = ("private", "confidential")


@dataclass(frozen=True)
class ScheduleRequest:
    """A getSchedule body, checked: the addresses in order, the window as UTC instants, the slot length."""

    schedules: tuple[str, ...]
    start: datetime
    end: datetime
    interval: timedelta


def parse_schedule_request(body: Any, *, max_schedules: int, max_days: int) -> ScheduleRequest:
    """The request, or the GraphProblem Graph answers for it (module docstring)."""
    if not isinstance(body, dict):
        raise GraphProblem(400, "BadRequest", "Empty Payload. JSON content expected.")
    params: dict[str, Any] = {}
    for name, value in body.items():
        canonical = next((known for known in PARAMETERS if known.lower() == str(name).lower()), None)
        if canonical is None:
            raise GraphProblem(
                400,
                "BadRequest",
                f"The parameter '{name}' in the request payload is not a valid parameter for the "
                "operation 'getSchedule'.",
            )
        params[canonical] = value
    for required in ("schedules", "startTime", "endTime"):
        if params.get(required) is None:
            raise GraphProblem(400, "ErrorInvalidParameter", f"The parameter '{required}' is required.")
    schedules = params["schedules"]
    if not isinstance(schedules, list) or not all(isinstance(item, str) for item in schedules):
        raise _bad_type("schedules", "a collection of String")
    if not schedules:
        raise GraphProblem(400, "ErrorInvalidParameter", "The parameter 'schedules' must name at least one.")
    if len(schedules) > max_schedules:
        raise GraphProblem(
            400,
            "ErrorMailboxDataArrayTooBig",
            "There are too many target users in the EmailAddress array. "
            f"The allowed size = {max_schedules}; the actual size = {len(schedules)}.",
        )
    start = parse_zoned("startTime", params["startTime"]).utc
    end = parse_zoned("endTime", params["endTime"]).utc
    if end <= start:
        raise GraphProblem(
            400,
            "ErrorInvalidTimeInterval",
            "The time duration specified for FreeBusyViewOptions.TimeWindow is invalid.",
        )
    window = end - start
    if window > timedelta(days=max_days):
        raise GraphProblem(
            400,
            "ErrorTimeIntervalTooBig",
            "The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. "
            f"The allowed limit = {max_days} days; the actual limit = {math.ceil(window / timedelta(days=1))} days.",
        )
    minutes = _interval_minutes(params.get("availabilityViewInterval"))
    interval = timedelta(minutes=minutes)
    if not MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES or interval > window:
        raise GraphProblem(
            400,
            "ErrorInvalidMergedFreeBusyInterval",
            "The specified merged free/busy interval is not valid. Specify an interval that is less than "
            "the free/busy time window and between 5 and 1440 minutes.",
        )
    return ScheduleRequest(tuple(schedules), start, end, interval)


def _interval_minutes(value: Any) -> int:
    if value is None:
        return DEFAULT_INTERVAL_MINUTES
    if isinstance(value, bool):
        raise _bad_type("availabilityViewInterval", "Int32")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())  # OData reads an Int32 from a JSON string too (the guide sends "15")
    raise _bad_type("availabilityViewInterval", "Int32")


def _bad_type(name: str, expected: str) -> GraphProblem:
    return GraphProblem(
        400,
        "UnableToDeserializePostBody",
        f"were unable to deserialize property '{name}': expected {expected}.",
    )


def busy_events(events: Iterable[StoredEvent], start: datetime, end: datetime) -> list[StoredEvent]:
    """The events free/busy lists for the window: overlapping it, not free, not cancelled; by start."""
    found = [
        event
        for event in events
        if not event.is_cancelled
        and event.show_as != "free"
        and event.start.utc < end
        and event.end.utc > start
    ]
    return sorted(found, key=lambda event: (event.start.utc, event.end.utc))


def availability_view(
    events: Iterable[StoredEvent], request: ScheduleRequest, *, working_elsewhere_digit: str = "4"
) -> str:
    """One digit per slot of ``request.interval`` from the window's start (the last slot may be short)."""
    digits = {**VIEW_DIGITS, "workingElsewhere": working_elsewhere_digit, "unknown": "0"}
    listed = list(events)
    count = math.ceil((request.end - request.start) / request.interval)
    view = []
    for index in range(count):
        slot_start = request.start + index * request.interval
        slot_end = min(slot_start + request.interval, request.end)
        statuses = [e.show_as for e in listed if e.start.utc < slot_end and e.end.utc > slot_start]
        strongest = max(statuses, key=lambda status: STRENGTH.get(status, 0), default="free")
        view.append(digits.get(strongest, "0"))
    return "".join(view)


def schedule_item(event: StoredEvent, zone: str) -> dict[str, Any]:
    """A scheduleItem for the event, its times in ``zone`` (the whole event, not clipped to the window)."""
    item: dict[str, Any] = {"isPrivate": event.sensitivity == "private", "status": event.show_as}
    if event.sensitivity not in HIDDEN_SENSITIVITIES:
        item["subject"] = event.subject
        item["location"] = str(event.location.get("displayName") or "")
    item["start"] = format_local(event.start.utc, zone)
    item["end"] = format_local(event.end.utc, zone)
    return item


def working_hours(user: TenantUser) -> dict[str, Any]:
    """A fixed Monday-Friday 08:00-17:00 in the user's zone (*assumption*: no mailboxSettings here)."""
    return {
        "daysOfWeek": list(WORKING_DAYS),
        "startTime": "08:00:00.0000000",
        "endTime": "17:00:00.0000000",
        "timeZone": {"name": user.time_zone},
    }


def schedule_information(
    address: str,
    user: TenantUser | None,
    events: Iterable[StoredEvent],
    request: ScheduleRequest,
    *,
    zone: str,
    working_elsewhere_digit: str,
) -> dict[str, Any]:
    """The scheduleInformation for one address asked for (``user`` None: no user has that address)."""
    if user is None:
        return {
            "scheduleId": address,
            "error": {
                "message": f"Unable to resolve e-mail address {address} to an Active Directory object.",
                "responseCode": "5009",
            },
        }
    if not user.has_mailbox:
        return {
            "scheduleId": address,
            "error": {
                "message": f"No mailbox was found for {address}.",
                "responseCode": "ErrorMailRecipientNotFound",
            },
        }
    listed = busy_events(events, request.start, request.end)
    return {
        "scheduleId": address,
        "availabilityView": availability_view(
            listed, request, working_elsewhere_digit=working_elsewhere_digit
        ),
        "scheduleItems": [schedule_item(event, zone) for event in listed],
        "workingHours": working_hours(user),
    }
