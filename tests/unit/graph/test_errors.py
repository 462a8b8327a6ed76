"""How each Graph error is handled by the queue consumers (ledgerlink.consumer.failures.classify), and that
the parsed event never shows its body."""

from __future__ import annotations

import pytest

from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.graph.client import GraphEvent
from ledgerlink.graph.errors import (
    EventChanged,
    EventGone,
    GraphAccessDenied,
    GraphAuthError,
    GraphCredentialsRejected,
    GraphError,
    GraphRequestRejected,
    GraphTenantMismatch,
    MailboxNotFound,
)

MAILBOX = "maria.alvarez@northwind-demo.example"
EVENT_ID = "AAMkAGI2TG93AAA="


@pytest.mark.parametrize(
    ("error", "retryable", "scope"),
    [
        (
            GraphCredentialsRejected(
                secret_name="ledgerlink/prod/connections/demo/graph/app",
                error="invalid_client",
                aadsts="AADSTS7000215",
                status=401,
                detail="Invalid client secret provided.",
            ),
            False,
            FailureScope.SHARED,
        ),
        (GraphTenantMismatch(secret_name="s", configured="t-1", in_secret="t-2"), False, FailureScope.SHARED),
        (GraphAuthError("no token in the answer", retryable=True), True, FailureScope.SHARED),
        (MailboxNotFound(MAILBOX, "ErrorInvalidUser"), False, FailureScope.RECORD),
        (MailboxNotFound(MAILBOX, "MailboxNotEnabledForRESTAPI"), False, FailureScope.RECORD),
        (
            GraphAccessDenied(
                "denied", code="ErrorAccessDenied", mailbox=MAILBOX, method="POST", path="/users"
            ),
            False,
            FailureScope.RECORD,
        ),
        (
            GraphAccessDenied(
                "denied", code="Authorization_RequestDenied", mailbox=None, method="GET", path="/users"
            ),
            False,
            FailureScope.SHARED,
        ),
        (
            GraphRequestRejected(
                status=400, code="BadRequest", graph_message="bad", method="POST", path="/users"
            ),
            False,
            FailureScope.RECORD,
        ),
        (
            EventChanged(
                MAILBOX, EVENT_ID, status=412, code="ErrorIrresolvableConflict", method="PATCH", path="/x"
            ),
            True,
            FailureScope.RECORD,
        ),
        (EventGone(MAILBOX, EVENT_ID, method="PATCH", path="/x"), False, FailureScope.RECORD),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, GraphError) else None,
)
def test_each_error_is_classified_as_documented(
    error: GraphError, retryable: bool, scope: FailureScope
) -> None:
    classified = classify(error)
    assert (classified.retryable, classified.scope) == (retryable, scope)
    assert classified.reason == str(error) and classified.error_type == type(error).__name__
    assert error.vendor == "graph"


def test_the_mailbox_errors_say_which_mailbox_and_why() -> None:
    assert str(MailboxNotFound(MAILBOX, "ErrorInvalidUser")) == (
        f"mailbox {MAILBOX} is not a user of the tenant (ErrorInvalidUser)"
    )
    assert "has no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)" in str(
        MailboxNotFound(MAILBOX, "MailboxNotEnabledForRESTAPI")
    )


def test_a_rejected_credential_names_the_secret_and_what_to_do() -> None:
    error = GraphCredentialsRejected(
        secret_name="ledgerlink/prod/connections/demo/graph/app",
        error="invalid_client",
        aadsts="AADSTS7000222",
        status=401,
        detail="The provided client secret keys are expired.",
    )
    assert str(error) == (
        "Microsoft Entra ID refused the Graph app credentials in secret "
        "'ledgerlink/prod/connections/demo/graph/app' (invalid_client, AADSTS7000222: The provided client "
        "secret keys are expired.); update the secret (client_id, client_secret, tenant_id) or the app "
        "registration, then replay the dead-letter queue"
    )


def test_a_graph_refusal_masks_anything_token_like_in_graphs_message() -> None:
    error = GraphRequestRejected(
        status=400, code="BadRequest", graph_message='bad "access_token": "eyJ.x.y"', method="GET", path="/p"
    )
    assert "eyJ" not in str(error)


def test_an_event_parses_graphs_resource_and_keeps_its_body_out_of_the_repr() -> None:
    event = GraphEvent.from_api(
        {
            "id": EVENT_ID,
            "@odata.etag": 'W/"ck1"',
            "changeKey": "ck1",
            "subject": "Invoice 1001 due",
            "start": {"dateTime": "2025-03-10T00:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2025-03-11T00:00:00.0000000", "timeZone": "UTC"},
            "isAllDay": True,
            "showAs": "free",
            "attendees": [
                {"emailAddress": {"address": "a@example.com", "name": "A"}, "type": "required"},
                {"emailAddress": {"name": "no address"}, "type": "optional"},
            ],
            "body": {"contentType": "html", "content": "<p>secret-ish customer balance</p>"},
        }
    )
    assert (event.etag, event.change_key, event.transaction_id) == ('W/"ck1"', "ck1", None)
    assert event.attendees == ("a@example.com",)
    assert event.is_all_day and not event.is_cancelled and event.web_link is None
    assert "customer balance" in event.body_content and "customer balance" not in repr(event)
