"""The calendar flow on the hop log and in ``ledgerlink local status``: an invoice's QBO change goes through
the deal sync, its ``deal.synced`` through the calendar-sync queue to the calendar sync, which publishes
``calendar.synced``.

The local stack's own resources are created in moto's server from the topology (bus, rules, queues,
tables), EventBridge delivery is moto's and the pollers are the stack's; only the functions are stood in
for by the test (tests/unit/stack/chain_support.py), publishing (or dead-lettering) what the real ones
would, through the same instrumented boto3 calls the worker reports to the stack.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from ledgerlink.consumer.deadletter import DeadLetterRouter, RecordFailure, SqsDeadLetterQueue
from ledgerlink.crosswalk import Failure, LinkStore
from ledgerlink_local.stack.aws import client
from ledgerlink_local.stack.hops import read_hops
from ledgerlink_local.stack.status import queue_consumers, run_status, summarise
from tests.unit.stack.chain_support import (
    CORRELATION_ID,
    Chain,
    Counts,
    calendar_synced,
    hop_lines,
    status_tables,
    through_the_deal_sync,
)

MAILBOX_UNKNOWN = "Graph does not know mailbox 'ap-owner@example.com' (ErrorInvalidUser); fix the deal owner"


def test_a_synced_deal_reaches_the_calendar_sync_and_its_calendar_synced_is_on_the_hop_log(
    chain: Chain,
) -> None:
    # given an invoice's change synced to its deal, and the deal.synced that published
    deal_synced = through_the_deal_sync(chain)

    # when the calendar sync's event source hands it over and the calendar sync writes the due date
    chain.poll(
        "calendar-sync",
        lambda records, request_id: chain.publish(
            "outlook_calendar_sync", request_id, calendar_synced(deal_synced, "created")
        ),
    )

    # then the hop lines show the deal.synced routed to the calendar queue, handed to the calendar sync,
    # and the calendar.synced it published, all under the webhook's correlation id
    published = hop_lines(chain, "published")
    assert any(
        "ledgerlink.deal.synced Invoice/1042 open -> ledgerlink-local-events" in line for line in published
    )
    assert any(
        "ledgerlink.calendar.synced Invoice/1042 created -> ledgerlink-local-events" in line
        for line in published
    )
    assert any(
        "ledgerlink-local-deal-synced-to-calendar-sync matched -> queue ledgerlink-local-calendar-sync"
        in line
        for line in hop_lines(chain, "rule")
    )
    max_receives = chain.topology.queue("calendar-sync").max_receive_count
    assert any(
        f"ledgerlink-local-calendar-sync -> outlook_calendar_sync (receive 1/{max_receives})" in line
        for line in hop_lines(chain, "queue")
    )
    assert any("outlook_calendar_sync ok" in line for line in hop_lines(chain, "handler"))
    assert all(
        CORRELATION_ID in line
        for step in ("published", "rule", "queue", "handler")
        for line in hop_lines(chain, step)
    )

    # and the status has one row per flow: the QBO change through the deal sync, its deal through the
    # calendar sync, each done once, and the calendar.synced on its way to the Teams invite
    _, events = summarise(read_hops(chain.state_dir / "events.jsonl"), queue_consumers())
    rows = [(e.correlation_id, e.flow, e.subject, e.path, e.receives, e.outcome) for e in events]
    assert rows == [
        (
            CORRELATION_ID,
            "hubspot_deal_sync",
            "Invoice/1042 Update",
            "published > rule > queue > handler",
            1,
            "done",
        ),
        (
            CORRELATION_ID,
            "outlook_calendar_sync",
            "deal.synced Invoice/1042 open",
            "published > rule > queue > handler",
            1,
            "done",
        ),
        (
            CORRELATION_ID,
            "teams_invite",
            "calendar.synced Invoice/1042 created",
            "published > rule",
            0,
            "routed",
        ),
    ]
    calendar = events[1]
    assert calendar.event_ids == (deal_synced.event_id,)


def test_status_shows_the_calendar_queue_its_dead_letters_and_the_calendar_flows_failures(
    chain: Chain,
) -> None:
    # given a deal.synced whose owner's mailbox Graph does not know: the calendar sync records the
    # failure and dead-letters the record itself, with the reason
    deal_synced = through_the_deal_sync(chain)
    sqs = client("sqs", chain.resources.endpoint_url)
    dynamodb = client("dynamodb", chain.resources.endpoint_url)
    dlq_name = chain.topology.queue("calendar-sync").dlq_name
    router = DeadLetterRouter(
        SqsDeadLetterQueue(dlq_name, sqs),
        max_receive_count=chain.topology.queue("calendar-sync").max_receive_count,
        metrics=Counts(),
        now=lambda: datetime.now(UTC),
    )

    def cannot_write(records: list[dict[str, Any]], request_id: str) -> None:
        failed_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        LinkStore(chain.topology.table("links").name, dynamodb).record_failures(
            [
                Failure(
                    event_id=deal_synced.event_id,
                    reason=MAILBOX_UNKNOWN,
                    error_type="MailboxNotFound",
                    retryable=False,
                    message_id=records[0]["messageId"],
                    receive_count=1,
                    realm_id=str(deal_synced.payload["realm_id"]),
                    entity="Invoice",
                    entity_id=str(deal_synced.payload["invoice_id"]),
                    failed_at=failed_at,
                )
            ]
        )
        router.route(
            records, {records[0]["messageId"]: RecordFailure(reason=MAILBOX_UNKNOWN, retryable=False)}
        )

    chain.poll("calendar-sync", cannot_write)

    # when the status is asked
    out = io.StringIO()
    assert run_status(chain.state_dir, out) == 0
    tables = status_tables(out.getvalue())

    # then the calendar queue is listed with its dead-letter queue holding the record
    (calendar_queue,) = [row for row in tables["Queues"] if row["queue"] == "ledgerlink-local-calendar-sync"]
    assert calendar_queue == {
        "queue": "ledgerlink-local-calendar-sync",
        "waiting": "0",
        "in flight": "0",
        "max receives": str(chain.topology.queue("calendar-sync").max_receive_count),
        "dead-letter queue": dlq_name,
        "dead-lettered": "1",
    }
    # and the dead letter, with its reason
    (letter,) = tables["Dead-lettered messages"]
    assert (letter["queue"], letter["kind"], letter["reason"]) == (dlq_name, "permanent", MAILBOX_UNKNOWN)
    assert letter["correlation id"] == CORRELATION_ID
    # and the failure on record, named as the calendar flow's
    (failure,) = tables["Failures on record"]
    assert (failure["flow"], failure["what"], failure["retryable"]) == (
        "outlook_calendar_sync",
        "Invoice/1042",
        "no",
    )
    # and the event's two flows: the deal sync done, the calendar sync dead-lettered
    assert [(row["flow"], row["what"], row["outcome"]) for row in tables["Recent events"]] == [
        ("hubspot_deal_sync", "Invoice/1042 Update", "done"),
        ("outlook_calendar_sync", "deal.synced Invoice/1042 open", "dead-lettered"),
    ]
