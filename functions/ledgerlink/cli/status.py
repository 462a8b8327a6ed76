"""``ledgerlink status``: sync health of a connection, against the local stack or AWS.

Prints the queues and their dead-letter queues (depths), the failures among the connection's recent
records grouped by reason category with the fix each needs, and the recent records themselves: the
source document by its number (``Invoice 1006``, not QBO's internal id alone), the outcome, the deal
and its stage, the Outlook event, the Teams meeting, the QBO estimate / invoice, when a waiting retry
runs again, and why. The records are the sync history (:mod:`ledgerlink.history`, docs/status.md).

``--wide`` never truncates a cell (reasons are printed whole); ``--format json`` prints everything as
one JSON document. ``--limit N`` reads the newest N records (default 50).

Where it reads is found as every operator command finds it (:mod:`ledgerlink.cli.endpoints`): the local
stack of ``--state-dir`` (its links table and ``local/config/local.toml``), or AWS (``--aws``, or no
local stack) / ``--endpoint-url``: the links table ``LEDGERLINK_LINKS_TABLE_NAME``, the connections of
``LEDGERLINK_CONFIG_FILE`` (only needed without ``--connection``), and the queues whose names start with
``--queue-prefix`` (default ``ledgerlink-``; ``ledgerlink-<stage>-`` for one stage).

Exit status 0 when everything was read, 1 when something could not be, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, silence_closed_pipe
from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR, EndpointError, aws_client, resolve_endpoint

if TYPE_CHECKING:
    from ledgerlink.history import HistoryRow

SERVICES: Final = ("sqs", "dynamodb")
DEFAULT_QUEUE_PREFIX: Final = "ledgerlink-"
NARROW_MAX_WIDTH: Final = 60
# What each reason category needs from the operator (docs/status.md#reason-categories).
FIXES: Final[dict[str, str]] = {
    "auth": "reconnect the account (ledgerlink connect ...); the records are retried or in the DLQ",
    "rate_limited": "nothing: it runs again when the vendor's window opens (ledgerlink retry runs it now)",
    "vendor_down": "nothing while the vendor is down: it runs again by itself (ledgerlink retry runs it now)",
    "mapping": "fix the configuration or the document (stage map, currency, totals), then ledgerlink dlq replay",
    "validation": "fix the record the vendor refused, then ledgerlink dlq replay",
    "conflict": "nothing: a concurrent change; it is retried",
    "not_found": "the record, mailbox or object is gone: check it exists, then ledgerlink dlq replay",
    "bug": "a LedgerLink bug: report it with the trace; ledgerlink dlq replay after the fix",
}


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], max_width: int | None = 48) -> str:
    """A plain-text table, columns as wide as their widest cell (cut at ``max_width``; None: never)."""
    cells = [[str(cell) for cell in headers]] + [[str(cell) for cell in row] for row in rows]
    if max_width is not None:
        cells = [
            [cell if len(cell) <= max_width else cell[: max_width - 1] + "…" for cell in row] for row in cells
        ]
    widths = [max(len(row[index]) for row in cells) for index in range(len(headers))]
    lines = ["  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    dlq_name: str | None
    dlq_visible: int
    max_receive_count: int | None


def queue_depths(sqs: Any, prefix: str | None = None) -> list[QueueDepth]:
    """Every queue that has a dead-letter queue (with the latter's depth), then any other non-DLQ queue;
    with ``prefix``, only the queues whose names start with it."""
    options = {"QueueNamePrefix": prefix} if prefix else {}
    urls: list[str] = []
    while True:
        page = sqs.list_queues(**options)
        urls.extend(page.get("QueueUrls", []))
        if not page.get("NextToken"):
            break
        options = {**options, "NextToken": page["NextToken"]}
    attributes = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        for url in urls
    }
    by_arn = {attrs.get("QueueArn"): url for url, attrs in attributes.items()}
    dlq_urls = set()
    depths = []
    for url, attrs in sorted(attributes.items()):
        policy = attrs.get("RedrivePolicy")
        if not policy:
            continue
        redrive = json.loads(policy)
        dlq_url = by_arn.get(redrive.get("deadLetterTargetArn"))
        dlq_urls.add(dlq_url)
        depths.append(
            QueueDepth(
                name=url.rsplit("/", 1)[-1],
                visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                dlq_name=dlq_url.rsplit("/", 1)[-1] if dlq_url else None,
                dlq_visible=int(attributes.get(dlq_url, {}).get("ApproximateNumberOfMessages", 0))
                if dlq_url
                else 0,
                max_receive_count=int(redrive.get("maxReceiveCount", 0)) or None,
            )
        )
    for url, attrs in sorted(attributes.items()):
        if url in dlq_urls or attrs.get("RedrivePolicy"):
            continue
        depths.append(
            QueueDepth(
                name=url.rsplit("/", 1)[-1],
                visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
                in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                dlq_name=None,
                dlq_visible=0,
                max_receive_count=None,
            )
        )
    return depths


# ---- rendering history rows (status and trace)


def _qbo(row: HistoryRow) -> str:
    parts = []
    for label, number, entity_id in (
        ("estimate", row.estimate_number, row.estimate_id),
        ("invoice", row.invoice_number, row.invoice_id),
    ):
        if number or entity_id:
            parts.append(
                f"{label} {number or ''}{f' (Id {entity_id})' if entity_id else ''}".replace("  ", " ")
            )
    return "; ".join(parts) or "-"


def _deal(row: HistoryRow) -> str:
    if not row.deal_id:
        return "-"
    return f"{row.deal_id} ({row.deal_stage})" if row.deal_stage else row.deal_id


def _outcome(row: HistoryRow) -> str:
    text = row.outcome.value.replace("_", "-")
    if row.category:
        text += f" [{row.category.value}]"
    return text


RECORD_HEADERS: Final = (
    "time",
    "flow",
    "record",
    "outcome",
    "deal (stage)",
    "outlook event",
    "teams meeting",
    "qbo",
    "next attempt",
    "correlation id",
    "reason",
)


def record_cells(row: HistoryRow) -> tuple[str, ...]:
    return (
        row.at,
        row.flow.value,
        row.source,
        _outcome(row),
        _deal(row),
        row.outlook_event_id or "-",
        row.teams_meeting_id or "-",
        _qbo(row),
        row.next_attempt_at or "-",
        row.correlation_id or "-",
        row.reason or "-",
    )


def render_records(rows: Sequence[HistoryRow], *, wide: bool) -> str:
    return table(RECORD_HEADERS, (record_cells(row) for row in rows), None if wide else NARROW_MAX_WIDTH)


@dataclass(frozen=True)
class CategoryCount:
    category: str
    records: int
    flows: tuple[str, ...]
    latest_reason: str
    fix: str


def failures_by_category(rows: Iterable[HistoryRow]) -> list[CategoryCount]:
    """The failed and dead-lettered rows, grouped by category, most records first."""
    grouped: dict[str, list[HistoryRow]] = {}
    for row in rows:
        if row.outcome.value in ("failed", "dead_lettered"):
            grouped.setdefault(row.category.value or "bug", []).append(row)
    counts = [
        CategoryCount(
            category,
            len(found),
            tuple(sorted({row.flow.value for row in found})),
            max(found, key=lambda row: row.row_id).reason,
            FIXES.get(category, ""),
        )
        for category, found in grouped.items()
    ]
    return sorted(counts, key=lambda count: (-count.records, count.category))


def render_failures(counts: Sequence[CategoryCount], *, wide: bool) -> str:
    return table(
        ("category", "records", "flows", "latest reason", "fix"),
        ((c.category, str(c.records), ", ".join(c.flows), c.latest_reason, c.fix) for c in counts),
        None if wide else NARROW_MAX_WIDTH,
    )


def render_queues(depths: Sequence[QueueDepth], *, wide: bool) -> str:
    return table(
        ("queue", "waiting", "in flight", "max receives", "dead-letter queue", "dead-lettered"),
        (
            (
                depth.name,
                str(depth.visible),
                str(depth.in_flight),
                str(depth.max_receive_count or "-"),
                depth.dlq_name or "-",
                str(depth.dlq_visible) if depth.dlq_name else "-",
            )
            for depth in depths
        ),
        None if wide else NARROW_MAX_WIDTH,
    )


# ---- the command


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_where(parser: argparse.ArgumentParser) -> None:
    """The flags every history command takes: connection, endpoint, output."""
    parser.add_argument("--connection", metavar="NAME", help="the connection (default: the only one)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    parser.add_argument("--wide", action="store_true", help="never truncate a cell (whole reasons)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="read AWS even when a local stack is running")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_where(parser)
    parser.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="recent records (default 50)"
    )
    parser.add_argument(
        "--queue-prefix",
        default=DEFAULT_QUEUE_PREFIX,
        metavar="PREFIX",
        help="queues whose names start with this (default ledgerlink-)",
    )
    parser.set_defaults(func=run_status_command)


def run_status_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ledgerlink.cli.audit import AuditCommandError, audit_source, choose_connection
    from ledgerlink.history import HistoryStore

    problems: list[str] = []
    try:
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        source = audit_source(endpoint)
        connection = choose_connection(args.connection, source)
    except AuditCommandError as error:
        print(f"ledgerlink status: {error}", file=sys.stderr)
        return error.exit_code
    except EndpointError as error:
        print(f"ledgerlink status: {error}", file=sys.stderr)
        return EXIT_FAILED
    depths: list[QueueDepth] = []
    rows: list[HistoryRow] = []
    try:
        depths = queue_depths(aws_client("sqs", endpoint), None if endpoint.local else args.queue_prefix)
    except Exception as error:  # noqa: BLE001 - the rest of the status stands; say what is missing
        problems.append(f"queues unreadable: {type(error).__name__}: {error}")
    try:
        store = HistoryStore(source.table_name, aws_client("dynamodb", endpoint))
        rows = store.recent(connection, args.limit)
    except Exception as error:  # noqa: BLE001 - as above
        problems.append(f"history unreadable: {type(error).__name__}: {error}")
    counts = failures_by_category(rows)
    try:
        if args.format == "json":
            document = {
                "endpoint": endpoint.url or "AWS",
                "connection": connection,
                "links_table": source.table_name,
                "queues": [asdict(depth) for depth in depths],
                "failures_by_category": [asdict(count) for count in counts],
                "records": [row.to_json() for row in rows],
                "problems": problems,
            }
            print(json.dumps(document, indent=2), file=out)
        else:
            print(
                f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})    connection: {connection}",
                file=out,
            )
            print("\nQueues", file=out)
            print(render_queues(depths, wide=args.wide) if depths else "(none)", file=out)
            print(f"\nFailures by reason (of the last {len(rows)} records)", file=out)
            print(render_failures(counts, wide=args.wide) if counts else "(none)", file=out)
            print(f"\nRecent records (last {len(rows)}, oldest first)", file=out)
            print(render_records(rows, wide=args.wide) if rows else "(none)", file=out)
            for problem in problems:
                print(f"\n({problem})", file=out)
        out.flush()
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_OK
    return EXIT_FAILED if problems else EXIT_OK
