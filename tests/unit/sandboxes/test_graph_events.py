"""Graph sandbox: Outlook calendar events (create with transactionId, read, list with OData
queries, calendarView, PATCH with If-Match, cancel, delete, Teams join details, validation).

The documented field sets below are written down from the Graph v1.0 ``event`` resource page
(api-reference/v1.0/resources/event.md) and the dateTimeTimeZone / attendee / recipient types.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_CALENDAR_USER,
    DemoCredentials,
)
from tests.unit.sandboxes.graph_support import bearer, fixture

EVENT_PROPERTIES = {
    "allowNewTimeProposals", "attendees", "body", "bodyPreview", "categories", "changeKey",
    "createdDateTime", "end", "hasAttachments", "hideAttendees", "iCalUId", "id", "importance",
    "isAllDay", "isCancelled", "isDraft", "isOnlineMeeting", "isOrganizer", "isReminderOn",
    "lastModifiedDateTime", "location", "locations", "onlineMeeting", "onlineMeetingProvider",
    "onlineMeetingUrl", "organizer", "originalEndTimeZone", "originalStart", "originalStartTimeZone",
    "recurrence", "reminderMinutesBeforeStart", "responseRequested", "responseStatus", "sensitivity",
    "seriesMasterId", "showAs", "start", "subject", "transactionId", "type", "webLink",
}  # fmt: skip
ANNOTATIONS = {"@odata.context", "@odata.etag"}
ALWAYS_RETURNED = EVENT_PROPERTIES - {"originalStart", "transactionId"}  # both conditional per the docs
GRAPH_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")
OUTLOOK_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}$")
TEAMS_JOIN_URL = re.compile(
    r"^https://teams\.microsoft\.com/l/meetup-join/19%3ameeting_[A-Za-z0-9%]+%40thread\.v2/0\?context="
    r"%7b%22Tid%22%3a%22[0-9a-f-]{36}%22%2c%22Oid%22%3a%22[0-9a-f-]{36}%22%7d$"
)
AVERY = "avery.chen@ledgerlinkdemo.onmicrosoft.com"
JORDAN = "jordan.lee@ledgerlinkdemo.onmicrosoft.com"
PRIYA = "priya.patel@ledgerlinkdemo.onmicrosoft.com"


class Graph:
    """Just enough client: a token, the base URL and JSON calls."""

    def __init__(self, server: SandboxServer) -> None:
        credentials = DemoCredentials.for_sandbox(server.url)
        self.server = server
        self.base = credentials.base_url
        self.headers = bearer(server)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, self.base + path, headers=headers, timeout=5, **kwargs)

    def create(self, body: dict[str, Any], user: str = DEMO_CALENDAR_USER) -> dict[str, Any]:
        reply = self.call("POST", f"/users/{user}/events", json=body)
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def events(self, user: str, **params: str) -> list[dict[str, Any]]:
        reply = self.call("GET", f"/users/{user}/events", params=params)
        assert reply.status_code == 200, reply.text
        return list(reply.json()["value"])

    def state(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.server.url}/_admin/state", timeout=5).json())


@pytest.fixture
def graph(graph_sandbox: SandboxServer) -> Graph:
    return Graph(graph_sandbox)


def assert_graph_error(reply: requests.Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) >= {"date", "request-id", "client-request-id"}
    return str(error["message"])


def event_on(day: int, hour: int, subject: str, **extra: Any) -> dict[str, Any]:
    start = datetime(2026, 4, day, hour, tzinfo=UTC)
    return {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        **extra,
    }


# --------------------------------------------------------------------------- create / read


def test_created_event_has_the_documented_shape(graph: Graph) -> None:
    # given the invoice-due event LedgerLink sends (Eastern time, the day after the DST change)
    body = fixture("invoice_due_event.json")
    # when it is created in the finance calendar
    event = graph.create(body)
    # then every documented property is there, nothing undocumented, in Graph's formats
    assert set(event) - ANNOTATIONS <= EVENT_PROPERTIES
    assert set(event) >= ALWAYS_RETURNED
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert GRAPH_TIMESTAMP.match(event["createdDateTime"]) and GRAPH_TIMESTAMP.match(
        event["lastModifiedDateTime"]
    )
    # 09:00 EDT (UTC-4 after 2026-03-08) is 13:00 UTC; responses are UTC unless a zone is preferred
    assert event["start"] == {"dateTime": "2026-03-09T13:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-03-09T13:30:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == event["originalEndTimeZone"] == "Eastern Standard Time"
    assert event["transactionId"] == body["transactionId"]
    assert event["organizer"] == {
        "emailAddress": {"name": "Finance Operations", "address": DEMO_CALENDAR_USER}
    }
    assert event["isOrganizer"] is True and event["responseStatus"]["response"] == "organizer"
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == [AVERY, "ap@acme.example"]
    assert all(set(a) == {"type", "status", "emailAddress"} for a in event["attendees"])
    assert event["attendees"][1]["type"] == "optional"
    assert event["body"]["contentType"] == "html" and "<b>1042</b>" in event["body"]["content"]
    assert event["bodyPreview"].startswith("Invoice 1042 for Acme Corporation is due today.")
    assert (event["showAs"], event["reminderMinutesBeforeStart"], event["categories"]) == (
        "free",
        1440,
        ["LedgerLink"],
    )
    assert event["location"]["displayName"] == "Accounts receivable"
    assert event["locations"][0]["displayName"] == "Accounts receivable"
    assert event["webLink"].startswith("https://outlook.office365.com/owa/?itemid=")
    assert (event["isOnlineMeeting"], event["onlineMeeting"], event["type"]) == (
        False,
        None,
        "singleInstance",
    )
    # and reading it back by id (UPN or object id address the same mailbox) gives the same event
    user_id = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}").json()["id"]
    again = graph.call("GET", f"/users/{user_id}/events/{event['id']}").json()
    assert {k: v for k, v in again.items() if k != "@odata.context"} == {
        k: v for k, v in event.items() if k != "@odata.context"
    }


def test_transaction_id_makes_a_retried_create_return_the_same_event(graph: Graph) -> None:
    # given a create that timed out on the client side but reached the server
    body = fixture("invoice_due_event.json")
    first = graph.create(body)
    # when the client retries it with the same transactionId (even through calendar/events)
    retried = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/calendar/events", json=body)
    # then the same event comes back and the calendar holds one event, not two
    assert retried.status_code == 201
    assert retried.json()["id"] == first["id"] and retried.json()["changeKey"] == first["changeKey"]
    assert [e["id"] for e in graph.events(DEMO_CALENDAR_USER)] == [first["id"]]
    # and a different transactionId is a different event
    other = graph.create({**body, "transactionId": "ledgerlink-invoice-1043-due-000001"})
    assert other["id"] != first["id"] and len(graph.events(DEMO_CALENDAR_USER)) == 2


def test_transaction_id_is_only_returned_when_set_and_cannot_change(graph: Graph) -> None:
    plain = graph.create(event_on(1, 9, "no transaction id"))
    assert "transactionId" not in plain
    tracked = graph.create(fixture("invoice_due_event.json"))
    reply = graph.call(
        "PATCH",
        f"/users/{DEMO_CALENDAR_USER}/events/{tracked['id']}",
        json={"transactionId": "something-else"},
    )
    assert_graph_error(reply, 400, "ErrorInvalidRequest")


def test_prefer_outlook_timezone_sets_the_response_zone(graph: Graph) -> None:
    event = graph.create(fixture("invoice_due_event.json"))
    reply = graph.call(
        "GET",
        f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert reply.json()["start"] == {
        "dateTime": "2026-03-09T06:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert reply.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    iana = graph.call(
        "GET",
        f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}",
        headers={"Prefer": 'outlook.timezone="Europe/London"'},
    )
    assert iana.json()["start"]["dateTime"] == "2026-03-09T13:00:00.0000000"
    assert OUTLOOK_LOCAL_TIME.match(iana.json()["end"]["dateTime"])


def test_attendees_in_the_tenant_get_their_own_copy(graph: Graph) -> None:
    event = graph.create(fixture("invoice_due_event.json"))
    [copy_of_event] = graph.events(AVERY)
    assert copy_of_event["id"] != event["id"]
    assert copy_of_event["iCalUId"] == event["iCalUId"]
    assert copy_of_event["isOrganizer"] is False
    assert copy_of_event["responseStatus"]["response"] == "notResponded"
    assert copy_of_event["organizer"] == event["organizer"]
    assert "transactionId" not in copy_of_event
    outbox = graph.state()["outbox"]
    assert {tuple(m["to"]) for m in outbox if m["type"] == "meetingRequest"} == {
        (AVERY,),
        ("ap@acme.example",),
    }


# --------------------------------------------------------------------------- list / query


def test_list_filters_on_start_with_and_and_pages_with_next_link(graph: Graph) -> None:
    # given six events on 1..6 April and one in May
    for day in range(1, 7):
        graph.create(event_on(day, 9, f"Invoice {day} due"))
    graph.create({**event_on(1, 9, "May"), "start": {"dateTime": "2026-05-01T09:00:00", "timeZone": "UTC"},
                  "end": {"dateTime": "2026-05-01T09:30:00", "timeZone": "UTC"}})  # fmt: skip
    # when April 2..5 is asked for, two at a time, ordered by start descending
    params = {
        "$filter": "start/dateTime ge '2026-04-02T00:00:00' and start/dateTime lt '2026-04-06T00:00:00'",
        "$orderby": "start/dateTime desc",
        "$top": "2",
        "$count": "true",
    }
    first = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events", params=params).json()
    # then the first page holds two, names the total and links to the rest
    assert [e["subject"] for e in first["value"]] == ["Invoice 5 due", "Invoice 4 due"]
    assert first["@odata.count"] == 4
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(graph.base + f"/users/{DEMO_CALENDAR_USER}/events?")
    second = requests.get(next_link, headers=graph.headers, timeout=5).json()
    assert [e["subject"] for e in second["value"]] == ["Invoice 3 due", "Invoice 2 due"]
    assert "@odata.nextLink" not in second


@pytest.mark.parametrize(
    ("filter_text", "subjects"),
    [
        ("start/dateTime eq '2026-04-02T09:00:00'", ["b"]),
        ("start/dateTime gt '2026-04-02T09:00:00'", ["c"]),
        ("start/dateTime le 2026-04-02T09:00:00Z", ["a", "b"]),
        ("subject eq 'B'", ["b"]),
        ("startswith(subject,'c')", ["c"]),
        ("(subject eq 'a' or subject eq 'c') and isCancelled eq false", ["a", "c"]),
        ("not (subject eq 'a')", ["b", "c"]),
        ("transactionId eq 'tx-b'", ["b"]),
    ],
)
def test_filter_operators(graph: Graph, filter_text: str, subjects: list[str]) -> None:
    for day, subject in ((1, "a"), (2, "b"), (3, "c")):
        graph.create(event_on(day, 9, subject, transactionId=f"tx-{subject}"))
    found = graph.events(DEMO_CALENDAR_USER, **{"$filter": filter_text, "$orderby": "start/dateTime"})
    assert [e["subject"] for e in found] == subjects


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"$filter": "start/dateTime ge"}, "BadRequest"),
        ({"$filter": "nosuch eq 'x'"}, "RequestBroker--ParseUri"),
        ({"$filter": "attendees/any(a:a/emailAddress/address eq 'x')"}, "ErrorInvalidUrlQueryFilter"),
        ({"$filter": "start/dateTime ge 'tomorrow'"}, "BadRequest"),
        ({"$select": "subject,nosuch"}, "RequestBroker--ParseUri"),
        ({"$orderby": "start/dateTime sideways"}, "BadRequest"),
        ({"$top": "-1"}, "BadRequest"),
    ],
)
def test_bad_query_options_are_rejected_with_graphs_codes(graph: Graph, params: dict, code: str) -> None:
    reply = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events", params=params)
    assert_graph_error(reply, 400, code)


def test_select_returns_only_the_named_properties(graph: Graph) -> None:
    graph.create(fixture("invoice_due_event.json"))
    reply = graph.call(
        "GET", f"/users/{DEMO_CALENDAR_USER}/events", params={"$select": "subject,start"}
    ).json()
    assert reply["@odata.context"].endswith("/events(subject,start)")
    assert set(reply["value"][0]) == {"@odata.etag", "id", "subject", "start"}


def test_default_page_size_is_ten(graph: Graph) -> None:
    for day in range(1, 13):
        graph.create(event_on(day, 9, f"e{day}"))
    page = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events").json()
    assert len(page["value"]) == 10 and "$skip=10" in page["@odata.nextLink"]
    capped = graph.call(
        "GET", f"/users/{DEMO_CALENDAR_USER}/events", headers={"Prefer": "odata.maxpagesize=5"}
    )
    assert len(capped.json()["value"]) == 5 and capped.headers["Preference-Applied"] == "odata.maxpagesize=5"


def test_calendar_view_returns_events_overlapping_the_window(graph: Graph) -> None:
    graph.create(event_on(1, 9, "before"))
    graph.create(event_on(2, 9, "inside"))
    graph.create(
        {
            **event_on(2, 23, "overlapping the end"),
            "end": {"dateTime": "2026-04-03T01:00:00", "timeZone": "UTC"},
        }
    )
    graph.create(event_on(4, 9, "after"))
    view = graph.call(
        "GET",
        f"/users/{DEMO_CALENDAR_USER}/calendarView",
        params={"startDateTime": "2026-04-02T00:00:00", "endDateTime": "2026-04-03T00:00:00Z"},
    )
    assert [e["subject"] for e in view.json()["value"]] == ["inside", "overlapping the end"]
    missing = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendarView")
    assert "StartDateTime and EndDateTime" in assert_graph_error(missing, 400, "ErrorInvalidParameter")


# --------------------------------------------------------------------------- update with If-Match


def test_patch_with_the_current_etag_updates_and_changes_the_etag(graph: Graph) -> None:
    # given an event and its etag
    event = graph.create(fixture("invoice_due_event.json"))
    url = f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}"
    # when the due date moves, guarded by If-Match with that etag
    moved = {
        "start": {"dateTime": "2026-03-16T09:00:00", "timeZone": "Eastern Standard Time"},
        "end": {"dateTime": "2026-03-16T09:30:00", "timeZone": "Eastern Standard Time"},
    }
    reply = graph.call("PATCH", url, json=moved, headers={"If-Match": event["@odata.etag"]})
    # then the event moved, and its changeKey and etag are new
    assert reply.status_code == 200
    updated = reply.json()
    assert updated["start"]["dateTime"] == "2026-03-16T13:00:00.0000000"
    assert (
        updated["changeKey"] != event["changeKey"] and updated["@odata.etag"] == f'W/"{updated["changeKey"]}"'
    )
    assert updated["subject"] == event["subject"] and updated["id"] == event["id"]
    # and the attendee's copy moved with it
    [copy_of_event] = graph.events(AVERY)
    assert copy_of_event["start"]["dateTime"] == "2026-03-16T13:00:00.0000000"


def test_patch_with_a_stale_etag_is_412_and_changes_nothing(graph: Graph) -> None:
    # given an event updated by someone else after we read it
    event = graph.create(fixture("invoice_due_event.json"))
    url = f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}"
    graph.call("PATCH", url, json={"subject": "changed elsewhere"})
    # when we PATCH with the etag we read
    reply = graph.call("PATCH", url, json={"subject": "ours"}, headers={"If-Match": event["@odata.etag"]})
    # then 412 with Exchange's conflict error, and the other change stands
    message = assert_graph_error(reply, 412, "ErrorIrresolvableConflict")
    assert "change key passed in the request does not match the current change key" in message
    assert graph.call("GET", url).json()["subject"] == "changed elsewhere"


def test_patch_validates_like_create(graph: Graph) -> None:
    event = graph.create(fixture("invoice_due_event.json"))
    url = f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}"
    early_end = {"end": {"dateTime": "2026-03-01T00:00:00", "timeZone": "UTC"}}
    assert_graph_error(graph.call("PATCH", url, json=early_end), 400, "ErrorPropertyValidationFailure")
    assert graph.call("GET", url).json()["end"] == event["end"]


# --------------------------------------------------------------------------- cancel / delete


def test_organizer_cancels_a_meeting_with_a_comment(graph: Graph) -> None:
    # given a meeting with a tenant attendee
    event = graph.create(fixture("invoice_due_event.json"))
    url = f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}"
    # when the organizer cancels it (Microsoft's sample capitalises the parameter)
    reply = graph.call("POST", url + "/cancel", json={"Comment": "Invoice 1042 was paid."})
    # then 202 with no body; the event left the calendar; the attendee's copy is cancelled
    assert reply.status_code == 202 and reply.content == b""
    assert_graph_error(graph.call("GET", url), 404, "ErrorItemNotFound")
    [copy_of_event] = graph.events(AVERY)
    assert copy_of_event["isCancelled"] is True
    assert copy_of_event["subject"] == "Canceled: " + event["subject"]
    [cancellation] = [m for m in graph.state()["outbox"] if m["type"] == "meetingCancellation"]
    assert cancellation["comment"] == "Invoice 1042 was paid."
    assert set(cancellation["to"]) == {AVERY, "ap@acme.example"}
    # and its transactionId is free again
    assert graph.create(fixture("invoice_due_event.json"))["id"] != event["id"]


def test_an_attendee_cannot_cancel_the_meeting(graph: Graph) -> None:
    graph.create(fixture("invoice_due_event.json"))
    [copy_of_event] = graph.events(AVERY)
    reply = graph.call("POST", f"/users/{AVERY}/events/{copy_of_event['id']}/cancel", json={"comment": "no"})
    message = assert_graph_error(reply, 400, "ErrorInvalidRequest")
    assert message == "Your request can't be completed. You need to be an organizer to cancel a meeting."
    assert graph.events(AVERY)[0]["isCancelled"] is False


def test_delete_removes_the_event_and_cancels_attendee_copies(graph: Graph) -> None:
    event = graph.create(fixture("invoice_due_event.json"))
    url = f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}"
    stale = graph.call("DELETE", url, headers={"If-Match": 'W/"stale"'})
    assert_graph_error(stale, 412, "ErrorIrresolvableConflict")
    reply = graph.call("DELETE", url)
    assert reply.status_code == 204 and reply.content == b""
    assert_graph_error(graph.call("GET", url), 404, "ErrorItemNotFound")
    assert_graph_error(graph.call("DELETE", url), 404, "ErrorItemNotFound")
    assert graph.events(AVERY)[0]["isCancelled"] is True
    assert graph.state()["deletedItems"][DEMO_CALENDAR_USER] == [event["id"]]


def test_an_attendee_deleting_their_copy_leaves_the_meeting_alone(graph: Graph) -> None:
    event = graph.create(fixture("invoice_due_event.json"))
    [copy_of_event] = graph.events(AVERY)
    assert graph.call("DELETE", f"/users/{AVERY}/events/{copy_of_event['id']}").status_code == 204
    assert graph.events(AVERY) == []
    assert (
        graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}").json()["isCancelled"] is False
    )


def test_removing_an_attendee_cancels_their_copy(graph: Graph) -> None:
    event = graph.create(fixture("payment_followup_meeting.json"))
    attendees = [a for a in event["attendees"] if a["emailAddress"]["address"] != PRIYA]
    graph.call("PATCH", f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}", json={"attendees": attendees})
    assert graph.events(PRIYA)[0]["isCancelled"] is True
    assert graph.events(JORDAN)[0]["isCancelled"] is False


# --------------------------------------------------------------------------- Teams


def test_teams_meeting_event_gets_join_details(graph: Graph) -> None:
    # when a follow-up meeting is created as a Teams meeting
    event = graph.create(fixture("payment_followup_meeting.json"))
    # then Graph filled onlineMeeting with a Teams join URL and conference id
    assert (event["isOnlineMeeting"], event["onlineMeetingProvider"]) == (True, "teamsForBusiness")
    info = event["onlineMeeting"]
    assert set(info) <= {"joinUrl", "conferenceId", "tollNumber", "tollFreeNumbers", "quickDial", "phones"}
    assert TEAMS_JOIN_URL.match(info["joinUrl"]), info["joinUrl"]
    assert re.fullmatch(r"\d{9}", info["conferenceId"])
    assert info["joinUrl"] in event["body"]["content"]
    # and each tenant attendee's copy carries the same join URL
    for attendee in (JORDAN, PRIYA):
        assert graph.events(attendee)[0]["onlineMeeting"]["joinUrl"] == info["joinUrl"]
    # and once online it stays online
    patched = graph.call(
        "PATCH", f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}", json={"isOnlineMeeting": False}
    ).json()
    assert patched["isOnlineMeeting"] is True and patched["onlineMeeting"] == info


def test_an_event_can_be_made_a_teams_meeting_later(graph: Graph) -> None:
    event = graph.create(event_on(1, 9, "offline first"))
    patched = graph.call(
        "PATCH",
        f"/users/{DEMO_CALENDAR_USER}/events/{event['id']}",
        json={"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"},
    ).json()
    assert TEAMS_JOIN_URL.match(patched["onlineMeeting"]["joinUrl"])


def test_the_calendar_allows_only_teams(graph: Graph) -> None:
    calendar = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendar").json()
    assert calendar["allowedOnlineMeetingProviders"] == ["teamsForBusiness"]
    assert calendar["defaultOnlineMeetingProvider"] == "teamsForBusiness"


# --------------------------------------------------------------------------- validation and lookups


def _broken(change: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(fixture("invoice_due_event.json"))
    body.update(change)
    return body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_broken({"end": {"dateTime": "2026-03-09T08:00:00", "timeZone": "Eastern Standard Time"}}),
         "ErrorPropertyValidationFailure"),
        (_broken({"start": {"dateTime": "2026-03-09T09:00:00", "timeZone": "Mars/Olympus_Mons"}}),
         "TimeZoneNotSupportedException"),
        (_broken({"start": {"dateTime": "9 March 2026", "timeZone": "UTC"}}), "UnableToDeserializePostBody"),
        (_broken({"isAllDay": "yes"}), "UnableToDeserializePostBody"),
        (_broken({"showAs": "maybe"}), "UnableToDeserializePostBody"),
        (_broken({"dueDate": "2026-03-09"}), "BadRequest"),
        (_broken({"attendees": [{"emailAddress": {"address": "not an address"}}]}), "ErrorInvalidRecipients"),
        ({"subject": "no times"}, "ErrorPropertyValidationFailure"),
        (_broken({"isAllDay": True}), "ErrorPropertyValidationFailure"),
    ],
)  # fmt: skip
def test_invalid_event_bodies_are_rejected_and_nothing_is_created(
    graph: Graph, body: dict, code: str
) -> None:
    reply = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/events", json=body)
    assert_graph_error(reply, 400, code)
    assert graph.events(DEMO_CALENDAR_USER) == []


def test_all_day_event_runs_midnight_to_midnight(graph: Graph) -> None:
    body = {
        "subject": "Invoice 1042 due",
        "isAllDay": True,
        "start": {"dateTime": "2026-03-09T00:00:00", "timeZone": "Eastern Standard Time"},
        "end": {"dateTime": "2026-03-10T00:00:00", "timeZone": "Eastern Standard Time"},
    }
    event = graph.create(body)
    assert event["isAllDay"] is True and event["start"]["dateTime"] == "2026-03-09T04:00:00.0000000"


@pytest.mark.parametrize(
    ("payload", "message"),
    [(b"", "Empty Payload. JSON content expected."), (b"{not json", "Unable to read JSON request payload.")],
)
def test_unreadable_bodies_are_400(graph: Graph, payload: bytes, message: str) -> None:
    reply = graph.call(
        "POST",
        f"/users/{DEMO_CALENDAR_USER}/events",
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    assert assert_graph_error(reply, 400, "BadRequest").startswith(message)


def test_unknown_user_event_and_malformed_ids(graph: Graph) -> None:
    missing_user = graph.call("GET", "/users/ghost@ledgerlinkdemo.onmicrosoft.com/events")
    assert_graph_error(missing_user, 404, "ErrorInvalidUser")
    no_mailbox = graph.call("GET", "/users/contractor@ledgerlinkdemo.onmicrosoft.com/events")
    assert_graph_error(no_mailbox, 404, "MailboxNotEnabledForRESTAPI")
    event = graph.create(event_on(1, 9, "x"))
    unknown_id = event["id"][:-8] + "AAAAAAA="
    assert_graph_error(
        graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events/{unknown_id}"), 404, "ErrorItemNotFound"
    )
    assert_graph_error(
        graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events/123"), 400, "ErrorInvalidIdMalformed"
    )
    assert_graph_error(graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/nonsense"), 400, "BadRequest")


def test_recurrence_is_not_reproduced_and_says_so(graph: Graph) -> None:
    body = _broken({"recurrence": {"pattern": {"type": "weekly", "interval": 1}}})
    reply = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/events", json=body)
    assert_graph_error(reply, 501, "notImplemented")


def test_seeded_events_are_served(graph_sandbox: SandboxServer, graph: Graph) -> None:
    seeded = requests.post(
        f"{graph_sandbox.url}/_admin/seed",
        json={"events": [{"user": DEMO_CALENDAR_USER, "event": event_on(1, 9, "seeded")}]},
        timeout=5,
    ).json()
    assert [e["id"] for e in graph.events(DEMO_CALENDAR_USER)] == seeded["events"]
    bad = requests.post(
        f"{graph_sandbox.url}/_admin/seed",
        json={"events": [{"user": DEMO_CALENDAR_USER, "event": {"subject": "no times"}}]},
        timeout=5,
    )
    assert bad.status_code == 400 and "ErrorPropertyValidationFailure" in bad.json()["error"]


# ----------------------------------------------------------------------------- immutable ids; the demo owners


def test_the_immutable_id_preference_is_answered_on_calendar_calls(graph: Graph) -> None:
    # given a client that asks for immutable ids (and for a time zone, as a second preference)
    prefer = {"Prefer": 'IdType="ImmutableId", outlook.timezone="UTC"'}
    body = {
        "subject": "Invoice 1001 due",
        "start": {"dateTime": "2025-03-10T00:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2025-03-11T00:00:00", "timeZone": "UTC"},
        "isAllDay": True,
    }
    # when it creates, reads, lists and deletes an event
    created = graph.call("POST", f"/users/{DEMO_CALENDAR_USER}/events", json=body, headers=prefer)
    url = f"/users/{DEMO_CALENDAR_USER}/events/{created.json()['id']}"
    read = graph.call("GET", url, headers=prefer)
    listed = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/events", headers=prefer)
    deleted = graph.call("DELETE", url, headers=prefer)
    # then each answer says the preference was applied, beside the others it applied
    for reply in (created, read, listed):
        assert reply.headers["Preference-Applied"] == 'outlook.timezone="UTC", IdType="ImmutableId"'
    assert deleted.status_code == 204 and deleted.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    # and the id it was given is the one it reads back by
    assert read.json()["id"] == created.json()["id"]
    # and neither a call that did not ask, nor an error, nor a directory call says so
    assert "Preference-Applied" not in graph.call("GET", f"/users/{DEMO_CALENDAR_USER}/calendar").headers
    assert "Preference-Applied" not in graph.call("GET", url, headers=prefer).headers
    directory = graph.call("GET", f"/users/{DEMO_CALENDAR_USER}", headers=prefer)
    assert directory.status_code == 200 and "Preference-Applied" not in directory.headers


@pytest.mark.parametrize(
    ("address", "found"),
    [
        ("maria.alvarez@northwind-demo.example", True),
        ("sam.okafor@northwind-demo.example", True),
        ("priya.nair@northwind-demo.example", False),
    ],
)
def test_two_of_the_hubspot_demo_owners_are_users_of_the_tenant(
    graph: Graph, address: str, found: bool
) -> None:
    reply = graph.call(
        "GET",
        "/users",
        params={"$filter": f"mail eq '{address}' or userPrincipalName eq '{address}'", "$select": "id,mail"},
    )
    assert reply.status_code == 200
    assert [user["mail"] for user in reply.json()["value"]] == ([address] if found else [])
    if found:  # and each has a calendar
        assert graph.call("GET", f"/users/{address}/calendar").status_code == 200
