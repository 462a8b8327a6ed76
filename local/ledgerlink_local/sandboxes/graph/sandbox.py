"""A faithful local Microsoft Graph v1.0 (Outlook calendar, Teams meetings) plus the Microsoft
Entra ID app-only token endpoint, for LedgerLink's F4/F5 flows.

Clients use ``<sandbox>/v1.0`` as the Graph base URL and ``<sandbox>/{tenant}/oauth2/v2.0/token``
as the token URL; everything else (paths, query options, bodies, status codes, error bodies)
is Graph's. Run it alone with ``python -m ledgerlink_local.sandboxes.graph --port 4013``.

Endpoints (25 method+path pairs, counting ``events`` and ``calendar/events`` apart, plus the ``/me`` refusal;
``{events}`` below is either):

| method | path | what |
|---|---|---|
| POST | /{tenant}/oauth2/v2.0/token | client-credentials token (form body or HTTP Basic client auth) |
| GET | /{tenant}/v2.0/.well-known/openid-configuration | OpenID metadata (token_endpoint for MSAL) |
| GET | /v1.0/users | list users ($filter, $select, $top, @odata.nextLink) |
| GET | /v1.0/users/{id or UPN} | one user |
| GET | /v1.0/users/{id}/calendar | the default calendar (allowed online-meeting providers) |
| POST | /v1.0/users/{id}/calendar/getSchedule | free/busy of up to 20 addresses (``schedule.py``); 200 |
| POST | /v1.0/users/{id}/{events} | create an event (transactionId idempotent); 201 |
| GET | /v1.0/users/{id}/{events} | list ($filter, $orderby, $select, $top, $skip, $count, nextLink) |
| GET | /v1.0/users/{id}/{events}/{eventId} | read ($select; Prefer outlook.timezone / body-content-type) |
| PATCH | /v1.0/users/{id}/{events}/{eventId} | update; If-Match against @odata.etag → 412 on mismatch |
| DELETE | /v1.0/users/{id}/{events}/{eventId} | delete (If-Match honoured); 204 |
| POST | /v1.0/users/{id}/{events}/{eventId}/cancel | organizer cancels with a comment; 202 |
| GET | /v1.0/users/{id}/calendarView (and calendar/calendarView) | events overlapping a window |
| POST | /v1.0/users/{objectId}/onlineMeetings | standalone Teams meeting; 201 |
| POST | /v1.0/users/{objectId}/onlineMeetings/createOrGet | idempotent by externalId (201, then 200) |
| GET | /v1.0/users/{objectId}/onlineMeetings?$filter=JoinWebUrl eq '...' | find by join URL / joinMeetingId |
| GET, DELETE | /v1.0/users/{objectId}/onlineMeetings/{meetingId} | read, delete (204) |
| any | /v1.0/me/... | 400 "/me request is only valid with delegated authentication flow." |

Behaviours (Graph's documented ones unless marked *assumption* / *unverified*):

- Tokens: ``expires_in``/``ext_expires_in`` 3599 (configurable), expiry on the sandbox clock.
  Entra errors: unknown tenant → 400 invalid_request AADSTS90002; missing parameter → 400
  AADSTS900144; other grant types → 400 unsupported_grant_type AADSTS70003; unknown client →
  400 unauthorized_client AADSTS700016; no secret → 401 invalid_client AADSTS7000218; wrong
  secret → 401 invalid_client AADSTS7000215; scope without ``/.default`` → 400 invalid_scope
  AADSTS1002012; several scopes → 400 invalid_scope AADSTS70011; another resource → 400
  invalid_resource AADSTS500011.
- Graph calls without a valid token → 401 ``InvalidAuthenticationToken`` ("Access token is
  empty." / "IDX14100: JWT is not well formed..." / "Lifetime validation failed, the token is
  expired.") with ``innerError`` {date, request-id, client-request-id} and ``WWW-Authenticate``.
  Every Graph response carries ``request-id`` and ``client-request-id`` (echoed if sent).
- An app without the needed application permission → 403 (``ErrorAccessDenied`` for calendars,
  ``Authorization_RequestDenied`` for users; ``Forbidden`` for onlineMeetings is *unverified*).
- Unknown user → 404 ``ErrorInvalidUser`` on calendar paths (*unverified for object ids*),
  404 ``Request_ResourceNotFound`` on ``/users/{id}``; a user without a mailbox → 404
  ``MailboxNotEnabledForRESTAPI``. Unknown event → 404 ``ErrorItemNotFound`` "The specified
  object was not found in the store."; a malformed id → 400 ``ErrorInvalidIdMalformed``.
- Event responses carry start/end in UTC unless ``Prefer: outlook.timezone="<Windows or IANA
  name>"`` asks otherwise (answered with ``Preference-Applied``); the zone the client used is
  kept in originalStartTimeZone/originalEndTimeZone. ``Prefer: outlook.body-content-type="text"``
  and ``Prefer: odata.maxpagesize=N`` are honoured. Default page size 10, ``$top`` ≤ 1000.
- ``transactionId``: a create that repeats a transactionId already used in that mailbox returns
  the existing event, unchanged, with **201** and creates nothing (*assumption*: Microsoft
  documents only that the property stops redundant POSTs, not the status of the replay). The
  property is returned only when set; a PATCH may not change it (400 ``ErrorInvalidRequest``,
  code *unverified*). The key is released when the event leaves the calendar.
- ``changeKey`` and ``@odata.etag`` (``W/"<changeKey>"``) change on every update; PATCH/DELETE
  with a stale ``If-Match`` → 412 ``ErrorIrresolvableConflict`` "The send or update operation
  could not be performed because the change key passed in the request does not match the
  current change key for the item." ``If-Match: *`` always matches.
- Meetings: attendees who are users of the tenant get their own copy (own id, isOrganizer
  false, responseStatus notResponded, same iCalUId); the organizer's updates reach the copies,
  removed attendees' copies are cancelled. ``cancel`` by the organizer → 202, the event moves
  to Deleted Items (it leaves the calendar: GET → 404) and each attendee copy becomes
  isCancelled true with subject "Canceled: ..." (Outlook's prefix, *unverified* via Graph docs).
  ``cancel`` on an attendee's copy → 400 "Your request can't be completed. You need to be an
  organizer to cancel a meeting." (code ``ErrorInvalidRequest`` *unverified*). DELETE by the
  organizer cancels the copies too; by an attendee removes only their copy. Invitations and
  cancellations (with the comment) are recorded in the ``outbox`` of ``/_admin/state``.
- ``isOnlineMeeting``/``onlineMeetingProvider: teamsForBusiness`` → ``onlineMeeting`` {joinUrl
  (teams.microsoft.com/l/meetup-join/...), conferenceId, ...} and the Teams block appended to
  the body; once online it stays online. ``isOnlineMeeting: true`` without a provider means the
  calendar's ``defaultOnlineMeetingProvider``. A Skype provider leaves the event offline
  (*assumption*).
- Per-mailbox Teams refusal: each calendar has its ``allowedOnlineMeetingProviders`` (GET
  ``/calendar``; the demo calendars allow ``teamsForBusiness``, except ``noteams@``'s, which allows
  only ``unknown``). On a calendar that does not allow teamsForBusiness, a create or update asking
  for a Teams meeting answers as Graph is reported to (api-notes-flows.md §2.2): **201/200 with
  ``isOnlineMeeting: false``, ``onlineMeetingProvider: "unknown"``, ``onlineMeeting: null``**, no
  Teams block in the body, and the invitations still sent (outbox). Set it per user with the seed
  (``users[].allowedOnlineMeetingProviders``, ``defaultOnlineMeetingProvider``) or ``POST
  /_admin/mailboxes/online-meetings`` ``{"user", "allowedOnlineMeetingProviders", "defaultOnlineMeetingProvider"?}``
  (400 for an unknown provider or a user without a mailbox); reset restores the demo calendars.
- ``getSchedule`` (``schedule.py`` has the details and sources): ``POST .../calendar/getSchedule``
  (also ``getschedule`` in any case, and ``microsoft.graph.getSchedule``; parameter names in any
  case; the interval may be a numeric string) with ``Calendars.ReadBasic``, ``Calendars.Read`` or
  ``Calendars.ReadWrite`` (else 403 ``ErrorAccessDenied``); the path user is looked up as on every
  calendar path. One scheduleInformation per address, in order: the address's events that overlap
  the window, are not free and not cancelled, whole and by start, with ``status`` from showAs (and
  subject/location/isPrivate unless private or confidential); ``availabilityView`` one digit per
  ``availabilityViewInterval`` (default 30) from the window's start in absolute time (0 free, 1
  tentative, 2 busy, 3 oof, 4 workingElsewhere; overlaps show the strongest); ``workingHours`` a fixed
  Mon-Fri 08:00-17:00 in the user's zone (*assumption*: no mailboxSettings here). Times in the zone of
  ``Prefer: outlook.timezone``, else UTC (not the request's zone). An unknown address → ``{"scheduleId",
  "error": {"message": "Unable to resolve e-mail address ... to an Active Directory object.",
  "responseCode": "5009"}}`` (observed); a user without a mailbox → ``ErrorMailRecipientNotFound``
  (*unverified*). 400s: end not after start ``ErrorInvalidTimeInterval``, over 62 days
  ``ErrorTimeIntervalTooBig``, over 20 addresses ``ErrorMailboxDataArrayTooBig`` (Graph was seen
  allowing 100), interval outside 5-1440 or longer than the window
  ``ErrorInvalidMergedFreeBusyInterval`` (all observed shapes); a missing parameter
  ``ErrorInvalidParameter``, an unknown parameter ``BadRequest``, wrong types
  ``UnableToDeserializePostBody``, an unknown zone ``TimeZoneNotSupportedException`` (*unverified*).
  Counted against Outlook's per-mailbox limits like every calendar path. Config:
  ``schedule_max_mailboxes`` (20), ``schedule_max_days`` (62),
  ``availability_working_elsewhere_digit`` ("4", the scheduleInformation page; "0" as Microsoft's
  free/busy guide says).
- Throttling per app per mailbox (calendar paths only): 10,000 requests per 10 minutes (Outlook's
  documented limit) plus a burst limit of 40 requests per second (*assumption*, a guard against
  runaway loops; Outlook documents no per-second figure); → 429 with ``Retry-After`` and the body
  of Graph's throttling docs (``TooManyRequests`` with innerError code "429").
- Outlook's documented **4 concurrent requests per app and mailbox**: a request that arrives while
  4 others for the same app and mailbox are in flight (faults like ``hold`` and ``slow`` keep them
  in flight) → 429 ``ApplicationThrottled`` "Application is over its MailboxConcurrency limit."
  with ``Retry-After`` (the body is *unverified*: it is what clients report; Microsoft documents
  the limit, not the answer). On by default (LedgerLink's client never sends a fifth, and a 429 is
  retried), like every limit off with ``rate_limits_enabled: false``; ``/_admin/state`` shows
  ``concurrency.inFlight`` and ``concurrency.peak`` per app and mailbox.
- ``Retry-After`` is whole seconds by default; ``retry_after_fractional: true`` sends
  millisecond-precision values like Graph's docs show (``2.128``), so clients are tested against
  both shapes. An injected 429 fault asks for ``fault_retry_after_seconds`` (1).
- ``/_admin/config`` sets ``requests_per_10_minutes``, ``burst_per_second`` (0: off),
  ``concurrent_requests_per_mailbox`` (4; 0: off), ``concurrency_retry_after_seconds`` (1),
  ``retry_after_fractional`` (false), ``fault_retry_after_seconds`` (1), ``token_lifetime_seconds``
  and ``throttle_error_code`` (``TooManyRequests`` | ``ApplicationThrottled`` |
  ``activityLimitReached``, the other shapes clients meet in the wild), ``schedule_max_mailboxes``,
  ``schedule_max_days`` and ``availability_working_elsewhere_digit`` (getSchedule, above);
  ``/_admin/reset`` restores these defaults.
- ``Prefer: IdType="ImmutableId"`` is answered with ``Preference-Applied: IdType="ImmutableId"``
  on successful calendar answers. Ids here never change whether it is sent or not: on Exchange an
  event's default id changes when the item moves folders, and the only move here is to Deleted
  Items, where an event can no longer be reached through the calendar. Whether Graph echoes the
  preference on 204/202 answers is *unverified*; the sandbox does on every 2xx calendar answer.
- Client secrets: ``POST /_admin/apps/rotate-secret`` ``{"clientId"?, "clientSecret"?}`` gives the
  app a new secret (generated when not given, returned) and invalidates the old one;
  ``/_admin/apps/revoke-secret`` ``{"clientId"?}`` deletes the app's secret (every token request →
  401 invalid_client AADSTS7000215, as for a wrong secret) until a rotation;
  ``/_admin/apps/expire-secret`` makes it expired (→ 401 invalid_client AADSTS7000222). The
  default app is the demo app.
- Injected 500/503 faults answer ``generalException`` / ``serviceNotAvailable`` (codes from
  Graph's error docs); on the token path they answer in Entra's shape.

Not reproduced yet: recurrence (a non-null ``recurrence`` → 501), attachments, extensions and
extended properties (unknown properties → 400), accept/decline/tentativelyAccept, delta,
change notifications (subscriptions), ``$expand``/``$search``, lambda filters
(``attendees/any``), JSON batching (``/$batch``), other calendars (``/calendars/{id}``),
groups, id changes on folder moves (so ``IdType`` changes nothing here), the application access
policy for onlineMeetings (every demo user is covered), case-insensitive path segments (but for
getSchedule's), Graph's tenant-wide and per-app global limits, Outlook's 150 MB upload limit,
mailboxSettings (working hours), distribution lists and resources in getSchedule, Skype join links.

Demo tenant: ``ledgerlinkdemo.onmicrosoft.com`` with the verified domain ``northwind-demo.example``
(the demo company's, which the HubSpot sandbox's deal owners use): users ``finance@`` (the
accounts-receivable calendar), ``avery.chen@``, ``jordan.lee@``, ``priya.patel@`` and
``contractor@`` (no mailbox: calendar calls → 404 ``MailboxNotEnabledForRESTAPI``) and
``noteams@`` ("Legacy Mailbox", whose calendar allows no Teams meetings) on the first,
``maria.alvarez@`` and ``sam.okafor@`` on the second (two of HubSpot's three demo owners; the
third, ``priya.nair@``, is not a user).

Seed body for ``POST /_admin/seed`` (all keys optional)::

    {"users": [{"displayName", "userPrincipalName", "mail"?, "id"?, "hasMailbox"?,
                "allowedOnlineMeetingProviders"?, "defaultOnlineMeetingProvider"?, "timeZone"?}],
     "apps": [{"clientId", "clientSecret", "displayName", "roles": [...],
               "exchangeRoleAssignments"?: [{"role": "Calendars.ReadWrite", "mailboxes": [...]}]}],

An app's ``exchangeRoleAssignments`` are Exchange RBAC for Applications grants: the role (a Graph
permission name, e.g. ``Calendars.ReadWrite`` for "Application Calendars.ReadWrite") on the listed
mailboxes only. They are not in the token's ``roles``; a calendar call on a mailbox outside every
scope, by an app without the Entra role, is 403 ``ErrorAccessDenied``.
     "events": [{"user": "<id or UPN>", "event": {<Graph event body>}}]}
"""

from __future__ import annotations

import base64
import copy
import math
import random
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

from ledgerlink_local.sandboxes.core import (
    ADMIN_PREFIX,
    HttpError,
    JsonBody,
    RateDecision,
    RateLimit,
    Request,
    Response,
    Sandbox,
    SandboxClock,
    run_from_command_line,
)
from ledgerlink_local.sandboxes.graph.datetimes import (
    TimeValueError,
    UnknownTimeZoneError,
    format_error_date,
    format_timestamp,
    parse_instant,
    resolve_zone,
)
from ledgerlink_local.sandboxes.graph.events import (
    MEETING_FIELDS,
    ONLINE_MEETING_PROVIDERS,
    OUTLOOK_EVENT_TYPE,
    SELECTABLE,
    GraphProblem,
    StoredEvent,
    apply_changes,
    check_times,
    copy_for_attendee,
    empty_location,
    parse_event_changes,
    render_event,
)
from ledgerlink_local.sandboxes.graph.identity import (
    ROLE_CALENDARS_READ,
    ROLE_CALENDARS_READBASIC,
    ROLE_CALENDARS_READWRITE,
    ROLE_ONLINE_MEETINGS_READWRITE,
    ROLE_USERS_READ,
    SECRET_ACTIVE,
    SECRET_EXPIRED,
    SECRET_REVOKED,
    TOKEN_LIFETIME_SECONDS,
    AppRegistration,
    TenantUser,
    TokenClaims,
    TokenRejected,
    TokenService,
    entra_error,
)
from ledgerlink_local.sandboxes.graph.odata import (
    EntitySchema,
    Field,
    QueryError,
    parse_filter,
    parse_non_negative,
    parse_orderby,
    parse_select,
    sort_entities,
)
from ledgerlink_local.sandboxes.graph.schedule import (
    MAX_SCHEDULES,
    MAX_WINDOW_DAYS,
    SCHEDULE_INFORMATION_CONTEXT,
    parse_schedule_request,
    schedule_information,
)
from ledgerlink_local.sandboxes.graph.teams import (
    OnlineMeeting,
    event_online_meeting,
    new_online_meeting,
    parse_online_meeting,
    render_online_meeting,
    teams_join_html,
)

# --------------------------------------------------------------------------- demo tenant

DEMO_TENANT_ID = "4f1c2a8e-7b3d-4c59-9e21-6a0d5b8c3f17"
DEMO_TENANT_DOMAIN = "ledgerlinkdemo.onmicrosoft.com"
DEMO_CLIENT_ID = "9d3e6b2a-51c4-4f0e-8a7d-2c6b1e9f4a03"
DEMO_CLIENT_SECRET = "Xq28Q~ledgerlink-local-graph-demo-secret.0"
DEMO_CALENDAR_USER = f"finance@{DEMO_TENANT_DOMAIN}"
# A mailbox whose calendar allows no Teams meetings (a Teams create there answers 201, offline).
DEMO_NO_TEAMS_USER = f"noteams@{DEMO_TENANT_DOMAIN}"
# The demo company's own domain, verified in the demo tenant: the HubSpot sandbox's deal owners have
# addresses on it (hubspot/model.py default_owners), and two of them are users here.
DEMO_COMPANY_DOMAIN = "northwind-demo.example"
DEFAULT_PORT = 4013  # the local stack's graph port (qbo 4011, hubspot 4012)

GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
TOKEN_PATH = re.compile(r"^/[^/]+/(oauth2/v2\.0/token|v2\.0/\.well-known/openid-configuration)/?$")
EVENT_ID = re.compile(r"^AAMk[A-Za-z0-9_\-]{16,}={0,2}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
OUTLOOK_SEGMENTS = ("events", "calendar", "calendarView")
THROTTLE_CODES = ("TooManyRequests", "ApplicationThrottled", "activityLimitReached")
IMMUTABLE_ID_PREFERENCE = re.compile(r'IdType\s*=\s*"?ImmutableId"?', re.IGNORECASE)
# /v1.0/users/{user}/<Outlook segment>...: the requests Outlook's per-app-per-mailbox limits count.
OUTLOOK_PATH = re.compile(r"^/v1\.0/users/(?P<user>[^/]+)/(?:events|calendar|calendarView)(?:/|$)")
OUTLOOK_CONCURRENT_REQUESTS = 4  # Outlook's documented in-flight limit per app and mailbox
# getSchedule's action segment: Graph binds it whatever its case (Microsoft's free/busy guide posts to
# .../calendar/getschedule) and in its namespace-qualified form (microsoft.graph.getSchedule).
GET_SCHEDULE_SEGMENT = r"(?i:(?:microsoft\.graph\.)?getschedule)"
SCHEDULE_ROLES = (ROLE_CALENDARS_READBASIC, ROLE_CALENDARS_READ, ROLE_CALENDARS_READWRITE)
WORKING_ELSEWHERE_DIGITS = ("4", "0")
MAX_EVENT_PAGE = 1000
MAX_USER_PAGE = 999


@dataclass(frozen=True)
class DemoCredentials:
    """What the local stack writes to ``.ledgerlink/local.json`` for Graph."""

    base_url: str
    token_url: str
    tenant_id: str
    client_id: str
    client_secret: str
    calendar_user: str

    @classmethod
    def for_sandbox(cls, sandbox_url: str) -> DemoCredentials:
        root = sandbox_url.rstrip("/")
        return cls(
            base_url=f"{root}/v1.0",
            token_url=f"{root}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
            tenant_id=DEMO_TENANT_ID,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            calendar_user=DEMO_CALENDAR_USER,
        )

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def _demo_users() -> list[TenantUser]:
    domain = DEMO_TENANT_DOMAIN
    return [
        TenantUser(
            id="6e0f3b7a-2d41-4c8e-b5a9-1f7c3d9e2b60",
            user_principal_name=f"finance@{domain}",
            mail=f"finance@{domain}",
            display_name="Finance Operations",
            given_name="Finance",
            surname="Operations",
            job_title="Accounts Receivable",
            office_location="HQ",
        ),
        TenantUser(
            id="a41d7c25-9e3b-4f60-8c17-5b2e0d4f9a88",
            user_principal_name=f"avery.chen@{domain}",
            mail=f"avery.chen@{domain}",
            display_name="Avery Chen",
            given_name="Avery",
            surname="Chen",
            job_title="Controller",
            office_location="HQ",
            business_phones=("+1 206 555 0142",),
        ),
        TenantUser(
            id="c8b2e6f1-4a73-4d9c-a02e-7e5f1b3c6d24",
            user_principal_name=f"jordan.lee@{domain}",
            mail=f"jordan.lee@{domain}",
            display_name="Jordan Lee",
            given_name="Jordan",
            surname="Lee",
            job_title="Account Executive",
            office_location="Remote",
        ),
        TenantUser(
            id="1b9a4e73-c6d2-4058-9f3e-8a2d5c7b0e91",
            user_principal_name=f"priya.patel@{domain}",
            mail=f"priya.patel@{domain}",
            display_name="Priya Patel",
            given_name="Priya",
            surname="Patel",
            job_title="Sales Manager",
            office_location="London",
            preferred_language="en-GB",
            time_zone="GMT Standard Time",
        ),
        TenantUser(
            id="f3c7d1a9-8b25-4e6f-b0d4-2a9e6c1f5b37",
            user_principal_name=f"contractor@{domain}",
            mail=f"contractor@{domain}",
            display_name="Temp Contractor",
            job_title="Contractor (no Exchange licence)",
            has_mailbox=False,
        ),
        # A mailbox whose calendar cannot host Teams (no Teams licence): a Teams create answers 201 with
        # an offline event, Graph's silent failure (api-notes-flows.md §2.2).
        TenantUser(
            id="5c2e9a47-1f8b-4d36-9e0a-7b4d2c6f1e83",
            user_principal_name=DEMO_NO_TEAMS_USER,
            mail=DEMO_NO_TEAMS_USER,
            display_name="Legacy Mailbox",
            job_title="Collections (no Teams licence)",
            office_location="HQ",
            allowed_online_meeting_providers=("unknown",),
        ),
        # Two of the HubSpot sandbox's deal owners (its third, priya.nair@, is no user here: her deals'
        # events go to the accounts-receivable mailbox).
        TenantUser(
            id="3d8e2b61-7c4a-4f19-a5d0-9b6e1c2f8a47",
            user_principal_name=f"maria.alvarez@{DEMO_COMPANY_DOMAIN}",
            mail=f"maria.alvarez@{DEMO_COMPANY_DOMAIN}",
            display_name="Maria Alvarez",
            given_name="Maria",
            surname="Alvarez",
            job_title="Account Executive",
            office_location="HQ",
        ),
        TenantUser(
            id="8a5f0c3e-2b97-4d6a-b1e4-6c0d9f7a2e58",
            user_principal_name=f"sam.okafor@{DEMO_COMPANY_DOMAIN}",
            mail=f"sam.okafor@{DEMO_COMPANY_DOMAIN}",
            display_name="Sam Okafor",
            given_name="Sam",
            surname="Okafor",
            job_title="Account Executive",
            office_location="Remote",
        ),
    ]


def _demo_apps() -> list[AppRegistration]:
    return [
        AppRegistration(
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            display_name="LedgerLink (local demo)",
            roles=(ROLE_CALENDARS_READWRITE, ROLE_ONLINE_MEETINGS_READWRITE, ROLE_USERS_READ),
            service_principal_id="2e7b9c14-6f3a-4d85-a1c9-0b4e8d2f7a65",
        )
    ]


# --------------------------------------------------------------------------- query schemas


def _event_schema() -> EntitySchema:
    fields: dict[str, Field] = {
        "start/dateTime": Field(lambda e: e.start.utc, "datetime"),
        "end/dateTime": Field(lambda e: e.end.utc, "datetime"),
        "createdDateTime": Field(attrgetter("created"), "datetime"),
        "lastModifiedDateTime": Field(attrgetter("last_modified"), "datetime"),
        "subject": Field(attrgetter("subject"), "string"),
        "transactionId": Field(attrgetter("transaction_id"), "string"),
        "iCalUId": Field(attrgetter("ical_uid"), "string"),
        "organizer/emailAddress/address": Field(lambda e: e.organizer.get("address"), "string"),
        "organizer/emailAddress/name": Field(lambda e: e.organizer.get("name"), "string"),
        "isCancelled": Field(attrgetter("is_cancelled"), "bool"),
        "isAllDay": Field(attrgetter("is_all_day"), "bool"),
        "isOnlineMeeting": Field(attrgetter("is_online_meeting"), "bool"),
        "isOrganizer": Field(attrgetter("is_organizer"), "bool"),
        "isReminderOn": Field(attrgetter("is_reminder_on"), "bool"),
        "showAs": Field(attrgetter("show_as"), "enum"),
        "importance": Field(attrgetter("importance"), "enum"),
        "sensitivity": Field(attrgetter("sensitivity"), "enum"),
        "onlineMeetingProvider": Field(attrgetter("online_meeting_provider"), "enum"),
        "type": Field(lambda e: "singleInstance", "enum"),
        "reminderMinutesBeforeStart": Field(attrgetter("reminder_minutes"), "number"),
    }
    return EntitySchema(OUTLOOK_EVENT_TYPE, fields, SELECTABLE)


def _user_schema() -> EntitySchema:
    fields = {
        "id": Field(attrgetter("id"), "string"),
        "userPrincipalName": Field(attrgetter("user_principal_name"), "string"),
        "mail": Field(attrgetter("mail"), "string"),
        "displayName": Field(attrgetter("display_name"), "string"),
        "givenName": Field(attrgetter("given_name"), "string"),
        "surname": Field(attrgetter("surname"), "string"),
        "jobTitle": Field(attrgetter("job_title"), "string"),
        "officeLocation": Field(attrgetter("office_location"), "string"),
    }
    selectable = (
        "id",
        "userPrincipalName",
        "mail",
        "displayName",
        "givenName",
        "surname",
        "jobTitle",
        "officeLocation",
        "businessPhones",
        "mobilePhone",
        "preferredLanguage",
    )
    return EntitySchema("microsoft.graph.user", fields, selectable)


EVENT_SCHEMA = _event_schema()
USER_SCHEMA = _user_schema()


@dataclass(frozen=True)
class Preferences:
    """What the ``Prefer`` header asked for (Outlook's and OData's preferences)."""

    time_zone: str | None = None
    body_as_text: bool = False
    max_page_size: int | None = None
    immutable_id: bool = False  # IdType="ImmutableId": answered in GraphSandbox.handle for Outlook paths

    def applied(self) -> dict[str, str]:
        applied = []
        if self.time_zone:
            applied.append(f'outlook.timezone="{self.time_zone}"')
        if self.body_as_text:
            applied.append('outlook.body-content-type="text"')
        if self.max_page_size:
            applied.append(f"odata.maxpagesize={self.max_page_size}")
        return {"Preference-Applied": ", ".join(applied)} if applied else {}


def _preferences(request: Request) -> Preferences:
    header = request.headers.get("Prefer") or ""
    zone_match = re.search(r'outlook\.timezone\s*=\s*"([^"]*)"', header, re.IGNORECASE)
    zone = zone_match.group(1) if zone_match else None
    if zone is not None:
        try:
            resolve_zone(zone)
        except UnknownTimeZoneError:
            zone = None  # an unusable preference is not applied; times stay in UTC
    body_text = re.search(r'outlook\.body-content-type\s*=\s*"?text"?', header, re.IGNORECASE) is not None
    page_match = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", header, re.IGNORECASE)
    page = int(page_match.group(1)) if page_match and int(page_match.group(1)) > 0 else None
    immutable = IMMUTABLE_ID_PREFERENCE.search(header) is not None
    return Preferences(zone, body_text, page, immutable)


# --------------------------------------------------------------------------- the sandbox


class GraphSandbox(Sandbox):
    """Microsoft Graph v1.0 calendar + Teams meetings, and the Entra ID token endpoint."""

    vendor = "graph"

    def __init__(
        self,
        *,
        rate_limits_enabled: bool = True,
        clock: SandboxClock | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(rate_limits_enabled=rate_limits_enabled, clock=clock)
        self._rng = random.Random(seed)
        self._current = threading.local()
        self.tokens = TokenService(DEMO_TENANT_ID, (DEMO_TENANT_DOMAIN, DEMO_COMPANY_DOMAIN))
        self.requests_per_10_minutes = 0
        self.burst_per_second = 0
        self.throttle_error_code = ""
        self.concurrent_requests_per_mailbox = 0
        self.concurrency_retry_after_seconds = 1.0
        self.retry_after_fractional = False
        self.fault_retry_after_seconds = 1.0
        self.schedule_max_mailboxes = MAX_SCHEDULES
        self.schedule_max_days = MAX_WINDOW_DAYS
        self.availability_working_elsewhere_digit = "4"
        # Requests in flight per app|mailbox, and the most there ever were (under their own lock: the
        # count spans the whole request, while self.lock is held only inside a route).
        self._in_flight: dict[str, int] = {}
        self.peak_in_flight: dict[str, int] = {}
        self._flight_lock = threading.Lock()
        self.users: dict[str, TenantUser] = {}
        self.apps: dict[str, AppRegistration] = {}
        self.mailboxes: dict[str, dict[str, StoredEvent]] = {}
        self.transactions: dict[tuple[str, str], str] = {}
        self.meetings: dict[str, dict[str, str]] = {}  # iCalUId -> mailbox id -> event id
        self.deleted_items: dict[str, list[str]] = {}
        self.online_meetings: dict[str, dict[str, OnlineMeeting]] = {}
        self.outbox: list[dict[str, Any]] = []
        self._register_routes()
        self.reset_state()

    # ---- routes

    def _register_routes(self) -> None:
        self.add_route("POST", "/{tenant}/oauth2/v2.0/token", self._token, authenticated=False)
        self.add_route(
            "GET",
            "/{tenant}/v2.0/.well-known/openid-configuration",
            self._openid_configuration,
            authenticated=False,
        )
        self.add_route("GET", "/v1.0/users", self._list_users)
        self.add_route("GET", "/v1.0/users/{user}", self._get_user)
        self.add_route("GET", "/v1.0/users/{user}/calendar", self._get_calendar)
        self.add_route("POST", "/v1.0/users/{user}/calendar/" + GET_SCHEDULE_SEGMENT, self._get_schedule)
        for events in ("/v1.0/users/{user}/events", "/v1.0/users/{user}/calendar/events"):
            self.add_route("POST", events, self._create_event)
            self.add_route("GET", events, self._list_events)
            self.add_route("GET", events + "/{event_id}", self._get_event)
            self.add_route("PATCH", events + "/{event_id}", self._update_event)
            self.add_route("DELETE", events + "/{event_id}", self._delete_event)
            self.add_route("POST", events + "/{event_id}/cancel", self._cancel_event)
        for view in ("/v1.0/users/{user}/calendarView", "/v1.0/users/{user}/calendar/calendarView"):
            self.add_route("GET", view, self._calendar_view)
        meetings = "/v1.0/users/{user}/onlineMeetings"
        self.add_route("POST", meetings, self._create_online_meeting)
        self.add_route("POST", meetings + "/createOrGet", self._create_or_get_online_meeting)
        self.add_route("GET", meetings, self._find_online_meetings)
        self.add_route("GET", meetings + "/{meeting_id}", self._get_online_meeting)
        self.add_route("DELETE", meetings + "/{meeting_id}", self._delete_online_meeting)
        me_paths = [
            "/v1.0/me",
            "/v1.0/me/{a}",
            "/v1.0/me/{a}/{b}",
            "/v1.0/me/{a}/{b}/{c}",
            "/v1.0/me/{a}/{b}/{c}/{d}",
        ]
        for path in me_paths:
            for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
                self.add_route(method, path, self._me)

    # ---- the request pipeline hooks

    def handle(self, request: Request) -> Response:
        if request.path.startswith(ADMIN_PREFIX):
            return super().handle(request)
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or request_id
        self._current.ids = (request_id, client_request_id)
        self._current.token_path = TOKEN_PATH.match(request.path) is not None
        scope = self._concurrency_scope(request)
        if scope is not None and not self._enter_flight(scope):
            response = self._concurrency_throttled()
            self._log(request, response.status, time.perf_counter(), None)
        else:
            try:
                response = super().handle(request)
            finally:
                if scope is not None:
                    self._leave_flight(scope)
        if not self._current.token_path:
            response.headers.setdefault("request-id", request_id)
            response.headers.setdefault("client-request-id", client_request_id)
        if response.status < 400 and OUTLOOK_PATH.match(request.path) and _preferences(request).immutable_id:
            # Ids here never change (see the module docstring), so the preference is always honoured.
            applied = response.headers.get("Preference-Applied")
            preference = 'IdType="ImmutableId"'
            response.headers["Preference-Applied"] = f"{applied}, {preference}" if applied else preference
        return response

    # ---- Outlook's concurrency limit

    def _concurrency_scope(self, request: Request) -> str | None:
        """The app|mailbox a request counts against, or None when no concurrency limit applies to it."""
        if not self.rate_limits_enabled or self.concurrent_requests_per_mailbox <= 0:
            return None
        found = OUTLOOK_PATH.match(request.path)
        if found is None:
            return None
        try:
            claims = self.tokens.verify(request.headers.get("Authorization"), self.clock.now())
        except TokenRejected:
            return None  # answered 401 by the route; Outlook never sees it
        reference = found.group("user")
        with self.lock:  # a seed may be adding users
            user = self._find_user(reference)
        return f"{claims.app_id}|{user.id if user else reference.lower()}"

    def _enter_flight(self, scope: str) -> bool:
        with self._flight_lock:
            current = self._in_flight.get(scope, 0)
            if current >= self.concurrent_requests_per_mailbox:
                return False
            self._in_flight[scope] = current + 1
            self.peak_in_flight[scope] = max(self.peak_in_flight.get(scope, 0), current + 1)
            return True

    def _leave_flight(self, scope: str) -> None:
        with self._flight_lock:
            left = self._in_flight.get(scope, 1) - 1
            if left > 0:
                self._in_flight[scope] = left
            else:
                self._in_flight.pop(scope, None)

    def _concurrency_throttled(self) -> Response:
        # The code and message are what clients report from Outlook (*unverified*: Microsoft documents
        # the limit, not the body).
        response = self._graph_error(
            429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."
        )
        response.headers["Retry-After"] = self._retry_after(self.concurrency_retry_after_seconds)
        return response

    def _retry_after(self, seconds: float) -> str:
        """Retry-After as whole seconds (RFC 9110), or with fractional digits when configured: Graph's
        throttling docs show values like ``2.128``, so clients must parse both."""
        if self.retry_after_fractional:
            text = f"{max(0.001, seconds):.3f}".rstrip("0")
            return text + "0" if text.endswith(".") else text
        return str(max(1, math.ceil(seconds)))

    def authenticate(self, request: Request) -> TokenClaims:
        try:
            return self.tokens.verify(request.headers.get("Authorization"), self.clock.now())
        except TokenRejected as rejected:
            response = self._graph_error(401, "InvalidAuthenticationToken", rejected.message)
            response.headers["WWW-Authenticate"] = (
                'Bearer realm="", '
                'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                'client_id="00000003-0000-0000-c000-000000000000"'
            )
            raise HttpError(response) from None

    def rate_limits(self, request: Request) -> list[RateLimit]:
        claims = request.principal
        user_ref = request.path_params.get("user")
        segments = request.path.split("/")
        # Outlook's per-mailbox limits cover the calendar workload, not the directory or Teams.
        outlook = len(segments) > 4 and segments[4] in OUTLOOK_SEGMENTS
        if not isinstance(claims, TokenClaims) or user_ref is None or not outlook:
            return []
        user = self._find_user(user_ref)
        scope = f"{claims.app_id}|{user.id if user else user_ref.lower()}"
        limits = [RateLimit(scope, self.requests_per_10_minutes, 600.0, "outlook-10-minutes")]
        if self.burst_per_second > 0:
            limits.append(RateLimit(scope, self.burst_per_second, 1.0, "burst-per-second"))
        return limits

    def rate_limited_response(self, request: Request, decision: RateDecision) -> Response:
        # An injected 429 fault has no window to wait for; it asks for fault_retry_after_seconds.
        wait = decision.retry_after if decision.limit is not None else self.fault_retry_after_seconds
        retry_after = self._retry_after(wait)
        if self.throttle_error_code == "TooManyRequests":
            request_id, _ = self._ids()
            body: dict[str, Any] = {
                "error": {
                    "code": "TooManyRequests",
                    "innerError": {
                        "code": "429",
                        "date": format_error_date(self.clock.now()),
                        "message": "Please retry after",
                        "request-id": request_id,
                        "status": "429",
                    },
                    "message": "Please retry again later.",
                }
            }
            response = Response(429, body, content_type=GRAPH_CONTENT_TYPE)
        elif self.throttle_error_code == "ApplicationThrottled":
            response = self._graph_error(
                429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit."
            )
        else:
            response = self._graph_error(
                429,
                "activityLimitReached",
                "The app or user has been throttled.",
                inner_code="throttledRequest",
            )
        response.headers["Retry-After"] = retry_after
        return response

    def error_response(self, status: int, message: str) -> Response:
        if getattr(self._current, "token_path", False):
            error = "temporarily_unavailable" if status == 503 else "server_error"
            if status in (500, 503):
                return entra_error(
                    status,
                    error,
                    90033,
                    "A transient error has occurred. Please try again.",
                    self.clock.now(),
                ).response
            if status == 405:
                return entra_error(
                    405,
                    "invalid_request",
                    900561,
                    "The endpoint only accepts POST requests.",
                    self.clock.now(),
                ).response
            return entra_error(status, "invalid_request", 900144, message, self.clock.now()).response
        codes = {
            400: ("BadRequest", message),
            401: ("InvalidAuthenticationToken", message),
            403: ("Forbidden", message),
            404: ("ResourceNotFound", message),
            405: ("BadRequest", message),
            500: ("generalException", "An unspecified error has occurred."),
            503: (
                "serviceNotAvailable",
                "The service is temporarily unavailable for maintenance or is overloaded. "
                "You may repeat the request after a delay, which may be specified in a Retry-After header.",
            ),
        }
        code, text = codes.get(status, ("UnknownError", message))
        return self._graph_error(status, code, text)

    def not_found(self, request: Request) -> Response:
        segments = [segment for segment in request.path.split("/") if segment]
        if not segments or segments[0] != "v1.0":
            version = segments[0] if segments else ""
            return self._graph_error(400, "BadRequest", f"Invalid version: {version}")
        return self._graph_error(400, "BadRequest", f"Resource not found for the segment '{segments[-1]}'.")

    # ---- state

    def reset_state(self) -> None:
        # Vendor options return to Graph's defaults too, so each test starts from the real limits.
        self.requests_per_10_minutes = 10_000
        self.burst_per_second = 40
        self.throttle_error_code = "TooManyRequests"
        self.concurrent_requests_per_mailbox = OUTLOOK_CONCURRENT_REQUESTS
        self.concurrency_retry_after_seconds = 1.0
        self.retry_after_fractional = False
        self.fault_retry_after_seconds = 1.0
        self.schedule_max_mailboxes = MAX_SCHEDULES
        self.schedule_max_days = MAX_WINDOW_DAYS
        self.availability_working_elsewhere_digit = "4"
        with self._flight_lock:
            self.peak_in_flight = {}
        self.tokens.lifetime_seconds = TOKEN_LIFETIME_SECONDS
        self.users = {user.id: user for user in _demo_users()}
        self.apps = {app.client_id.lower(): app for app in _demo_apps()}
        self.mailboxes = {user.id: {} for user in self.users.values() if user.has_mailbox}
        self.transactions = {}
        self.meetings = {}
        self.deleted_items = {user_id: [] for user_id in self.mailboxes}
        self.online_meetings = {user.id: {} for user in self.users.values()}
        self.outbox = []

    def seed(self, body: JsonBody) -> JsonBody:
        if not isinstance(body, Mapping):
            raise ValueError("seed body must be a JSON object")
        created: dict[str, list[str]] = {"users": [], "apps": [], "events": []}
        for item in body.get("users", []):
            user = self._seed_user(item)
            created["users"].append(user.id)
        for item in body.get("apps", []):
            app = AppRegistration(
                client_id=str(item["clientId"]),
                client_secret=str(item["clientSecret"]),
                display_name=str(item.get("displayName", item["clientId"])),
                roles=tuple(str(role) for role in item.get("roles", [])),
                mailbox_roles=tuple(
                    (str(grant["role"]), frozenset(str(name).lower() for name in grant["mailboxes"]))
                    for grant in item.get("exchangeRoleAssignments", [])
                ),
            )
            self.apps[app.client_id.lower()] = app
            created["apps"].append(app.client_id)
        for item in body.get("events", []):
            owner = self._find_user(str(item["user"]))
            if owner is None or not owner.has_mailbox:
                raise ValueError(f"seed event for unknown mailbox {item['user']!r}")
            try:
                event, _ = self._insert_event(owner, item["event"])
            except GraphProblem as problem:
                raise ValueError(f"seed event rejected: {problem.code}: {problem.message}") from None
            created["events"].append(event.id)
        return created

    def _seed_user(self, item: Mapping[str, Any]) -> TenantUser:
        upn = str(item["userPrincipalName"])
        user = TenantUser(
            id=str(item.get("id") or uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            user_principal_name=upn,
            mail=str(item.get("mail") or upn),
            display_name=str(item.get("displayName") or upn.split("@")[0]),
            given_name=item.get("givenName"),
            surname=item.get("surname"),
            job_title=item.get("jobTitle"),
            has_mailbox=bool(item.get("hasMailbox", True)),
            time_zone=str(item.get("timeZone") or "Pacific Standard Time"),
            **_online_meeting_settings(item),
        )
        resolve_zone(user.time_zone)  # an unknown zone is the seed's mistake, said at once
        if self._find_user(user.user_principal_name) or self._find_user(user.id):
            raise ValueError(f"user {upn!r} already exists")
        self.users[user.id] = user
        if user.has_mailbox:
            self.mailboxes[user.id] = {}
            self.deleted_items[user.id] = []
        self.online_meetings[user.id] = {}
        return user

    def dump_state(self) -> JsonBody:
        return {
            "tenant": {
                "id": DEMO_TENANT_ID,
                "domain": DEMO_TENANT_DOMAIN,
                "verifiedDomains": [DEMO_TENANT_DOMAIN, DEMO_COMPANY_DOMAIN],
            },
            "users": [
                user.resource()
                | {
                    "hasMailbox": user.has_mailbox,
                    "allowedOnlineMeetingProviders": list(user.allowed_online_meeting_providers),
                    "defaultOnlineMeetingProvider": user.online_meeting_default,
                    "timeZone": user.time_zone,
                }
                for user in self.users.values()
            ],
            "apps": [app.describe() for app in self.apps.values()],
            "mailboxes": {
                self.users[user_id].user_principal_name: [render_event(event) for event in events.values()]
                for user_id, events in self.mailboxes.items()
            },
            "deletedItems": {
                self.users[user_id].user_principal_name: list(ids)
                for user_id, ids in self.deleted_items.items()
            },
            "onlineMeetings": {
                self.users[user_id].user_principal_name: [
                    render_online_meeting(meeting, self.users[user_id], DEMO_TENANT_ID)
                    for meeting in meetings.values()
                ]
                for user_id, meetings in self.online_meetings.items()
                if meetings
            },
            "outbox": [dict(message) for message in self.outbox],
            "concurrency": self._concurrency_state(),
        }

    def _concurrency_state(self) -> dict[str, Any]:
        """Requests in flight and the peak, per ``<app id>|<mailbox UPN>`` (the user id when unknown)."""

        def named(scope: str) -> str:
            app_id, _, user_id = scope.partition("|")
            user = self.users.get(user_id)
            return f"{app_id}|{user.user_principal_name if user else user_id}"

        with self._flight_lock:
            return {
                "inFlight": {named(scope): count for scope, count in self._in_flight.items()},
                "peak": {named(scope): count for scope, count in self.peak_in_flight.items()},
            }

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "requests_per_10_minutes": self.requests_per_10_minutes,
            "burst_per_second": self.burst_per_second,
            "token_lifetime_seconds": self.tokens.lifetime_seconds,
            "throttle_error_code": self.throttle_error_code,
            "concurrent_requests_per_mailbox": self.concurrent_requests_per_mailbox,
            "concurrency_retry_after_seconds": self.concurrency_retry_after_seconds,
            "retry_after_fractional": self.retry_after_fractional,
            "fault_retry_after_seconds": self.fault_retry_after_seconds,
            "schedule_max_mailboxes": self.schedule_max_mailboxes,
            "schedule_max_days": self.schedule_max_days,
            "availability_working_elsewhere_digit": self.availability_working_elsewhere_digit,
        }

    def update_config(self, changes: Mapping[str, Any]) -> None:
        if "requests_per_10_minutes" in changes:
            self.requests_per_10_minutes = _positive_int(
                "requests_per_10_minutes", changes["requests_per_10_minutes"]
            )
        if "burst_per_second" in changes:
            value = int(changes["burst_per_second"])
            if value < 0:
                raise ValueError("burst_per_second must be 0 (off) or a positive integer")
            self.burst_per_second = value
        if "token_lifetime_seconds" in changes:
            self.tokens.lifetime_seconds = _positive_int(
                "token_lifetime_seconds", changes["token_lifetime_seconds"]
            )
        if "throttle_error_code" in changes:
            if changes["throttle_error_code"] not in THROTTLE_CODES:
                raise ValueError(f"throttle_error_code must be one of {', '.join(THROTTLE_CODES)}")
            self.throttle_error_code = str(changes["throttle_error_code"])
        if "concurrent_requests_per_mailbox" in changes:
            value = int(changes["concurrent_requests_per_mailbox"])
            if value < 0:
                raise ValueError("concurrent_requests_per_mailbox must be 0 (off) or a positive integer")
            self.concurrent_requests_per_mailbox = value
        if "concurrency_retry_after_seconds" in changes:
            self.concurrency_retry_after_seconds = _positive_seconds(
                "concurrency_retry_after_seconds", changes["concurrency_retry_after_seconds"]
            )
        if "fault_retry_after_seconds" in changes:
            self.fault_retry_after_seconds = _positive_seconds(
                "fault_retry_after_seconds", changes["fault_retry_after_seconds"]
            )
        if "retry_after_fractional" in changes:
            if not isinstance(changes["retry_after_fractional"], bool):
                raise ValueError("retry_after_fractional must be true or false")
            self.retry_after_fractional = changes["retry_after_fractional"]
        if "schedule_max_mailboxes" in changes:
            self.schedule_max_mailboxes = _positive_int(
                "schedule_max_mailboxes", changes["schedule_max_mailboxes"]
            )
        if "schedule_max_days" in changes:
            self.schedule_max_days = _positive_int("schedule_max_days", changes["schedule_max_days"])
        if "availability_working_elsewhere_digit" in changes:
            digit = str(changes["availability_working_elsewhere_digit"])
            if digit not in WORKING_ELSEWHERE_DIGITS:
                raise ValueError('availability_working_elsewhere_digit must be "4" or "0"')
            self.availability_working_elsewhere_digit = digit
        super().update_config(changes)

    # ---- vendor admin actions: an app's client secret

    def admin_action(self, method: str, action: str, body: Any, request: Request) -> Response | None:
        if method == "POST" and action == "mailboxes/online-meetings":
            return self._set_online_meeting_providers(body)
        actions = {
            "apps/rotate-secret": self._rotate_secret,
            "apps/revoke-secret": self._revoke_secret,
            "apps/expire-secret": self._expire_secret,
        }
        if method != "POST" or action not in actions:
            return None
        if not isinstance(body, Mapping):
            raise ValueError("body must be a JSON object")
        client_id = str(body.get("clientId") or DEMO_CLIENT_ID)
        with self.lock:
            app = self.apps.get(client_id.lower())
            if app is None:
                raise ValueError(f"unknown app {client_id!r}")
            return actions[action](app, body)

    def _set_online_meeting_providers(self, body: Any) -> Response:
        """``{"user": "<UPN, address or id>", "allowedOnlineMeetingProviders": [...],
        "defaultOnlineMeetingProvider"?}``: what the user's calendar offers from now on (an administrator
        removing the Teams licence, or giving it back)."""
        if not isinstance(body, Mapping) or not isinstance(body.get("user"), str):
            raise ValueError('body must be {"user": "<UPN or id>", "allowedOnlineMeetingProviders": [...]}')
        if "allowedOnlineMeetingProviders" not in body:
            raise ValueError("allowedOnlineMeetingProviders is required")
        with self.lock:
            user = self._find_user(body["user"]) or self._find_user_by_address(body["user"])
            if user is None or not user.has_mailbox:
                raise ValueError(f"no mailbox {body['user']!r} in the tenant")
            updated = replace(user, **_online_meeting_settings(body))
            self.users[user.id] = updated
            return Response(
                200,
                {
                    "user": updated.user_principal_name,
                    "allowedOnlineMeetingProviders": list(updated.allowed_online_meeting_providers),
                    "defaultOnlineMeetingProvider": updated.online_meeting_default,
                },
            )

    def _rotate_secret(self, app: AppRegistration, body: Mapping[str, Any]) -> Response:
        """An administrator adds a new client secret and deletes the old one: only the new one works."""
        secret = str(body.get("clientSecret") or f"{uuid.UUID(int=self._rng.getrandbits(128)).hex}~rotated")
        self.apps[app.client_id.lower()] = replace(app, client_secret=secret, secret_state=SECRET_ACTIVE)
        # The sandbox hands the new value out, as the portal shows it once; a real secret never leaves it.
        return Response(200, {"clientId": app.client_id, "clientSecret": secret})

    def _revoke_secret(self, app: AppRegistration, body: Mapping[str, Any]) -> Response:
        """The app's secret is deleted from its registration: every token request is refused
        (401 invalid_client AADSTS7000215) until a new secret is rotated in."""
        self.apps[app.client_id.lower()] = replace(app, secret_state=SECRET_REVOKED)
        return Response(200, self.apps[app.client_id.lower()].describe())

    def _expire_secret(self, app: AppRegistration, body: Mapping[str, Any]) -> Response:
        """The app's secret passed its end date (401 invalid_client AADSTS7000222)."""
        self.apps[app.client_id.lower()] = replace(app, secret_state=SECRET_EXPIRED)
        return Response(200, self.apps[app.client_id.lower()].describe())

    # ---- helpers: errors, bodies, lookups

    def _ids(self) -> tuple[str, str]:
        ids = getattr(self._current, "ids", None)
        if ids is None:
            request_id = str(uuid.uuid4())
            return request_id, request_id
        return (str(ids[0]), str(ids[1]))

    def _graph_error(self, status: int, code: str, message: str, inner_code: str | None = None) -> Response:
        request_id, client_request_id = self._ids()
        inner: dict[str, Any] = {}
        if inner_code:
            inner["code"] = inner_code
        inner.update(
            {
                "date": format_error_date(self.clock.now()),
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        )
        return Response(
            status,
            {"error": {"code": code, "message": message, "innerError": inner}},
            content_type=GRAPH_CONTENT_TYPE,
        )

    def _problem(self, problem: GraphProblem) -> HttpError:
        return HttpError(self._graph_error(problem.status, problem.code, problem.message))

    def _json_body(self, request: Request, *, allow_empty: bool = False) -> Any:
        if not request.body.strip():
            if allow_empty:
                return {}
            raise self._problem(GraphProblem(400, "BadRequest", "Empty Payload. JSON content expected."))
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise self._problem(
                GraphProblem(
                    400,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is set and "
                    "payload is of valid JSON format.",
                )
            ) from None

    def _find_user(self, reference: str) -> TenantUser | None:
        """The tenant user with this object id or user principal name."""
        return self._user_named(reference, lambda user: (user.id, user.user_principal_name))

    def _find_user_by_address(self, address: str) -> TenantUser | None:
        """The tenant user with this mail address or user principal name."""
        return self._user_named(address, lambda user: (user.mail, user.user_principal_name))

    def _user_named(self, name: str, names_of: Callable[[TenantUser], tuple[str, ...]]) -> TenantUser | None:
        # Graph matches ids, user principal names and addresses whatever their case.
        lowered = name.lower()
        return next(
            (user for user in self.users.values() if any(n.lower() == lowered for n in names_of(user))), None
        )

    def _require_role(self, request: Request, any_of: tuple[str, ...], code: str, message: str) -> None:
        claims: TokenClaims = request.principal
        if not set(any_of) & set(claims.roles):
            raise self._problem(GraphProblem(403, code, message))

    def _mailbox(self, request: Request, *, write: bool, roles: tuple[str, ...] | None = None) -> TenantUser:
        if roles is None:
            roles = (ROLE_CALENDARS_READWRITE,) if write else (ROLE_CALENDARS_READ, ROLE_CALENDARS_READWRITE)
        reference = request.path_params["user"]
        user = self._find_user(reference)
        claims: TokenClaims = request.principal
        app = self.apps.get(claims.app_id.lower())
        names = (reference, *((user.id, user.user_principal_name, user.mail or "") if user else ()))
        scoped = app.scoped_roles(names) if app is not None else ()
        if not set(roles) & (set(claims.roles) | set(scoped)):
            # Neither the Entra app role (every mailbox) nor an Exchange RBAC grant whose scope holds it.
            raise self._problem(
                GraphProblem(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            )
        if user is None:
            raise self._problem(
                GraphProblem(404, "ErrorInvalidUser", f"The requested user '{reference}' is invalid.")
            )
        if not user.has_mailbox:
            raise self._problem(
                GraphProblem(
                    404,
                    "MailboxNotEnabledForRESTAPI",
                    "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                )
            )
        return user

    def _event(self, user: TenantUser, event_id: str) -> StoredEvent:
        if not EVENT_ID.match(event_id):
            raise self._problem(GraphProblem(400, "ErrorInvalidIdMalformed", "Id is malformed."))
        event = self.mailboxes[user.id].get(event_id)
        if event is None:
            raise self._problem(
                GraphProblem(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            )
        return event

    def _context(self, request: Request, suffix: str) -> str:
        return f"{self.base_url}/v1.0/$metadata#users('{request.path_params['user']}')/{suffix}"

    def _new_event_id(self) -> str:
        raw = base64.urlsafe_b64encode(self._rng.getrandbits(8 * 105).to_bytes(105, "big")).decode()
        return "AAMkAG" + raw.rstrip("=") + "AAA="

    def _new_change_key(self) -> str:
        return base64.b64encode(self._rng.getrandbits(8 * 22).to_bytes(22, "big")).decode()

    def _new_ical_uid(self) -> str:
        return "040000008200E00074C5B7101A82E00800000000" + f"{self._rng.getrandbits(288):072X}"

    def _check_if_match(self, request: Request, event: StoredEvent) -> None:
        expected = request.headers.get("If-Match")
        if expected is None or expected.strip() == "*":
            return
        candidates = {value.strip() for value in expected.split(",")}
        if event.etag not in candidates and f'"{event.change_key}"' not in candidates:
            raise self._problem(
                GraphProblem(
                    412,
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the change key passed in "
                    "the request does not match the current change key for the item.",
                )
            )

    def _respond_event(
        self, request: Request, event: StoredEvent, status: int, *, select: list[str] | None = None
    ) -> Response:
        preferences = _preferences(request)
        suffix = "events" if "/calendar/" not in request.path else "calendar/events"
        if select:
            suffix += "(" + ",".join(select) + ")"
        resource = {
            "@odata.context": self._context(request, f"{suffix}/$entity"),
            **render_event(
                event,
                time_zone=preferences.time_zone,
                body_as_text=preferences.body_as_text,
                select=select,
            ),
        }
        return Response(status, resource, preferences.applied(), content_type=GRAPH_CONTENT_TYPE)

    # ---- tokens

    def _token(self, request: Request) -> Response:
        return self.tokens.client_credentials(
            request, request.path_params["tenant"], self.apps, self.clock.now()
        )

    def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if not self.tokens.knows_tenant(tenant):
            raise entra_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.", self.clock.now())
        root = f"{self.base_url}/{DEMO_TENANT_ID}"
        body = {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{self.base_url}/{DEMO_TENANT_ID}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
        }
        return Response(200, body, content_type="application/json; charset=utf-8")

    # ---- users

    def _list_users(self, request: Request) -> Response:
        self._require_role(
            request,
            (ROLE_USERS_READ,),
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        users = list(self.users.values())
        try:
            filter_text = request.arg("$filter")
            if filter_text is not None:
                predicate = parse_filter(filter_text, USER_SCHEMA)
                users = [user for user in users if predicate(user)]
            select = parse_select(request.arg("$select") or "", USER_SCHEMA)
            top = parse_non_negative("$top", request.arg("$top"))
            skip = parse_non_negative("$skip", request.arg("$skip")) or 0
        except QueryError as error:
            raise self._problem(GraphProblem(400, error.code, error.message)) from None
        page_size = min(top if top is not None else 100, MAX_USER_PAGE)
        page = users[skip : skip + page_size]
        context = f"{self.base_url}/v1.0/$metadata#users" + (f"({','.join(select)})" if select else "")
        body: dict[str, Any] = {
            "@odata.context": context,
            "value": [self._user_resource(u, select) for u in page],
        }
        if skip + page_size < len(users):
            body["@odata.nextLink"] = self._next_link(request, skip + page_size)
        return Response(200, body, content_type=GRAPH_CONTENT_TYPE)

    def _user_resource(self, user: TenantUser, select: list[str]) -> dict[str, Any]:
        resource = user.resource()
        return {name: resource.get(name) for name in select} if select else resource

    def _get_user(self, request: Request) -> Response:
        self._require_role(
            request,
            (ROLE_USERS_READ,),
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        reference = request.path_params["user"]
        user = self._find_user(reference)
        if user is None:
            raise self._problem(
                GraphProblem(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{reference}' does not exist or one of its queried reference-property objects "
                    "are not present.",
                )
            )
        try:
            select = parse_select(request.arg("$select") or "", USER_SCHEMA)
        except QueryError as error:
            raise self._problem(GraphProblem(400, error.code, error.message)) from None
        body = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#users/$entity",
            **self._user_resource(user, select),
        }
        return Response(200, body, content_type=GRAPH_CONTENT_TYPE)

    def _get_calendar(self, request: Request) -> Response:
        user = self._mailbox(request, write=False)
        body = {
            "@odata.context": self._context(request, "calendar/$entity"),
            "id": "AAMkAGCal" + base64.urlsafe_b64encode(user.id.encode()).decode(),
            "name": "Calendar",
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": True,
            "changeKey": "nfZyf7VcrEKLNoU37KWlkQAAA0x0+w==",
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": list(user.allowed_online_meeting_providers),
            "defaultOnlineMeetingProvider": user.online_meeting_default,
            "isTallyingResponses": True,
            "isRemovable": False,
            "owner": {"name": user.display_name, "address": user.mail},
        }
        return Response(200, body, content_type=GRAPH_CONTENT_TYPE)

    def _get_schedule(self, request: Request) -> Response:
        """``calendar: getSchedule`` (see ``schedule.py``): one scheduleInformation per address asked for,
        in the order asked; times in the Prefer outlook.timezone zone, else UTC."""
        self._mailbox(request, write=False, roles=SCHEDULE_ROLES)
        body = self._json_body(request)
        try:
            wanted = parse_schedule_request(
                body, max_schedules=self.schedule_max_mailboxes, max_days=self.schedule_max_days
            )
        except GraphProblem as problem:
            raise self._problem(problem) from None
        preferences = _preferences(request)
        value = []
        for address in wanted.schedules:
            user = self._find_user_by_address(address)
            events = self.mailboxes.get(user.id, {}).values() if user is not None else ()
            value.append(
                schedule_information(
                    address,
                    user,
                    events,
                    wanted,
                    zone=preferences.time_zone or "UTC",
                    working_elsewhere_digit=self.availability_working_elsewhere_digit,
                )
            )
        answer = {"@odata.context": f"{self.base_url}/v1.0/{SCHEDULE_INFORMATION_CONTEXT}", "value": value}
        return Response(200, answer, preferences.applied(), content_type=GRAPH_CONTENT_TYPE)

    def _me(self, request: Request) -> Response:
        raise self._problem(
            GraphProblem(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        )

    # ---- events: create

    def _create_event(self, request: Request) -> Response:
        user = self._mailbox(request, write=True)
        body = self._json_body(request)
        try:
            event, _ = self._insert_event(user, body)
        except GraphProblem as problem:
            raise self._problem(problem) from None
        return self._respond_event(request, event, 201)

    def _insert_event(self, user: TenantUser, body: Any) -> tuple[StoredEvent, bool]:
        """Create an event in ``user``'s calendar; returns (event, created). A repeated
        transactionId returns the event it created first."""
        changes = parse_event_changes(body, creating=True)
        transaction_id = changes.get("transaction_id")
        if transaction_id:
            existing_id = self.transactions.get((user.id, transaction_id))
            if existing_id is not None and existing_id in self.mailboxes[user.id]:
                return self.mailboxes[user.id][existing_id], False
        now = self.clock.now()
        event = StoredEvent(
            id=self._new_event_id(),
            mailbox_id=user.id,
            ical_uid=self._new_ical_uid(),
            change_key=self._new_change_key(),
            created=now,
            last_modified=now,
            start=changes["start"],
            end=changes["end"],
            organizer=user.email_address(),
            location=empty_location(),
        )
        apply_changes(event, changes)
        check_times(event.start, event.end, event.is_all_day)
        self._make_online_if_asked(event, user, changes)
        self.mailboxes[user.id][event.id] = event
        if transaction_id:
            self.transactions[(user.id, transaction_id)] = event.id
        self.meetings[event.ical_uid] = {user.id: event.id}
        self._sync_attendee_copies(event, previous_attendees=[])
        return event, True

    def _make_online_if_asked(
        self, event: StoredEvent, organizer: TenantUser, changes: dict[str, Any]
    ) -> None:
        """Graph initialises onlineMeeting once isOnlineMeeting or the provider is set; then it stays.

        Only a calendar that allows teamsForBusiness gets a Teams meeting; on one that does not, the
        event is created (201) offline, provider ``unknown``, ``onlineMeeting`` null: the silent failure
        reported for organizers who cannot host Teams (api-notes-flows.md §2.2). Invitations go out
        either way. An unset provider means the calendar's default one."""
        if event.online_meeting is not None:
            event.is_online_meeting, event.online_meeting_provider = True, "teamsForBusiness"
            return
        provider = changes.get("online_meeting_provider", event.online_meeting_provider)
        asked = changes.get("is_online_meeting") is True or provider == "teamsForBusiness"
        if asked and provider == "unknown":
            provider = organizer.online_meeting_default
        if not asked or provider != "teamsForBusiness" or not organizer.allows_teams:
            event.is_online_meeting, event.online_meeting_provider = False, "unknown"
            return
        info = event_online_meeting(self._rng, DEMO_TENANT_ID, organizer)
        event.is_online_meeting, event.online_meeting_provider, event.online_meeting = (
            True,
            "teamsForBusiness",
            info,
        )
        block = teams_join_html(info["joinUrl"], info["conferenceId"])
        if event.body_type == "html":
            if "</body>" in event.body_content:
                event.body_content = event.body_content.replace("</body>", block + "\r\n</body>", 1)
            else:
                event.body_content += block
        else:
            event.body_content += (
                f"\r\n\r\nMicrosoft Teams meeting\r\nJoin the meeting now: {info['joinUrl']}\r\n"
                f"Meeting ID: {info['conferenceId']}"
            )

    # ---- events: attendee copies

    def _sync_attendee_copies(
        self, organizer_event: StoredEvent, previous_attendees: list[dict[str, Any]]
    ) -> None:
        """Give tenant attendees their copy; carry the organizer's changes; cancel removed ones."""
        copies = self.meetings.setdefault(
            organizer_event.ical_uid, {organizer_event.mailbox_id: organizer_event.id}
        )
        now = self.clock.now()
        wanted: dict[str, TenantUser] = {}
        for attendee in organizer_event.attendees:
            user = self._find_user_by_address(attendee["emailAddress"]["address"])
            if user is not None and user.has_mailbox and user.id != organizer_event.mailbox_id:
                wanted[user.id] = user
        previous = {a["emailAddress"]["address"].lower() for a in previous_attendees}
        for attendee in organizer_event.attendees:
            if attendee["emailAddress"]["address"].lower() not in previous:
                self._send("meetingRequest", organizer_event, [attendee["emailAddress"]["address"]])
        for user_id in wanted:
            copy_id = copies.get(user_id)
            copy = self.mailboxes[user_id].get(copy_id) if copy_id else None
            if copy is None:
                copy = copy_for_attendee(
                    organizer_event, user_id, self._new_event_id(), self._new_change_key(), now
                )
                self.mailboxes[user_id][copy.id] = copy
                copies[user_id] = copy.id
            elif copy is not organizer_event:
                for attribute in MEETING_FIELDS:
                    value = getattr(organizer_event, attribute)
                    setattr(copy, attribute, _clone(value))
                copy.is_cancelled = False
                copy.change_key, copy.last_modified = self._new_change_key(), now
        for user_id, copy_id in list(copies.items()):
            if user_id == organizer_event.mailbox_id or user_id in wanted:
                continue
            copy = self.mailboxes.get(user_id, {}).get(copy_id)
            if copy is not None and not copy.is_cancelled:
                self._cancel_copy(copy, now)
                self._send("meetingCancellation", organizer_event, [self.users[user_id].mail])

    def _cancel_copy(self, copy: StoredEvent, now: datetime) -> None:
        copy.is_cancelled = True
        if not copy.subject.startswith("Canceled: "):
            copy.subject = "Canceled: " + copy.subject
        copy.change_key, copy.last_modified = self._new_change_key(), now

    def _send(self, kind: str, event: StoredEvent, recipients: list[str], comment: str | None = None) -> None:
        if not recipients:
            return
        message: dict[str, Any] = {
            "type": kind,
            "from": event.organizer.get("address"),
            "to": recipients,
            "subject": event.subject,
            "iCalUId": event.ical_uid,
            "sentDateTime": format_timestamp(self.clock.now()),
        }
        if comment is not None:
            message["comment"] = comment
        self.outbox.append(message)

    def _leave_calendar(self, event: StoredEvent, *, to_deleted_items: bool) -> None:
        """Take the event out of its calendar, freeing its transactionId."""
        del self.mailboxes[event.mailbox_id][event.id]
        if to_deleted_items:
            self.deleted_items[event.mailbox_id].append(event.id)
        if event.transaction_id:
            self.transactions.pop((event.mailbox_id, event.transaction_id), None)
        copies = self.meetings.get(event.ical_uid, {})
        if copies.get(event.mailbox_id) == event.id:
            del copies[event.mailbox_id]

    def _cancel_meeting(self, event: StoredEvent, comment: str | None) -> None:
        """The organizer's event leaves the calendar; every attendee copy is marked cancelled."""
        now = self.clock.now()
        recipients = [a["emailAddress"]["address"] for a in event.attendees]
        for user_id, copy_id in self.meetings.get(event.ical_uid, {}).items():
            if user_id == event.mailbox_id:
                continue
            copy = self.mailboxes.get(user_id, {}).get(copy_id)
            if copy is not None and not copy.is_cancelled:
                self._cancel_copy(copy, now)
        self._send("meetingCancellation", event, recipients, comment)

    # ---- events: read, list, calendarView

    def _get_event(self, request: Request) -> Response:
        user = self._mailbox(request, write=False)
        event = self._event(user, request.path_params["event_id"])
        try:
            select = parse_select(request.arg("$select") or "", EVENT_SCHEMA)
        except QueryError as error:
            raise self._problem(GraphProblem(400, error.code, error.message)) from None
        return self._respond_event(request, event, 200, select=select or None)

    def _list_events(self, request: Request) -> Response:
        user = self._mailbox(request, write=False)
        suffix = "calendar/events" if "/calendar/" in request.path else "events"
        return self._list(request, list(self.mailboxes[user.id].values()), suffix)

    def _calendar_view(self, request: Request) -> Response:
        user = self._mailbox(request, write=False)
        start_text, end_text = request.arg("startDateTime"), request.arg("endDateTime")
        if not start_text or not end_text:
            raise self._problem(
                GraphProblem(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string parameters "
                    "StartDateTime and EndDateTime.",
                )
            )
        try:
            window_start, window_end = parse_instant(start_text), parse_instant(end_text)
        except TimeValueError:
            raise self._problem(
                GraphProblem(
                    400, "ErrorInvalidParameter", "The value of StartDateTime or EndDateTime is invalid."
                )
            ) from None
        events = [
            event
            for event in self.mailboxes[user.id].values()
            if (event.start.utc < window_end and event.end.utc > window_start)
            or (event.start.utc == event.end.utc and window_start <= event.start.utc < window_end)
        ]
        events.sort(key=lambda event: event.start.utc)
        suffix = "calendar/calendarView" if "/calendar/" in request.path else "calendarView"
        return self._list(request, events, suffix)

    def _list(self, request: Request, events: list[StoredEvent], suffix: str) -> Response:
        preferences = _preferences(request)
        try:
            filter_text = request.arg("$filter")
            if filter_text is not None:
                predicate = parse_filter(filter_text, EVENT_SCHEMA)
                events = [event for event in events if predicate(event)]
            orderby = request.arg("$orderby")
            if orderby:
                events = sort_entities(events, parse_orderby(orderby, EVENT_SCHEMA))
            select = parse_select(request.arg("$select") or "", EVENT_SCHEMA)
            top = parse_non_negative("$top", request.arg("$top"))
            skip = parse_non_negative("$skip", request.arg("$skip")) or 0
        except QueryError as error:
            raise self._problem(GraphProblem(400, error.code, error.message)) from None
        page_size = min(top if top is not None else preferences.max_page_size or 10, MAX_EVENT_PAGE)
        page = events[skip : skip + page_size]
        context = self._context(request, suffix + (f"({','.join(select)})" if select else ""))
        body: dict[str, Any] = {"@odata.context": context}
        if (request.arg("$count") or "").lower() == "true":
            body["@odata.count"] = len(events)
        body["value"] = [
            render_event(
                event,
                time_zone=preferences.time_zone,
                body_as_text=preferences.body_as_text,
                select=select or None,
            )
            for event in page
        ]
        if skip + page_size < len(events):
            body["@odata.nextLink"] = self._next_link(request, skip + page_size)
        return Response(200, body, preferences.applied(), content_type=GRAPH_CONTENT_TYPE)

    def _next_link(self, request: Request, skip: int) -> str:
        query = [
            (name, value) for name, values in request.query.items() for value in values if name != "$skip"
        ]
        query.append(("$skip", str(skip)))
        return f"{self.base_url}{request.path}?" + urllib.parse.urlencode(
            query, quote_via=urllib.parse.quote, safe="$,()/:'"
        )

    # ---- events: update, delete, cancel

    def _update_event(self, request: Request) -> Response:
        user = self._mailbox(request, write=True)
        event = self._event(user, request.path_params["event_id"])
        self._check_if_match(request, event)
        body = self._json_body(request)
        try:
            changes = parse_event_changes(body, creating=False)
            if "transaction_id" in changes:
                if changes["transaction_id"] != event.transaction_id:
                    raise GraphProblem(
                        400,
                        "ErrorInvalidRequest",
                        "transactionId cannot be changed after the event is created.",
                    )
                del changes["transaction_id"]
            check_times(
                changes.get("start", event.start),
                changes.get("end", event.end),
                changes.get("is_all_day", event.is_all_day),
            )
        except GraphProblem as problem:
            raise self._problem(problem) from None
        if event.online_meeting is not None:  # once online, Outlook ignores changes to these
            changes.pop("is_online_meeting", None)
            changes.pop("online_meeting_provider", None)
        previous_attendees = [dict(a) for a in event.attendees]
        apply_changes(event, changes)
        if event.online_meeting is None and (
            "is_online_meeting" in changes or "online_meeting_provider" in changes
        ):
            self._make_online_if_asked(event, user, changes)
        event.change_key, event.last_modified = self._new_change_key(), self.clock.now()
        if event.is_organizer:
            self._sync_attendee_copies(event, previous_attendees)
        return self._respond_event(request, event, 200)

    def _delete_event(self, request: Request) -> Response:
        user = self._mailbox(request, write=True)
        event = self._event(user, request.path_params["event_id"])
        self._check_if_match(request, event)
        self._leave_calendar(event, to_deleted_items=True)
        if event.is_organizer:
            self._cancel_meeting(event, comment=None)
        return Response(204, None)

    def _cancel_event(self, request: Request) -> Response:
        user = self._mailbox(request, write=True)
        event = self._event(user, request.path_params["event_id"])
        body = self._json_body(request, allow_empty=True)
        if not isinstance(body, dict):
            raise self._problem(GraphProblem(400, "BadRequest", "Empty Payload. JSON content expected."))
        # Graph binds action parameters case-insensitively ("Comment" in Microsoft's own sample).
        comment = next((value for name, value in body.items() if name.lower() == "comment"), None)
        unknown = [name for name in body if name.lower() != "comment"]
        if unknown:
            raise self._problem(
                GraphProblem(
                    400,
                    "BadRequest",
                    f"The parameter '{unknown[0]}' in the request payload is not a valid parameter for "
                    "the operation 'cancel'.",
                )
            )
        if comment is not None and not isinstance(comment, str):
            raise self._problem(
                GraphProblem(
                    400,
                    "UnableToDeserializePostBody",
                    "were unable to deserialize property 'comment': expected String.",
                )
            )
        if not event.is_organizer:
            raise self._problem(
                GraphProblem(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. You need to be an organizer to cancel a meeting.",
                )
            )
        self._check_if_match(request, event)
        self._leave_calendar(event, to_deleted_items=True)
        self._cancel_meeting(event, comment)
        return Response(202, None)

    # ---- onlineMeetings

    def _meeting_organizer(self, request: Request, *, write: bool) -> TenantUser:
        self._require_role(
            request,
            (ROLE_ONLINE_MEETINGS_READWRITE,)
            if write
            else (ROLE_ONLINE_MEETINGS_READWRITE, "OnlineMeetings.Read.All"),
            "Forbidden",
            "Application does not have permission to perform this operation on onlineMeetings.",
        )
        reference = request.path_params["user"]
        user = self.users.get(reference.lower()) if GUID.match(reference) else None
        if user is None:
            raise self._problem(
                GraphProblem(
                    404,
                    "NotFound",
                    f"The user '{reference}' was not found; onlineMeetings addresses a user by object id.",
                )
            )
        return user

    def _meeting_response(self, request: Request, meeting: OnlineMeeting, status: int) -> Response:
        organizer = self.users[meeting.organizer_id]
        body = {
            "@odata.context": self._context(request, "onlineMeetings/$entity"),
            **render_online_meeting(meeting, organizer, DEMO_TENANT_ID),
        }
        return Response(status, body, content_type=GRAPH_CONTENT_TYPE)

    def _new_meeting(self, request: Request, organizer: TenantUser, body: Any) -> OnlineMeeting:
        try:
            fields, attendees = parse_online_meeting(body, self.clock.now(), self._find_user)
        except GraphProblem as problem:
            raise self._problem(problem) from None
        meeting = new_online_meeting(self._rng, organizer, self.clock.now(), fields, attendees)
        self.online_meetings[organizer.id][meeting.id] = meeting
        return meeting

    def _create_online_meeting(self, request: Request) -> Response:
        organizer = self._meeting_organizer(request, write=True)
        meeting = self._new_meeting(request, organizer, self._json_body(request))
        return self._meeting_response(request, meeting, 201)

    def _create_or_get_online_meeting(self, request: Request) -> Response:
        organizer = self._meeting_organizer(request, write=True)
        body = self._json_body(request)
        external_id = body.get("externalId") if isinstance(body, dict) else None
        if not isinstance(external_id, str) or not external_id:
            raise self._problem(GraphProblem(400, "BadRequest", "externalId is required for createOrGet."))
        for meeting in self.online_meetings[organizer.id].values():
            if meeting.external_id == external_id:
                return self._meeting_response(request, meeting, 200)
        meeting = self._new_meeting(request, organizer, body)
        return self._meeting_response(request, meeting, 201)

    def _find_online_meetings(self, request: Request) -> Response:
        organizer = self._meeting_organizer(request, write=False)
        filter_text = request.arg("$filter") or ""
        found = re.fullmatch(
            r"\s*(JoinWebUrl|joinMeetingIdSettings/joinMeetingId|externalId)\s+eq\s+'((?:[^']|'')*)'\s*",
            filter_text,
            re.IGNORECASE,
        )
        if found is None:
            raise self._problem(
                GraphProblem(
                    400,
                    "BadRequest",
                    "Filter expression expected - /onlineMeetings?$filter=JoinWebUrl eq 'joinUrl' or "
                    "joinMeetingIdSettings/joinMeetingId eq 'id'.",
                )
            )
        field_name, wanted = found.group(1).lower(), found.group(2).replace("''", "'")
        matches = []
        for meeting in self.online_meetings[organizer.id].values():
            resource = render_online_meeting(meeting, organizer, DEMO_TENANT_ID)
            value = {
                "joinweburl": resource["joinWebUrl"],
                "joinmeetingidsettings/joinmeetingid": meeting.join_meeting_id,
                "externalid": meeting.external_id,
            }[field_name]
            if value is not None and urllib.parse.unquote(value) == urllib.parse.unquote(wanted):
                matches.append(resource)
        body = {"@odata.context": self._context(request, "onlineMeetings"), "value": matches}
        return Response(200, body, content_type=GRAPH_CONTENT_TYPE)

    def _online_meeting(self, request: Request, organizer: TenantUser) -> OnlineMeeting:
        meeting = self.online_meetings[organizer.id].get(request.path_params["meeting_id"])
        if meeting is None:
            raise self._problem(GraphProblem(404, "NotFound", "The specified onlineMeeting was not found."))
        return meeting

    def _get_online_meeting(self, request: Request) -> Response:
        organizer = self._meeting_organizer(request, write=False)
        return self._meeting_response(request, self._online_meeting(request, organizer), 200)

    def _delete_online_meeting(self, request: Request) -> Response:
        organizer = self._meeting_organizer(request, write=True)
        meeting = self._online_meeting(request, organizer)
        del self.online_meetings[organizer.id][meeting.id]
        return Response(204, None)


def _clone(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _online_meeting_settings(item: Mapping[str, Any]) -> dict[str, Any]:
    """A seed's or admin body's calendar settings: allowedOnlineMeetingProviders (and the default)."""
    settings: dict[str, Any] = {}
    if "allowedOnlineMeetingProviders" in item:
        providers = item["allowedOnlineMeetingProviders"]
        if not isinstance(providers, list) or any(p not in ONLINE_MEETING_PROVIDERS for p in providers):
            raise ValueError(
                f"allowedOnlineMeetingProviders must be a list of {', '.join(ONLINE_MEETING_PROVIDERS)}"
            )
        settings["allowed_online_meeting_providers"] = tuple(providers)
        settings["default_online_meeting_provider"] = None
    default = item.get("defaultOnlineMeetingProvider")
    if default is not None:
        if default not in ONLINE_MEETING_PROVIDERS:
            raise ValueError(
                f"defaultOnlineMeetingProvider must be one of {', '.join(ONLINE_MEETING_PROVIDERS)}"
            )
        settings["default_online_meeting_provider"] = default
    return settings


def _positive_seconds(name: str, value: Any) -> float:
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be a positive number of seconds")
    return seconds


def _positive_int(name: str, value: Any) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return number


def main(argv: list[str] | None = None) -> None:
    run_from_command_line(
        lambda _arguments: GraphSandbox(), "Local Microsoft Graph + Entra ID sandbox", DEFAULT_PORT, argv
    )
