"""The Outlook calendar calls of Microsoft Graph v1.0, app-only (``/users/{mailbox}/...``).

Every call asks for immutable ids (``Prefer: IdType="ImmutableId"``: an event's id then survives moves
between folders) and counts against Outlook's limits for this app and that mailbox (the rate-limit
and concurrency scope ``<app id>/<mailbox>``: 10,000 requests per 10 minutes, 4 at once). Responses
are parsed into small typed values; errors into :mod:`ledgerlink.graph.errors`. Bodies are never
logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

import requests

from ledgerlink.graph.auth import GraphAuth
from ledgerlink.graph.errors import (
    EventChanged,
    EventGone,
    GraphAccessDenied,
    GraphRequestRejected,
    MailboxNotFound,
)
from ledgerlink.http.client import VendorHttpClient

IMMUTABLE_IDS: Final = 'IdType="ImmutableId"'
# Graph's codes for a mailbox that is not there (calendar paths, /users paths, no Exchange mailbox).
UNKNOWN_USER_CODES: Final = frozenset({"ErrorInvalidUser", "Request_ResourceNotFound", "ResourceNotFound"})
NO_MAILBOX_CODES: Final = frozenset({"MailboxNotEnabledForRESTAPI", "MailboxNotSupportedForRESTAPI"})


@dataclass(frozen=True)
class GraphUser:
    id: str
    mail: str | None
    upn: str
    display_name: str | None


@dataclass(frozen=True)
class GraphCalendar:
    id: str
    allowed_online_meeting_providers: tuple[str, ...]
    default_online_meeting_provider: str | None


@dataclass(frozen=True)
class GraphEvent:
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
    body_content: str
    web_link: str | None
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> GraphEvent:
        return cls(
            id=str(body["id"]),
            etag=body.get("@odata.etag"),
            change_key=body.get("changeKey"),
            transaction_id=body.get("transactionId"),
            subject=str(body.get("subject") or ""),
            start=body.get("start") or {},
            end=body.get("end") or {},
            is_all_day=bool(body.get("isAllDay")),
            is_cancelled=bool(body.get("isCancelled")),
            show_as=body.get("showAs"),
            attendees=tuple(
                str((attendee.get("emailAddress") or {}).get("address") or "")
                for attendee in body.get("attendees") or ()
            ),
            body_content=str((body.get("body") or {}).get("content") or ""),
            web_link=body.get("webLink"),
            raw=body,
        )


class GraphClient:
    """One connection's Graph: its app's token (:class:`GraphAuth`), its budgets, its tenant."""

    def __init__(self, http: VendorHttpClient, auth: GraphAuth) -> None:
        self._http = http
        self.auth = auth
        self.calls = 0

    # ---- users and calendars

    def find_user(self, email: str) -> GraphUser | None:
        """The tenant user whose mail or user principal name is ``email``, or None."""
        literal = email.strip().replace("'", "''")
        response = self._call(
            "GET",
            "/users",
            mailbox=None,
            params={
                "$filter": f"mail eq '{literal}' or userPrincipalName eq '{literal}'",
                "$select": "id,mail,userPrincipalName,displayName",
            },
        )
        for user in response.json().get("value") or ():
            return GraphUser(
                id=str(user["id"]),
                mail=user.get("mail"),
                upn=str(user.get("userPrincipalName") or ""),
                display_name=user.get("displayName"),
            )
        return None

    def calendar(self, mailbox: str) -> GraphCalendar:
        body = self._call("GET", f"/users/{_segment(mailbox)}/calendar", mailbox=mailbox).json()
        return GraphCalendar(
            id=str(body.get("id") or ""),
            allowed_online_meeting_providers=tuple(body.get("allowedOnlineMeetingProviders") or ()),
            default_online_meeting_provider=body.get("defaultOnlineMeetingProvider"),
        )

    # ---- events

    def create_event(self, mailbox: str, body: Mapping[str, Any], *, transaction_id: str) -> GraphEvent:
        """``POST /users/{mailbox}/events`` with ``transactionId``: Graph recognises a retried create by
        it, so the HTTP layer may resend this POST after a timeout or a 5xx."""
        response = self._call(
            "POST",
            f"/users/{_segment(mailbox)}/events",
            mailbox=mailbox,
            json={**body, "transactionId": transaction_id},
            idempotent=True,
        )
        return GraphEvent.from_api(response.json())

    def get_event(self, mailbox: str, event_id: str) -> GraphEvent | None:
        response = self._call("GET", _event_path(mailbox, event_id), mailbox=mailbox, accept=(404,))
        if response.status_code == 404:
            return None
        return GraphEvent.from_api(response.json())

    def update_event(
        self, mailbox: str, event_id: str, changes: Mapping[str, Any], *, etag: str
    ) -> GraphEvent:
        """``PATCH`` with ``If-Match: etag``; :class:`EventChanged` on 412, :class:`EventGone` on 404.
        With If-Match a resent PATCH cannot overwrite anyone else's change (it gets 412 instead), so
        the HTTP layer may resend it."""
        response = self._call(
            "PATCH",
            _event_path(mailbox, event_id),
            mailbox=mailbox,
            json=dict(changes),
            headers={"If-Match": etag},
            idempotent=True,
            accept=(404, 412),
        )
        if response.status_code == 412:
            raise EventChanged(mailbox, event_id)
        if response.status_code == 404:
            raise EventGone(mailbox, event_id)
        return GraphEvent.from_api(response.json())

    def delete_event(self, mailbox: str, event_id: str) -> bool:
        """True when deleted now, False when it was not there."""
        response = self._call("DELETE", _event_path(mailbox, event_id), mailbox=mailbox, accept=(404,))
        return response.status_code != 404

    def cancel_event(self, mailbox: str, event_id: str, comment: str) -> bool:
        """The organizer cancels a meeting: attendees get the comment. False when it was not there."""
        response = self._call(
            "POST",
            _event_path(mailbox, event_id) + "/cancel",
            mailbox=mailbox,
            json={"comment": comment},
            # Cancelling twice has the effect of cancelling once (the second finds nothing: 404).
            idempotent=True,
            accept=(404,),
        )
        return response.status_code != 404

    # ---- plumbing

    def _call(
        self,
        method: str,
        path: str,
        *,
        mailbox: str | None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        scope = f"{self.auth.app_id}/{(mailbox or 'directory').lower()}"
        sent_headers = {"Prefer": IMMUTABLE_IDS, **(headers or {})}
        self.calls += 1
        response = self._http.request(
            method,
            path,
            scope=scope,
            params=params,
            json=json,
            headers=sent_headers,
            idempotent=idempotent,
            accept=(*accept, 400, 403, 404),
        )
        status = response.status_code
        if status < 400 or status in accept:
            return response
        code, message = _graph_error(response)
        if status == 404 and mailbox is not None and (code in UNKNOWN_USER_CODES or code in NO_MAILBOX_CODES):
            detail = (
                "has no Exchange Online mailbox"
                if code in NO_MAILBOX_CODES
                else "is not a user of the tenant"
            )
            raise MailboxNotFound(mailbox, code, detail)
        if status == 403 and mailbox is not None:
            raise GraphAccessDenied(mailbox, code, message)
        raise GraphRequestRejected(status, code, message, method=method, path=path.split("?")[0])


def _graph_error(response: requests.Response) -> tuple[str, str]:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return f"HTTP{response.status_code}", ""
    return str(error.get("code") or f"HTTP{response.status_code}"), str(error.get("message") or "")[:200]


def _segment(value: str) -> str:
    return quote(value, safe="@.")


def _event_path(mailbox: str, event_id: str) -> str:
    return f"/users/{_segment(mailbox)}/events/{quote(event_id, safe='')}"
