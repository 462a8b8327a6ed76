"""Graph sandbox: standalone Teams meetings (``/users/{id}/onlineMeetings``).

The documented property set is written down from the v1.0 ``onlineMeeting`` resource page
(api-reference/v1.0/resources/onlinemeeting.md) plus ``externalId`` from createOrGet and the
deprecated ``isBroadcast`` the page still lists.
"""

from __future__ import annotations

import re

import pytest
import requests

from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import (
    DEMO_TENANT_ID,
    DemoCredentials,
)
from tests.unit.sandboxes.graph_support import bearer, fixture

ONLINE_MEETING_PROPERTIES = {
    "allowAttendeeToEnableCamera", "allowAttendeeToEnableMic", "allowedPresenters", "allowMeetingChat",
    "allowParticipantsToChangeName", "allowTeamworkReactions", "audioConferencing", "chatInfo",
    "creationDateTime", "endDateTime", "id", "isBroadcast", "isEntryExitAnnounced", "joinInformation",
    "joinMeetingIdSettings", "joinWebUrl", "lobbyBypassSettings", "participants", "recordAutomatically",
    "shareMeetingChatHistoryDefault", "startDateTime", "subject", "videoTeleconferenceId",
    "watermarkProtection", "externalId",
}  # fmt: skip
FINANCE_ID = "6e0f3b7a-2d41-4c8e-b5a9-1f7c3d9e2b60"
PRIYA_ID = "1b9a4e73-c6d2-4058-9f3e-8a2d5c7b0e91"
JOIN_WEB_URL = re.compile(
    r"^https://teams\.microsoft\.com/l/meetup-join/19%3ameeting_[A-Za-z0-9%]+%40thread\.v2/0\?context="
    rf"%7b%22Tid%22%3a%22{DEMO_TENANT_ID}%22%2c%22Oid%22%3a%22{FINANCE_ID}%22%7d$"
)


@pytest.fixture
def graph(graph_sandbox: SandboxServer) -> tuple[str, dict[str, str]]:
    return DemoCredentials.for_sandbox(graph_sandbox.url).base_url, bearer(graph_sandbox)


def test_create_online_meeting_returns_join_details(graph: tuple[str, dict[str, str]]) -> None:
    base, headers = graph
    # when LedgerLink schedules a standalone Teams meeting for the finance user
    reply = requests.post(
        f"{base}/users/{FINANCE_ID}/onlineMeetings",
        json=fixture("online_meeting.json"),
        headers=headers,
        timeout=5,
    )
    # then 201 with the documented properties, join URL, meeting id, passcode and times in UTC
    assert reply.status_code == 201, reply.text
    meeting = reply.json()
    assert set(meeting) - {"@odata.context", "@odata.type"} <= ONLINE_MEETING_PROPERTIES
    assert meeting["@odata.type"] == "#microsoft.graph.onlineMeeting"
    assert JOIN_WEB_URL.match(meeting["joinWebUrl"]), meeting["joinWebUrl"]
    settings = meeting["joinMeetingIdSettings"]
    assert settings["isPasscodeRequired"] is True and re.fullmatch(r"[A-Za-z0-9]{6}", settings["passcode"])
    assert re.fullmatch(r"\d{12}", settings["joinMeetingId"])
    assert re.fullmatch(r"\d{10}", meeting["videoTeleconferenceId"])
    assert meeting["startDateTime"] == "2026-03-17T18:00:00.0000000Z"
    assert meeting["endDateTime"] == "2026-03-17T18:30:00.0000000Z"
    assert meeting["chatInfo"]["threadId"].startswith("19:meeting_") and meeting["chatInfo"][
        "threadId"
    ].endswith("@thread.v2")
    assert meeting["participants"]["organizer"]["identity"]["user"]["id"] == FINANCE_ID
    attendees = meeting["participants"]["attendees"]
    assert [(a["upn"], a["role"]) for a in attendees] == [
        ("jordan.lee@ledgerlinkdemo.onmicrosoft.com", "attendee"),
        ("priya.patel@ledgerlinkdemo.onmicrosoft.com", "presenter"),
    ]
    assert attendees[1]["identity"]["user"] == {
        "id": PRIYA_ID,
        "displayName": "Priya Patel",
        "tenantId": DEMO_TENANT_ID,
        "identityProvider": "AAD",
    }
    assert meeting["joinInformation"]["contentType"] == "html"
    # and it can be read back by id, and found by its join URL
    again = requests.get(
        f"{base}/users/{FINANCE_ID}/onlineMeetings/{meeting['id']}", headers=headers, timeout=5
    )
    assert again.status_code == 200 and again.json()["joinWebUrl"] == meeting["joinWebUrl"]
    found = requests.get(
        f"{base}/users/{FINANCE_ID}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq '{meeting['joinWebUrl']}'"},
        headers=headers,
        timeout=5,
    )
    assert [m["id"] for m in found.json()["value"]] == [meeting["id"]]


def test_create_or_get_is_idempotent_by_external_id(graph: tuple[str, dict[str, str]]) -> None:
    base, headers = graph
    body = fixture("online_meeting.json")
    url = f"{base}/users/{FINANCE_ID}/onlineMeetings/createOrGet"
    first = requests.post(url, json=body, headers=headers, timeout=5)
    second = requests.post(url, json={**body, "subject": "retried"}, headers=headers, timeout=5)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"] and second.json()["subject"] == body["subject"]
    no_external_id = requests.post(url, json={"subject": "x"}, headers=headers, timeout=5)
    assert no_external_id.status_code == 400


def test_delete_online_meeting(graph: tuple[str, dict[str, str]]) -> None:
    base, headers = graph
    meeting = requests.post(
        f"{base}/users/{FINANCE_ID}/onlineMeetings", json={}, headers=headers, timeout=5
    ).json()
    url = f"{base}/users/{FINANCE_ID}/onlineMeetings/{meeting['id']}"
    assert requests.delete(url, headers=headers, timeout=5).status_code == 204
    gone = requests.get(url, headers=headers, timeout=5)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "NotFound"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"startDateTime": "2026-03-17T15:00:00Z", "endDateTime": "2026-03-17T14:00:00Z"}, 400),
        ({"startDateTime": "next tuesday"}, 400),
        ({"participants": {"attendees": [{"role": "attendee"}]}}, 400),
        ({"meetingType": "broadcast"}, 400),
    ],
)
def test_invalid_online_meeting_bodies(graph: tuple[str, dict[str, str]], body: dict, status: int) -> None:
    base, headers = graph
    reply = requests.post(f"{base}/users/{FINANCE_ID}/onlineMeetings", json=body, headers=headers, timeout=5)
    assert reply.status_code == status and reply.json()["error"]["code"] == "BadRequest"


def test_online_meetings_address_users_by_object_id(graph: tuple[str, dict[str, str]]) -> None:
    base, headers = graph
    reply = requests.post(
        f"{base}/users/finance@ledgerlinkdemo.onmicrosoft.com/onlineMeetings",
        json={},
        headers=headers,
        timeout=5,
    )
    assert reply.status_code == 404
    missing_filter = requests.get(f"{base}/users/{FINANCE_ID}/onlineMeetings", headers=headers, timeout=5)
    assert missing_filter.status_code == 400
