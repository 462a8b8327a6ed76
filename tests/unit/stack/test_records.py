"""``make run``'s default view: one line per record outcome, made from the hops the functions' calls become
(the worker's report of a PutEvents or an HTTP call, handed to the stack's hop log as the stack does)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink_local.stack import worker
from ledgerlink_local.stack.front import RequestRecord
from ledgerlink_local.stack.hops import HopLog, read_hops
from ledgerlink_local.stack.records import RecordLines
from ledgerlink_local.stack.runtime import FunctionRuntime, InvocationResult
from tests.unit.stack.chain_support import DEAL_SYNCED, INVOICE_CHANGED, calendar_synced

BUS = "ledgerlink-local-events"
GRAPH = "http://127.0.0.1:4013"
QBO = "http://127.0.0.1:4011"
MAILBOX = "finance@example.com"
MEETING_ID = "AAMkAGFollowUpMeeting0000000000000000="
CORRELATION = DEAL_SYNCED["detail"]["correlation_id"]
LABELS = {"contractsent": "Contract Sent"}


def _runtime(key: str) -> FunctionRuntime:
    return FunctionRuntime(
        key=key,
        name=f"ledgerlink-local-{key}",
        handler=f"{key}.handler.lambda_handler",
        timeout_seconds=60,
        memory_mb=512,
        environment={},
        code_root=Path("functions"),
    )


class Stack:
    """The stack's hop log printing record lines, and the worker's reports of what functions did."""

    def __init__(self, tmp_path: Path) -> None:
        self.console = io.StringIO()
        self.hops = HopLog(
            stream=self.console,
            path=tmp_path / "events.jsonl",
            vendors={GRAPH: "graph", QBO: "qbo"},
            hop_lines=False,
            listeners=[RecordLines(self.console, LABELS)],
        )

    def publishes(self, function: str, envelope: Envelope) -> None:
        entry = envelope.to_put_events_entry(BUS)
        message = worker._aws_call_message("events", "PutEvents", {"Entries": [entry]})
        self.hops.call(_runtime(function), "req", {**message, "phase": "start"})

    def calls(self, function: str, method: str, url: str, status: int, **created: str) -> None:
        message: dict[str, Any] = {"type": "call", "kind": "http", "method": method, "url": url}
        message.update(ok=status < 400, status=status, ms=3.0, correlation_id=CORRELATION, **created)
        self.hops.call(_runtime(function), "req", message)

    def handled(self, function: str, outcome: str = "ok", correlation: str = CORRELATION) -> None:
        result = InvocationResult("req", outcome != "failed", {}, "Boom", "QBO read timed out", 12.0)
        self.hops.invocation(function, result, [(correlation, outcome)])

    def lines(self) -> list[str]:
        return self.console.getvalue().splitlines()


def _deal_synced() -> Envelope:
    return Envelope.from_eventbridge(copy.deepcopy(DEAL_SYNCED))


def _through_the_chain(stack: Stack) -> Envelope:
    """QBO change -> deal sync -> calendar sync -> Teams invite, which creates the follow-up meeting."""
    stack.publishes("qbo_ingest", Envelope.from_eventbridge(copy.deepcopy(INVOICE_CHANGED)))
    deal_synced = _deal_synced()
    stack.publishes("hubspot_deal_sync", deal_synced)
    stack.handled("hubspot_deal_sync")
    stack.calls("outlook_calendar_sync", "POST", f"{GRAPH}/v1.0/users/{MAILBOX}/events", 201, created_id="x")
    stack.publishes("outlook_calendar_sync", calendar_synced(deal_synced, "created"))
    stack.handled("outlook_calendar_sync")
    stack.calls("teams_invite", "POST", f"{GRAPH}/v1.0/users/{MAILBOX}/events", 201, created_id=MEETING_ID)
    stack.handled("teams_invite")
    return deal_synced


def test_an_invoice_gets_one_line_per_outcome_each_saying_all_it_became_so_far(tmp_path):
    # given the stack printing record lines
    stack = Stack(tmp_path)
    # when invoice 1042's change goes through the deal sync, the calendar sync and the Teams invite
    _through_the_chain(stack)
    # then there is a line per flow's outcome, each the whole record so far, with what changed
    assert [line[10:] for line in stack.lines()] == [
        "main     Invoice 1042 (open) → deal 18211346, stage Contract Sent; event —; meeting —   [deal synced]",
        "main     Invoice 1042 (open) → deal 18211346, stage Contract Sent; event AAMkAGI2TG93…; meeting —"
        "   [event created]",
        "main     Invoice 1042 (open) → deal 18211346, stage Contract Sent; event AAMkAGI2TG93…; "
        "meeting AAMkAGFollow…   [meeting created]",
    ]
    # and the hop log file still has every hop (what --verbose prints and `local status` reads)
    steps = [hop.step for hop in read_hops(tmp_path / "events.jsonl")]
    assert steps.count("published") == 3 and steps.count("handler") == 3 and steps.count("vendor") == 2


def test_a_change_delivered_twice_prints_nothing_new(tmp_path):
    # given an invoice whose deal was synced
    stack = Stack(tmp_path)
    stack.publishes("hubspot_deal_sync", _deal_synced())
    # when the same change is synced again (its second webhook delivery)
    stack.publishes("hubspot_deal_sync", _deal_synced())
    # then its line is printed once
    assert len(stack.lines()) == 1


def test_a_stage_without_a_known_label_shows_its_id(tmp_path):
    stack = Stack(tmp_path)
    stack.hops = HopLog(stream=None, path=None, hop_lines=False, listeners=[RecordLines(stack.console)])
    stack.publishes("hubspot_deal_sync", _deal_synced())
    assert "deal 18211346, stage contractsent;" in stack.lines()[0]


def test_a_paid_invoice_shows_its_event_removed_and_its_meeting_cancelled(tmp_path):
    # given an invoice with its due-date event and its follow-up meeting
    stack = Stack(tmp_path)
    deal_synced = _through_the_chain(stack)
    # when it is paid: the calendar sync removes the event, the Teams invite cancels the meeting
    paid = Envelope(
        source=EventSource.HUBSPOT_DEAL_SYNC,
        detail_type=DetailType.DEAL_SYNCED,
        correlation_id=CORRELATION,
        payload={**deal_synced.payload, "status": "paid", "balance": "0"},
    )
    stack.publishes("hubspot_deal_sync", paid)
    removed = calendar_synced(paid, "deleted")
    stack.publishes(
        "outlook_calendar_sync",
        Envelope(**{**removed.__dict__, "payload": {**removed.payload, "event_id": None}}),
    )
    stack.calls("teams_invite", "POST", f"{GRAPH}/v1.0/users/{MAILBOX}/events/{MEETING_ID}/cancel", 202)
    stack.handled("teams_invite")
    # then its last line says so
    assert stack.lines()[-1].endswith(
        "Invoice 1042 (paid) → deal 18211346, stage Contract Sent; event removed; meeting cancelled"
        "   [meeting cancelled]"
    )


def test_a_failure_and_a_dead_letter_are_a_line_each_naming_the_record(tmp_path):
    # given an invoice the deal sync knows
    stack = Stack(tmp_path)
    stack.publishes("qbo_ingest", Envelope.from_eventbridge(copy.deepcopy(INVOICE_CHANGED)))
    # when the deal sync fails it (it comes back after the visibility timeout)
    stack.handled("hubspot_deal_sync", "failed")
    # then the line names the QBO change, the flow and the error
    (line,) = stack.lines()
    assert line[10:].startswith("-        Invoice 1042 ✗ deal sync: FAILED Boom: QBO read timed out")


def test_a_webhook_the_gateway_refuses_is_a_line(tmp_path):
    stack = Stack(tmp_path)
    stack.hops.request(
        RequestRecord("r-1", "POST", "/v1/webhooks/qbo", "POST /v1/webhooks/qbo", "qbo_ingest", 401, 4.0)
    )
    (line,) = stack.lines()
    assert "webhook refused: 401 to POST /v1/webhooks/qbo (4 ms)" in line


def test_what_the_document_sync_wrote_in_qbo_is_a_line(tmp_path):
    # given a HubSpot deal's stage change on the bus
    stack = Stack(tmp_path)
    entry = {
        "Source": EventSource.HUBSPOT_INGEST,
        "DetailType": DetailType.HUBSPOT_DEAL_CHANGED,
        "EventBusName": BUS,
    }
    entry["Detail"] = json.dumps(
        {
            "correlation_id": CORRELATION,
            "event_id": "e-1",
            "payload": {
                "connection": "main",
                "object_type": "deal",
                "object_id": "91014",
                "change": "stage_changed",
            },
        }
    )
    message = worker._aws_call_message("events", "PutEvents", {"Entries": [entry]})
    stack.hops.call(_runtime("hubspot_ingest"), "req", {**message, "phase": "start"})
    # when the document sync creates the deal's estimate in QBO
    stack.calls(
        "qbo_document_sync",
        "POST",
        f"{QBO}/v3/company/9341453050117437/estimate",
        200,
        created_entity="Estimate",
        created_id="148",
        created_number="HSE-1001",
    )
    stack.handled("qbo_document_sync")
    # then one line says what the deal became in QBO
    (line,) = stack.lines()
    assert line[10:] == "main     HubSpot deal 91014 (stage_changed) → QBO Estimate HSE-1001 written"


class _Response:
    def __init__(self, body: Any, content_type: str = "application/json; charset=utf-8") -> None:
        self.headers = {"Content-Type": content_type}
        self._body = body

    def json(self) -> Any:
        if isinstance(self._body, str):
            raise ValueError("not JSON")
        return self._body


def test_the_worker_reports_what_a_post_created_by_its_identifiers_only():
    assert worker.created_identity(_Response({"id": "AAMk=", "subject": "x"})) == {"created_id": "AAMk="}
    qbo = {"Estimate": {"Id": "148", "DocNumber": "HSE-1001", "TotalAmt": 10}, "time": "2026-12-02"}
    assert worker.created_identity(_Response(qbo)) == {
        "created_entity": "Estimate",
        "created_id": "148",
        "created_number": "HSE-1001",
    }
    assert worker.created_identity(_Response({"access_token": "secret"})) == {}
    assert worker.created_identity(_Response("<html>", "text/html")) == {}


def test_a_failing_view_never_stops_a_hop(tmp_path):
    # given a listener that fails
    def broken(_hop: object) -> None:
        raise KeyError("surprise")

    console = io.StringIO()
    hops = HopLog(stream=console, path=tmp_path / "events.jsonl", hop_lines=False, listeners=[broken])
    # when a hop is recorded, then it is in the log and the failure is said, not raised
    hops.record("schedule", "ledgerlink-local-followup-sweep fired", "e-1")
    assert [hop.step for hop in read_hops(tmp_path / "events.jsonl")] == ["schedule"]
    assert "(record lines: KeyError: 'surprise')" in console.getvalue()
