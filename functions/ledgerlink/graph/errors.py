"""What Graph's refusals mean for a record (read by :func:`ledgerlink.consumer.failures.classify`
through ``retryable``, ``connection_wide`` and ``record_scoped``). Messages name mailboxes, secret
names and Graph's codes, never a token or a secret value."""

from __future__ import annotations

from ledgerlink.http.errors import VendorError

VENDOR = "graph"


class GraphCredentialsRejected(VendorError):
    """Entra ID refused the connection's app (wrong, expired or revoked secret; unknown app or tenant):
    every record of the connection fails until an operator fixes the secret, then replays."""

    retryable = False
    connection_wide = True
    reason = "graph_credentials_rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message, vendor="graph-oauth")


class MailboxNotFound(VendorError):
    """The mailbox is no user of the tenant, or the user has no Exchange Online mailbox: this record's
    calendar does not exist, and retrying cannot create it."""

    retryable = False
    reason = "mailbox_not_found"

    def __init__(self, mailbox: str, code: str, detail: str) -> None:
        self.mailbox = mailbox
        self.code = code
        super().__init__(f"mailbox {mailbox} {detail} (Graph {code})", vendor=VENDOR)


class GraphAccessDenied(VendorError):
    """403: the app may not use this mailbox (no Calendars.ReadWrite, or Exchange RBAC for Applications
    leaves the mailbox out of the app's scope). Scoped to the record: RBAC scopes are per mailbox, so
    the connection's other mailboxes may well work."""

    retryable = False
    reason = "graph_access_denied"

    def __init__(self, mailbox: str, code: str, message: str) -> None:
        self.mailbox = mailbox
        super().__init__(
            f"the Graph app may not use mailbox {mailbox} ({code}: {message}); grant Calendars.ReadWrite "
            "and include the mailbox in its Exchange RBAC scope, then replay",
            vendor=VENDOR,
        )


class GraphRequestRejected(VendorError):
    """Graph refused this one request (400 and the like): the record fails alone, for good."""

    retryable = False
    reason = "graph_request_rejected"

    def __init__(self, status: int, code: str, message: str, *, method: str, path: str) -> None:
        self.status = status
        self.code = code
        super().__init__(
            f"Graph refused {method} {path}: HTTP {status} {code}: {message}",
            vendor=VENDOR,
            method=method,
            path=path,
        )


class EventChanged(VendorError):
    """412: the event changed since the etag the caller sent (someone edited it): re-read, re-apply."""

    retryable = True
    record_scoped = True
    reason = "event_changed"

    def __init__(self, mailbox: str, event_id: str) -> None:
        super().__init__(f"event {event_id[:16]}… in {mailbox} changed meanwhile (412)", vendor=VENDOR)


class EventGone(VendorError):
    """404 on an event: it is no longer on the calendar (a person deleted it)."""

    retryable = False
    record_scoped = True
    reason = "event_gone"

    def __init__(self, mailbox: str, event_id: str) -> None:
        super().__init__(f"event {event_id[:16]}… is no longer in {mailbox}", vendor=VENDOR)
