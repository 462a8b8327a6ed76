"""The Teams follow-up flow against the Graph and HubSpot sandboxes, fed by the real calendar sync:
what meetings end up on the organizers' calendars (read back through Graph's own API), with whom and
when, for each thing that can happen to an unpaid invoice, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink_local.sandboxes.core import SandboxServer
from tests.graph_shapes import assert_event_body_conforms
from tests.integration.calendar_sync_support import AR_MAILBOX, OWNER_IN_TENANT, OWNER_NOT_IN_TENANT
from tests.integration.followups_support import FollowUpWorld, at, build_followup_world

NEW_YORK = "America/New_York"
OWNER_MAILBOX = "maria.alvarez@northwind-demo.example"
FINANCE = "avery.chen@ledgerlinkdemo.onmicrosoft.com"
# Tuesday 10 March 2026, 10:00 in New York: the recorded invoice (due Sunday 8 March) is 2 days overdue.
TUESDAY = "2026-03-10T10:00:00-04:00"


@pytest.fixture
def now() -> str:
    return TUESDAY


@pytest.fixture
def world(
    hubspot_sandbox: SandboxServer, graph_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, now: str
) -> Iterator[FollowUpWorld]:
    with mock_aws():
        built = build_followup_world(hubspot_sandbox, graph_sandbox, monkeypatch, now)
        yield built
        built.parts.close()
        built.calendar.parts.close()
        # and every event body the code sent is one Graph documents
        for sent in built.calendar.graph_requests():
            writes_event = (sent.method == "POST" and sent.path.endswith("/events")) or (
                sent.method == "PATCH" and "/events/" in sent.path
            )
            if writes_event and sent.body:
                assert_event_body_conforms(sent.json())


def meetings(world: FollowUpWorld, mailbox: str = AR_MAILBOX) -> list[dict[str, Any]]:
    return [
        e
        for e in world.calendar.calendar(mailbox, time_zone=NEW_YORK)
        if e["subject"].startswith("Payment follow-up") and not e.get("isCancelled")
    ]


def only_meeting(world: FollowUpWorld, mailbox: str = AR_MAILBOX) -> dict[str, Any]:
    found = meetings(world, mailbox)
    assert len(found) == 1, [m["subject"] for m in found]
    return found[0]


def creates(world: FollowUpWorld) -> list[Any]:
    return [
        s
        for s in world.calendar.graph_requests()
        if s.method == "POST" and s.path.endswith("/events") and (s.json() or {}).get("isOnlineMeeting")
    ]


def attendees(meeting: dict[str, Any]) -> set[str]:
    return {a["emailAddress"]["address"] for a in meeting["attendees"]}


# ---- when and with whom


def test_an_invoice_past_due_gets_a_teams_meeting_with_the_billing_contact_owner_and_finance(
    world: FollowUpWorld,
) -> None:
    # given an invoice due on 8 March whose deal owner is not a user of the tenant, synced on 10 March
    triggers = world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT)

    # when its calendar.synced reaches the follow-up flow
    outcomes = world.sync(triggers)

    # then the accounts-receivable mailbox organises a Teams meeting on Wednesday at 10:00 New York time
    # (the first free half hour of business hours 24 h ahead), with the billing contact, the deal owner
    # and finance invited
    assert [o.status for o in outcomes.values()] == [OutcomeStatus.SYNCED], [
        o.reason for o in outcomes.values()
    ]
    meeting = only_meeting(world)
    assert meeting["isOnlineMeeting"] is True and meeting["onlineMeetingProvider"] == "teamsForBusiness"
    assert meeting["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert meeting["organizer"]["emailAddress"]["address"] == AR_MAILBOX
    assert attendees(meeting) == {"ap@acme.example", "priya.nair@northwind-demo.example", FINANCE}
    assert meeting["start"]["dateTime"].startswith("2026-03-11T10:00:00")
    assert meeting["end"]["dateTime"].startswith("2026-03-11T10:30:00")
    assert meeting["originalStartTimeZone"] == "Eastern Standard Time"
    assert (
        meeting["subject"]
        == "Payment follow-up: invoice 1042, Acme Corporation, USD 1,250.00 open, 2 days overdue"
    )
    # and the invitations went out
    outbox = world.calendar.graph_admin("GET", "state")["outbox"]
    assert {m["type"] for m in outbox if "Payment follow-up" in m["subject"]} == {"meetingRequest"}


def test_the_deal_owner_organises_when_the_owner_is_a_user_of_the_tenant(world: FollowUpWorld) -> None:
    world.sync(world.invoice_changes(owner_id=OWNER_IN_TENANT))
    meeting = only_meeting(world, OWNER_MAILBOX)
    assert meeting["organizer"]["emailAddress"]["address"] == OWNER_MAILBOX
    assert attendees(meeting) == {"ap@acme.example", FINANCE}


@pytest.mark.parametrize("now", ["2026-03-05T10:00:00-05:00"])
def test_an_invoice_due_in_three_days_gets_its_due_soon_meeting(world: FollowUpWorld) -> None:
    # given Thursday 5 March, three days before the due date
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    # then the before-due rule made its meeting, on Friday 10:00
    meeting = only_meeting(world)
    assert (
        meeting["subject"]
        == "Payment follow-up: invoice 1042, Acme Corporation, USD 1,250.00 open, due 8 March 2026"
    )
    assert meeting["start"]["dateTime"].startswith("2026-03-06T10:00:00")


@pytest.mark.parametrize("now", ["2026-03-13T15:00:00-04:00"])
def test_a_friday_afternoon_follow_up_is_on_monday_morning(world: FollowUpWorld) -> None:
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    assert only_meeting(world)["start"]["dateTime"].startswith("2026-03-16T09:00:00")


def test_the_organizers_busy_time_is_avoided(world: FollowUpWorld) -> None:
    # given the AR mailbox is busy all Wednesday morning
    world.calendar.graph_admin(
        "POST",
        "seed",
        {
            "events": [
                {
                    "user": AR_MAILBOX,
                    "event": {
                        "subject": "Month-end close",
                        "start": {"dateTime": "2026-03-11T08:00:00", "timeZone": "Eastern Standard Time"},
                        "end": {"dateTime": "2026-03-11T13:00:00", "timeZone": "Eastern Standard Time"},
                        "showAs": "busy",
                    },
                }
            ]
        },
    )
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    assert only_meeting(world)["start"]["dateTime"].startswith("2026-03-11T13:00:00")


def test_a_billing_contact_without_an_email_is_left_out_and_the_body_says_so(world: FollowUpWorld) -> None:
    # given an invoice without a billing e-mail, whose deal has no contact
    world.sync(
        world.invoice_changes(
            owner_id=OWNER_NOT_IN_TENANT,
            customer={
                "name": "Acme Corporation",
                "email": None,
                "qbo_customer_id": None,
                "company_id": None,
                "contact_id": None,
            },
        )
    )
    meeting = only_meeting(world)
    assert attendees(meeting) == {"priya.nair@northwind-demo.example", FINANCE}
    assert "the customer is not invited" in meeting["body"]["content"]


# ---- exactly once


def test_duplicates_shuffles_and_overlapping_sweeps_make_one_meeting(world: FollowUpWorld) -> None:
    # given the invoice's calendar.synced, delivered twice, and a sweep that finds the same invoice
    triggers = world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT)
    world.sync([world.sweep_record("2026-03-10T14:00:00Z")])
    due = world.followups_due()

    # when they all arrive, shuffled, in separate batches and together
    world.sync(due + triggers)
    world.sync(triggers)
    world.sync([*due, *triggers])

    # then one meeting exists and one create was ever sent
    only_meeting(world)
    assert len(creates(world)) == 1


@pytest.mark.parametrize("now", ["2026-03-08T10:00:00-04:00"])
def test_the_sweep_follows_up_an_invoice_when_time_alone_brings_it_into_a_rule(
    world: FollowUpWorld,
) -> None:
    # given an invoice synced on its due date, Sunday 8 March: only its due-soon rule is in force
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    assert [m["subject"].endswith(", due 8 March 2026") for m in meetings(world)] == [True]

    # when the first daily sweep runs on Monday 9 March (one day past due), nothing else having happened:
    # it looks back 30 days, so it finds both rules the invoice entered (the due-soon one is done already)
    (swept,) = world.sync([world.sweep_record("2026-03-09T14:00:00Z")]).values()
    assert swept.detail["followups_due"] == "2"
    world.clock.set(at("2026-03-09T10:00:00-04:00"))
    world.sync(world.followups_due())

    # then the invoice also has its past-due meeting, on Tuesday 10:00, and still one due-soon meeting
    past_due = [m for m in meetings(world) if m["subject"].endswith("1 day overdue")]
    assert len(past_due) == 1 and past_due[0]["start"]["dateTime"].startswith("2026-03-10T10:00:00")
    assert len(meetings(world)) == 2
    # and a second sweep the same day publishes nothing new
    (again,) = world.sync([world.sweep_record("2026-03-09T18:00:00Z")]).values()
    assert again.detail["followups_due"] == "0"


# ---- lifecycle


def test_a_payment_before_the_meeting_cancels_it_and_attendees_are_told(world: FollowUpWorld) -> None:
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    only_meeting(world)

    # when the invoice is paid on Tuesday afternoon
    world.sync(
        world.invoice_changes(
            owner_id=OWNER_NOT_IN_TENANT,
            status="paid",
            balance="0.00",
            last_updated="2026-03-10T13:00:00-04:00",
        )
    )

    # then the meeting is cancelled with LedgerLink's comment
    assert meetings(world) == []
    outbox = world.calendar.graph_admin("GET", "state")["outbox"]
    cancellations = [
        m for m in outbox if m["type"] == "meetingCancellation" and "follow-up" in m["subject"].lower()
    ]
    assert cancellations and "no longer needed" in cancellations[-1]["comment"]


def test_a_balance_change_updates_the_meeting(world: FollowUpWorld) -> None:
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    before = only_meeting(world)
    world.sync(
        world.invoice_changes(
            owner_id=OWNER_NOT_IN_TENANT,
            status="partially_paid",
            balance="250.00",
            last_updated="2026-03-10T13:00:00-04:00",
        )
    )
    after = only_meeting(world)
    assert after["id"] == before["id"]
    assert (
        after["subject"]
        == "Payment follow-up: invoice 1042, Acme Corporation, USD 250.00 open, 2 days overdue"
    )
    assert after["start"] == before["start"]


def test_a_meeting_already_held_is_left_alone(world: FollowUpWorld) -> None:
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    # given the meeting (Wednesday 10:00) has been held
    world.clock.set(at("2026-03-12T09:00:00-04:00"))
    # when the invoice is paid afterwards
    world.sync(
        world.invoice_changes(
            owner_id=OWNER_NOT_IN_TENANT,
            status="paid",
            balance="0.00",
            last_updated="2026-03-12T08:00:00-04:00",
        )
    )
    # then the meeting is not cancelled
    assert len(meetings(world)) == 1
    assert not [s for s in world.calendar.graph_requests() if s.path.endswith("/cancel")]


# ---- failures


def test_no_free_slot_is_a_permanent_failure_saying_so(world: FollowUpWorld) -> None:
    world.calendar.graph_admin(
        "POST",
        "seed",
        {
            "events": [
                {
                    "user": AR_MAILBOX,
                    "event": {
                        "subject": "Out of office",
                        "start": {"dateTime": "2026-03-10T00:00:00", "timeZone": "Eastern Standard Time"},
                        "end": {"dateTime": "2026-04-10T00:00:00", "timeZone": "Eastern Standard Time"},
                        "showAs": "oof",
                    },
                }
            ]
        },
    )
    (outcome,) = world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT)).values()
    assert outcome.status is OutcomeStatus.FAILED and outcome.retryable is False
    assert "no free 30-minute slot" in (outcome.reason or "")
    assert creates(world) == []


def test_a_calendar_that_refuses_teams_is_a_failure_with_that_reason(world: FollowUpWorld) -> None:
    # given the accounts-receivable calendar offers no Teams meetings
    world.calendar.graph_admin(
        "POST",
        "mailboxes/online-meetings",
        {"user": AR_MAILBOX, "allowedOnlineMeetingProviders": ["skypeForConsumer"]},
    )
    (outcome,) = world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT)).values()
    assert outcome.status is OutcomeStatus.FAILED and outcome.retryable is False
    assert "offers no Teams meetings" in (outcome.reason or "")
    assert creates(world) == []


def test_a_meeting_graph_made_without_teams_is_withdrawn_and_fails(world: FollowUpWorld) -> None:
    # given the flow has seen the AR calendar offer Teams (cached), and then the mailbox loses it
    world.sync(world.invoice_changes(owner_id=OWNER_NOT_IN_TENANT))
    world.calendar.graph_admin(
        "POST",
        "mailboxes/online-meetings",
        {"user": AR_MAILBOX, "allowedOnlineMeetingProviders": ["unknown"]},
    )
    # when another invoice comes due
    (outcome,) = world.sync(
        world.invoice_changes(
            owner_id=OWNER_NOT_IN_TENANT,
            invoice_id="1043",
            invoice_key="9341453908059321:1043",
            doc_number="1043",
        )
    ).values()
    # then Graph's 201 without a join URL is a failure with that reason, and that event was withdrawn
    assert outcome.status is OutcomeStatus.FAILED and outcome.retryable is False
    assert "without a Teams join URL" in (outcome.reason or "")
    assert [m["subject"] for m in meetings(world)] == [
        "Payment follow-up: invoice 1042, Acme Corporation, USD 1,250.00 open, 2 days overdue"
    ]
    assert world.calendar.metrics.counts.get("TeamsMeetingsNotOnline") == 1
