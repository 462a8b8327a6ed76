"""``ledgerlink trace invoice <DocNumber or Id>`` and ``ledgerlink trace deal <id>``: every hop of a
record across the four flows, in time order.

A hop is one sync-history row (:mod:`ledgerlink.history`): one attempt of one flow at one record, with
its outcome, reason category and reason, time, correlation id and, for a failure waiting for its
redelivery, when it runs again. ``trace invoice`` finds the invoice by DocNumber or QBO Id (``realm:Id``
too) and adds the hops of its deal (the HubSpot -> QBO flow's); ``trace deal`` adds the hops of the QBO
documents the deal's rows name. Typical order for an invoice: deal sync (QBO -> HubSpot deal), calendar
sync (Outlook event), follow-ups (Teams meeting); for a deal: document sync (HubSpot -> QBO estimate /
invoice), then the invoice's hops.

Flags, endpoints and connections as ``ledgerlink status`` (``--connection``, ``--format json``,
``--wide``, ``--aws`` / ``--endpoint-url``, ``--state-dir``). Exit status 0 when hops were found, 1
when none were (or the table could not be read), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, silence_closed_pipe
from ledgerlink.cli.endpoints import EndpointError, aws_client, resolve_endpoint
from ledgerlink.cli.status import add_where, render_records

if TYPE_CHECKING:
    from ledgerlink.history import HistoryRow, HistoryStore

SERVICES: Final = ("dynamodb",)


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    invoice = commands.add_parser(
        "invoice",
        help="every hop of an invoice (by DocNumber or Id), in time order",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    invoice.add_argument("reference", metavar="DOCNUMBER_OR_ID", help="the invoice's DocNumber or QBO Id")
    add_where(invoice)
    invoice.set_defaults(func=run_trace_command, kind="invoice")
    deal = commands.add_parser(
        "deal",
        help="every hop of a HubSpot deal and its QBO documents, in time order",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deal.add_argument("reference", metavar="DEAL_ID", help="the HubSpot deal id")
    add_where(deal)
    deal.set_defaults(func=run_trace_command, kind="deal")


class TraceError(RuntimeError):
    """The trace cannot be read; the message says what to do (``exit_code``)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def open_history(args: argparse.Namespace, command: str) -> tuple[HistoryStore, str, str]:
    """The history store, the connection and where they are (``ledgerlink status``'s rules)."""
    from ledgerlink.cli.audit import AuditCommandError, audit_source, choose_connection
    from ledgerlink.history import HistoryStore

    try:
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        source = audit_source(endpoint)
        connection = choose_connection(args.connection, source)
    except AuditCommandError as error:
        raise TraceError(str(error), error.exit_code) from None
    except EndpointError as error:
        raise TraceError(str(error)) from None
    store = HistoryStore(source.table_name, aws_client("dynamodb", endpoint))
    return store, connection, f"{endpoint.url or 'AWS'} (from {endpoint.source})"


def trace_rows(store: HistoryStore, connection: str, kind: str, reference: str) -> list[HistoryRow]:
    if kind == "invoice":
        return store.trace_invoice(connection, reference)
    return store.trace_deal(connection, reference)


def run_trace_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        store, connection, where = open_history(args, "trace")
        rows = trace_rows(store, connection, args.kind, args.reference)
    except TraceError as error:
        print(f"ledgerlink trace {args.kind}: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:  # noqa: BLE001 - AWS's errors: the reason, no traceback
        print(f"ledgerlink trace {args.kind}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.format == "json":
            document = {
                "connection": connection,
                "kind": args.kind,
                "reference": args.reference,
                "hops": [row.to_json() for row in rows],
            }
            print(json.dumps(document, indent=2), file=out)
        elif not rows:
            print(
                f"no history for {args.kind} {args.reference} in connection {connection} ({where}); "
                "rows expire after LEDGERLINK_HISTORY_TTL_DAYS",
                file=out,
            )
        else:
            print(f"{args.kind} {args.reference}, connection {connection}: {len(rows)} hops", file=out)
            print(render_records(rows, wide=args.wide), file=out)
        out.flush()
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_OK
    return EXIT_OK if rows else EXIT_FAILED
