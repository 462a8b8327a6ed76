"""Outlook calendar events for the Graph sandbox: the stored form, request-body validation and
the JSON resource Graph returns (field names and formats from the v1.0 event resource docs).

Validation answers as Graph does where the shape is known: a body that is not JSON → 400
``BadRequest``; a property the event type does not have → 400 ``BadRequest`` "The property 'x'
does not exist on type 'microsoft.graph.event'..."; a value of the wrong JSON type or an unknown
enum member → 400 ``UnableToDeserializePostBody``; an unknown time zone → 400
``TimeZoneNotSupportedException``; start/end problems → 400 ``ErrorPropertyValidationFailure``
"At least one property failed validation." (seen for an end before the start). Messages name the
offending property, which Graph's often do not.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ledgerlink_local.sandboxes.graph.datetimes import (
    TimeValueError,
    UnknownTimeZoneError,
    ZonedTime,
    format_local,
    format_timestamp,
    parse_date_time_time_zone,
    resolve_zone,
)

EVENT_TYPE = "microsoft.graph.event"
OUTLOOK_EVENT_TYPE = "Microsoft.OutlookServices.Event"  # the name Outlook uses in query errors
NEVER = "0001-01-01T00:00:00Z"  # Outlook's "no response yet" time

SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
IMPORTANCE = ("low", "normal", "high")
SENSITIVITY = ("normal", "personal", "private", "confidential")
ONLINE_MEETING_PROVIDERS = ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer")
ATTENDEE_TYPES = ("required", "optional", "resource")
BODY_TYPES = ("text", "html")

WRITABLE = (
    "subject",
    "body",
    "start",
    "end",
    "location",
    "locations",
    "attendees",
    "isAllDay",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "transactionId",
    "showAs",
    "importance",
    "sensitivity",
    "categories",
    "reminderMinutesBeforeStart",
    "isReminderOn",
    "responseRequested",
    "allowNewTimeProposals",
    "hideAttendees",
    "recurrence",
)
# Read-only properties a client may echo back (e.g. PATCH with a fetched object): Graph ignores them.
READ_ONLY = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "iCalUId",
    "uid",
    "webLink",
    "bodyPreview",
    "isCancelled",
    "isOrganizer",
    "organizer",
    "responseStatus",
    "type",
    "seriesMasterId",
    "onlineMeeting",
    "onlineMeetingUrl",
    "hasAttachments",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "originalStart",
    "isDraft",
)
# Everything a $select may name.
SELECTABLE = tuple(sorted({*WRITABLE, *READ_ONLY}))

# Properties the organizer's changes carry to the attendees' copies.
MEETING_FIELDS = (
    "subject",
    "body_type",
    "body_content",
    "start",
    "end",
    "is_all_day",
    "location",
    "locations",
    "attendees",
    "is_online_meeting",
    "online_meeting_provider",
    "online_meeting",
    "importance",
    "sensitivity",
    "hide_attendees",
    "allow_new_time_proposals",
)


class GraphProblem(Exception):
    """A request Graph would refuse: status, Graph error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _bad_type(name: str, expected: str) -> GraphProblem:
    return GraphProblem(
        400,
        "UnableToDeserializePostBody",
        f"were unable to deserialize property '{name}': expected {expected}.",
    )


def _validation(detail: str) -> GraphProblem:
    return GraphProblem(
        400, "ErrorPropertyValidationFailure", f"At least one property failed validation: {detail}"
    )


@dataclass
class StoredEvent:
    id: str
    mailbox_id: str
    ical_uid: str
    change_key: str
    created: datetime
    last_modified: datetime
    start: ZonedTime
    end: ZonedTime
    organizer: dict[str, str]
    subject: str = ""
    body_type: str = "html"
    body_content: str = ""
    is_all_day: bool = False
    location: dict[str, Any] = field(default_factory=dict)
    locations: list[dict[str, Any]] = field(default_factory=list)
    attendees: list[dict[str, Any]] = field(default_factory=list)
    is_organizer: bool = True
    is_online_meeting: bool = False
    online_meeting_provider: str = "unknown"
    online_meeting: dict[str, Any] | None = None
    transaction_id: str | None = None
    is_cancelled: bool = False
    show_as: str = "busy"
    importance: str = "normal"
    sensitivity: str = "normal"
    categories: list[str] = field(default_factory=list)
    reminder_minutes: int = 15
    is_reminder_on: bool = True
    response_requested: bool = True
    allow_new_time_proposals: bool = True
    hide_attendees: bool = False
    response_status: dict[str, str] = field(default_factory=lambda: {"response": "organizer", "time": NEVER})

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def body_preview(self) -> str:
        text = _html_to_text(self.body_content) if self.body_type == "html" else self.body_content
        return " ".join(text.split())[:255]


# --------------------------------------------------------------------------- parsing request bodies


def parse_event_changes(body: Any, *, creating: bool) -> dict[str, Any]:
    """Validate a create/PATCH body; returns StoredEvent attribute name → normalised value."""
    if not isinstance(body, dict):
        raise GraphProblem(400, "BadRequest", "Empty Payload. JSON content expected.")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("@odata.") or name in READ_ONLY:
            continue
        if name not in WRITABLE:
            raise GraphProblem(
                400,
                "BadRequest",
                f"The property '{name}' does not exist on type '{EVENT_TYPE}'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type.",
            )
        changes.update(_parse_property(name, value))
    if creating and ("start" not in changes or "end" not in changes):
        missing = "start" if "start" not in changes else "end"
        raise _validation(f"'{missing}' is required.")
    return changes


def _parse_property(name: str, value: Any) -> dict[str, Any]:
    if name == "subject":
        return {"subject": _string(name, value, allow_none=True) or ""}
    if name == "body":
        return _parse_body(value)
    if name in ("start", "end"):
        return {name: parse_zoned(name, value)}
    if name == "location":
        return {"location": _parse_location(name, value)}
    if name == "locations":
        if not isinstance(value, list):
            raise _bad_type(name, "a collection of location")
        return {"locations": [_parse_location(name, item) for item in value]}
    if name == "attendees":
        if not isinstance(value, list):
            raise _bad_type(name, "a collection of attendee")
        return {"attendees": [_parse_attendee(item) for item in value]}
    if name == "categories":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _bad_type(name, "a collection of String")
        return {"categories": list(value)}
    if name == "reminderMinutesBeforeStart":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_type(name, "Int32")
        return {"reminder_minutes": value}
    if name == "recurrence":
        if value is not None:
            raise GraphProblem(
                501, "notImplemented", "The Graph sandbox does not reproduce recurring events (recurrence)."
            )
        return {}
    if name == "transactionId":
        return {"transaction_id": _string(name, value, allow_none=True)}
    enums = {
        "showAs": ("show_as", SHOW_AS),
        "importance": ("importance", IMPORTANCE),
        "sensitivity": ("sensitivity", SENSITIVITY),
        "onlineMeetingProvider": ("online_meeting_provider", ONLINE_MEETING_PROVIDERS),
    }
    if name in enums:
        attribute, members = enums[name]
        return {attribute: _enum(name, value, members)}
    booleans = {
        "isAllDay": "is_all_day",
        "isOnlineMeeting": "is_online_meeting",
        "isReminderOn": "is_reminder_on",
        "responseRequested": "response_requested",
        "allowNewTimeProposals": "allow_new_time_proposals",
        "hideAttendees": "hide_attendees",
    }
    if not isinstance(value, bool):
        raise _bad_type(name, "Boolean")
    return {booleans[name]: value}


def _string(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise _bad_type(name, "String")
    return value


def _enum(name: str, value: Any, members: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for member in members:
            if member.lower() == value.lower():
                return member
    raise GraphProblem(
        400,
        "UnableToDeserializePostBody",
        f"were unable to deserialize property '{name}': '{value}' is not one of {', '.join(members)}.",
    )


def _parse_body(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad_type("body", "itemBody")
    content_type = _enum("body.contentType", value.get("contentType", "text"), BODY_TYPES)
    content = _string("body.content", value.get("content", ""), allow_none=True) or ""
    if content_type == "html" and "<html" not in content.lower():
        # Exchange stores HTML bodies as a whole document.
        content = (
            '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
            f"</head>\r\n<body>\r\n{content}\r\n</body>\r\n</html>\r\n"
        )
    return {"body_type": content_type, "body_content": content}


def parse_zoned(name: str, value: Any) -> ZonedTime:
    """A ``dateTimeTimeZone`` property (``name`` says which, in errors) as an instant and its zone."""
    if not isinstance(value, dict):
        raise _bad_type(name, "dateTimeTimeZone")
    date_time = value.get("dateTime")
    if not isinstance(date_time, str):
        raise _bad_type(f"{name}.dateTime", "String")
    zone_name = value.get("timeZone")
    if zone_name is not None and not isinstance(zone_name, str):
        raise _bad_type(f"{name}.timeZone", "String")
    try:
        return parse_date_time_time_zone(date_time, zone_name or "")
    except UnknownTimeZoneError as exc:
        raise unsupported_zone(exc.name) from exc
    except TimeValueError as exc:
        raise _bad_type(
            f"{name}.dateTime", f"a date and time such as 2017-04-15T12:00:00, not '{date_time}'"
        ) from exc


def unsupported_zone(name: str) -> GraphProblem:
    return GraphProblem(
        400,
        "TimeZoneNotSupportedException",
        f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
    )


def _parse_location(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return empty_location()
    if not isinstance(value, dict):
        raise _bad_type(name, "location")
    display_name = _string(f"{name}.displayName", value.get("displayName", ""), allow_none=True) or ""
    location: dict[str, Any] = {
        "displayName": display_name,
        "locationType": _location_type(value.get("locationType")),
        "uniqueId": value.get("uniqueId") or display_name,
        "uniqueIdType": "private",
    }
    for optional in ("locationUri", "locationEmailAddress", "address", "coordinates"):
        if optional in value:
            location[optional] = value[optional]
    return location


def _location_type(value: Any) -> str:
    members = (
        "default",
        "conferenceRoom",
        "homeAddress",
        "businessAddress",
        "geoCoordinates",
        "streetAddress",
        "hotel",
        "restaurant",
        "localBusiness",
        "postalAddress",
    )
    return "default" if value is None else _enum("location.locationType", value, members)


def empty_location() -> dict[str, Any]:
    return {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _parse_attendee(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("emailAddress"), dict):
        raise _bad_type("attendees", "attendee with an emailAddress")
    email = value["emailAddress"]
    address = email.get("address")
    if not isinstance(address, str) or not _EMAIL.match(address):
        raise GraphProblem(
            400,
            "ErrorInvalidRecipients",
            f"At least one recipient isn't valid: '{address}' is not an email address.",
        )
    name = email.get("name")
    if name is not None and not isinstance(name, str):
        raise _bad_type("attendees.emailAddress.name", "String")
    status = value.get("status") if isinstance(value.get("status"), dict) else None
    return {
        "type": _enum("attendees.type", value.get("type", "required"), ATTENDEE_TYPES),
        "status": {"response": (status or {}).get("response", "none"), "time": NEVER},
        "emailAddress": {"name": name or address, "address": address},
    }


def check_times(start: ZonedTime, end: ZonedTime, is_all_day: bool) -> None:
    """Outlook's rules for start/end: end not before start; all-day events run midnight to midnight."""
    if end.utc < start.utc:
        raise _validation("'end' is before 'start'.")
    if is_all_day:
        for name, value in (("start", start), ("end", end)):
            local = value.utc.astimezone(resolve_zone(value.zone_name))
            if (local.hour, local.minute, local.second, local.microsecond) != (0, 0, 0, 0):
                raise _validation(f"an all-day event must have '{name}' at midnight.")
        if end.utc == start.utc:
            raise _validation("an all-day event must last at least one day.")


def apply_changes(event: StoredEvent, changes: dict[str, Any]) -> None:
    for attribute, value in changes.items():
        setattr(event, attribute, value)
    if "location" in changes and "locations" not in changes:
        display_name = event.location.get("displayName", "")
        event.locations = (
            [
                {
                    "displayName": display_name,
                    "locationType": event.location["locationType"],
                    "uniqueIdType": "unknown",
                }
            ]
            if display_name
            else []
        )
    if "locations" in changes and "location" not in changes and event.locations:
        names = "; ".join(item.get("displayName", "") for item in event.locations)
        event.location = {
            "displayName": names,
            "locationType": "default",
            "uniqueId": names,
            "uniqueIdType": "private",
        }


def copy_for_attendee(
    event: StoredEvent, mailbox_id: str, event_id: str, change_key: str, now: datetime
) -> StoredEvent:
    """The attendee's copy of a meeting: same meeting, own id and change key, not the organizer."""
    return replace(
        event,
        id=event_id,
        mailbox_id=mailbox_id,
        change_key=change_key,
        created=now,
        last_modified=now,
        attendees=[dict(attendee) for attendee in event.attendees],
        is_organizer=False,
        transaction_id=None,
        show_as="tentative",
        categories=[],
        response_status={"response": "notResponded", "time": NEVER},
    )


# --------------------------------------------------------------------------- rendering


def render_event(
    event: StoredEvent,
    *,
    time_zone: str | None = None,
    body_as_text: bool = False,
    select: list[str] | None = None,
) -> dict[str, Any]:
    """The event as Graph returns it (start/end in UTC unless a Prefer time zone is given)."""
    zone = time_zone or "UTC"
    body_type, body_content = event.body_type, event.body_content
    if body_as_text and body_type == "html":
        body_type, body_content = "text", _html_to_text(body_content).strip()
    resource: dict[str, Any] = {
        "@odata.etag": event.etag,
        "id": event.id,
        "createdDateTime": format_timestamp(event.created),
        "lastModifiedDateTime": format_timestamp(event.last_modified),
        "changeKey": event.change_key,
        "categories": list(event.categories),
    }
    if event.transaction_id is not None:  # "only returned in a response payload if an app has set it"
        resource["transactionId"] = event.transaction_id
    resource.update(
        {
            "originalStartTimeZone": event.start.zone_name,
            "originalEndTimeZone": event.end.zone_name,
            "iCalUId": event.ical_uid,
            "reminderMinutesBeforeStart": event.reminder_minutes,
            "isReminderOn": event.is_reminder_on,
            "hasAttachments": False,
            "subject": event.subject,
            "bodyPreview": event.body_preview(),
            "importance": event.importance,
            "sensitivity": event.sensitivity,
            "isAllDay": event.is_all_day,
            "isCancelled": event.is_cancelled,
            "isOrganizer": event.is_organizer,
            "responseRequested": event.response_requested,
            "seriesMasterId": None,
            "showAs": event.show_as,
            "type": "singleInstance",
            "webLink": web_link(event.id),
            "onlineMeetingUrl": None,
            "isOnlineMeeting": event.is_online_meeting,
            "onlineMeetingProvider": event.online_meeting_provider,
            "allowNewTimeProposals": event.allow_new_time_proposals,
            "isDraft": False,
            "hideAttendees": event.hide_attendees,
            "responseStatus": dict(event.response_status),
            "body": {"contentType": body_type, "content": body_content},
            "start": format_local(event.start.utc, zone),
            "end": format_local(event.end.utc, zone),
            "location": dict(event.location) if event.location else empty_location(),
            "locations": [dict(item) for item in event.locations],
            "recurrence": None,
            "attendees": [
                {"type": a["type"], "status": dict(a["status"]), "emailAddress": dict(a["emailAddress"])}
                for a in event.attendees
            ],
            "organizer": {"emailAddress": dict(event.organizer)},
            "onlineMeeting": dict(event.online_meeting) if event.online_meeting else None,
        }
    )
    if select:
        kept = {"@odata.etag", "id", *select}
        resource = {name: value for name, value in resource.items() if name in kept}
    return resource


def web_link(event_id: str) -> str:
    return (
        f"https://outlook.office365.com/owa/?itemid={quote(event_id, safe='')}&exvsurl=1&path=/calendar/item"
    )


def _html_to_text(content: str) -> str:
    without_head = re.sub(r"(?is)<head.*?</head>", "", content)
    return html.unescape(re.sub(r"(?s)<[^>]+>", " ", without_head))
