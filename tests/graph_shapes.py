"""The shapes Microsoft Graph documents for the event bodies LedgerLink sends, as data for the tests.

From the v1.0 event resource and its complex types (learn.microsoft.com/graph/api/resources/event,
dateTimeTimeZone, itemBody): only documented, writable event properties, each with its documented
type; and the all-day rule of the event resource ("isAllDay: if true, start and end must be set to
midnight and be in the same time zone"; Outlook also wants whole days).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jsonschema

DATE_TIME_TIME_ZONE = {
    "type": "object",
    "required": ["dateTime", "timeZone"],
    "additionalProperties": False,
    "properties": {
        "dateTime": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,7})?$",
        },
        "timeZone": {"type": "string", "minLength": 1},
    },
}
EVENT_WRITE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "string", "maxLength": 255},
        "body": {
            "type": "object",
            "required": ["contentType", "content"],
            "additionalProperties": False,
            "properties": {
                "contentType": {"enum": ["text", "html", "HTML", "Text"]},
                "content": {"type": "string"},
            },
        },
        "start": DATE_TIME_TIME_ZONE,
        "end": DATE_TIME_TIME_ZONE,
        "isAllDay": {"type": "boolean"},
        "showAs": {"enum": ["free", "tentative", "busy", "oof", "workingElsewhere", "unknown"]},
        "isReminderOn": {"type": "boolean"},
        "reminderMinutesBeforeStart": {"type": "integer", "minimum": 0},
        "categories": {"type": "array", "items": {"type": "string"}},
        "transactionId": {"type": "string", "minLength": 1},
        "sensitivity": {"enum": ["normal", "personal", "private", "confidential"]},
        "importance": {"enum": ["low", "normal", "high"]},
        "location": {"type": "object"},
        "attendees": {"type": "array"},
        "isOnlineMeeting": {"type": "boolean"},
        "onlineMeetingProvider": {
            "enum": ["teamsForBusiness", "skypeForBusiness", "skypeForConsumer", "unknown"]
        },
        "allowNewTimeProposals": {"type": "boolean"},
        "responseRequested": {"type": "boolean"},
    },
}


def assert_event_body_conforms(body: dict[str, Any]) -> None:
    """``body`` (a create or update of an event) is what Graph documents, all-day rule included."""
    jsonschema.validate(body, EVENT_WRITE)
    if body.get("isAllDay"):
        start, end = body["start"], body["end"]
        assert start["timeZone"] == end["timeZone"], "an all-day event's start and end share a zone"
        begin = datetime.fromisoformat(start["dateTime"][:19])
        finish = datetime.fromisoformat(end["dateTime"][:19])
        for moment in (begin, finish):
            assert (moment.hour, moment.minute, moment.second) == (0, 0, 0), f"{moment} is not midnight"
        assert finish > begin and (finish - begin).seconds == 0, "an all-day event lasts whole days"
