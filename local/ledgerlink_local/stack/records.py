"""``make run``'s default view: one line per record outcome, built from the hops (``--verbose`` shows them).

A record is a QBO invoice (``<realm>:<Invoice.Id>``) on its way through the flows. Each time one of
them changes what the invoice became, the record's line is printed again, whole, with what changed::

    11:47:55  demo     Invoice 1007 (overdue) → deal 91017, stage Invoice Overdue; event —; meeting —   [deal synced]
    11:47:55  demo     Invoice 1007 (overdue) → deal 91017, stage Invoice Overdue; event AAMkAGxiHvNb…; meeting —   [event created]
    11:47:55  demo     Invoice 1007 (overdue) → deal 91017, stage Invoice Overdue; event AAMkAGxiHvNb…; meeting AAMkAGh90fn1…   [meeting created]

so the newest line of an invoice is all of it. What each part comes from: the deal sync's
``ledgerlink.deal.synced`` (the invoice's status, its deal and the deal's stage, named by its label in
the HubSpot sandbox's pipelines as the stack started, else by its id), the calendar sync's ``ledgerlink.calendar.synced`` (the Outlook event's
Graph id, or ``removed``), the Teams invite's Graph calls (the meeting it created, updated or
cancelled: ``POST .../events``, ``PATCH .../events/<id>``, ``POST .../events/<id>/cancel``). A
line that would say nothing new (the same event delivered twice) is not printed again.

Also one line each: the HubSpot -> QBO document sync's writes (``HubSpot deal 91014 (stage_changed)
→ QBO Estimate 1007 created``), a record a function failed (it retries) or dead-lettered (with the
reason and the replay command), and a webhook the gateway or an ingest refused (401, 429, ...).
Changes that reach no invoice and need no action (a customer update, the deal sync's own HubSpot
writes coming back as webhooks, a sweep with nothing due) print nothing; ``--verbose`` shows every hop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from ledgerlink_local.stack.hops import Hop

NONE: Final = "—"
ID_SHOWN: Final = 12  # Graph ids are ~150 characters; the line shows their start (the hop log has all)
FLOWS: Final = {
    "hubspot_deal_sync": "deal sync",
    "outlook_calendar_sync": "calendar sync",
    "teams_invite": "Teams invite",
    "qbo_document_sync": "document sync",
    "qbo_ingest": "QBO ingest",
    "hubspot_ingest": "HubSpot ingest",
    "qbo_catchup": "QBO catch-up",
    "qbo_reconcile": "QBO reconcile",
}
# How many events and invoices the view remembers (the oldest are forgotten first): a day of the demo is
# far fewer; a forgotten invoice's next line starts again from what that event says.
MAX_REMEMBERED: Final = 20_000
_EVENT_PATH: Final = re.compile(r"/events/([^/]+)(/cancel)?$")


@dataclass
class InvoiceRecord:
    label: str
    connection: str = ""
    status: str | None = None
    deal: str | None = None
    stage: str | None = None
    event: str | None = None
    meeting: str | None = None

    def line(self, stage_labels: Mapping[str, str] | None = None) -> str:
        status = f" ({self.status})" if self.status else ""
        if self.deal is None:
            deal = f"deal {NONE}"
        else:
            stage = (stage_labels or {}).get(self.stage or "", self.stage)
            deal = f"deal {self.deal}, stage {stage or NONE}"
        return f"{self.label}{status} → {deal}; event {_short(self.event)}; meeting {_short(self.meeting)}"


class RecordLines:
    """A :class:`~ledgerlink_local.stack.hops.HopLog` listener printing :mod:`this module`'s lines.

    It is called under the hop log's lock, one hop at a time, in the order they were written."""

    def __init__(self, stream: TextIO, stage_labels: Mapping[str, str] | None = None) -> None:
        self._stream = stream
        # HubSpot deal stage id -> its label ("880015" -> "Invoice Open"); an unknown stage shows its id.
        self._stage_labels = dict(stage_labels or {})
        self._records: dict[str, InvoiceRecord] = {}
        self._printed: dict[str, str] = {}
        # correlation id -> the invoice its event is about, or what else it is about ("Payment 3").
        self._invoices: dict[str, str] = {}
        self._subjects: dict[str, tuple[str, str]] = {}
        # correlation id -> what the Teams invite / the document sync did, until its handler is done.
        self._meetings: dict[str, str] = {}
        self._documents: dict[str, list[str]] = {}

    def __call__(self, hop: Hop) -> None:
        for remembered in (self._invoices, self._subjects, self._records, self._printed):
            while len(remembered) > MAX_REMEMBERED:
                del remembered[next(iter(remembered))]
        if hop.step == "published" and hop.outcome == "ok":
            self._published(hop)
        elif hop.step == "vendor" and hop.outcome == "ok":
            self._vendor_call(hop)
        elif hop.step == "handler":
            self._handled(hop)
        elif hop.step == "dead-letter":
            self._print(hop, f"{self._subject(hop)} ✗ {hop.text}")
        elif hop.step in ("response", "gateway") and hop.outcome == "failed":
            self._print(hop, f"webhook refused: {hop.text}", connection="")

    # ---- what the flows published

    def _published(self, hop: Hop) -> None:
        details, correlation = hop.details, hop.correlation_id or ""
        kind = details.get("detail_type")
        connection = str(details.get("connection") or "")
        if kind == "qbo.entity.changed":
            self._subjects[correlation] = (f"{details.get('entity')} {details.get('entity_id')}", connection)
            return
        if kind == "hubspot.deal.changed":
            subject = (
                f"HubSpot {details.get('object_type')} {details.get('object_id')} ({details.get('change')})"
            )
            self._subjects[correlation] = (subject, connection)
            return
        key = str(details.get("invoice_key") or "")
        if not key:
            return
        self._invoices[correlation] = key
        if kind == "ledgerlink.followup.due":
            return  # the Teams invite's outcome prints the line
        record = self._record(key, details.get("doc_number"), details.get("invoice_id"), connection)
        if kind == "ledgerlink.deal.synced":
            record.deal = str(details.get("deal_id") or "") or record.deal
            record.stage = details.get("deal_stage") or record.stage
            record.status = details.get("status") or record.status
            self._show(hop, key, "deal synced")
        elif kind == "ledgerlink.calendar.synced":
            action = str(details.get("action") or "")
            record.status = details.get("status") or record.status
            record.event = (
                "removed"
                if action in ("cancelled", "deleted")
                else details.get("calendar_event_id") or record.event
            )
            self._show(hop, key, f"event {action}")

    def _record(self, key: str, doc_number: object, invoice_id: object, connection: str) -> InvoiceRecord:
        record = self._records.get(key)
        if record is None:
            number = str(doc_number or "") or f"Id {invoice_id or key.split(':', 1)[-1]}"
            record = self._records[key] = InvoiceRecord(label=f"Invoice {number}")
        record.connection = connection or record.connection
        return record

    # ---- what the Teams invite and the document sync did (their calls), shown once they are done

    def _vendor_call(self, hop: Hop) -> None:
        details, correlation = hop.details, hop.correlation_id or ""
        function, method, path = (
            details.get("function"),
            details.get("method"),
            str(details.get("path") or ""),
        )
        if function == "teams_invite" and details.get("vendor") == "graph":
            found = _EVENT_PATH.search(path)
            if method == "POST" and path.endswith("/events") and details.get("created_id"):
                self._meetings[correlation] = f"created {details['created_id']}"
            elif method == "POST" and found and found.group(2):
                self._meetings[correlation] = "cancelled"
            elif method == "PATCH" and found and correlation not in self._meetings:
                self._meetings[correlation] = f"updated {found.group(1)}"
        elif function == "qbo_document_sync" and method == "POST" and details.get("created_entity"):
            number = details.get("created_number") or details.get("created_id")
            self._documents.setdefault(correlation, []).append(f"QBO {details['created_entity']} {number}")

    def _handled(self, hop: Hop) -> None:
        correlation = hop.correlation_id or ""
        function = str(hop.details.get("function") or "")
        meeting = self._meetings.pop(correlation, None)
        documents = self._documents.pop(correlation, None)
        if hop.outcome in ("retry", "failed"):
            flow = FLOWS.get(function, function)
            reason = hop.text.removeprefix(function).strip()
            self._print(hop, f"{self._subject(hop)} ✗ {flow}: {reason}")
            return
        if meeting is not None and correlation in self._invoices:
            key = self._invoices[correlation]
            record = self._records.setdefault(key, InvoiceRecord(label=f"Invoice Id {key.split(':', 1)[-1]}"))
            action, _, meeting_id = meeting.partition(" ")
            record.meeting = meeting_id or action
            self._show(hop, key, f"meeting {action}")
        if documents:
            self._print(hop, f"{self._subject(hop)} → {', '.join(documents)} written")

    # ---- printing

    def _subject(self, hop: Hop) -> str:
        correlation = hop.correlation_id or ""
        if correlation in self._invoices and self._invoices[correlation] in self._records:
            return self._records[self._invoices[correlation]].label
        if correlation in self._subjects:
            return self._subjects[correlation][0]
        return f"event {correlation or '?'}"

    def _show(self, hop: Hop, key: str, what: str) -> None:
        record = self._records[key]
        line = record.line(self._stage_labels)
        if self._printed.get(key) == line:
            return  # nothing new (a second delivery of the same change)
        self._printed[key] = line
        self._print(hop, f"{line}   [{what}]", connection=record.connection)

    def _print(self, hop: Hop, text: str, connection: str | None = None) -> None:
        if connection is None:
            correlation = hop.correlation_id or ""
            key = self._invoices.get(correlation)
            connection = (
                self._records[key].connection
                if key in self._records
                else self._subjects.get(correlation, ("", ""))[1]
            )
        self._stream.write(f"{hop.at[11:19]}  {connection or '-':<8} {text}\n")
        self._stream.flush()


def _short(value: str | None) -> str:
    if not value:
        return NONE
    return value if len(value) <= ID_SHOWN + 1 else value[:ID_SHOWN] + "…"
