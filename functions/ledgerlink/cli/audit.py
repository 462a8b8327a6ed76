"""``ledgerlink audit deal <DEAL_ID>``: what the HubSpot -> QBO flow decided about a deal, oldest first.

Each row is one audit record (:mod:`ledgerlink.audit`): when, the decision (created, updated,
unchanged, skipped, failed), the QBO document, the deal's stage when it was processed, the estimate's
and the invoice's number/id, and why. ``--format json`` prints every field of every record.
``--limit N`` keeps the newest N.

The records are the connection's (``--connection NAME``; by default the only connection of the
configuration file, and with several, naming one is required). Where they are read is found as every
operator command finds it (:mod:`ledgerlink.cli.endpoints`):

- the local stack of ``--state-dir`` (its ``local.json``): the local links table, the connections
  of ``local/config/local.toml``;
- AWS (``--aws``, or no local stack) or ``--endpoint-url``: the links table
  ``LEDGERLINK_LINKS_TABLE_NAME`` (``ledgerlink-<stage>-links``) and the connections of the file
  ``LEDGERLINK_CONFIG_FILE`` names (``infra/config/<stage>.toml``; only needed without ``--connection``).

Exit status 0 when the history was read (a deal without records too: it says so), 1 when the table
could not be read, 2 for bad usage (no connection chosen, an unknown one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, silence_closed_pipe
from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR, Endpoint, EndpointError, aws_client, resolve_endpoint

if TYPE_CHECKING:
    from ledgerlink.audit import AuditRecord

SERVICES: Final = ("dynamodb",)
HEADERS: Final = ("time", "decision", "document", "stage", "estimate no/id", "invoice no/id", "reason")
# The narrowest a wrapped reason gets on a narrow terminal (beyond it the line wraps on the terminal).
MIN_REASON_WIDTH: Final = 30


class AuditCommandError(RuntimeError):
    """The history cannot be read (no table, unusable settings); the message says what to do."""

    exit_code = EXIT_FAILED


class ConnectionChoiceError(AuditCommandError):
    """No connection named among several, or one the configuration does not have."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class AuditSource:
    """Where the records are: the links table, and the connections of the configuration file (None when
    it could not be read: ``config_problem`` says why)."""

    table_name: str
    connections: tuple[str, ...] | None
    config_source: str | None
    config_problem: str | None = None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    deal = commands.add_parser(
        "deal",
        help="a deal's audit trail: what the HubSpot -> QBO flow decided, and why",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deal.add_argument("deal_id", metavar="DEAL_ID", help="the HubSpot deal id")
    deal.add_argument("--connection", metavar="NAME", help="the connection (default: the only one)")
    deal.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    deal.add_argument("--limit", type=_positive, metavar="N", help="the newest N records only")
    where = deal.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="read AWS even when a local stack is running")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    deal.add_argument("--region", help="AWS region")
    deal.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )
    deal.set_defaults(func=run_audit_deal)


def audit_source(endpoint: Endpoint) -> AuditSource:
    """The links table and connections at ``endpoint`` (module docstring)."""
    from ledgerlink.config import ConfigError, links_table_setting
    from ledgerlink.configfile import deployment_config, load

    if endpoint.local:
        from ledgerlink_local.stack.status import links_table_name
        from ledgerlink_local.stack.wiring import WiringError, local_config_file

        try:
            table = links_table_name()
            config = load(local_config_file())
        except (WiringError, ConfigError) as error:
            raise AuditCommandError(f"the local stack's settings are unusable ({error})") from None
        return AuditSource(table, tuple(c.name for c in config.connections), config.source)
    try:
        table = links_table_setting()
    except ConfigError as error:
        raise AuditCommandError(
            f"no links table ({error}); set LEDGERLINK_LINKS_TABLE_NAME (ledgerlink-<stage>-links), "
            "or run it against the local stack"
        ) from None
    try:
        config = deployment_config()
    except ConfigError as error:
        # Only the default connection needs the file: a connection named on the command line does not.
        return AuditSource(table, None, None, str(error))
    return AuditSource(table, tuple(c.name for c in config.connections), config.source)


def choose_connection(named: str | None, source: AuditSource) -> str:
    if source.connections is None:
        if named is None:
            raise ConnectionChoiceError(
                "name the connection with --connection, or set LEDGERLINK_CONFIG_FILE to the deployment's "
                f"configuration file (infra/config/<stage>.toml): {source.config_problem}"
            )
        return named
    names = ", ".join(source.connections)
    if named is not None:
        if named not in source.connections:
            raise ConnectionChoiceError(
                f"no connection {named!r} in {source.config_source} (connections: {names})"
            )
        return named
    if len(source.connections) != 1:
        raise ConnectionChoiceError(
            f"{source.config_source} has several connections: name one with --connection ({names})"
        )
    return source.connections[0]


def run_audit_deal(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ledgerlink.audit import AuditStore, AuditStoreError

    try:
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        source = audit_source(endpoint)
        connection = choose_connection(args.connection, source)
        store = AuditStore(source.table_name, aws_client("dynamodb", endpoint))
        records = store.history(connection, args.deal_id, limit=args.limit)
    except AuditCommandError as error:
        print(f"ledgerlink audit deal: {error}", file=sys.stderr)
        return error.exit_code
    except (EndpointError, AuditStoreError) as error:
        print(f"ledgerlink audit deal: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS's errors (no credentials, ...): the reason, no traceback
        print(f"ledgerlink audit deal: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.format == "json":
            print(as_json(connection, args.deal_id, source.table_name, records), file=out)
            if not records:
                print(_nothing(args.deal_id, connection), file=sys.stderr)
        else:
            print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
            if not records:
                print(_nothing(args.deal_id, connection), file=out)
            else:
                newest = f", the newest {len(records)}" if args.limit == len(records) else ""
                print(
                    f"deal {args.deal_id} of connection {connection} ({source.table_name}): "
                    f"{len(records)} audit record(s){newest}, oldest first",
                    file=out,
                )
                print(as_table(records, _terminal_width(out)), file=out)
        out.flush()
    except BrokenPipeError:
        # `| head` read what it wanted: stop quietly, and keep the interpreter's last flush from
        # reporting the closed pipe too.
        silence_closed_pipe(out)
    return EXIT_OK


def _nothing(deal_id: str, connection: str) -> str:
    return f"no audit records for deal {deal_id} of connection {connection}"


def as_json(connection: str, deal_id: str, table: str, records: Sequence[AuditRecord]) -> str:
    """Every field of every record (None as null), whole."""
    return json.dumps(
        {
            "connection": connection,
            "deal_id": deal_id,
            "table": table,
            "records": [{**asdict(record), "detail": dict(record.detail)} for record in records],
        },
        indent=2,
        ensure_ascii=False,
    )


def _numbered(number: str | None, document_id: str | None) -> str:
    if number and document_id:
        return f"{number}/{document_id}"
    return number or document_id or "-"


def as_table(records: Sequence[AuditRecord], width: int | None = None) -> str:
    """One row per record; the reason, the last column, given whole, or wrapped onto lines of its own
    column when ``width`` (a terminal's) is too narrow for it. Nothing is ever cut."""
    rows = [
        [
            record.at,
            record.decision.value,
            record.document or "-",
            record.deal_stage or "-",
            _numbered(record.estimate_number, record.estimate_id),
            _numbered(record.invoice_number, record.invoice_id),
        ]
        for record in records
    ]
    widths = [max(len(HEADERS[index]), *(len(row[index]) for row in rows)) for index in range(len(rows[0]))]
    indent = sum(widths) + 2 * len(widths)
    reason_width = max(len(HEADERS[-1]), *(len(record.reason) for record in records))
    if width is not None:
        reason_width = min(reason_width, max(MIN_REASON_WIDTH, width - indent))

    def line(cells: Sequence[str], reason: str) -> str:
        return (
            "  ".join(cell.ljust(widths[index]) for index, cell in enumerate(cells)) + "  " + reason
        ).rstrip()

    lines = [line(HEADERS[:-1], HEADERS[-1]), line(["-" * w for w in widths], "-" * reason_width)]
    for row, record in zip(rows, records, strict=True):
        wrapped = textwrap.wrap(record.reason, reason_width, break_on_hyphens=False) or [""]
        lines.append(line(row, wrapped[0]))
        lines.extend((" " * indent + more).rstrip() for more in wrapped[1:])
    return "\n".join(lines)


def _terminal_width(out: TextIO) -> int | None:
    """The terminal's width when ``out`` is one (reasons wrap to it); None for a pipe or file (whole)."""
    isatty = getattr(out, "isatty", None)
    if not (callable(isatty) and isatty()):
        return None
    return shutil.get_terminal_size().columns
