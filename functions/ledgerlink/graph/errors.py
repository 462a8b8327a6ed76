"""What can go wrong talking to Microsoft Graph (Entra ID tokens, Outlook calendars), classified for the
queue consumers through the attributes :func:`ledgerlink.consumer.failures.classify` reads.

| error | when | ``retryable`` | whose failure |
|---|---|---|---|
| :class:`GraphCredentialsRejected` | Entra refused the app's credentials (wrong, revoked or expired secret; app unknown; tenant unknown) | no | the connection's (``connection_wide``) |
| :class:`GraphTenantMismatch` | the secret is for another tenant than the configuration names | no | the connection's |
| :class:`GraphAuthError` | any other token failure (a malformed answer, a request Entra calls invalid) | as set | the connection's |
| :class:`MailboxNotFound` | the mailbox is no user of the tenant, or the user has no Exchange Online mailbox | no | the record's |
| :class:`GraphAccessDenied` | 403: the app lacks the permission, or its RBAC scope leaves the mailbox out | no | the record's on a mailbox, the connection's on the directory |
| :class:`GraphRequestRejected` | any other 4xx about one request: Graph's code and message | no | the record's |
| :class:`EventChanged` | 412 (or 409 ``ErrorIrresolvableConflict``): the event changed since its etag was read | yes | the record's |
| :class:`EventGone` | the event to update is no longer in the calendar | no | the record's |
| :class:`ScheduleUnavailable` | getSchedule answered a per-schedule error that says "not now" (free/busy could not be generated) | yes | the record's |

getSchedule answers 200 even when it cannot read a schedule, with an ``error`` object in that schedule
(``responseCode``, ``message``); :meth:`ledgerlink.graph.client.GraphClient.get_schedule` turns it into
:class:`MailboxNotFound`, :class:`GraphAccessDenied`, :class:`ScheduleUnavailable` or
:class:`GraphRequestRejected` (``status`` 200, ``code`` Graph's ``responseCode``).

Throttling (429), 503 and other 5xx keep the HTTP layer's retries and surface as its retryable errors
(:class:`ledgerlink.http.errors.RateLimited`, :class:`~ledgerlink.http.errors.VendorHttpError`).

No message carries a secret, a token or an event's body: they name the secret (never its value), the
mailbox, the event id and Graph's error code and message.
"""

from __future__ import annotations

from ledgerlink.http.errors import VendorError, body_excerpt

VENDOR = "graph"


class GraphError(VendorError):
    """A Graph answer LedgerLink understood as a failure; ``code`` is Graph's (or Entra's) error code."""

    reason = "graph_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        code: str | None = None,
        record_scoped: bool = False,
        connection_wide: bool = False,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, vendor=VENDOR, method=method, path=path)
        self.retryable = retryable
        self.status = status
        self.code = code
        # Read by ledgerlink.consumer.failures: the record alone, or every record of the connection.
        self.record_scoped = record_scoped
        self.connection_wide = connection_wide


class GraphAuthError(GraphError):
    """No access token for the connection: every Graph call of it fails the same way."""

    reason = "graph_auth_error"

    def __init__(self, message: str, *, retryable: bool, code: str | None = None, status: int | None = None):
        super().__init__(message, retryable=retryable, status=status, code=code, connection_wide=True)


class GraphCredentialsRejected(GraphAuthError):
    """Entra ID refused the app's client credentials. Nothing works until an operator fixes the secret
    (or the app registration), so the work is dead-lettered, not retried."""

    reason = "graph_credentials_rejected"

    def __init__(self, *, secret_name: str, error: str, aadsts: str | None, status: int, detail: str) -> None:
        self.secret_name = secret_name
        self.aadsts = aadsts
        code = aadsts or error
        super().__init__(
            f"Microsoft Entra ID refused the Graph app credentials in secret {secret_name!r} "
            f"({error}, {code}: {detail}); update the secret (client_id, client_secret, tenant_id) "
            "or the app registration, then replay the dead-letter queue",
            retryable=False,
            code=code,
            status=status,
        )


class GraphTenantMismatch(GraphAuthError):
    """The secret says it is for another tenant than the connection's configured one."""

    reason = "graph_tenant_mismatch"

    def __init__(self, *, secret_name: str, configured: str, in_secret: str) -> None:
        super().__init__(
            f"secret {secret_name!r} is for Microsoft tenant {in_secret}, but the connection is configured "
            f"for tenant {configured}; correct the secret's tenant_id or the configuration file, then "
            "replay the dead-letter queue",
            retryable=False,
        )


class MailboxNotFound(GraphError):
    """The mailbox is not a user of the tenant, or the user has no Exchange Online mailbox. Permanent for
    this record (a retry would fail the same way); other mailboxes are unaffected."""

    reason = "graph_mailbox_not_found"

    def __init__(self, mailbox: str, code: str, *, status: int = 404, method: str | None = None,
                 path: str | None = None) -> None:  # fmt: skip
        self.mailbox = mailbox
        if code == "MailboxNotEnabledForRESTAPI":
            text = (
                f"mailbox {mailbox} has no Exchange Online mailbox ({code}): the tenant's user is "
                "unlicensed, inactive or hosted on-premises"
            )
        else:
            text = f"mailbox {mailbox} is not a user of the tenant ({code})"
        super().__init__(
            text,
            retryable=False,
            status=status,
            code=code,
            record_scoped=True,
            method=method,
            path=path,
        )


class GraphAccessDenied(GraphError):
    """Graph answered 403.

    On a mailbox's path the cause is either the app lacking ``Calendars.ReadWrite`` altogether, or an
    Exchange RBAC-for-Applications scope that leaves this mailbox out; Graph's answer
    (``ErrorAccessDenied``) does not say which. It is treated as the record's: if only the mailbox is out
    of scope, failing every other record of the connection with it would be wrong, while if the
    permission is missing, each record fails alone with this same reason, which costs nothing but the
    isolation. On the directory (``/users``), no mailbox is involved: the app lacks ``User.Read.All``,
    the connection's failure.
    """

    reason = "graph_access_denied"

    def __init__(self, message: str, *, code: str, mailbox: str | None, method: str, path: str) -> None:
        self.mailbox = mailbox
        super().__init__(
            message,
            retryable=False,
            status=403,
            code=code,
            record_scoped=mailbox is not None,
            connection_wide=mailbox is None,
            method=method,
            path=path,
        )


class GraphRequestRejected(GraphError):
    """Graph refused one request (a 400 or other 4xx about its input): the record's, permanent."""

    reason = "graph_request_rejected"

    def __init__(self, *, status: int, code: str, graph_message: str, method: str, path: str) -> None:
        self.graph_message = body_excerpt(graph_message)
        super().__init__(
            f"Graph refused {method} {path} with HTTP {status} {code}: {self.graph_message}",
            retryable=False,
            status=status,
            code=code,
            record_scoped=True,
            method=method,
            path=path,
        )


class EventChanged(GraphError):
    """The event changed since its etag was read (412): re-read it, re-apply the change, try again.

    Retryable (a retry re-reads) and about this record only. Carries the mailbox and the event id."""

    reason = "graph_event_changed"

    def __init__(self, mailbox: str, event_id: str, *, status: int, code: str, method: str, path: str):
        self.mailbox = mailbox
        self.event_id = event_id
        super().__init__(
            f"event {event_id} in mailbox {mailbox} changed since its etag was read (HTTP {status} {code})",
            retryable=True,
            status=status,
            code=code,
            record_scoped=True,
            method=method,
            path=path,
        )


class EventGone(GraphError):
    """The event is no longer in the calendar (a person deleted it, or it was cancelled): the caller
    decides whether to create it again. Permanent for the call that met it."""

    reason = "graph_event_gone"

    def __init__(self, mailbox: str, event_id: str, *, method: str, path: str) -> None:
        self.mailbox = mailbox
        self.event_id = event_id
        super().__init__(
            f"event {event_id} is no longer in the calendar of mailbox {mailbox} (ErrorItemNotFound)",
            retryable=False,
            status=404,
            code="ErrorItemNotFound",
            record_scoped=True,
            method=method,
            path=path,
        )


class ScheduleUnavailable(GraphError):
    """getSchedule could not produce this mailbox's free/busy for a reason that may pass (Exchange's
    availability service timed out or could not generate it). Retryable, about this record only."""

    reason = "graph_schedule_unavailable"

    def __init__(self, mailbox: str, *, code: str, graph_message: str, method: str, path: str) -> None:
        self.mailbox = mailbox
        self.graph_message = body_excerpt(graph_message)
        super().__init__(
            f"Graph could not read the free/busy of mailbox {mailbox} now ({code}: {self.graph_message})",
            retryable=True,
            status=200,
            code=code,
            record_scoped=True,
            method=method,
            path=path,
        )
