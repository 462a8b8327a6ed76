"""GraphClient against the Graph sandbox: users, calendars, events; what reaches the calendar, and what
Graph's refusals and throttling become."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from ledgerlink.clock import SystemClock
from ledgerlink.consumer.failures import FailureScope, classify
from ledgerlink.graph.auth import GraphAuth, token_policy
from ledgerlink.graph.client import GraphClient, GraphEvent, odata_string
from ledgerlink.graph.errors import (
    EventChanged,
    EventGone,
    GraphAccessDenied,
    GraphRequestRejected,
    MailboxNotFound,
)
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.errors import RateLimited
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.policy import graph_policy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, bucket_key
from ledgerlink.secrets import InMemorySecretStore
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID, DEMO_TENANT_ID
from tests.unit.graph.support import (
    AR_MAILBOX,
    CONTRACTOR,
    MARIA,
    SandboxTime,
    admin,
    all_day,
    build,
    demo_secrets,
    graph_secret,
    requests_to,
    secret_name,
    settings_for,
    state,
)
from tests.unit.sandboxes.polling import wait_for

AVERY = "avery.chen@ledgerlinkdemo.onmicrosoft.com"
NOBODY = "nobody@ledgerlinkdemo.onmicrosoft.com"


def mailbox_events(server: SandboxServer, mailbox: str) -> list[dict[str, Any]]:
    return list(state(server)["mailboxes"].get(mailbox, []))


@pytest.fixture
def graph(graph_sandbox: SandboxServer) -> GraphClient:
    return build(graph_sandbox).client


# ----------------------------------------------------------------------------- users and calendars


def test_a_deal_owner_who_is_a_tenant_user_is_found_by_address(graph: GraphClient) -> None:
    user = graph.find_user("Maria.Alvarez@Northwind-Demo.example")
    assert user is not None
    assert (user.mail, user.upn, user.display_name) == (MARIA, MARIA, "Maria Alvarez")
    assert user.id == "3d8e2b61-7c4a-4f19-a5d0-9b6e1c2f8a47"


def test_an_owner_who_is_no_user_of_the_tenant_is_none(graph: GraphClient) -> None:
    assert graph.find_user("priya.nair@northwind-demo.example") is None


def test_quotes_in_an_address_are_escaped_the_odata_way(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    # given a user whose address has an apostrophe (valid in an e-mail local part)
    admin(graph_sandbox, "POST", "seed", {"users": [{"userPrincipalName": "o'brien@northwind-demo.example"}]})
    # when the client looks it up, then the filter carried the quote doubled and matched it
    user = graph.find_user("o'brien@northwind-demo.example")
    assert user is not None and user.upn == "o'brien@northwind-demo.example"
    assert odata_string("o'brien") == "'o''brien'"
    # and a user lookup counts against the app's directory scope, not a mailbox's
    assert graph.scope(None) == f"{DEMO_CLIENT_ID}/directory"


def test_a_mailboxs_calendar_says_which_meeting_providers_it_allows(graph: GraphClient) -> None:
    calendar = graph.calendar(AR_MAILBOX)
    assert calendar.id.startswith("AAMk")
    assert calendar.allowed_online_meeting_providers == ("teamsForBusiness",)
    assert calendar.default_online_meeting_provider == "teamsForBusiness"


# ----------------------------------------------------------------------------- events


def test_a_created_event_is_on_the_calendar(graph_sandbox: SandboxServer, graph: GraphClient) -> None:
    # when the client creates an all-day event in the owner's calendar
    event = graph.create_event(MARIA, all_day("2025-03-10", "2025-03-11"), transaction_id="demo:invoice-1001")
    # then the sandbox's calendar holds it, as the client describes it
    stored = mailbox_events(graph_sandbox, MARIA)
    assert [(e["id"], e["subject"], e["transactionId"]) for e in stored] == [
        (event.id, "Invoice 1001 due", "demo:invoice-1001")
    ]
    assert event.transaction_id == "demo:invoice-1001"
    assert event.etag == f'W/"{event.change_key}"' and event.etag == stored[0]["@odata.etag"]
    assert event.is_all_day and not event.is_cancelled and event.show_as == "free"
    # (Graph answers in UTC: midnight in Los Angeles, on daylight time since March 9)
    assert event.start == {"dateTime": "2025-03-10T07:00:00.0000000", "timeZone": "UTC"}
    assert event.end == {"dateTime": "2025-03-11T07:00:00.0000000", "timeZone": "UTC"}
    assert "USD 1,250.00" in event.body_content and event.web_link
    assert event.raw["id"] == event.id
    # and its repr (what a log line or a traceback would show) carries neither the body nor the JSON
    assert "1,250.00" not in repr(event) and "raw" not in repr(event)
    # and the call counted against the app and that mailbox (lower-cased), as Outlook counts
    assert graph.scope("Maria.Alvarez@northwind-demo.EXAMPLE") == f"{DEMO_CLIENT_ID}/{MARIA}"


def test_every_call_asks_for_immutable_ids_and_graph_applies_it(graph_sandbox: SandboxServer) -> None:
    # given a client whose session records every exchange
    seen: list[requests.Response] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(response))
    settings = settings_for(graph_sandbox)
    auth = GraphAuth(
        secret_name=secret_name(),
        tenant_id=DEMO_TENANT_ID,
        secrets=demo_secrets(),
        token_http=in_process_client(token_policy(settings)),
        token_url=settings.graph_token_url,
    )
    rate_limits = InMemoryRateLimitStore()
    http = VendorHttpClient(
        graph_policy(settings),
        rate_limit_store=rate_limits,
        breaker_store=InMemoryBreakerStore(),
        auth=auth,
        session=session,
    )
    client = GraphClient(http, auth)
    # when it creates, reads, updates and deletes an event
    created = client.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="t-1")
    read = client.get_event(AR_MAILBOX, created.id)
    assert read is not None and read.id == created.id
    client.update_event(AR_MAILBOX, created.id, {"subject": "moved"}, etag=read.etag or "")
    assert client.delete_event(AR_MAILBOX, created.id)
    # then every request said Prefer: IdType="ImmutableId", and every answer said it was applied
    assert [response.request.method for response in seen] == ["POST", "GET", "PATCH", "DELETE"]
    assert {response.request.headers["Prefer"] for response in seen} == {'IdType="ImmutableId"'}
    assert {response.headers["Preference-Applied"] for response in seen} == {'IdType="ImmutableId"'}
    # and each counted against the app and the mailbox in the rolling window
    admitted = rate_limits.admitted(bucket_key("graph", DEFAULT_GROUP, f"{DEMO_CLIENT_ID}/{AR_MAILBOX}"))
    assert len(admitted) == 4


def test_a_create_repeated_with_its_transaction_id_makes_one_event(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    # when the same create is made twice (a redelivered message)
    body = all_day("2025-03-10", "2025-03-11")
    first = graph.create_event(AR_MAILBOX, body, transaction_id="demo:invoice-1001")
    second = graph.create_event(AR_MAILBOX, body, transaction_id="demo:invoice-1001")
    # then the calendar holds one event, and both calls name it
    assert second.id == first.id
    assert [event["id"] for event in mailbox_events(graph_sandbox, AR_MAILBOX)] == [first.id]


def test_a_create_whose_answer_is_lost_is_retried_and_still_makes_one_event(
    graph_sandbox: SandboxServer,
) -> None:
    # given a client that waits 0.3 s for an answer, and a Graph that takes a second for the first create
    graph = build(
        graph_sandbox, settings=settings_for(graph_sandbox, LEDGERLINK_HTTP_TIMEOUT_SECONDS="0.3")
    ).client
    admin(
        graph_sandbox,
        "POST",
        "faults",
        {"kind": "slow", "path_prefix": f"/v1.0/users/{AR_MAILBOX}/events", "method": "POST", "count": 1,
         "delay_seconds": 1.0},
    )  # fmt: skip
    # when the client creates the event: the first attempt times out, the retry is answered
    event = graph.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="lost-answer")
    # then, once Graph has also handled the first attempt, the calendar still holds one event
    wait_for(lambda: len(requests_to(graph_sandbox, f"/v1.0/users/{AR_MAILBOX}/events")) == 2)
    assert [e["id"] for e in mailbox_events(graph_sandbox, AR_MAILBOX)] == [event.id]


def test_get_update_and_delete(graph_sandbox: SandboxServer, graph: GraphClient) -> None:
    created = graph.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="t-2")
    # an update with the etag it was read at moves the event and gives it a new etag
    moved = graph.update_event(
        AR_MAILBOX,
        created.id,
        {
            "start": {"dateTime": "2025-03-17T00:00:00", "timeZone": "America/Los_Angeles"},
            "end": {"dateTime": "2025-03-18T00:00:00", "timeZone": "America/Los_Angeles"},
        },
        etag=created.etag or "",
    )
    assert moved.id == created.id and moved.etag != created.etag
    assert mailbox_events(graph_sandbox, AR_MAILBOX)[0]["start"]["dateTime"] == "2025-03-17T07:00:00.0000000"
    fetched = graph.get_event(AR_MAILBOX, created.id)
    assert isinstance(fetched, GraphEvent) and fetched.etag == moved.etag
    # a delete removes it; a second delete finds nothing; a read finds nothing
    assert graph.delete_event(AR_MAILBOX, created.id) is True
    assert mailbox_events(graph_sandbox, AR_MAILBOX) == []
    assert graph.delete_event(AR_MAILBOX, created.id) is False
    assert graph.get_event(AR_MAILBOX, created.id) is None


def test_an_update_at_a_stale_etag_changes_nothing_and_says_the_event_changed(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    # given an event that someone changed after the client read it
    created = graph.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="t-3")
    graph.update_event(AR_MAILBOX, created.id, {"subject": "changed in Outlook"}, etag=created.etag or "")
    # when the client updates it at the etag it had read
    with pytest.raises(EventChanged) as raised:
        graph.update_event(AR_MAILBOX, created.id, {"subject": "LedgerLink's"}, etag=created.etag or "")
    # then Graph refused it (412), nothing changed, and the error is the record's and retryable
    assert raised.value.status == 412 and raised.value.code == "ErrorIrresolvableConflict"
    assert mailbox_events(graph_sandbox, AR_MAILBOX)[0]["subject"] == "changed in Outlook"
    classified = classify(raised.value)
    assert (classified.retryable, classified.scope) == (True, FailureScope.RECORD)
    statuses = [e["status"] for e in requests_to(graph_sandbox, f"/v1.0/users/{AR_MAILBOX}/events/")]
    assert statuses == [200, 412]  # a 412 is an answer: not retried


def test_updating_an_event_someone_deleted_says_it_is_gone(graph: GraphClient) -> None:
    created = graph.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="t-4")
    graph.delete_event(AR_MAILBOX, created.id)
    with pytest.raises(EventGone) as raised:
        graph.update_event(AR_MAILBOX, created.id, {"subject": "x"}, etag=created.etag or "")
    assert raised.value.event_id == created.id and not raised.value.retryable
    assert classify(raised.value).scope is FailureScope.RECORD


def test_cancelling_a_meeting_tells_the_attendees_and_a_second_cancel_finds_nothing(
    graph_sandbox: SandboxServer, graph: GraphClient
) -> None:
    body = {**all_day("2025-03-10", "2025-03-11"), "attendees": [
        {"emailAddress": {"address": AVERY, "name": "Avery Chen"}, "type": "required"}
    ]}  # fmt: skip
    created = graph.create_event(AR_MAILBOX, body, transaction_id="t-5")
    assert created.attendees == (AVERY,)
    assert graph.cancel_event(AR_MAILBOX, created.id, "Invoice 1001 was paid") is True
    sandbox = state(graph_sandbox)
    assert sandbox["mailboxes"][AR_MAILBOX] == []
    cancellation = [message for message in sandbox["outbox"] if message["type"] == "meetingCancellation"]
    assert [(m["to"], m["comment"]) for m in cancellation] == [([AVERY], "Invoice 1001 was paid")]
    assert graph.cancel_event(AR_MAILBOX, created.id, "again") is False


# ----------------------------------------------------------------------------- refusals


def test_a_mailbox_that_is_no_user_of_the_tenant_is_a_permanent_failure_of_the_record(
    graph: GraphClient,
) -> None:
    with pytest.raises(MailboxNotFound) as raised:
        graph.create_event(NOBODY, all_day("2025-03-10", "2025-03-11"), transaction_id="t-6")
    error = raised.value
    assert str(error) == f"mailbox {NOBODY} is not a user of the tenant (ErrorInvalidUser)"
    classified = classify(error)
    assert (classified.retryable, classified.scope) == (False, FailureScope.RECORD)
    # and a read says so too, rather than "no such event"
    with pytest.raises(MailboxNotFound):
        graph.get_event(NOBODY, "AAMkAGnonexistent0000000000000000")


def test_a_user_without_a_mailbox_is_a_permanent_failure_of_the_record(graph: GraphClient) -> None:
    # the sandbox's demo tenant has one: an unlicensed contractor
    assert graph.find_user(CONTRACTOR) is not None
    with pytest.raises(MailboxNotFound) as raised:
        graph.create_event(CONTRACTOR, all_day("2025-03-10", "2025-03-11"), transaction_id="t-7")
    assert raised.value.code == "MailboxNotEnabledForRESTAPI"
    assert str(raised.value).startswith(f"mailbox {CONTRACTOR} has no Exchange Online mailbox")
    assert classify(raised.value).scope is FailureScope.RECORD and not raised.value.retryable


def seeded_app_client(server: SandboxServer, roles: list[str]) -> GraphClient:
    admin(
        server,
        "POST",
        "seed",
        {"apps": [{"clientId": "limited-app", "clientSecret": "s3cret~", "roles": roles}]},
    )
    secrets = InMemorySecretStore(
        {secret_name(): graph_secret(client_id="limited-app", client_secret="s3cret~")}
    )
    return build(server, secrets=secrets).client


def test_an_app_denied_a_mailbox_fails_that_record_only(graph_sandbox: SandboxServer) -> None:
    graph = seeded_app_client(graph_sandbox, ["User.Read.All"])
    with pytest.raises(GraphAccessDenied) as raised:
        graph.create_event(AR_MAILBOX, all_day("2025-03-10", "2025-03-11"), transaction_id="t-8")
    error = raised.value
    assert error.code == "ErrorAccessDenied" and error.mailbox == AR_MAILBOX
    assert "Calendars.ReadWrite" in str(error) and "RBAC" in str(error)
    assert (error.record_scoped, error.connection_wide) == (True, False)
    assert classify(error).scope is FailureScope.RECORD and not classify(error).retryable


def test_an_app_denied_the_directory_fails_the_connection(graph_sandbox: SandboxServer) -> None:
    graph = seeded_app_client(graph_sandbox, ["Calendars.ReadWrite"])
    with pytest.raises(GraphAccessDenied) as raised:
        graph.find_user(MARIA)
    assert raised.value.code == "Authorization_RequestDenied" and "User.Read.All" in str(raised.value)
    assert classify(raised.value).scope is FailureScope.SHARED


def test_a_request_graph_refuses_names_graphs_code_and_message(graph: GraphClient) -> None:
    body = {**all_day("2025-03-10", "2025-03-11"), "dueAmount": "1250.00"}
    with pytest.raises(GraphRequestRejected) as raised:
        graph.create_event(AR_MAILBOX, body, transaction_id="t-9")
    error = raised.value
    assert error.status == 400 and error.code == "BadRequest" and error.graph_message
    assert str(error).startswith(f"Graph refused POST /users/{AR_MAILBOX}/events with HTTP 400 BadRequest: ")
    assert "USD 1,250.00" not in str(error)  # never the event's body
    assert classify(error).scope is FailureScope.RECORD and not error.retryable


def test_an_event_body_naming_another_transaction_id_is_refused_before_sending(graph: GraphClient) -> None:
    with pytest.raises(ValueError, match="another transactionId"):
        graph.create_event(AR_MAILBOX, {"transactionId": "a"}, transaction_id="b")


# ----------------------------------------------------------------------------- throttling


@pytest.mark.parametrize("fractional", [False, True])
def test_a_throttled_call_waits_the_retry_after_graph_asks_for(
    graph_sandbox: SandboxServer, fractional: bool
) -> None:
    # given one request per second per app and mailbox, Retry-After in whole or fractional seconds
    admin(graph_sandbox, "PATCH", "config", {"burst_per_second": 1, "retry_after_fractional": fractional})
    time = SandboxTime(graph_sandbox)
    graph = build(graph_sandbox, clock=time).client
    graph.calendar(AR_MAILBOX)
    # when a second call comes within the second
    graph.calendar(AR_MAILBOX)
    # then Graph answered 429, the client slept what Retry-After said and the retry got through
    statuses = [e["status"] for e in requests_to(graph_sandbox, "/v1.0/")]
    assert statuses == [200, 429, 200]
    assert len(time.sleeps) == 1
    if fractional:
        assert 0 < time.sleeps[0] < 1 and time.sleeps[0] != round(time.sleeps[0])
    else:
        assert time.sleeps == [1.0]


def test_a_fractional_retry_after_is_honoured_to_the_millisecond(graph_sandbox: SandboxServer) -> None:
    admin(
        graph_sandbox, "PATCH", "config", {"retry_after_fractional": True, "fault_retry_after_seconds": 2.128}
    )
    admin(graph_sandbox, "POST", "faults", {"kind": "429", "path_prefix": "/v1.0/users/", "count": 1})
    time = SandboxTime(graph_sandbox)
    build(graph_sandbox, clock=time).client.calendar(AR_MAILBOX)
    assert time.sleeps == [2.128]


def test_a_retry_after_longer_than_a_call_may_wait_gives_the_work_back(graph_sandbox: SandboxServer) -> None:
    admin(graph_sandbox, "PATCH", "config", {"fault_retry_after_seconds": 120})
    admin(graph_sandbox, "POST", "faults", {"kind": "429", "path_prefix": "/v1.0/users/", "count": 1})
    time = SandboxTime(graph_sandbox)
    with pytest.raises(RateLimited) as raised:
        build(graph_sandbox, clock=time).client.calendar(AR_MAILBOX)
    assert raised.value.retry_after == 120 and raised.value.status == 429 and time.sleeps == []
    classified = classify(raised.value)
    assert (classified.retryable, classified.retry_after) == (True, 120)


@pytest.fixture
def held(graph_sandbox: SandboxServer) -> Iterator[None]:
    """Every request to a user's calendar is held in flight until the test lets go."""
    admin(
        graph_sandbox, "POST", "faults", {"kind": "hold", "path_prefix": "/v1.0/users/", "delay_seconds": 30}
    )
    yield
    requests.delete(f"{graph_sandbox.url}/_admin/faults", timeout=5)


def test_eight_creates_at_once_never_put_more_than_four_in_flight_at_graph(
    graph_sandbox: SandboxServer, held: None
) -> None:
    # given one Graph client (real clock: its waiting threads must not move the sandbox's) and a Graph
    # that holds every calendar request
    parts = build(graph_sandbox, clock=SystemClock())
    graph = parts.client
    scope = f"{DEMO_CLIENT_ID}|{AR_MAILBOX}"
    parts.auth.access_token()
    with ThreadPoolExecutor(max_workers=8) as pool:
        # when 8 threads create an event each in the same mailbox
        calls = [
            pool.submit(graph.create_event, AR_MAILBOX, all_day("2025-03-10", "2025-03-11", f"#{n}"),
                        transaction_id=f"parallel-{n}")
            for n in range(8)
        ]  # fmt: skip
        # then Graph has 4 in flight, and the client holds the other 4 back
        wait_for(lambda: state(graph_sandbox)["concurrency"]["inFlight"].get(scope) == 4)
        assert parts.http.concurrency is not None
        assert len(parts.http.concurrency.holders(graph.scope(AR_MAILBOX))) == 4
        requests.delete(f"{graph_sandbox.url}/_admin/faults", timeout=5)
        events = [call.result(timeout=30) for call in calls]
    # and every event was made, none ever refused for concurrency, never more than 4 at once
    assert len({event.id for event in events}) == 8
    assert len(mailbox_events(graph_sandbox, AR_MAILBOX)) == 8
    assert 429 not in [e["status"] for e in requests_to(graph_sandbox, "/v1.0/")]
    assert state(graph_sandbox)["concurrency"]["peak"][scope] == 4
