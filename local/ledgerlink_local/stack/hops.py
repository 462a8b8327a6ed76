"""The hop log: one readable line per hop of every event, and the same records as JSON lines.

A hop is one step an event takes through the choreography: the webhook reaching the gateway, the
raw delivery archived in S3, the event published on the bus, a rule matching it, its queue handing
it to a function, the function's outcome, each vendor call the function made, a message going to a
dead-letter queue (sent by the function itself with its reason, or moved by SQS's redrive after its
last receive). Each line carries the correlation id the event travels with (for the webhook
itself, the gateway's request id, which the ingest function's logger also uses)::

    14:33:17.123  4f0c7b7e-…-a1  published   qbo.entity.changed Invoice/130 Update -> ledgerlink-local-events

The records go to ``<state dir>/events.jsonl`` too, which ``ledgerlink local status`` reads.
Which rule matched is decided by moto's own pattern matcher (the code that delivers the event), so
the line and the delivery cannot disagree.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from ledgerlink_local.stack.front import RequestRecord
    from ledgerlink_local.stack.runtime import FunctionRuntime, InvocationResult

STEP_WIDTH: Final = 11
CORRELATION_WIDTH: Final = 36  # a UUID; the gateway's request ids are shorter
NO_CORRELATION: Final = "-"
# What a vendor call created (ledgerlink_local.stack.worker.created_identity), kept in its hop's details.
CREATED_FIELDS: Final = ("created_id", "created_entity", "created_number")


@dataclass(frozen=True)
class Hop:
    at: str
    step: str
    text: str
    correlation_id: str | None = None
    outcome: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        clock = self.at[11:23]  # HH:MM:SS.mmm
        correlation = self.correlation_id or NO_CORRELATION
        return f"{clock}  {correlation:<{CORRELATION_WIDTH}}  {self.step:<{STEP_WIDTH}} {self.text}"


@dataclass(frozen=True)
class RuleRoute:
    """A rule on a bus and the queue it delivers to, with moto's matcher for its pattern."""

    name: str
    bus: str
    pattern_json: str
    queue: str


class HopLog:
    """Thread-safe: the gateway, the pollers and every worker's reader thread write here."""

    def __init__(
        self,
        *,
        stream: TextIO | None,
        path: Path | None,
        rules: Iterable[RuleRoute] = (),
        vendors: Mapping[str, str] | None = None,
        raw_bucket: str = "",
        account: str = "123456789012",
        region: str = "us-east-1",
        verbose: bool = False,
        dead_letter_queues: Iterable[str] = (),
        hop_lines: bool = True,
        listeners: Iterable[Callable[[Hop], None]] = (),
    ) -> None:
        from moto.events.models import EventPattern

        self._stream = stream
        self._path = path
        self._rules = [(rule, EventPattern.load(rule.pattern_json)) for rule in rules]
        # base URL -> vendor name, longest first so that a path prefix wins over its host.
        self._vendors = sorted((vendors or {}).items(), key=lambda item: -len(item[0]))
        self._raw_bucket = raw_bucket
        self._account = account
        self._region = region
        self.verbose = verbose
        # False: hops go to the log file and the listeners only (``make run``'s one line per record).
        self.hop_lines = hop_lines
        self._listeners = list(listeners)
        self._lock = threading.Lock()
        # Lambda request id -> labels (correlation ids) of the records of the batch it processes.
        self._invocations: dict[str, list[str]] = {}
        self._dead_letter_queues = frozenset(dead_letter_queues)
        # Lambda request id -> labels of the records that invocation sent to a dead-letter queue.
        self._sent_to_dead_letter: dict[str, set[str]] = {}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    # ---- writing

    def record(self, step: str, text: str, correlation_id: str | None = None, **details: Any) -> Hop:
        outcome = details.pop("outcome", None)
        hop = Hop(
            at=datetime.now(UTC).isoformat(timespec="milliseconds"),
            step=step,
            text=text,
            correlation_id=correlation_id,
            outcome=outcome,
            details=details,
        )
        with self._lock:
            if self._stream is not None and self.hop_lines:
                self._stream.write(hop.line() + "\n")
                self._stream.flush()
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as log:
                    log.write(json.dumps(asdict(hop), default=str, separators=(",", ":")) + "\n")
            # Under the lock, so listeners hear the hops in the order they were written.
            for listener in self._listeners:
                try:
                    listener(hop)
                except Exception as error:  # noqa: BLE001 - a view of the hops must never stop a hop
                    if self._stream is not None:
                        self._stream.write(f"(record lines: {type(error).__name__}: {error})\n")
        return hop

    def note(self, text: str) -> None:
        """A line about the stack itself (not an event hop); goes to the console only."""
        with self._lock:
            if self._stream is not None:
                self._stream.write(text + "\n")
                self._stream.flush()

    # ---- what the gateway, the workers and the pollers report

    def request(self, record: RequestRecord) -> None:
        """A request reaching a route ("in"), and the gateway's answer to every request ("out")."""
        if record.phase == "in":
            self.record(
                "webhook",
                f"{record.method} {record.path} ({record.body_bytes} bytes) -> {record.function}",
                record.request_id,
                request_id=record.request_id,
                route=record.route_key,
                function=record.function,
            )
            return
        status = record.status or 0
        text = f"{status} to {record.method} {record.path} ({record.duration_ms:.0f} ms)"
        if record.error:
            text += f"; function failed: {record.error}"
        self.record(
            "response" if record.function else "gateway",
            text,
            record.request_id,
            outcome="ok" if status < 400 else "failed",
            request_id=record.request_id,
            status=status,
            route=record.route_key,
            function=record.function,
        )

    def begin_invocation(self, request_id: str, labels: list[str]) -> None:
        """The records an invocation processes, so its calls can be attributed to them."""
        with self._lock:
            self._invocations[request_id] = labels

    def end_invocation(self, request_id: str) -> None:
        with self._lock:
            self._invocations.pop(request_id, None)

    def _invocation_label(self, request_id: str) -> str | None:
        """A call made while processing one record belongs to that record's event; a call made for a
        batch of several (HubSpot batch upserts) is labelled with the invocation's request id."""
        with self._lock:
            labels = self._invocations.get(request_id)
        if labels and len(labels) == 1:
            return labels[0]
        return request_id or None

    def call(self, runtime: FunctionRuntime, request_id: str, message: Mapping[str, Any]) -> None:
        """One AWS API call or HTTP request a function made (a ``call`` message of the worker)."""
        correlation = message.get("correlation_id") or self._invocation_label(request_id)
        failure = "" if message.get("ok") else f" FAILED ({message.get('error') or message.get('status')})"
        if message.get("kind") == "http":
            vendor = self._vendor(str(message.get("url", "")))
            path = self._vendor_path(str(message.get("url", "")))
            status = message.get("status", message.get("error"))
            self.record(
                "vendor",
                f"{vendor} {message.get('method')} {path} -> {status} ({message.get('ms')} ms)",
                correlation,
                outcome="ok" if message.get("ok") else "failed",
                function=runtime.key,
                vendor=vendor,
                status=message.get("status"),
                request_id=request_id,
                method=message.get("method"),
                path=path,
                **{key: message[key] for key in CREATED_FIELDS if message.get(key)},
            )
            return
        service, operation = message.get("service"), message.get("operation")
        if service == "s3" and operation == "PutObject" and self._is_raw(str(message.get("resource", ""))):
            self.record(
                "archived",
                f"s3://{message.get('resource')}{failure}",
                correlation,
                outcome="ok" if message.get("ok") else "failed",
                function=runtime.key,
            )
        elif (
            service == "sqs"
            and operation in ("SendMessage", "SendMessageBatch")
            and message.get("resource") in self._dead_letter_queues
        ):
            self._dead_lettered(runtime, request_id, message, correlation)
        elif service == "events" and operation == "PutEvents":
            if message.get("phase") == "start":
                self._published(runtime, message, correlation)
            elif not message.get("ok") or message.get("failed_entry_count"):
                refused = message.get("failed_entry_count") or len(message.get("entries", []))
                self.record(
                    "published",
                    f"FAILED: {refused} of {len(message.get('entries', []))} entries not accepted"
                    f" ({message.get('error') or 'refused by EventBridge'}); the function retries",
                    correlation,
                    outcome="failed",
                    function=runtime.key,
                )
        elif self.verbose:
            resource = f" {message['resource']}" if message.get("resource") else ""
            self.record("aws", f"{service} {operation}{resource}{failure}", correlation, function=runtime.key)

    def _dead_lettered(
        self, runtime: FunctionRuntime, request_id: str, message: Mapping[str, Any], fallback: str | None
    ) -> None:
        """A function sent records to a dead-letter queue itself (with their reasons), or failed to."""
        queue = str(message.get("resource"))
        refused = set(message.get("failed_ids") or [])
        for entry in message.get("entries", []):
            label = entry.get("correlation_id") or fallback
            kind = entry.get("kind") or "?"
            reason = entry.get("reason") or "no reason attached"
            receive = f", receive {entry['receive_count']}" if entry.get("receive_count") else ""
            if message.get("ok") and entry.get("id") not in refused:
                with self._lock:
                    self._sent_to_dead_letter.setdefault(request_id, set()).add(str(label))
                self.record(
                    "dead-letter",
                    f"{runtime.key} sent it to {queue} ({kind}{receive}): {reason}",
                    label,
                    outcome="dead-letter",
                    function=runtime.key,
                    queue=queue,
                    kind=kind,
                    reason=reason,
                )
            else:
                error = message.get("error") or "refused by SQS"
                self.record(
                    "dead-letter",
                    f"{runtime.key} could not send it to {queue} ({error}); SQS delivers it again",
                    label,
                    outcome="failed",
                    function=runtime.key,
                    queue=queue,
                    kind=kind,
                    reason=reason,
                )

    def _published(self, runtime: FunctionRuntime, message: Mapping[str, Any], fallback: str | None) -> None:
        for entry in message.get("entries", []):
            correlation = entry.get("correlation_id") or fallback
            payload = entry.get("payload") or {}
            self.record(
                "published",
                f"{entry.get('detail_type')}{event_subject(payload)} -> {entry.get('bus')}"
                + (f" (delivery {payload['delivery_id']})" if payload.get("delivery_id") else ""),
                correlation,
                outcome="ok",
                function=runtime.key,
                event_id=entry.get("event_id"),
                detail_type=entry.get("detail_type"),
                entity=payload.get("entity"),
                entity_id=payload.get("entity_id"),
                operation=payload.get("operation"),
                delivery_id=payload.get("delivery_id"),
                invoice_id=payload.get("invoice_id"),
                invoice_key=payload.get("invoice_key"),
                status=payload.get("status"),
                action=payload.get("action"),
                rule=payload.get("rule"),
                connection=payload.get("connection"),
                realm_id=payload.get("realm_id"),
                doc_number=payload.get("doc_number"),
                deal_id=payload.get("deal_id"),
                deal_stage=payload.get("deal_stage"),
                calendar_event_id=payload.get("event_id"),
                object_type=payload.get("object_type"),
                object_id=payload.get("object_id"),
                change=payload.get("change"),
            )
            if isinstance(entry.get("event"), Mapping):
                self._route(entry["event"], str(entry.get("bus")), correlation)

    def _route(self, partial: Mapping[str, Any], bus: str, correlation: str | None) -> None:
        event = {
            "version": "0",
            "id": "local",
            "account": self._account,
            "region": self._region,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resources": [],
            **partial,
        }
        matched = False
        for rule, pattern in self._rules:
            if rule.bus == bus and pattern.matches_event(event):  # type: ignore[arg-type]
                matched = True
                self.record(
                    "rule",
                    f"{rule.name} matched -> queue {rule.queue}",
                    correlation,
                    rule=rule.name,
                    queue=rule.queue,
                )
        if not matched:
            self.record("rule", f"no rule on {bus} matches; the event ends here", correlation, outcome="ok")

    def invocation(
        self,
        function: str,
        result: InvocationResult,
        records: Iterable[tuple[str, str]],
        *,
        dead_lettered: Iterable[str] = (),
    ) -> None:
        """A function's outcome for each record of a batch: ``(correlation id, "ok"|"retry"|"failed")``."""
        records = list(records)
        batch = f"batch of {len(records)}, " if len(records) > 1 else ""
        timing = f"({batch}{result.duration_ms:.0f} ms)"
        with self._lock:
            sent_to_dead_letter = self._sent_to_dead_letter.pop(result.request_id, set())
        for correlation, outcome in records:
            if outcome == "failed":
                text = (
                    f"{function} FAILED {result.error_type}: {result.error_message} {timing}; "
                    "returns after the visibility timeout"
                )
            elif outcome == "retry":
                text = f"{function} reported this record failed {timing}; returns after its retry delay"
            elif correlation in sent_to_dead_letter:
                text = f"{function} ok {timing}: dead-lettered with its reason, so SQS deletes it here"
            else:
                text = f"{function} ok {timing}"
            self.record(
                "handler", text, correlation, outcome=outcome, function=function, request_id=result.request_id
            )
        for correlation in dead_lettered:
            self.record(
                "dead-letter",
                f"{function}: receives exhausted; SQS moves the message to the dead-letter queue",
                correlation,
                outcome="dead-letter",
                function=function,
            )

    # ---- helpers

    def _vendor(self, url: str) -> str:
        for base, name in self._vendors:
            if url.startswith(base):
                return name
        return "http"

    @staticmethod
    def _vendor_path(url: str) -> str:
        return urllib.parse.urlsplit(url).path or "/"

    def _is_raw(self, resource: str) -> bool:
        return not self._raw_bucket or resource.startswith(self._raw_bucket + "/")


def event_subject(payload: Mapping[str, Any]) -> str:
    """What an event is about, for its hop line: `` Invoice/130 Update`` (a QBO change), `` Invoice/130
    paid`` (a deal.synced: the invoice's status), `` Invoice/130 created`` (a calendar.synced: what was
    done to its calendar event), `` Invoice/130 past_due_1`` (a followup.due: its invoice key's id and the
    follow-up rule that came due), `` deal/91027 stage_changed`` (a hubspot.deal.changed: the HubSpot
    object and the change); empty for an event with none of these fields."""
    if payload.get("object_type") and payload.get("change"):
        return f" {payload['object_type']}/{payload.get('object_id')} {payload['change']}"
    if payload.get("entity"):
        subject = f" {payload['entity']}/{payload.get('entity_id')}"
    elif payload.get("invoice_id"):
        subject = f" Invoice/{payload['invoice_id']}"
    elif payload.get("invoice_key"):
        subject = f" Invoice/{str(payload['invoice_key']).split(':', 1)[-1]}"  # <realm>:<Invoice.Id>
    else:
        subject = ""
    state = payload.get("operation") or payload.get("action") or payload.get("status") or payload.get("rule")
    return subject + (f" {state}" if state else "")


def read_hops(path: Path, limit: int = 2000) -> list[Hop]:
    """The last ``limit`` hops of an event log (a missing log has none)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    hops = []
    for line in lines:
        try:
            data = json.loads(line)
            hops.append(Hop(**data))
        except (ValueError, TypeError):
            continue
    return hops
