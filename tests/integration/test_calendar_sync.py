"""The calendar sync against the Graph and HubSpot sandboxes: what ends up on the Outlook calendars
(read back through Graph's own API) for each thing that can happen to an invoice, exactly once."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.outlook_items import owed_between
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.graph import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID
from tests.graph_shapes import assert_event_body_conforms
from tests.integration.calendar_sync_support import (
    AR_MAILBOX,
    GRAPH_SECRET,
    LINKS_TABLE,
    OWNER_IN_TENANT,
    OWNER_NOT_IN_TENANT,
    REGION,
    CalendarWorld,
    build_world,
)

OWNER_MAILBOX = "maria.alvarez@northwind-demo.example"
NO_MAILBOX_USER = "contractor@ledgerlinkdemo.onmicrosoft.com"
NEW_YORK = "America/New_York"


@pytest.fixture
def world(
    hubspot_sandbox: SandboxServer, graph_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CalendarWorld]:
    with mock_aws():
        built = build_world(hubspot_sandbox, graph_sandbox, monkeypatch)
        yield built
        built.parts.close()
        # and whatever the test did, every event body the code sent is one Graph documents
        for sent in built.graph_requests():
            if (
                sent.method in ("POST", "PATCH")
                and "/events" in sent.path
                and not sent.path.endswith("/cancel")
                and sent.body
            ):
                assert_event_body_conforms(sent.json())


def only_event(
    world: CalendarWorld, mailbox: str = AR_MAILBOX, *, time_zone: str | None = None
) -> dict[str, Any]:
    events = world.calendar(mailbox, time_zone=time_zone)
    assert len(events) == 1, [e["subject"] for e in events]
    return events[0]


def local_day(event: dict[str, Any], side: str) -> str:
    return str(event[side]["dateTime"])[:19]


# ---- create


def test_an_open_invoice_is_an_all_day_event_on_its_due_date_on_the_accounts_receivable_calendar(
    world: CalendarWorld,
) -> None:
    # given an open invoice due on 8 March 2026 (New York springs forward that day), whose deal owner is
    # not a user of the Microsoft tenant
    event = world.deal_synced(owner_id=OWNER_NOT_IN_TENANT)

    # when its deal.synced event is synced
    outcome = world.sync_one(event)

    # then the accounts-receivable calendar has one all-day event, midnight to midnight in New York
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    shown = only_event(world, time_zone=NEW_YORK)
    assert shown["subject"] == "Invoice 1042 due: Acme Corporation, USD 1,250.00 open"
    assert shown["isAllDay"] is True
    assert local_day(shown, "start") == "2026-03-08T00:00:00"
    assert local_day(shown, "end") == "2026-03-09T00:00:00"
    assert shown["showAs"] == "free"
    assert shown["isReminderOn"] is True and shown["reminderMinutesBeforeStart"] == 2 * 24 * 60
    assert "https://app.hubspot.com/contacts/48213570/record/0-3/31000000412" in shown["body"]["content"]
    assert "txnId=1042" in shown["body"]["content"]
    # and in UTC the day runs 05:00 (EST) to 04:00 (EDT): the DST change did not move it
    utc = only_event(world)
    assert local_day(utc, "start") == "2026-03-08T05:00:00"
    assert local_day(utc, "end") == "2026-03-09T04:00:00"
    # and calendar.synced names the event, the mailbox and the webhook's correlation id
    (published,) = world.published()
    assert published["correlation_id"] == "qbo-webhook-7a1c2e9d4b"
    assert published["payload"]["action"] == "created"
    assert published["payload"]["mailbox"] == AR_MAILBOX
    assert published["payload"]["mailbox_source"] == "accounts_receivable"
    assert published["payload"]["event_id"] == shown["id"]
    assert published["payload"]["due_date"] == "2026-03-08"


def test_the_deal_owners_mailbox_is_used_when_the_owner_is_a_user_of_the_tenant(world: CalendarWorld) -> None:
    # given an invoice whose deal owner's HubSpot e-mail is a user of the tenant
    event = world.deal_synced(owner_id=OWNER_IN_TENANT)

    # when it is synced
    world.sync_one(event)

    # then the event is on the owner's calendar, not the accounts-receivable one
    assert only_event(world, OWNER_MAILBOX)["subject"].startswith("Invoice 1042 due")
    assert world.calendar(AR_MAILBOX) == []
    assert world.published()[0]["payload"]["mailbox_source"] == "deal_owner"


def test_an_owner_is_resolved_once_and_then_cached(world: CalendarWorld) -> None:
    # given two invoices of the same owner
    first = world.deal_synced(owner_id=OWNER_IN_TENANT)
    second = world.deal_synced(
        owner_id=OWNER_IN_TENANT, invoice_id="1043", invoice_key="9341453908059321:1043"
    )

    # when both are synced, one after the other
    world.sync_one(first)
    world.sync_one(second)

    # then HubSpot's owner and Graph's user were each looked up once
    sent = world.capture.sent
    assert sum(1 for s in sent if "/crm/v3/owners/" in s.url) == 1
    assert sum(1 for s in sent if s.path.endswith("/v1.0/users")) == 1
    assert len(world.calendar(OWNER_MAILBOX)) == 2


def test_a_zone_without_dst_keeps_the_due_date_on_its_day(world: CalendarWorld) -> None:
    # given an invoice of a company in Kolkata (no DST), due on 15 June 2026
    event = world.deal_synced(
        owner_id=OWNER_NOT_IN_TENANT, due_date="2026-06-15T00:00:00+05:30", time_zone="Asia/Kolkata"
    )

    # when it is synced
    world.sync_one(event)

    # then the event runs midnight to midnight in Kolkata, 18:30 to 18:30 UTC
    shown = only_event(world, time_zone="Asia/Kolkata")
    assert (local_day(shown, "start"), local_day(shown, "end")) == (
        "2026-06-15T00:00:00",
        "2026-06-16T00:00:00",
    )
    utc = only_event(world)
    assert (local_day(utc, "start"), local_day(utc, "end")) == ("2026-06-14T18:30:00", "2026-06-15T18:30:00")


def test_every_graph_body_is_an_all_day_event_as_graph_documents_it(world: CalendarWorld) -> None:
    # given an invoice created, moved across New York's autumn DST change, and paid
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            due_date="2026-11-01T00:00:00-04:00",
            last_updated="2026-03-03T09:00:00-08:00",
        )
    )

    # then every create and update body carries dateTimeTimeZone start/end at midnight, a day apart,
    # in a Windows zone, with isAllDay true (Graph's rules for all-day events)
    bodies = [s.json() for s in world.graph_requests() if s.method in ("POST", "PATCH") and s.body]
    assert len(bodies) == 2
    for body in bodies:
        assert body["isAllDay"] is True
        for side in ("start", "end"):
            assert set(body[side]) == {"dateTime", "timeZone"}
            assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T00:00:00", body[side]["dateTime"])
            assert body[side]["timeZone"] == "Eastern Standard Time"
        start = date.fromisoformat(body["start"]["dateTime"][:10])
        end = date.fromisoformat(body["end"]["dateTime"][:10])
        assert (end - start).days == 1
    assert "transactionId" in bodies[0] and "transactionId" not in bodies[1]
    # and every call asked for immutable ids
    assert all('IdType="ImmutableId"' in s.headers.get("Prefer", "") for s in world.graph_requests())


# ---- change


def test_a_moved_due_date_moves_the_same_event_across_the_autumn_dst_change(world: CalendarWorld) -> None:
    # given the invoice's event on 8 March
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    before = only_event(world)

    # when the due date moves to 1 November 2026 (New York falls back that day)
    outcome = world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            due_date="2026-11-01T00:00:00-04:00",
            last_updated="2026-03-03T09:00:00-08:00",
        )
    )

    # then the same event now spans 1 November, midnight to midnight in New York (04:00Z to 05:00Z)
    assert outcome.detail["action"] == "updated"
    shown = only_event(world, time_zone=NEW_YORK)
    assert shown["id"] == before["id"]
    assert (local_day(shown, "start"), local_day(shown, "end")) == (
        "2026-11-01T00:00:00",
        "2026-11-02T00:00:00",
    )
    utc = only_event(world)
    assert (local_day(utc, "start"), local_day(utc, "end")) == ("2026-11-01T04:00:00", "2026-11-02T05:00:00")
    assert [p["payload"]["action"] for p in world.published()] == ["created", "updated"]


def test_a_changed_balance_or_customer_name_updates_the_subject(world: CalendarWorld) -> None:
    # given the invoice's event
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # when a partial payment lowers the balance and the customer is renamed
    world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            status="partially_paid",
            balance="250.00",
            customer_name="Acme Corp.",
            last_updated="2026-03-04T10:00:00-08:00",
        )
    )

    # then the one event says so
    assert only_event(world)["subject"] == "Invoice 1042 due: Acme Corp., USD 250.00 open"


# ---- removal and re-opening


@pytest.mark.parametrize("status", ["paid", "voided", "deleted"])
def test_a_paid_voided_or_deleted_invoice_loses_its_event(world: CalendarWorld, status: str) -> None:
    # given the invoice's event
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # when the invoice is paid, voided or deleted
    closed: dict[str, Any] = {
        "status": status,
        "balance": "0.00",
        "last_updated": "2026-03-05T10:00:00-08:00",
    }
    if status == "deleted":
        closed.update(balance=None, amount=None, currency=None, last_updated=None)
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT, **closed))

    # then the calendar no longer has it (deleted: it had no attendees), and that is published
    assert outcome.detail["action"] == "deleted"
    assert world.calendar(AR_MAILBOX) == []
    assert world.published()[-1]["payload"]["action"] == "deleted"
    assert world.published()[-1]["payload"]["event_id"] is None


def test_an_owed_invoice_is_in_the_due_date_index_the_follow_up_sweep_reads_until_it_is_paid(
    world: CalendarWorld,
) -> None:
    # given an open invoice due on 8 March 2026, synced to its calendar (the world's links table has the
    # deployed owed-by-due-date index)
    opened = world.deal_synced(owner_id=OWNER_NOT_IN_TENANT)
    world.sync_one(opened)
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    assert opened.connection is not None

    # then the sweep finds it in March by its due date, and not in April
    (owed,) = owed_between(dynamodb, LINKS_TABLE, opened.connection, "2026-03-01", "2026-03-31")
    assert (owed.due_date, owed.status) == ("2026-03-08", "open")
    assert owed_between(dynamodb, LINKS_TABLE, opened.connection, "2026-04-01", "2026-04-30") == []

    # and once the invoice is paid it drops out of the index
    world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            status="paid",
            balance="0.00",
            last_updated="2026-03-05T10:00:00-08:00",
        )
    )
    assert owed_between(dynamodb, LINKS_TABLE, opened.connection, "2026-03-01", "2026-03-31") == []


def test_an_event_with_attendees_is_cancelled_so_they_are_told(world: CalendarWorld) -> None:
    # given the invoice's event, to which a person added an attendee in Outlook
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    shown = only_event(world)
    world.as_person(
        "PATCH",
        f"/users/{AR_MAILBOX}/events/{shown['id']}",
        {
            "attendees": [
                {"emailAddress": {"address": "avery.chen@ledgerlinkdemo.onmicrosoft.com"}, "type": "required"}
            ]
        },
    )

    # when the invoice is paid
    outcome = world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            status="paid",
            balance="0.00",
            last_updated="2026-03-05T10:00:00-08:00",
        )
    )

    # then the event is cancelled (the attendee got a cancellation with LedgerLink's comment)
    assert outcome.detail["action"] == "cancelled"
    assert world.calendar(AR_MAILBOX) == []
    outbox = world.graph_admin("GET", "state")["outbox"]
    assert any(m["type"] == "meetingCancellation" and "paid" in (m.get("comment") or "") for m in outbox), (
        outbox
    )


def test_a_re_opened_invoice_gets_a_new_event(world: CalendarWorld) -> None:
    # given an invoice whose event was removed when it was paid
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    first_id = world.published()[0]["payload"]["event_id"]
    world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            status="paid",
            balance="0.00",
            last_updated="2026-03-05T10:00:00-08:00",
        )
    )

    # when the payment is deleted and the invoice is open again
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT, last_updated="2026-03-06T10:00:00-08:00"))

    # then it has one event again, a new one, made with a new transactionId
    shown = only_event(world)
    assert shown["id"] != first_id
    creates = [s.json() for s in world.graph_requests() if s.method == "POST" and s.path.endswith("/events")]
    assert len({body["transactionId"] for body in creates}) == 2


def test_an_event_deleted_in_outlook_stays_deleted_until_the_invoice_changes(world: CalendarWorld) -> None:
    # given the invoice's event, which a person then deleted in Outlook
    first = world.deal_synced(owner_id=OWNER_NOT_IN_TENANT)
    world.sync_one(first)
    shown = only_event(world)
    world.as_person("DELETE", f"/users/{AR_MAILBOX}/events/{shown['id']}")

    # when the same deal.synced is delivered again
    again = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then nothing is written: no loop
    assert again.status is OutcomeStatus.UNCHANGED
    assert world.calendar(AR_MAILBOX) == []

    # and when the invoice changes (a new balance), the event is created again
    world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            balance="900.00",
            status="partially_paid",
            last_updated="2026-03-07T10:00:00-08:00",
        )
    )
    assert only_event(world)["subject"].endswith("USD 900.00 open")


# ---- exactly once


def test_every_event_delivered_twice_and_out_of_order_makes_one_calendar_state(world: CalendarWorld) -> None:
    # given three versions of the invoice: created, moved, and its balance lowered
    created = dict(owner_id=OWNER_NOT_IN_TENANT)
    moved = dict(
        owner_id=OWNER_NOT_IN_TENANT,
        due_date="2026-03-20T00:00:00-04:00",
        last_updated="2026-03-03T09:00:00-08:00",
    )
    lowered = dict(
        owner_id=OWNER_NOT_IN_TENANT,
        due_date="2026-03-20T00:00:00-04:00",
        balance="1000.00",
        status="partially_paid",
        last_updated="2026-03-04T09:00:00-08:00",
    )

    # when they arrive shuffled, each twice, in separate batches
    for version in (lowered, created, lowered, moved, created, moved):
        world.sync_one(world.deal_synced(**version))

    # then the calendar shows the newest version once, and only one create was ever sent
    shown = only_event(world, time_zone=NEW_YORK)
    assert shown["subject"].endswith("USD 1,000.00 open")
    assert local_day(shown, "start") == "2026-03-20T00:00:00"
    creates = [s for s in world.graph_requests() if s.method == "POST" and s.path.endswith("/events")]
    assert len(creates) == 1
    assert [p["payload"]["action"] for p in world.published()] == ["created"]


def test_a_batch_holding_several_versions_of_an_invoice_writes_only_the_newest(world: CalendarWorld) -> None:
    # given one batch with the created and the moved version of an invoice, newest first
    older = world.deal_synced(owner_id=OWNER_NOT_IN_TENANT)
    newer = world.deal_synced(
        owner_id=OWNER_NOT_IN_TENANT,
        due_date="2026-03-20T00:00:00-04:00",
        last_updated="2026-03-03T09:00:00-08:00",
    )

    # when the batch is synced
    outcomes = world.sync([newer, older])

    # then the older one is stale and the calendar has the newer one
    assert outcomes[older.message_id].status is OutcomeStatus.STALE
    assert local_day(only_event(world, time_zone=NEW_YORK), "start") == "2026-03-20T00:00:00"


def test_a_retried_create_makes_no_second_event(world: CalendarWorld) -> None:
    # given a create that reached Graph but whose calendar.synced could not be published
    event = world.deal_synced(owner_id=OWNER_NOT_IN_TENANT)
    publisher = world.parts.only.service.publisher

    class FailingOnce:
        failed = False

        def publish(self, envelopes: Any) -> None:
            if not FailingOnce.failed:
                FailingOnce.failed = True
                raise RuntimeError("PutEvents failed")
            publisher.publish(envelopes)

    world.parts.only.service.publisher = FailingOnce()
    first = world.sync_one(event)
    assert first.status is OutcomeStatus.FAILED

    # when SQS delivers it again
    second = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then the same transactionId was sent twice and the calendar has one event
    assert second.status is OutcomeStatus.SYNCED
    creates = [s.json() for s in world.graph_requests() if s.method == "POST" and s.path.endswith("/events")]
    assert len(creates) == 2 and creates[0]["transactionId"] == creates[1]["transactionId"]
    assert len(world.calendar(AR_MAILBOX)) == 1


def test_an_event_edited_in_outlook_meanwhile_is_re_read_and_updated_412(world: CalendarWorld) -> None:
    # given the invoice's event, whose location a person then set in Outlook (its etag changes)
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    shown = only_event(world)
    world.as_person(
        "PATCH",
        f"/users/{AR_MAILBOX}/events/{shown['id']}",
        {"location": {"displayName": "Call the customer"}},
    )

    # when the invoice's balance changes
    outcome = world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT,
            balance="300.00",
            status="partially_paid",
            last_updated="2026-03-04T10:00:00-08:00",
        )
    )

    # then the stale etag got a 412, the event was re-read, and the new balance is on it with the
    # person's location kept
    assert outcome.status is OutcomeStatus.SYNCED
    patches = [s for s in world.graph_requests() if s.method == "PATCH"]
    assert len(patches) == 2
    updated = only_event(world)
    assert updated["subject"].endswith("USD 300.00 open")
    assert updated["location"]["displayName"] == "Call the customer"
    assert world.metrics.counts.get("CalendarEditConflicts") == 1


# ---- failures


def test_a_throttled_graph_is_waited_for_with_retry_after(world: CalendarWorld) -> None:
    # given Graph throttles the first create with 429 and a Retry-After
    world.graph_admin(
        "POST", "faults", {"kind": "429", "path_prefix": "/v1.0/users", "method": "POST", "count": 1}
    )

    # when the invoice is synced
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then the call waited and was sent again, and the calendar has one event
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    assert len(world.calendar(AR_MAILBOX)) == 1
    statuses = [
        r["status"]
        for r in requests.get(f"{world.graph.url}/_admin/requests", timeout=10).json()["requests"]
        if r["method"] == "POST" and r["path"].endswith("/events")
    ]
    assert statuses[:2] == [429, 201]


def test_a_mailbox_graph_does_not_know_is_a_permanent_failure_with_that_reason(
    world: CalendarWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a connection whose accounts-receivable mailbox is no user of the tenant
    config = world.parts.only.service.config
    world.parts.only.service.config = replace(
        config, accounts_receivable_mailbox="nobody@ledgerlinkdemo.onmicrosoft.com"
    )
    world.parts.only.service.mailboxes.config = world.parts.only.service.config

    # when an invoice is synced
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then it failed for good, naming the mailbox, and nothing was retried
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.retryable is False
    assert "nobody@ledgerlinkdemo.onmicrosoft.com" in (outcome.reason or "")
    posts = [s for s in world.graph_requests() if s.method == "POST"]
    assert len(posts) == 1


def test_a_revoked_app_secret_fails_the_connection_without_saying_the_secret(world: CalendarWorld) -> None:
    # given the app's client secret was revoked in Entra ID
    world.graph_admin("POST", "apps/revoke-secret", {"clientId": DEMO_CLIENT_ID})

    # when an invoice is synced
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then it failed, not retryable, naming the secret (not its value) and what to do
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.retryable is False
    assert GRAPH_SECRET in (outcome.reason or "")
    assert DEMO_CLIENT_SECRET not in (outcome.reason or "")
    # and no event was written with a token Entra ID did not issue
    assert [s for s in world.graph_requests() if s.method == "POST"] == []


def test_a_fractional_retry_after_is_honoured(world: CalendarWorld) -> None:
    # given Graph asks for 0.25 s after throttling the first create (Graph's docs show "2.128"-style values)
    world.graph_admin("PATCH", "config", {"retry_after_fractional": True, "fault_retry_after_seconds": 0.25})
    world.graph_admin(
        "POST", "faults", {"kind": "429", "path_prefix": "/v1.0/users", "method": "POST", "count": 1}
    )

    # when the invoice is synced
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then the create was sent again after the wait and the calendar has the event
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
    assert len(world.calendar(AR_MAILBOX)) == 1


def test_a_user_without_a_mailbox_is_a_permanent_failure_with_that_reason(world: CalendarWorld) -> None:
    # given the accounts-receivable address is a user of the tenant without an Exchange Online mailbox
    service = world.parts.only.service
    service.config = replace(service.config, accounts_receivable_mailbox=NO_MAILBOX_USER)
    service.mailboxes.config = service.config

    # when an invoice is synced
    outcome = world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))

    # then it failed for good, saying the user has no mailbox
    assert outcome.status is OutcomeStatus.FAILED and outcome.retryable is False
    assert f"mailbox {NO_MAILBOX_USER} has no Exchange Online mailbox" in (outcome.reason or "")


def test_a_rotated_app_secret_takes_effect_at_once(world: CalendarWorld) -> None:
    # given the process holds a token, and the app's secret is then rotated and the new one stored
    world.sync_one(world.deal_synced(owner_id=OWNER_NOT_IN_TENANT))
    rotated = world.graph_admin("POST", "apps/rotate-secret", {})
    world.aws["secretsmanager"].put_secret_value(
        SecretId=GRAPH_SECRET,
        SecretString=json.dumps(
            {
                "tenant_id": DEMO_TENANT_ID,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": rotated["clientSecret"],
            }
        ),
    )
    world.graph_admin("POST", "clock", {"advance_seconds": 3600})  # the held token expires

    # when the next invoice is synced
    outcome = world.sync_one(
        world.deal_synced(
            owner_id=OWNER_NOT_IN_TENANT, invoice_id="1043", invoice_key="9341453908059321:1043"
        )
    )

    # then the refused old secret made the client read the secret again, and the event was written
    assert outcome.status is OutcomeStatus.SYNCED, outcome.reason
