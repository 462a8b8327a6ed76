"""GraphClient's free/busy (``get_schedule``) and what it reads of Teams meetings, against the Graph sandbox:
what the Teams flow builds on to pick a free slot and to tell a real Teams meeting from Graph's silent
failure on a calendar that refuses Teams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.graph.client import GraphClient, Schedule
from ledgerlink.graph.errors import (
    GraphAccessDenied,
    GraphRequestRejected,
    MailboxNotFound,
    ScheduleUnavailable,
)
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_NO_TEAMS_USER
from tests.unit.graph.support import AR_MAILBOX, CONTRACTOR, MARIA, admin, build, requests_to

NOBODY = "nobody@ledgerlinkdemo.onmicrosoft.com"
NOTEAMS = DEMO_NO_TEAMS_USER
JORDAN = "jordan.lee@ledgerlinkdemo.onmicrosoft.com"
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def graph(graph_sandbox: SandboxServer) -> GraphClient:
    return build(graph_sandbox).client


def seed(server: SandboxServer, mailbox: str, *events: dict[str, Any]) -> None:
    admin(server, "POST", "seed", {"events": [{"user": mailbox, "event": event} for event in events]})


def pacific(day: str, start: str, end: str, subject: str, show_as: str = "busy") -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T{start}:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": f"{day}T{end}:00", "timeZone": "Pacific Standard Time"},
        "showAs": show_as,
    }


def meeting(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Payment follow-up: invoice 1042",
        "start": {"dateTime": "2026-04-15T16:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-04-15T16:30:00", "timeZone": "UTC"},
        "attendees": [
            {"emailAddress": {"address": JORDAN}, "type": "required"},
            {"emailAddress": {"address": "ap@acme.example"}, "type": "required"},
        ],
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
    }
    body.update(changes)
    return body


# ----------------------------------------------------------------------------- free/busy


def test_the_schedule_holds_the_organizers_busy_items_in_utc(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    # given Maria's Tuesday (Pacific time): a busy hour, a free lunch, a tentative call
    seed(
        graph_sandbox,
        MARIA,
        pacific("2026-04-14", "09:00", "10:00", "Pipeline review"),
        pacific("2026-04-14", "12:00", "13:00", "Lunch", "free"),
        pacific("2026-04-14", "14:30", "15:00", "Maybe a call", "tentative"),
    )
    # when the client asks for her 08:00-17:00, written in Pacific time
    start = datetime(2026, 4, 14, 8, tzinfo=LOS_ANGELES)
    schedule = graph.get_schedule(MARIA, start, start + timedelta(hours=9))
    # then the busy items are the busy and tentative ones, as aware UTC datetimes (PDT is UTC-7)
    assert schedule.error is None
    assert [(i.start, i.end, i.status) for i in schedule.busy] == [
        (datetime(2026, 4, 14, 16, tzinfo=UTC), datetime(2026, 4, 14, 17, tzinfo=UTC), "busy"),
        (datetime(2026, 4, 14, 21, 30, tzinfo=UTC), datetime(2026, 4, 14, 22, tzinfo=UTC), "tentative"),
    ]
    assert all(i.start.utcoffset() == timedelta(0) and i.end.tzinfo is UTC for i in schedule.busy)
    # and the free lunch is free, the busy hour is not
    assert schedule.is_free(datetime(2026, 4, 14, 19, tzinfo=UTC), datetime(2026, 4, 14, 20, tzinfo=UTC))
    assert not schedule.is_free(
        datetime(2026, 4, 14, 16, 30, tzinfo=UTC), datetime(2026, 4, 14, 17, tzinfo=UTC)
    )
    # and the window, the merged view (18 half hours from 08:00) and the working hours come with it
    assert (schedule.start, schedule.end) == (
        start.astimezone(UTC),
        (start + timedelta(hours=9)).astimezone(UTC),
    )
    assert schedule.availability_view == "002200000000010000"
    assert schedule.working_hours is not None and schedule.working_hours["startTime"] == "08:00:00.0000000"
    # and the call went through her own calendar, counted against her mailbox
    assert [
        entry["status"] for entry in requests_to(graph_sandbox, f"/v1.0/users/{MARIA}/calendar/getSchedule")
    ] == [200]
    # and the schedule carries no subject (customer data stays out of what the flow holds)
    assert "Pipeline" not in repr(schedule)


def test_the_interval_sets_the_views_slots_and_a_dst_day_has_23_hours(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    # given a 09:00-10:00 New York meeting on the day clocks spring forward
    seed(
        graph_sandbox,
        AR_MAILBOX,
        {
            "subject": "Collections call",
            "start": {"dateTime": "2026-03-08T09:00:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-08T10:00:00", "timeZone": "America/New_York"},
        },
    )
    # when the whole New York day is asked for in hours
    day = datetime(2026, 3, 8, tzinfo=NEW_YORK)
    schedule = graph.get_schedule(AR_MAILBOX, day, datetime(2026, 3, 9, tzinfo=NEW_YORK), interval_minutes=60)
    # then 23 slots, busy in the ninth (05:00 UTC + 8 hours), and the item is 13:00-14:00 UTC
    assert schedule.availability_view == "0" * 8 + "2" + "0" * 14
    [busy] = schedule.busy
    assert (busy.start, busy.end) == (
        datetime(2026, 3, 8, 13, tzinfo=UTC),
        datetime(2026, 3, 8, 14, tzinfo=UTC),
    )


def test_an_unknown_mailboxs_schedule_error_becomes_mailbox_not_found(graph: GraphClient) -> None:
    # when the free/busy of an address nobody has is asked for through the accounts-receivable calendar
    start = datetime(2026, 4, 14, 16, tzinfo=UTC)
    schedule = graph.get_schedule(NOBODY, start, start + timedelta(hours=1), via=AR_MAILBOX)
    # then Graph's 200 carries an error for it, which the schedule holds as MailboxNotFound with Graph's code
    assert isinstance(schedule.error, MailboxNotFound)
    assert (schedule.error.code, schedule.error.mailbox, schedule.error.status) == ("5009", NOBODY, 200)
    assert schedule.busy == () and schedule.availability_view == ""
    # and it is the record's permanent failure, raised by whoever reads the schedule
    assert classify(schedule.error).scope is FailureScope.RECORD and not schedule.error.retryable
    with pytest.raises(MailboxNotFound):
        schedule.raise_for_error()
    with pytest.raises(MailboxNotFound):
        schedule.is_free(start, start + timedelta(minutes=30))


def test_a_mailbox_that_is_not_there_fails_the_call_through_its_own_calendar(graph: GraphClient) -> None:
    start = datetime(2026, 4, 14, 16, tzinfo=UTC)
    # through its own (absent) calendar: Graph refuses the call itself
    with pytest.raises(MailboxNotFound) as missing:
        graph.get_schedule(NOBODY, start, start + timedelta(hours=1))
    assert missing.value.code == "ErrorInvalidUser"
    # and a user without a mailbox, asked about through another calendar, is not found either
    schedule = graph.get_schedule(CONTRACTOR, start, start + timedelta(hours=1), via=AR_MAILBOX)
    assert isinstance(schedule.error, MailboxNotFound)


def test_a_window_graph_refuses_is_a_rejected_request_and_bad_arguments_fail_before_sending(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    # Graph allows 62 days
    with pytest.raises(GraphRequestRejected) as too_long:
        graph.get_schedule(AR_MAILBOX, start, start + timedelta(days=63))
    assert too_long.value.code == "ErrorTimeIntervalTooBig"
    # and the client refuses, without a call, what cannot be right
    sent = len(requests_to(graph_sandbox, "/v1.0/users/"))
    with pytest.raises(ValueError, match="offset"):
        graph.get_schedule(AR_MAILBOX, datetime(2026, 4, 1), datetime(2026, 4, 2))
    with pytest.raises(ValueError, match="after"):
        graph.get_schedule(AR_MAILBOX, start, start)
    with pytest.raises(ValueError, match="between 5 and 1440"):
        graph.get_schedule(AR_MAILBOX, start, start + timedelta(hours=1), interval_minutes=4)
    assert len(requests_to(graph_sandbox, "/v1.0/users/")) == sent


def test_a_schedule_call_that_fails_once_is_retried(graph_sandbox: SandboxServer, graph: GraphClient) -> None:
    # given Graph failing the first getSchedule with a 503
    path = f"/v1.0/users/{AR_MAILBOX}/calendar/getSchedule"
    admin(graph_sandbox, "POST", "faults", {"kind": "503", "path_prefix": path, "count": 1})
    # when the client asks, then it gets the schedule (the POST reads only, so it is retried)
    start = datetime(2026, 4, 14, 16, tzinfo=UTC)
    schedule = graph.get_schedule(AR_MAILBOX, start, start + timedelta(hours=1))
    assert schedule.error is None and schedule.availability_view == "00"
    assert [entry["status"] for entry in requests_to(graph_sandbox, path)] == [503, 200]


WINDOW_START = datetime(2018, 8, 6, 16, tzinfo=UTC)
WINDOW_END = datetime(2018, 8, 7, 1, tzinfo=UTC)


def read(answer: dict[str, Any]) -> Schedule:
    """Alex's schedule in ``answer``, for the window of Microsoft's free/busy guide (in UTC)."""
    return Schedule.from_api(
        answer, mailbox="alex@contoso.example", start=WINDOW_START, end=WINDOW_END, interval_minutes=15
    )


@pytest.mark.parametrize(
    ("code", "error_type", "retryable"),
    [
        ("5009", MailboxNotFound, False),
        ("ErrorMailRecipientNotFound", MailboxNotFound, False),
        ("ErrorNoFreeBusyAccess", GraphAccessDenied, False),
        ("ErrorFreeBusyGenerationFailed", ScheduleUnavailable, True),
        ("ErrorSomethingNew", GraphRequestRejected, False),
    ],
)
def test_each_kind_of_schedule_error_is_classified(code: str, error_type: type, retryable: bool) -> None:
    # given a getSchedule answer whose one schedule is an error (freeBusyError: responseCode, message)
    answer = {
        "value": [{"scheduleId": "Alex@Contoso.example", "error": {"responseCode": code, "message": "no"}}]
    }
    schedule = read(answer)
    # then the schedule's error is of the kind that code means, naming Graph's code, about this record
    assert isinstance(schedule.error, error_type)
    assert schedule.error.code == code and schedule.error.retryable is retryable
    assert classify(schedule.error).scope is FailureScope.RECORD


def test_statuses_are_read_whatever_their_case_and_an_answer_without_the_mailbox_is_an_error() -> None:
    # given the answer of Microsoft's free/busy guide ("Tentative", "Busy"), its times made UTC
    item = {"start": {"dateTime": "2018-08-06T16:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2018-08-06T17:30:00.1234567", "timeZone": "UTC"}}  # fmt: skip
    answer = {
        "value": [
            {
                "scheduleId": "alex@contoso.example",
                "availabilityView": "111111002222222200000000000000000000",
                "scheduleItems": [{**item, "status": "Tentative"}, {**item, "status": "Free"}],
            }
        ]
    }
    schedule = read(answer)
    # then the tentative item is busy (seven fractional digits read to the microsecond), the free one not
    assert [(i.status, i.end) for i in schedule.busy] == [
        ("tentative", datetime(2018, 8, 6, 17, 30, 0, 123456, tzinfo=UTC))
    ]
    # and an answer naming another mailbox only is an error, not an empty (free) schedule
    other = read({"value": [{**answer["value"][0], "scheduleId": "b@x.example"}]})
    assert isinstance(other.error, GraphRequestRejected)
    with pytest.raises(GraphRequestRejected):
        other.is_free(WINDOW_START, WINDOW_END)


# ----------------------------------------------------------------------------- Teams, checked


def test_a_teams_create_on_a_refusing_calendar_comes_back_without_a_join_url(graph: GraphClient) -> None:
    # given a mailbox whose calendar does not offer Teams, as its calendar says
    calendar = graph.calendar(NOTEAMS)
    assert calendar.allowed_online_meeting_providers == ("unknown",) and not calendar.allows_teams
    # when a Teams meeting is created there
    event = graph.create_event(NOTEAMS, meeting(), transaction_id="demo:invoice-1042:overdue-1")
    # then Graph answered with an event (201) that is no Teams meeting
    assert (event.is_online_meeting, event.online_meeting_provider, event.join_url) == (
        False,
        "unknown",
        None,
    )
    assert not event.is_teams_meeting
    # and the event still names its organizer and attendees
    assert event.organizer == NOTEAMS and event.attendees == (JORDAN, "ap@acme.example")


def test_a_teams_create_on_a_normal_calendar_has_a_join_url(graph: GraphClient) -> None:
    assert graph.calendar(AR_MAILBOX).allows_teams
    event = graph.create_event(AR_MAILBOX, meeting(), transaction_id="demo:invoice-1042:overdue-1")
    assert event.is_online_meeting and event.online_meeting_provider == "teamsForBusiness"
    assert event.join_url is not None and event.join_url.startswith(
        "https://teams.microsoft.com/l/meetup-join/"
    )
    assert event.is_teams_meeting and event.organizer == AR_MAILBOX
    # and the join URL is what the sandbox's calendar holds
    again = graph.get_event(AR_MAILBOX, event.id)
    assert again is not None and again.join_url == event.join_url
