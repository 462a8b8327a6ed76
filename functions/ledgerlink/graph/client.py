"""The Microsoft Graph client (app-only): tenant users, Outlook calendars, events and free/busy, one per
connection.

``GraphClient(http, auth)``: ``http`` is a :class:`~ledgerlink.http.client.VendorHttpClient` on
:func:`ledgerlink.http.policy.graph_policy` built with ``auth`` as its auth provider (the HTTP layer asks
it for the ``Authorization`` header and, after a 401, for a new token); the client reads ``auth.app_id``
for the rate-limit scope. :func:`ledgerlink.graph.factory.graph_client` builds both.

Every call:

- sends ``Prefer: IdType="ImmutableId"``, so the ids it returns stay the same when Outlook moves an
  item between folders (api-notes-flows.md §2.3), which is what makes an event id worth keeping in the
  crosswalk;
- counts against the scope ``<app id>/<mailbox, lower-cased>``: Outlook limits each app per mailbox
  (10,000 requests per 10 minutes and 4 in flight, ``graph_policy``). A mailbox should be named the
  same way (its address) on every call, or its two spellings are counted apart. Directory look-ups
  (:meth:`GraphClient.find_user`) name no mailbox and count against ``<app id>/directory`` under the
  same limits, far below the directory's own;
- leaves 429, 503 and other 5xx to the HTTP layer (Retry-After honoured, fractional values too; the
  breaker), which raises its retryable errors when they persist; what Graph refuses for good is
  raised as :mod:`ledgerlink.graph.errors`.

Nothing here logs a request or response body (event bodies carry customer data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import requests

from ledgerlink.graph.errors import (
    EventChanged,
    EventGone,
    GraphAccessDenied,
    GraphError,
    GraphRequestRejected,
    MailboxNotFound,
    ScheduleUnavailable,
)
from ledgerlink.graph.times import from_date_time_time_zone, to_date_time_time_zone
from ledgerlink.http.client import VendorHttpClient

PREFER_IMMUTABLE_IDS: Final = 'IdType="ImmutableId"'
DIRECTORY_SCOPE: Final = "directory"
USER_FIELDS: Final = "id,mail,userPrincipalName,displayName"
# Graph's codes for "this mailbox is no (Exchange Online) user of the tenant" (../shared/api-notes.md §4;
# the sandbox answers them as Graph does): ErrorInvalidUser on calendar paths, Request_ResourceNotFound
# on /users/{id}, MailboxNotEnabledForRESTAPI for a user without a mailbox.
MAILBOX_NOT_FOUND_CODES: Final = frozenset(
    {"ErrorInvalidUser", "Request_ResourceNotFound", "MailboxNotEnabledForRESTAPI"}
)
ITEM_NOT_FOUND: Final = "ErrorItemNotFound"
TEAMS: Final = "teamsForBusiness"
# Answers in UTC whatever the mailbox's zone (Graph's default too; asked for so no setting can change it).
PREFER_UTC: Final = 'outlook.timezone="UTC"'
# getSchedule's documented availabilityViewInterval range, in minutes (calendar-getschedule doc).
SCHEDULE_INTERVAL_MINUTES: Final = range(5, 1441)
# freeBusyStatus values, by their lower-cased spelling: the API reference writes them lower camel case,
# Microsoft's own free/busy guide shows "Tentative"/"Busy", so they are read whatever their case.
FREE_BUSY_STATUSES: Final = {
    status.lower(): status for status in ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
}
# A schedule's error.responseCode, as Graph answers it inside a 200 (scheduleInformation.error, a
# freeBusyError). "5009" ("Unable to resolve e-mail address ... to an Active Directory object.") is what
# Graph was seen answering for an address it cannot resolve (microsoft-graph-docs issue 11225); the
# others are Exchange availability codes (EWS ResponseCodeType) that Graph is assumed to pass through
# (*unverified*). A code in none of these sets is a GraphRequestRejected.
SCHEDULE_NOT_FOUND_CODES: Final = frozenset(
    {"5009", "ErrorMailRecipientNotFound", "ErrorInvalidUser", "ErrorNonExistentMailbox"}
)
SCHEDULE_ACCESS_DENIED_CODES: Final = frozenset({"ErrorNoFreeBusyAccess", "ErrorAccessDenied"})
SCHEDULE_TRANSIENT_CODES: Final = frozenset(
    {
        "ErrorFreeBusyGenerationFailed",
        "ErrorServerBusy",
        "ErrorTimeoutExpired",
        "ErrorProxyRequestProcessingFailed",
    }
)
# The 4xx answers a call reads itself; anything else (401 after the refresh, 429, 5xx) is the HTTP layer's.
HANDLED: Final = (400, 403, 404, 409, 412)


class GraphAuthProvider(Protocol):
    """What the client needs from :class:`ledgerlink.graph.auth.GraphAuth`: the app's id."""

    @property
    def app_id(self) -> str: ...


@dataclass(frozen=True)
class GraphUser:
    id: str
    mail: str | None
    upn: str
    display_name: str | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> GraphUser:
        return cls(
            id=str(raw["id"]),
            mail=raw.get("mail"),
            upn=str(raw.get("userPrincipalName") or ""),
            display_name=raw.get("displayName"),
        )


@dataclass(frozen=True)
class GraphCalendar:
    id: str
    allowed_online_meeting_providers: tuple[str, ...]
    default_online_meeting_provider: str | None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> GraphCalendar:
        return cls(
            id=str(raw["id"]),
            allowed_online_meeting_providers=tuple(raw.get("allowedOnlineMeetingProviders") or ()),
            default_online_meeting_provider=raw.get("defaultOnlineMeetingProvider"),
        )

    @property
    def allows_teams(self) -> bool:
        """Whether a Teams meeting can be created from this calendar: Graph answers a create asking for
        one on a calendar that does not allow it with 201 and an offline event (api-notes-flows.md §2.2)."""
        return TEAMS in self.allowed_online_meeting_providers


@dataclass(frozen=True)
class GraphEvent:
    """An Outlook event as Graph returned it. ``start``/``end`` are the ``dateTimeTimeZone`` objects as
    returned (UTC unless a time zone was asked for); ``etag`` is ``@odata.etag`` (what ``If-Match`` takes).
    ``organizer`` and ``attendees`` are addresses; ``join_url`` is ``onlineMeeting.joinUrl``, the only
    sign that Graph really made the event a Teams meeting (see :attr:`is_teams_meeting`).
    The body and the raw JSON stay out of the repr, so an event never reaches a log line whole."""

    id: str
    etag: str | None
    change_key: str | None
    transaction_id: str | None
    subject: str
    start: Mapping[str, Any]
    end: Mapping[str, Any]
    is_all_day: bool
    is_cancelled: bool
    show_as: str | None
    attendees: tuple[str, ...]
    organizer: str | None = None
    is_online_meeting: bool = False
    online_meeting_provider: str | None = None
    join_url: str | None = None
    body_content: str = field(default="", repr=False)
    web_link: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> GraphEvent:
        body = raw.get("body") or {}
        return cls(
            id=str(raw["id"]),
            etag=raw.get("@odata.etag"),
            change_key=raw.get("changeKey"),
            transaction_id=raw.get("transactionId"),
            subject=str(raw.get("subject") or ""),
            start=dict(raw.get("start") or {}),
            end=dict(raw.get("end") or {}),
            is_all_day=bool(raw.get("isAllDay")),
            is_cancelled=bool(raw.get("isCancelled")),
            show_as=raw.get("showAs"),
            attendees=tuple(
                str(address)
                for attendee in raw.get("attendees") or ()
                if (address := (attendee.get("emailAddress") or {}).get("address"))
            ),
            organizer=((raw.get("organizer") or {}).get("emailAddress") or {}).get("address"),
            is_online_meeting=bool(raw.get("isOnlineMeeting")),
            online_meeting_provider=raw.get("onlineMeetingProvider"),
            join_url=(raw.get("onlineMeeting") or {}).get("joinUrl") or None,
            body_content=str(body.get("content") or ""),
            web_link=raw.get("webLink"),
            raw=dict(raw),
        )

    @property
    def is_teams_meeting(self) -> bool:
        """Graph made it a Teams meeting: online, on Teams, with a join URL. A 201 to a create that asked
        for Teams is not enough (api-notes-flows.md §2.2: a calendar that cannot host Teams answers
        ``isOnlineMeeting: false``, provider ``unknown``, no ``onlineMeeting``)."""
        return self.is_online_meeting and self.online_meeting_provider == TEAMS and bool(self.join_url)


@dataclass(frozen=True)
class BusyInterval:
    """One item of a mailbox's free/busy that is not free: ``start``/``end`` aware UTC datetimes, the
    event's whole span (Graph does not clip items to the window asked for), ``status`` one of busy,
    tentative, oof, workingElsewhere or unknown (an item whose status Outlook does not know is kept
    as busy: a slot over it is not offered)."""

    start: datetime
    end: datetime
    status: str

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and self.end > start


@dataclass(frozen=True)
class Schedule:
    """A mailbox's free/busy between ``start`` and ``end`` (``calendar: getSchedule``).

    ``busy`` holds the items that are not free, sorted by start; ``availability_view`` is Graph's merged
    view, one digit per ``interval_minutes`` from ``start`` (0 free, 1 tentative, 2 busy, 3 out of office,
    4 working elsewhere per the scheduleInformation page; Microsoft's free/busy guide counts working
    elsewhere as 0, so read ``busy`` rather than the digits). ``working_hours`` is Graph's object as
    returned. ``error`` is set instead when Graph could not read the schedule (it answers that inside a
    200): then ``busy`` is empty and says nothing, so check ``error``, or use :meth:`raise_for_error` or
    :meth:`is_free`, which raise it.
    """

    mailbox: str
    start: datetime
    end: datetime
    interval_minutes: int
    busy: tuple[BusyInterval, ...] = ()
    availability_view: str = ""
    working_hours: Mapping[str, Any] | None = field(default=None, repr=False)
    error: GraphError | None = None

    @classmethod
    def from_api(
        cls,
        answer: Mapping[str, Any],
        *,
        mailbox: str,
        start: datetime,
        end: datetime,
        interval_minutes: int,
        path: str = "/calendar/getSchedule",
    ) -> Schedule:
        """``mailbox``'s schedule in a getSchedule answer (``{"value": [scheduleInformation, ...]}``); a
        per-schedule ``error``, or an answer that cannot be read, becomes :attr:`error`."""
        window = cls(mailbox, start.astimezone(UTC), end.astimezone(UTC), interval_minutes)
        return _schedule(window, answer, path=path)

    def raise_for_error(self) -> Schedule:
        if self.error is not None:
            raise self.error
        return self

    def is_free(self, start: datetime, end: datetime) -> bool:
        """No busy item overlaps ``[start, end)``. Raises :attr:`error` when the schedule could not be read."""
        self.raise_for_error()
        return not any(interval.overlaps(start, end) for interval in self.busy)


def odata_string(value: str) -> str:
    """An OData string literal: quoted, with every ``'`` doubled (``O'Brien`` → ``'O''Brien'``)."""
    return "'" + value.replace("'", "''") + "'"


class GraphClient:
    """One connection's Graph app (module docstring)."""

    def __init__(self, http: VendorHttpClient, auth: GraphAuthProvider) -> None:
        self._http = http
        self._auth = auth
        self.calls = 0

    # ---- scopes and requests

    def scope(self, mailbox: str | None) -> str:
        """The rate-limit and concurrency scope: per app and mailbox, as Outlook counts."""
        return f"{self._auth.app_id}/{mailbox.strip().lower() if mailbox else DIRECTORY_SCOPE}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        mailbox: str | None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        self.calls += 1
        return self._http.request(
            method,
            path,
            scope=self.scope(mailbox),
            json=json,
            headers={"Prefer": PREFER_IMMUTABLE_IDS, **(headers or {})},
            idempotent=idempotent,
            accept=HANDLED,
        )

    # ---- users

    def find_user(self, email: str) -> GraphUser | None:
        """The tenant user whose mail or user principal name is ``email`` (Graph compares them without
        regard to case), or None."""
        literal = odata_string(email.strip())
        query = _query(
            {"$filter": f"mail eq {literal} or userPrincipalName eq {literal}", "$select": USER_FIELDS}
        )
        response = self._call("GET", f"/users?{query}", mailbox=None)
        if response.status_code != 200:
            raise _failure(response, mailbox=None, method="GET", path="/users")
        users = [GraphUser.from_api(raw) for raw in _json(response).get("value") or ()]
        wanted = email.strip().lower()
        # The filter already matched; prefer the user whose mail is the address over one whose UPN is.
        users.sort(key=lambda user: (user.mail or "").lower() != wanted)
        return users[0] if users else None

    # ---- calendars

    def calendar(self, mailbox: str) -> GraphCalendar:
        """The mailbox's default calendar (which online-meeting providers it allows: the Teams flow)."""
        path = f"{_user(mailbox)}/calendar"
        response = self._call("GET", path, mailbox=mailbox)
        if response.status_code != 200:
            raise _failure(response, mailbox=mailbox, method="GET", path=path)
        return GraphCalendar.from_api(_json(response))

    def get_schedule(
        self,
        mailbox: str,
        start: datetime,
        end: datetime,
        *,
        interval_minutes: int = 30,
        via: str | None = None,
    ) -> Schedule:
        """``mailbox``'s free/busy from ``start`` to ``end`` (aware datetimes): ``POST /users/{via}/calendar/
        getSchedule`` with ``schedules: [mailbox]``, the window as UTC ``dateTimeTimeZone`` values and
        ``availabilityViewInterval``. ``via`` is the mailbox whose calendar the call goes through (it
        counts against that mailbox's limits); by default ``mailbox`` itself.

        A failed call raises as every call does (404 on ``via`` → :class:`MailboxNotFound`, 403 →
        :class:`GraphAccessDenied`, 400 such as ``ErrorTimeIntervalTooBig`` for a window over Graph's 62
        days → :class:`GraphRequestRejected`). A schedule Graph could not read comes back with
        :attr:`Schedule.error` set (see :mod:`ledgerlink.graph.errors`). Retried like an idempotent call:
        getSchedule reads and changes nothing.
        """
        for name, moment in (("start", start), ("end", end)):
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ValueError(f"{name} must carry a time-zone offset, got naive {moment.isoformat()}")
        if end <= start:
            raise ValueError("end must be after start")
        if interval_minutes not in SCHEDULE_INTERVAL_MINUTES:
            raise ValueError("interval_minutes must be between 5 and 1440 (Graph's documented range)")
        through = via or mailbox
        path = f"{_user(through)}/calendar/getSchedule"
        body = {
            "schedules": [mailbox.strip()],
            "startTime": to_date_time_time_zone(start),
            "endTime": to_date_time_time_zone(end),
            "availabilityViewInterval": interval_minutes,
        }
        response = self._call(
            "POST",
            path,
            mailbox=through,
            json=body,
            headers={"Prefer": f"{PREFER_IMMUTABLE_IDS}, {PREFER_UTC}"},
            idempotent=True,
        )
        if response.status_code != 200:
            raise _failure(response, mailbox=through, method="POST", path=path)
        return Schedule.from_api(
            _json(response),
            mailbox=mailbox,
            start=start,
            end=end,
            interval_minutes=interval_minutes,
            path=_shown(path),
        )

    # ---- events

    def create_event(self, mailbox: str, body: Mapping[str, Any], *, transaction_id: str) -> GraphEvent:
        """Create an event in ``mailbox``'s calendar. ``transaction_id`` goes into the body as Graph's
        ``transactionId``: a create repeated with it (a retry after a lost answer, a redelivered message)
        makes no second event, so the POST is retried like an idempotent call."""
        if not transaction_id:
            raise ValueError("a transactionId is required: it is what makes a retried create harmless")
        if body.get("transactionId") not in (None, transaction_id):
            raise ValueError("the event body names another transactionId than transaction_id")
        path = f"{_user(mailbox)}/events"
        response = self._call(
            "POST", path, mailbox=mailbox, json={**body, "transactionId": transaction_id}, idempotent=True
        )
        if response.status_code not in (200, 201):
            raise _failure(response, mailbox=mailbox, method="POST", path=path)
        return GraphEvent.from_api(_json(response))

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent | None:
        """The event, or None when it is not (or no longer) in the mailbox."""
        path = _event(mailbox, event_id)
        response = self._call("GET", path, mailbox=mailbox)
        if response.status_code == 404 and _code(response) == ITEM_NOT_FOUND:
            return None
        if response.status_code != 200:
            raise _failure(response, mailbox=mailbox, method="GET", path=path)
        return GraphEvent.from_api(_json(response))

    def update_event(
        self, mailbox: str, event_id: str, changes: Mapping[str, Any], *, etag: str
    ) -> GraphEvent:
        """PATCH the event if it is still at ``etag``; :class:`EventChanged` when it is not (re-read it and
        re-apply), :class:`EventGone` when it is no longer in the calendar.

        Retried like an idempotent call although PATCH is not one by method: with ``If-Match`` a repeat
        is harmless. If the first attempt never landed, the repeat applies the changes once; if it landed
        and its answer was lost, the event's etag has moved on, the repeat gets 412 and changes nothing,
        and the caller's re-read shows its own changes already there.
        """
        if not etag:
            raise ValueError("an etag is required: updates are made only to the version that was read")
        path = _event(mailbox, event_id)
        response = self._call(
            "PATCH", path, mailbox=mailbox, json=dict(changes), headers={"If-Match": etag}, idempotent=True
        )
        code = _code(response)
        if response.status_code == 412 or (
            response.status_code == 409 and code == "ErrorIrresolvableConflict"
        ):
            raise EventChanged(
                mailbox, event_id, status=response.status_code, code=code or "PreconditionFailed",
                method="PATCH", path=_shown(path),
            )  # fmt: skip
        if response.status_code == 404 and code == ITEM_NOT_FOUND:
            raise EventGone(mailbox, event_id, method="PATCH", path=_shown(path))
        if response.status_code != 200:
            raise _failure(response, mailbox=mailbox, method="PATCH", path=path)
        return GraphEvent.from_api(_json(response))

    def delete_event(self, mailbox: str, event_id: str) -> bool:
        """Delete the event: True when deleted, False when it was not there (already deleted). An
        organizer's delete still sends attendees a cancellation (api-notes.md §4); use
        :meth:`cancel_event` to say why."""
        path = _event(mailbox, event_id)
        response = self._call("DELETE", path, mailbox=mailbox)
        if response.status_code == 404 and _code(response) == ITEM_NOT_FOUND:
            return False
        if response.status_code not in (200, 204):
            raise _failure(response, mailbox=mailbox, method="DELETE", path=path)
        return True

    def cancel_event(self, mailbox: str, event_id: str, comment: str) -> bool:
        """The organizer cancels the meeting with ``comment`` (attendees get it): True when cancelled,
        False when the event was not there. Retried like an idempotent call: a repeat after a cancel
        that landed finds the event gone (404, False) and sends nothing twice."""
        path = f"{_event(mailbox, event_id)}/cancel"
        response = self._call("POST", path, mailbox=mailbox, json={"comment": comment}, idempotent=True)
        if response.status_code == 404 and _code(response) == ITEM_NOT_FOUND:
            return False
        if response.status_code not in (200, 202, 204):
            raise _failure(response, mailbox=mailbox, method="POST", path=path)
        return True


# ---- helpers


def _user(mailbox: str) -> str:
    if not mailbox or not mailbox.strip():
        raise ValueError("a mailbox (user principal name, address or object id) is required")
    return f"/users/{quote(mailbox.strip(), safe='@')}"


def _event(mailbox: str, event_id: str) -> str:
    if not event_id:
        raise ValueError("an event id is required")
    return f"{_user(mailbox)}/events/{quote(event_id, safe='')}"


def _shown(path: str) -> str:
    return path.split("?", 1)[0]


# Left unescaped in query values: OData's punctuation, as Graph's docs write queries.
_QUERY_SAFE: Final = "$,'()@="


def _query(params: Mapping[str, str]) -> str:
    # Spaces as %20 rather than "+": the OData filter grammar is defined on %20.
    return "&".join(
        f"{quote(name, safe='$')}={quote(value, safe=_QUERY_SAFE)}" for name, value in params.items()
    )


def _schedule(window: Schedule, body: Mapping[str, Any], *, path: str) -> Schedule:
    """The scheduleInformation for ``window.mailbox`` in a getSchedule answer, read into ``window``."""
    wanted = window.mailbox.strip().lower()
    found = [
        info
        for info in body.get("value") or ()
        if isinstance(info, Mapping) and str(info.get("scheduleId") or "").strip().lower() == wanted
    ]
    if not found:
        return replace(window, error=_unreadable(window, "no scheduleInformation names the mailbox", path))
    info = found[0]
    error = info.get("error")
    if isinstance(error, Mapping) and (error.get("responseCode") or error.get("message")):
        return replace(window, error=_schedule_error(window.mailbox, error, path))
    busy: list[BusyInterval] = []
    try:
        for item in info.get("scheduleItems") or ():
            status = FREE_BUSY_STATUSES.get(str(item.get("status") or "unknown").lower(), "unknown")
            if status == "free":
                continue
            start, end = from_date_time_time_zone(item["start"]), from_date_time_time_zone(item["end"])
            busy.append(BusyInterval(start, end, status))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return replace(window, error=_unreadable(window, f"a schedule item could not be read: {exc}", path))
    busy.sort(key=lambda interval: (interval.start, interval.end))
    hours = info.get("workingHours")
    return replace(
        window,
        busy=tuple(busy),
        availability_view=str(info.get("availabilityView") or ""),
        working_hours=dict(hours) if isinstance(hours, Mapping) else None,
    )


def _schedule_error(mailbox: str, error: Mapping[str, Any], path: str) -> GraphError:
    code = str(error.get("responseCode") or "")
    message = str(error.get("message") or "")
    if code in SCHEDULE_NOT_FOUND_CODES:
        return MailboxNotFound(mailbox, code, status=200, method="POST", path=path)
    if code in SCHEDULE_ACCESS_DENIED_CODES:
        text = (
            f"Graph may not read the free/busy of mailbox {mailbox} ({code}): the app lacks a Calendars "
            "application permission, or its Exchange RBAC scope does not include this mailbox"
        )
        return GraphAccessDenied(text, code=code, mailbox=mailbox, method="POST", path=path)
    if code in SCHEDULE_TRANSIENT_CODES:
        return ScheduleUnavailable(mailbox, code=code, graph_message=message, method="POST", path=path)
    return GraphRequestRejected(
        status=200, code=code or "ScheduleError", graph_message=message, method="POST", path=path
    )


def _unreadable(window: Schedule, why: str, path: str) -> GraphError:
    return GraphRequestRejected(
        status=200,
        code="UnreadableSchedule",
        graph_message=f"getSchedule for {window.mailbox}: {why}",
        method="POST",
        path=path,
    )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(response: requests.Response) -> tuple[str, str]:
    error = _json(response).get("error")
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def _code(response: requests.Response) -> str:
    return _error(response)[0]


def _failure(response: requests.Response, *, mailbox: str | None, method: str, path: str) -> Exception:
    """The error for a handled 4xx (:data:`HANDLED`) that the method does not read as an answer."""
    status = response.status_code
    code, message = _error(response)
    shown = _shown(path)
    if mailbox is not None and status == 404 and code in MAILBOX_NOT_FOUND_CODES:
        return MailboxNotFound(mailbox, code, method=method, path=shown)
    if status == 403:
        if mailbox is not None:
            text = (
                f"Graph denied the app access to mailbox {mailbox} ({code or 'Forbidden'}): the app lacks "
                "the Calendars.ReadWrite application permission, or its Exchange RBAC scope does not "
                "include this mailbox"
            )
        else:
            text = (
                f"Graph denied the app access to the tenant's directory ({code or 'Forbidden'}): the app "
                "lacks the User.Read.All application permission"
            )
        return GraphAccessDenied(text, code=code or "Forbidden", mailbox=mailbox, method=method, path=shown)
    return GraphRequestRejected(
        status=status, code=code or f"HTTP{status}", graph_message=message, method=method, path=shown
    )
