"""Graph sandbox: free/busy (``calendar: getSchedule``) and calendars that refuse Teams.

The scheduleInformation and scheduleItem property sets are written down from the v1.0 resource pages
(api-reference/v1.0/resources/scheduleinformation.md, scheduleitem.md, freebusyerror.md).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CALENDAR_USER, DEMO_NO_TEAMS_USER, DemoCredentials
from tests.unit.sandboxes.graph_support import bearer, fixture, get_token

SCHEDULE_INFORMATION = {"scheduleId", "availabilityView", "error", "scheduleItems", "workingHours"}
SCHEDULE_ITEM = {"end", "isPrivate", "location", "start", "status", "subject"}
AVERY = "avery.chen@ledgerlinkdemo.onmicrosoft.com"
JORDAN = "jordan.lee@ledgerlinkdemo.onmicrosoft.com"
PRIYA = "priya.patel@ledgerlinkdemo.onmicrosoft.com"
NOTEAMS = DEMO_NO_TEAMS_USER
CONTRACTOR = "contractor@ledgerlinkdemo.onmicrosoft.com"
NOBODY = "nobody@ledgerlinkdemo.onmicrosoft.com"
DAY = "2026-04-14"  # a Tuesday


class Graph:
    """Just enough client for these tests: the demo app's token, JSON calls, the admin API."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.base = DemoCredentials.for_sandbox(server.url).base_url
        self.headers = bearer(server)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=5, **kwargs)

    def schedule(
        self, body: dict[str, Any], via: str = DEMO_CALENDAR_USER, **kwargs: Any
    ) -> requests.Response:
        return self.call("POST", f"/users/{via}/calendar/getSchedule", json=body, **kwargs)

    def admin(self, action: str, body: Any) -> requests.Response:
        return requests.post(f"{self.server.url}/_admin/{action}", json=body, timeout=5)

    def seed_events(self, user: str, *events: dict[str, Any]) -> None:
        reply = self.admin("seed", {"events": [{"user": user, "event": event} for event in events]})
        assert reply.status_code == 200, reply.text

    def create(self, body: dict[str, Any], user: str = DEMO_CALENDAR_USER) -> dict[str, Any]:
        reply = self.call("POST", f"/users/{user}/events", json=body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def state(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.server.url}/_admin/state", timeout=5).json())


@pytest.fixture
def graph(graph_sandbox: SandboxServer) -> Graph:
    return Graph(graph_sandbox)


def utc_event(subject: str, start: str, end: str, show_as: str = "busy", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{DAY}T{start}:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{DAY}T{end}:00", "timeZone": "UTC"},
        "showAs": show_as,
        **extra,
    }


def window(start: str, end: str, *schedules: str, zone: str = "UTC", interval: Any = 30) -> dict[str, Any]:
    return {
        "schedules": list(schedules) or [DEMO_CALENDAR_USER],
        "startTime": {"dateTime": start, "timeZone": zone},
        "endTime": {"dateTime": end, "timeZone": zone},
        "availabilityViewInterval": interval,
    }


def assert_graph_error(reply: requests.Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code
    return str(error["message"])


# --------------------------------------------------------------------------- free/busy


def test_a_known_layout_of_events_gives_its_items_and_availability_view(graph: Graph) -> None:
    # given a working day with busy, tentative, free, out-of-office, working-elsewhere and private items,
    # one starting before the window and one after it
    graph.seed_events(
        DEMO_CALENDAR_USER,
        utc_event("Early standup", "08:30", "09:30"),
        utc_event("Maybe", "10:00", "11:00", "tentative"),
        utc_event("Budget review", "10:30", "11:30", location={"displayName": "Room 4"}),
        utc_event("Lunch (free)", "12:00", "13:00", "free"),
        utc_event("Dentist", "13:00", "14:00", "oof"),
        utc_event("Private call", "14:00", "14:30", sensitivity="private"),
        utc_event("From home", "15:00", "15:30", "workingElsewhere"),
        utc_event("Late call", "16:45", "18:00"),
        utc_event("Evening", "18:00", "19:00"),
    )
    # when the day 09:00-17:00 UTC is asked for in half hours
    reply = graph.schedule(window(f"{DAY}T09:00:00", f"{DAY}T17:00:00"))
    # then one scheduleInformation for the mailbox, with the documented properties only
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)")
    [info] = body["value"]
    assert set(info) <= SCHEDULE_INFORMATION and info["scheduleId"] == DEMO_CALENDAR_USER
    # and one digit per half hour: busy wins over tentative, free and out-of-window items count nothing
    assert info["availabilityView"] == "2012200033204002"
    # and the items are the events that are not free, whole (08:30, not 09:00), in UTC, by start
    items = info["scheduleItems"]
    assert all(set(item) <= SCHEDULE_ITEM for item in items)
    assert [(i["status"], i["start"]["dateTime"][11:16], i["end"]["dateTime"][11:16]) for i in items] == [
        ("busy", "08:30", "09:30"),
        ("tentative", "10:00", "11:00"),
        ("busy", "10:30", "11:30"),
        ("oof", "13:00", "14:00"),
        ("busy", "14:00", "14:30"),
        ("workingElsewhere", "15:00", "15:30"),
        ("busy", "16:45", "18:00"),
    ]
    assert items[0]["start"] == {"dateTime": f"{DAY}T08:30:00.0000000", "timeZone": "UTC"}
    assert (items[2]["subject"], items[2]["location"], items[2]["isPrivate"]) == (
        "Budget review",
        "Room 4",
        False,
    )
    # and a private event says it is private, and neither its subject nor its location
    assert items[4]["isPrivate"] is True and "subject" not in items[4] and "location" not in items[4]
    # and the working hours are the sandbox's fixed Monday-Friday 08:00-17:00 in the user's zone
    assert info["workingHours"] == {
        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "startTime": "08:00:00.0000000",
        "endTime": "17:00:00.0000000",
        "timeZone": {"name": "Pacific Standard Time"},
    }


def test_the_working_elsewhere_digit_follows_the_configured_reading(graph: Graph) -> None:
    # given an hour working elsewhere, and the free/busy guide's reading of it (0) configured
    graph.seed_events(DEMO_CALENDAR_USER, utc_event("From home", "09:00", "10:00", "workingElsewhere"))
    request = window(f"{DAY}T09:00:00", f"{DAY}T11:00:00", interval=60)
    assert graph.schedule(request).json()["value"][0]["availabilityView"] == "40"
    patched = requests.patch(
        f"{graph.server.url}/_admin/config", json={"availability_working_elsewhere_digit": "0"}, timeout=5
    )
    assert patched.status_code == 200
    # then the view shows it as 0, and the item is still listed as working elsewhere
    info = graph.schedule(request).json()["value"][0]
    assert info["availabilityView"] == "00"
    assert [item["status"] for item in info["scheduleItems"]] == ["workingElsewhere"]


def test_unknown_addresses_and_users_without_a_mailbox_get_an_error_in_place(graph: Graph) -> None:
    # given a busy hour for Avery
    graph.seed_events(AVERY, utc_event("Busy", "09:00", "10:00"))
    # when three addresses are asked for at once: an unknown one, Avery (another case), no mailbox
    reply = graph.schedule(window(f"{DAY}T09:00:00", f"{DAY}T10:00:00", NOBODY, AVERY.upper(), CONTRACTOR))
    # then 200, one answer per address in the order asked, errors in place of schedules
    assert reply.status_code == 200
    unknown, avery, contractor = reply.json()["value"]
    assert unknown == {
        "scheduleId": NOBODY,
        "error": {
            "message": f"Unable to resolve e-mail address {NOBODY} to an Active Directory object.",
            "responseCode": "5009",
        },
    }
    assert avery["scheduleId"] == AVERY.upper() and avery["availabilityView"] == "22"
    assert set(contractor) == {"scheduleId", "error"}
    assert contractor["error"]["responseCode"] == "ErrorMailRecipientNotFound"


def test_times_come_back_in_the_preferred_zone_not_the_windows(graph: Graph) -> None:
    graph.seed_events(DEMO_CALENDAR_USER, utc_event("Review", "16:00", "17:00"))
    # given a window written in Eastern time (12:00-14:00 EDT is 16:00-18:00 UTC)
    request = window(f"{DAY}T12:00:00", f"{DAY}T14:00:00", zone="Eastern Standard Time", interval=60)
    # when no zone is preferred, then the items are in UTC
    plain = graph.schedule(request).json()["value"][0]
    assert plain["availabilityView"] == "20"
    assert plain["scheduleItems"][0]["start"] == {"dateTime": f"{DAY}T16:00:00.0000000", "timeZone": "UTC"}
    # when Pacific time is preferred, then the items are in Pacific time and the preference is applied
    preferred = graph.schedule(request, headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert preferred.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    assert preferred.json()["value"][0]["scheduleItems"][0]["start"] == {
        "dateTime": f"{DAY}T09:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }


@pytest.mark.parametrize(
    ("day", "next_day", "slots", "busy_slot", "local_start"),
    [
        # spring forward: the New York day has 23 hours; 09:00 EDT is 8 hours after midnight EST
        ("2026-03-08", "2026-03-09", 23, 8, "09:00"),
        # fall back: 25 hours; 09:00 EST is 10 hours after midnight EDT
        ("2026-11-01", "2026-11-02", 25, 10, "09:00"),
    ],
)
def test_dst_days_have_as_many_slots_as_hours(
    graph: Graph, day: str, next_day: str, slots: int, busy_slot: int, local_start: str
) -> None:
    # given a meeting at 09:00-10:00 New York time on a day the clocks change
    graph.seed_events(
        DEMO_CALENDAR_USER,
        {
            "subject": "Collections call",
            "start": {"dateTime": f"{day}T09:00:00", "timeZone": "America/New_York"},
            "end": {"dateTime": f"{day}T10:00:00", "timeZone": "America/New_York"},
        },
    )
    # when the whole local day is asked for in hours, answered in New York time
    reply = graph.schedule(
        window(f"{day}T00:00:00", f"{next_day}T00:00:00", zone="America/New_York", interval=60),
        headers={"Prefer": 'outlook.timezone="America/New_York"'},
    )
    info = reply.json()["value"][0]
    # then the view has one digit per real hour, busy in the slot that really holds 09:00 local
    assert info["availabilityView"] == "0" * busy_slot + "2" + "0" * (slots - busy_slot - 1)
    assert info["scheduleItems"][0]["start"] == {
        "dateTime": f"{day}T{local_start}:00.0000000",
        "timeZone": "America/New_York",
    }


def test_cancelled_copies_are_not_busy(graph: Graph) -> None:
    # given a meeting the finance mailbox organizes with Avery, who has a (tentative) copy
    meeting = graph.create(
        utc_event("Follow-up", "09:00", "09:30", attendees=[{"emailAddress": {"address": AVERY}}])
    )
    request = window(f"{DAY}T09:00:00", f"{DAY}T10:00:00", AVERY)
    assert graph.schedule(request).json()["value"][0]["availabilityView"] == "10"
    # when the organizer cancels it
    cancelled = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/events/{meeting['id']}/cancel", json={})
    assert cancelled.status_code == 202
    # then Avery's cancelled copy no longer makes Avery busy
    info = graph.schedule(request).json()["value"][0]
    assert (info["availabilityView"], info["scheduleItems"]) == ("00", [])


def test_the_action_binds_whatever_its_case_and_its_parameters_case(graph: Graph) -> None:
    graph.seed_events(DEMO_CALENDAR_USER, utc_event("Busy", "09:00", "09:15"))
    # given the body Microsoft's free/busy guide posts (PascalCase names, the interval as a string)
    body = {
        "Schedules": [DEMO_CALENDAR_USER],
        "StartTime": {"dateTime": f"{DAY}T09:00:00", "timeZone": "UTC"},
        "EndTime": {"dateTime": f"{DAY}T10:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": "15",
    }
    # when it is posted to getschedule, and to the namespace-qualified action
    for action in ("getschedule", "microsoft.graph.getSchedule"):
        reply = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/calendar/{action}", json=body)
        # then both answer, in quarter hours
        assert reply.status_code == 200, (action, reply.text)
        assert reply.json()["value"][0]["availabilityView"] == "2000"
    # and a GET is not the action
    assert graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendar/getSchedule").status_code == 405


def test_the_default_interval_is_half_an_hour(graph: Graph) -> None:
    request = window(f"{DAY}T09:00:00", f"{DAY}T12:00:00")
    del request["availabilityViewInterval"]
    assert graph.schedule(request).json()["value"][0]["availabilityView"] == "000000"
    # and a last slot shorter than the interval still gets its digit
    odd = window(f"{DAY}T09:00:00", f"{DAY}T10:10:00", interval=30)
    assert graph.schedule(odd).json()["value"][0]["availabilityView"] == "000"


def _many(count: int) -> list[str]:
    return [f"user{index}@ledgerlinkdemo.onmicrosoft.com" for index in range(count)]


@pytest.mark.parametrize(
    ("change", "code", "message_part"),
    [
        ({"endTime": {"dateTime": f"{DAY}T08:00:00", "timeZone": "UTC"}}, "ErrorInvalidTimeInterval", "is invalid"),
        (
            {"endTime": {"dateTime": "2026-06-16T09:00:00", "timeZone": "UTC"}},
            "ErrorTimeIntervalTooBig",
            "The allowed limit = 62 days; the actual limit = 63 days.",
        ),
        ({"availabilityViewInterval": 4}, "ErrorInvalidMergedFreeBusyInterval", "between 5 and 1440"),
        ({"availabilityViewInterval": 1441}, "ErrorInvalidMergedFreeBusyInterval", "between 5 and 1440"),
        ({"availabilityViewInterval": 120}, "ErrorInvalidMergedFreeBusyInterval", "less than the free/busy"),
        ({"availabilityViewInterval": True}, "UnableToDeserializePostBody", "availabilityViewInterval"),
        ({"schedules": _many(21)}, "ErrorMailboxDataArrayTooBig", "The allowed size = 20; the actual size = 21."),
        ({"schedules": []}, "ErrorInvalidParameter", "schedules"),
        ({"schedules": None}, "ErrorInvalidParameter", "schedules"),
        ({"schedules": [42]}, "UnableToDeserializePostBody", "schedules"),
        ({"startTime": None}, "ErrorInvalidParameter", "startTime"),
        ({"startTime": {"dateTime": "tomorrow", "timeZone": "UTC"}}, "UnableToDeserializePostBody", "startTime"),
        (
            {"startTime": {"dateTime": f"{DAY}T09:00:00", "timeZone": "Mars/Olympus_Mons"}},
            "TimeZoneNotSupportedException",
            "Mars/Olympus_Mons",
        ),
        ({"availability": "all"}, "BadRequest", "'availability'"),
    ],
)  # fmt: skip
def test_invalid_requests_are_refused_with_graphs_codes(
    graph: Graph, change: dict[str, Any], code: str, message_part: str
) -> None:
    body = {**window(f"{DAY}T09:00:00", f"{DAY}T10:00:00", interval=30), **change}
    assert message_part in assert_graph_error(graph.schedule(body), 400, code)


def test_a_window_of_62_days_and_20_addresses_are_allowed(graph: Graph) -> None:
    body = window("2026-04-01T00:00:00", "2026-06-02T00:00:00", *_many(20), interval=1440)
    reply = graph.schedule(body)
    assert reply.status_code == 200 and len(reply.json()["value"]) == 20


def test_an_unknown_or_mailboxless_path_user_answers_as_calendar_paths_do(graph: Graph) -> None:
    body = window(f"{DAY}T09:00:00", f"{DAY}T10:00:00")
    assert_graph_error(graph.schedule(body, via=NOBODY), 404, "ErrorInvalidUser")
    assert_graph_error(graph.schedule(body, via=CONTRACTOR), 404, "MailboxNotEnabledForRESTAPI")
    assert_graph_error(graph.call("POST", "/me/calendar/getSchedule", json=body), 400, "BadRequest")


@pytest.mark.parametrize(
    ("roles", "status"),
    [(["User.Read.All"], 403), (["Calendars.ReadBasic"], 200), (["Calendars.Read"], 200)],
)
def test_free_busy_needs_a_calendars_permission(
    graph_sandbox: SandboxServer, roles: list[str], status: int
) -> None:
    # given an app registration granted only ``roles``
    requests.post(
        f"{graph_sandbox.url}/_admin/seed",
        json={"apps": [{"clientId": "app-scoped", "clientSecret": "s3cret", "roles": roles}]},
        timeout=5,
    )
    token = get_token(graph_sandbox, client_id="app-scoped", client_secret="s3cret").json()["access_token"]
    # when it asks for free/busy
    reply = requests.post(
        f"{DemoCredentials.for_sandbox(graph_sandbox.url).base_url}/users/{DEMO_CALENDAR_USER}/calendar/getSchedule",
        json=window(f"{DAY}T09:00:00", f"{DAY}T10:00:00"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    # then a Calendars permission (even the least, ReadBasic) is enough, and none is 403
    assert reply.status_code == status, reply.text
    if status == 403:
        assert reply.json()["error"]["code"] == "ErrorAccessDenied"


# --------------------------------------------------------------------------- calendars that refuse Teams


def test_the_legacy_mailbox_calendar_offers_no_teams(graph: Graph) -> None:
    calendar = graph.call("GET", f"/users/{NOTEAMS}/calendar").json()
    assert calendar["allowedOnlineMeetingProviders"] == ["unknown"]
    assert calendar["defaultOnlineMeetingProvider"] == "unknown"
    assert calendar["owner"] == {"name": "Legacy Mailbox", "address": NOTEAMS}


def test_a_teams_create_on_a_refusing_calendar_is_201_and_offline(graph: Graph) -> None:
    # when the follow-up meeting is created as a Teams meeting by a mailbox that cannot host Teams
    event = graph.create(fixture("payment_followup_meeting.json"), user=NOTEAMS)
    # then Graph's silent failure: 201, but no Teams meeting
    assert (event["isOnlineMeeting"], event["onlineMeetingProvider"], event["onlineMeeting"]) == (
        False,
        "unknown",
        None,
    )
    assert "teams.microsoft.com" not in event["body"]["content"]
    # and the invitations still went out, and the tenant attendee's copy is offline too
    invites = [m for m in graph.state()["outbox"] if m["iCalUId"] == event["iCalUId"]]
    assert {(m["type"], m["from"]) for m in invites} == {("meetingRequest", NOTEAMS)}
    assert {to for m in invites for to in m["to"]} == {JORDAN, PRIYA, "ap@acme.example"}
    jordan_copy = graph.call("GET", f"/users/{JORDAN}/events").json()["value"][0]
    assert jordan_copy["iCalUId"] == event["iCalUId"] and jordan_copy["onlineMeeting"] is None
    # and asking again by PATCH changes nothing
    patched = graph.call(
        "PATCH",
        f"/users/{NOTEAMS}/events/{event['id']}",
        json={"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"},
    ).json()
    assert (patched["isOnlineMeeting"], patched["onlineMeeting"]) == (False, None)


def test_an_administrator_can_take_teams_away_from_a_mailbox_and_give_it_back(graph: Graph) -> None:
    meeting = fixture("payment_followup_meeting.json")
    # given the finance calendar made to offer only Skype for consumers
    reply = graph.admin(
        "mailboxes/online-meetings",
        {"user": DEMO_CALENDAR_USER, "allowedOnlineMeetingProviders": ["skypeForConsumer"]},
    )
    assert reply.json() == {
        "user": DEMO_CALENDAR_USER,
        "allowedOnlineMeetingProviders": ["skypeForConsumer"],
        "defaultOnlineMeetingProvider": "skypeForConsumer",
    }
    calendar = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendar").json()
    assert calendar["allowedOnlineMeetingProviders"] == ["skypeForConsumer"]
    # then a Teams create there is offline
    offline = graph.create({**meeting, "transactionId": "refused"})
    assert (offline["isOnlineMeeting"], offline["onlineMeeting"]) == (False, None)
    # when Teams is given back, then a new Teams create gets its join URL
    graph.admin(
        "mailboxes/online-meetings",
        {"user": DEMO_CALENDAR_USER, "allowedOnlineMeetingProviders": ["teamsForBusiness"]},
    )
    online = graph.create({**meeting, "transactionId": "allowed"})
    assert online["isOnlineMeeting"] is True and online["onlineMeeting"]["joinUrl"].startswith(
        "https://teams.microsoft.com/"
    )
    # and the admin action refuses what is not a provider or not a mailbox
    assert (
        graph.admin(
            "mailboxes/online-meetings",
            {"user": DEMO_CALENDAR_USER, "allowedOnlineMeetingProviders": ["zoom"]},
        ).status_code
        == 400
    )
    assert (
        graph.admin(
            "mailboxes/online-meetings", {"user": CONTRACTOR, "allowedOnlineMeetingProviders": []}
        ).status_code
        == 400
    )


def test_a_seeded_user_can_refuse_teams(graph: Graph) -> None:
    seeded = graph.admin(
        "seed",
        {
            "users": [
                {
                    "userPrincipalName": "old@northwind-demo.example",
                    "allowedOnlineMeetingProviders": ["unknown"],
                    "timeZone": "Eastern Standard Time",
                }
            ]
        },
    )
    assert seeded.status_code == 200, seeded.text
    event = graph.create(fixture("payment_followup_meeting.json"), user="old@northwind-demo.example")
    assert (event["isOnlineMeeting"], event["onlineMeetingProvider"]) == (False, "unknown")
    info = graph.schedule(window(f"{DAY}T09:00:00", f"{DAY}T10:00:00", "old@northwind-demo.example")).json()
    assert info["value"][0]["workingHours"]["timeZone"] == {"name": "Eastern Standard Time"}
    # and a seed naming an unknown provider or zone is refused
    bad = graph.admin(
        "seed",
        {
            "users": [
                {"userPrincipalName": "x@northwind-demo.example", "allowedOnlineMeetingProviders": ["zoom"]}
            ]
        },
    )
    assert bad.status_code == 400
    bad_zone = graph.admin(
        "seed", {"users": [{"userPrincipalName": "y@northwind-demo.example", "timeZone": "Mars/Base"}]}
    )
    assert bad_zone.status_code == 400


def test_a_reset_gives_the_demo_calendars_teams_again(graph: Graph) -> None:
    graph.admin(
        "mailboxes/online-meetings", {"user": DEMO_CALENDAR_USER, "allowedOnlineMeetingProviders": []}
    )
    assert requests.post(f"{graph.server.url}/_admin/reset", timeout=5).status_code == 200
    calendar = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendar").json()
    assert calendar["allowedOnlineMeetingProviders"] == ["teamsForBusiness"]
