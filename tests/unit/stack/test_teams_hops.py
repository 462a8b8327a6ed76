"""The Teams invite on the hop log and in ``ledgerlink local status``: the calendar sync's ``calendar.synced``
routed to the teams-invite queue, the follow-up sweep's Scheduled Event, and the ``followup.due`` events
the sweep publishes, which come back through the same queue.

As in test_calendar_hops.py, the local stack's resources, EventBridge delivery (moto), the pollers and the
scheduler are the stack's own; the functions are stood in for (tests/unit/stack/chain_support.py).
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.topology import FOLLOWUP_SWEEP_RULE
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink_local.stack.aws import client
from ledgerlink_local.stack.hops import read_hops
from ledgerlink_local.stack.schedule import Scheduler
from ledgerlink_local.stack.stack import schedule_hop, scheduled_rules
from ledgerlink_local.stack.status import queue_consumers, run_status, summarise
from tests.unit.stack.chain_support import (
    CORRELATION_ID,
    DEAL_SYNCED,
    Chain,
    calendar_synced,
    hop_lines,
    status_tables,
    through_the_deal_sync,
)

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
SWEEP = "ledgerlink-local-followup-sweep"


def _followup_due(correlation_id: str) -> Envelope:
    """What the sweep publishes for invoice 1042 one day past its due date (schema v1)."""
    payload = DEAL_SYNCED["detail"]["payload"]
    return Envelope(
        source=EventSource.TEAMS_INVITE,
        detail_type=DetailType.FOLLOWUP_DUE,
        correlation_id=correlation_id,
        payload={
            "connection": payload["connection"],
            "config_version": payload["config_version"],
            "invoice_key": f"{payload['realm_id']}:{payload['invoice_id']}",
            "rule": "past_due_1",
            "entered_on": "2026-11-25",
            "swept_at": "2026-11-25T14:00:05Z",
        },
    )


def _fire_the_sweep(chain: Chain) -> str:
    """The stack's scheduler, the sweep every 5 s, moved 5 s on: the Scheduled Event's id."""
    now = [T0]
    fired: list[dict[str, Any]] = []
    record = schedule_hop(chain.hops)

    def on_fire(rule: Any, event: dict[str, Any]) -> None:
        record(rule, event)
        fired.append(event)

    sqs = client("sqs", chain.resources.endpoint_url)
    rules = scheduled_rules(chain.topology, chain.resources, sqs, T0, {FOLLOWUP_SWEEP_RULE: 5})
    scheduler = Scheduler(
        rules,
        account=chain.resources.account,
        region=chain.resources.region,
        now=lambda: now[0],
        on_fire=on_fire,
    )
    now[0] += timedelta(seconds=5)
    assert scheduler.fire_due() == [SWEEP]
    return str(fired[0]["id"])


def _rows(chain: Chain) -> list[tuple[str, str, str, str, int, str]]:
    _, events = summarise(read_hops(chain.state_dir / "events.jsonl"), queue_consumers())
    return [(e.correlation_id, e.flow, e.subject, e.path, e.receives, e.outcome) for e in events]


def _nothing(records: list[dict[str, Any]], request_id: str) -> None:
    """The Teams invite writing its meeting (nothing published, nothing failed)."""


def test_a_calendar_synced_reaches_the_teams_invite_and_status_has_a_row_for_each_of_its_flows(
    chain: Chain,
) -> None:
    # given an invoice's due date written by the calendar sync, which published calendar.synced
    deal_synced = through_the_deal_sync(chain)
    chain.poll(
        "calendar-sync",
        lambda records, request_id: chain.publish(
            "outlook_calendar_sync", request_id, calendar_synced(deal_synced, "created")
        ),
    )

    # when the teams-invite event source hands it to the Teams invite
    chain.poll("teams-invite", _nothing)

    # then the hop lines show it routed to the teams-invite queue and handed over, under the webhook's id
    assert any(
        "ledgerlink-local-calendar-synced-to-teams-invite matched -> queue ledgerlink-local-teams-invite"
        in line
        for line in hop_lines(chain, "rule")
    )
    max_receives = chain.topology.queue("teams-invite").max_receive_count
    (received,) = [line for line in hop_lines(chain, "queue") if "teams-invite" in line]
    assert f"ledgerlink-local-teams-invite -> teams_invite (receive 1/{max_receives})" in received
    assert CORRELATION_ID in received
    assert any("teams_invite ok" in line and CORRELATION_ID in line for line in hop_lines(chain, "handler"))
    # and the status has the chain's three flows, the Teams invite's last
    assert _rows(chain)[-1] == (
        CORRELATION_ID,
        "teams_invite",
        "calendar.synced Invoice/1042 created",
        "published > rule > queue > handler",
        1,
        "done",
    )
    # and its queue, with its own dead-letter queue, in the queues table
    out = io.StringIO()
    assert run_status(chain.state_dir, out) == 0
    (queue,) = [
        row for row in status_tables(out.getvalue())["Queues"] if row["queue"].endswith("teams-invite")
    ]
    assert (queue["dead-letter queue"], queue["waiting"], queue["dead-lettered"]) == (
        "ledgerlink-local-teams-invite-dlq",
        "0",
        "0",
    )


def test_the_sweeps_scheduled_event_and_the_followup_due_it_publishes_are_rows_of_their_own(
    chain: Chain,
) -> None:
    # given the follow-up sweep fired by the stack's scheduler
    scheduled_id = _fire_the_sweep(chain)
    # when the Teams invite sweeps and publishes a followup.due (its own correlation id), and then
    # consumes that followup.due from the same queue
    followup = _followup_due(str(uuid.uuid4()))
    chain.poll(
        "teams-invite", lambda records, request_id: chain.publish("teams_invite", request_id, followup)
    )
    chain.poll("teams-invite", _nothing)

    # then the hop lines show the schedule firing, its Scheduled Event handed to the Teams invite under
    # the event's id, and the followup.due published and routed back to the teams-invite queue
    assert any(f"{SWEEP} fired" in line and scheduled_id in line for line in hop_lines(chain, "schedule"))
    queue_lines = hop_lines(chain, "queue")
    assert any(scheduled_id in line and "-> teams_invite (receive 1/" in line for line in queue_lines)
    assert any(
        "ledgerlink.followup.due Invoice/1042 past_due_1 -> ledgerlink-local-events" in line
        and followup.correlation_id in line
        for line in hop_lines(chain, "published")
    )
    assert any(
        "ledgerlink-local-followup-due-to-teams-invite matched -> queue ledgerlink-local-teams-invite" in line
        for line in hop_lines(chain, "rule")
    )
    # and the status has a row for the sweep and one for the follow-up it found due
    assert _rows(chain) == [
        (scheduled_id, "teams_invite", f"Scheduled Event {SWEEP}", "schedule > queue > handler", 1, "done"),
        (
            followup.correlation_id,
            "teams_invite",
            "followup.due Invoice/1042 past_due_1",
            "published > rule > queue > handler",
            1,
            "done",
        ),
    ]


def test_a_followup_due_published_under_the_sweeps_own_id_is_still_a_row_of_its_own(chain: Chain) -> None:
    # given the sweep fired, and a followup.due it publishes carrying the Scheduled Event's id as its
    # correlation id: the same queue and function, twice, under one id
    scheduled_id = _fire_the_sweep(chain)
    followup = _followup_due(scheduled_id)
    chain.poll(
        "teams-invite", lambda records, request_id: chain.publish("teams_invite", request_id, followup)
    )
    chain.poll("teams-invite", _nothing)

    # then the status still tells the sweep (which published) from the follow-up it consumed after
    assert _rows(chain) == [
        (
            scheduled_id,
            "teams_invite",
            f"Scheduled Event {SWEEP}",
            "schedule > queue > published > handler",
            1,
            "done",
        ),
        (
            scheduled_id,
            "teams_invite",
            "followup.due Invoice/1042 past_due_1",
            "published > rule > queue > handler",
            1,
            "done",
        ),
    ]
