"""Microsoft Teams meetings for the Graph sandbox: the join details an Outlook event gets when it
is an online meeting with ``teamsForBusiness``, and the standalone ``onlineMeeting`` resource.

Shapes follow the v1.0 docs for ``onlineMeetingInfo`` (event.onlineMeeting: joinUrl,
conferenceId, ...) and ``onlineMeeting`` (joinWebUrl, joinMeetingIdSettings, videoTeleconferenceId,
chatInfo, participants). Join URLs have Teams' form
``https://teams.microsoft.com/l/meetup-join/19%3ameeting_<token>%40thread.v2/0?context=...``
with the tenant and organizer ids in the context; meeting ids are base64 of
``1*<organizerId>*0**<threadId>`` as the documented samples are.
"""

from __future__ import annotations

import base64
import random
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledgerlink_local.sandboxes.graph.datetimes import TimeValueError, format_timestamp, parse_instant
from ledgerlink_local.sandboxes.graph.events import GraphProblem
from ledgerlink_local.sandboxes.graph.identity import TenantUser

ONLINE_MEETING_TYPE = "microsoft.graph.onlineMeeting"
PARTICIPANT_ROLES = ("attendee", "presenter", "coorganizer", "producer")
# Meeting options kept as sent and echoed back on the resource.
ONLINE_MEETING_SETTINGS = (
    "lobbyBypassSettings",
    "allowedPresenters",
    "isEntryExitAnnounced",
    "allowMeetingChat",
    "allowTeamworkReactions",
    "recordAutomatically",
    "allowAttendeeToEnableCamera",
    "allowAttendeeToEnableMic",
)
ONLINE_MEETING_WRITABLE = (
    "subject",
    "startDateTime",
    "endDateTime",
    "participants",
    "externalId",
    "joinMeetingIdSettings",
    *ONLINE_MEETING_SETTINGS,
)


@dataclass(frozen=True)
class TeamsThread:
    """The chat thread behind one Teams meeting, from which join URLs are built."""

    token: str

    @classmethod
    def new(cls, rng: random.Random) -> TeamsThread:
        return cls(base64.b64encode(str(uuid.UUID(int=rng.getrandbits(128))).encode()).decode().rstrip("="))

    @property
    def thread_id(self) -> str:
        return f"19:meeting_{self.token}@thread.v2"

    def join_url(self, tenant_id: str, organizer_id: str) -> str:
        # Teams writes the thread and the {"Tid":...,"Oid":...} context percent-encoded, lower-case hex.
        return (
            "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
            + urllib.parse.quote(self.token, safe="")
            + "%40thread.v2/0?context=%7b%22Tid%22%3a%22"
            + tenant_id
            + "%22%2c%22Oid%22%3a%22"
            + organizer_id
            + "%22%7d"
        )


def _digits(rng: random.Random, count: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(count - 1))


def event_online_meeting(rng: random.Random, tenant_id: str, organizer: TenantUser) -> dict[str, Any]:
    """``event.onlineMeeting`` for a teamsForBusiness event (onlineMeetingInfo)."""
    thread = TeamsThread.new(rng)
    return {
        "joinUrl": thread.join_url(tenant_id, organizer.id),
        "conferenceId": _digits(rng, 9),
        "tollNumber": None,
        "tollFreeNumbers": [],
        "quickDial": None,
        "phones": [],
    }


def teams_join_html(join_url: str, conference_id: str) -> str:
    """The block Outlook appends to a Teams meeting's body."""
    return (
        '<div style="width:100%">' + "_" * 80 + "</div>"
        "<div><div><span>Microsoft Teams meeting</span></div>"
        f'<div><a href="{join_url}" target="_blank">Join the meeting now</a></div>'
        f"<div><span>Meeting ID: {conference_id}</span></div></div>"
    )


@dataclass
class OnlineMeeting:
    id: str
    organizer_id: str
    created: datetime
    start: datetime
    end: datetime
    subject: str | None
    thread: TeamsThread
    join_meeting_id: str
    passcode: str | None
    video_teleconference_id: str
    external_id: str | None
    attendees: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def parse_online_meeting(
    body: Any, now: datetime, resolve_user: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Validate a create body; returns (fields, attendee participants). ``resolve_user(id_or_upn)``
    returns the tenant user or None (participants from outside the tenant keep only their upn)."""
    if not isinstance(body, dict):
        raise GraphProblem(400, "BadRequest", "Empty Payload. JSON content expected.")
    for name in body:
        if not name.startswith("@odata.") and name not in ONLINE_MEETING_WRITABLE:
            raise GraphProblem(
                400,
                "BadRequest",
                f"The property '{name}' does not exist on type '{ONLINE_MEETING_TYPE}'. Make sure to only "
                "use property names that are defined by the type or mark the type as open type.",
            )
    start = _instant(body, "startDateTime", now)
    end = _instant(body, "endDateTime", start + timedelta(hours=1))
    if end < start:
        raise GraphProblem(400, "BadRequest", "endDateTime must not be before startDateTime.")
    subject = body.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise GraphProblem(400, "BadRequest", "subject must be a string.")
    external_id = body.get("externalId")
    if external_id is not None and not isinstance(external_id, str):
        raise GraphProblem(400, "BadRequest", "externalId must be a string.")
    passcode_settings = body.get("joinMeetingIdSettings") or {}
    if not isinstance(passcode_settings, dict) or not isinstance(
        passcode_settings.get("isPasscodeRequired", False), bool
    ):
        raise GraphProblem(400, "BadRequest", "joinMeetingIdSettings.isPasscodeRequired must be a boolean.")
    attendees = _participants(body.get("participants"), resolve_user)
    settings = {name: body[name] for name in ONLINE_MEETING_SETTINGS if name in body}
    fields = {
        "start": start,
        "end": end,
        "subject": subject,
        "external_id": external_id,
        "passcode_required": bool(passcode_settings.get("isPasscodeRequired", False)),
        "settings": settings,
    }
    return fields, attendees


def _instant(body: dict[str, Any], name: str, default: datetime) -> datetime:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise GraphProblem(400, "BadRequest", f"{name} must be a DateTimeOffset string.")
    try:
        return parse_instant(value)
    except TimeValueError as exc:
        raise GraphProblem(400, "BadRequest", f"{name} '{value}' is not a valid DateTimeOffset.") from exc


def _participants(value: Any, resolve_user: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not isinstance(value.get("attendees", []), list):
        raise GraphProblem(400, "BadRequest", "participants must be a meetingParticipants object.")
    attendees: list[dict[str, Any]] = []
    for item in value.get("attendees", []):
        if not isinstance(item, dict):
            raise GraphProblem(400, "BadRequest", "each participant must be a meetingParticipantInfo object.")
        user_ref = ((item.get("identity") or {}).get("user") or {}).get("id")
        upn = item.get("upn")
        if not user_ref and not upn:
            raise GraphProblem(400, "BadRequest", "a participant needs identity.user.id or upn.")
        role = item.get("role", "attendee")
        if role not in PARTICIPANT_ROLES:
            raise GraphProblem(
                400, "BadRequest", f"participant role '{role}' is not one of {PARTICIPANT_ROLES}."
            )
        user = resolve_user(user_ref or upn)
        attendees.append(
            {
                "upn": user.user_principal_name if user else upn,
                "role": role,
                "identity": {
                    "user": {
                        "id": user.id if user else user_ref,
                        "displayName": user.display_name if user else None,
                        "tenantId": None,  # filled by the caller (the tenant id)
                        "identityProvider": "AAD",
                    }
                },
            }
        )
    return attendees


def render_online_meeting(meeting: OnlineMeeting, organizer: TenantUser, tenant_id: str) -> dict[str, Any]:
    join_url = meeting.thread.join_url(tenant_id, organizer.id)
    attendees = []
    for attendee in meeting.attendees:
        copy = {**attendee, "identity": {"user": {**attendee["identity"]["user"], "tenantId": tenant_id}}}
        attendees.append(copy)
    resource: dict[str, Any] = {
        "@odata.type": f"#{ONLINE_MEETING_TYPE}",
        "id": meeting.id,
        "creationDateTime": format_timestamp(meeting.created),
        "startDateTime": format_timestamp(meeting.start),
        "endDateTime": format_timestamp(meeting.end),
        "joinWebUrl": join_url,
        "subject": meeting.subject,
        "externalId": meeting.external_id,
        "isBroadcast": False,
        "videoTeleconferenceId": meeting.video_teleconference_id,
        "allowedPresenters": "everyone",
        "isEntryExitAnnounced": True,
        "allowMeetingChat": "enabled",
        "allowTeamworkReactions": True,
        "recordAutomatically": False,
        "allowAttendeeToEnableCamera": True,
        "allowAttendeeToEnableMic": True,
        "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
        "audioConferencing": None,
        "chatInfo": {"threadId": meeting.thread.thread_id, "messageId": "0", "replyChainMessageId": None},
        "joinMeetingIdSettings": {
            "isPasscodeRequired": meeting.passcode is not None,
            "joinMeetingId": meeting.join_meeting_id,
            "passcode": meeting.passcode,
        },
        "joinInformation": {
            "content": "data:text/html,"
            + urllib.parse.quote_plus(teams_join_html(join_url, meeting.join_meeting_id)),
            "contentType": "html",
        },
        "participants": {
            "organizer": {
                "upn": organizer.user_principal_name,
                "role": "presenter",
                "identity": {
                    "user": {
                        "id": organizer.id,
                        "displayName": None,
                        "tenantId": tenant_id,
                        "identityProvider": "AAD",
                    }
                },
            },
            "attendees": attendees,
        },
    }
    resource.update(meeting.settings)
    return resource


def new_online_meeting(
    rng: random.Random,
    organizer: TenantUser,
    now: datetime,
    fields: dict[str, Any],
    attendees: list[dict[str, Any]],
) -> OnlineMeeting:
    thread = TeamsThread.new(rng)
    meeting_id = base64.b64encode(f"1*{organizer.id}*0**{thread.thread_id}".encode()).decode()
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    passcode = "".join(rng.choice(alphabet) for _ in range(6)) if fields["passcode_required"] else None
    return OnlineMeeting(
        id=meeting_id,
        organizer_id=organizer.id,
        created=now,
        start=fields["start"],
        end=fields["end"],
        subject=fields["subject"],
        thread=thread,
        join_meeting_id=_digits(rng, 12),
        passcode=passcode,
        video_teleconference_id=_digits(rng, 10),
        external_id=fields["external_id"],
        attendees=attendees,
        settings=fields["settings"],
    )
