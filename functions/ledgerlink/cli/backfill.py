"""``ledgerlink backfill``: sync a connection's QBO history into HubSpot through the deal sync.

``ledgerlink backfill --connection NAME [--since DATE] [--entities Customer,Estimate,Invoice,Payment]``
pages through every matching QBO document and hands it to the QBO → HubSpot deal sync in-process, with
the same mapping, matching, crosswalk and exactly-once rules as live traffic (docs/backfill.md): a run
next to live traffic, a second run or a resumed one writes nothing twice. Its clients draw on the same
DynamoDB-backed rate limits as the Lambdas, so live traffic and the backfill share one budget.

Progress is kept in a checkpoint per connection (vendor-state table): a run continues the unfinished
job (stop it with Ctrl-C or kill it, run it again); ``--restart`` starts over; other arguments than the
unfinished job's are refused unless ``--restart``. ``ledgerlink backfill status [--connection NAME]``
prints the checkpoint.

It runs against the local stack or AWS, found as every operator command finds it
(:mod:`ledgerlink.cli.endpoints`), with the qbo_backfill function's settings there (the deal
sync's, plus its job queue). ``--in-aws`` sends the job to that queue instead of running it here. On a terminal
it shows one updating progress line, otherwise a plain line per page (at most every 10 s); it ends
with a table per entity: seen, written, already synced, unchanged, failed. Exit status 0 when the job
finished with no failure, 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, silence_closed_pipe
from ledgerlink.cli.endpoints import (
    DEFAULT_STATE_DIR,
    Endpoint,
    EndpointError,
    aws_client,
    function_settings,
    resolve_endpoint,
)

if TYPE_CHECKING:
    from ledgerlink.config import Settings
    from ledgerlink.configfile import DeploymentConfig
    from ledgerlink.deal_sync.backfill import BackfillOptions

# The function whose settings the backfill runs with (infra/topology.py key): the backfill job's, which
# are the deal sync's plus the job queue's name.
BACKFILL_FUNCTION = "qbo_backfill"
SERVICES = ("dynamodb", "events", "secretsmanager", "sqs")


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--aws", action="store_true", help="run against AWS even when a local stack is running"
    )
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--connection", metavar="NAME", help="the connection to backfill")
    parser.add_argument(
        "--since", metavar="DATE", help="only documents last updated at or after this ISO date"
    )
    parser.add_argument(
        "--entities",
        metavar="LIST",
        default="Customer,Estimate,Invoice,Payment",
        help="comma-separated QBO entities (default: all four, read in this order)",
    )
    parser.add_argument("--restart", action="store_true", help="start over instead of continuing the job")
    parser.add_argument(
        "--in-aws",
        action="store_true",
        help="run it as a job in AWS (the qbo_backfill Lambda re-enqueues itself) instead of in this process",
    )
    _where(parser)
    parser.set_defaults(func=run_backfill_command)
    commands = parser.add_subparsers(dest="command", metavar="<command>")
    status = commands.add_parser("status", help="print the backfill checkpoint of each connection (or one)")
    status.add_argument("--connection", metavar="NAME", help="this connection only")
    _where(status)
    status.set_defaults(func=run_status_command)


def _context(args: argparse.Namespace, out: TextIO) -> tuple[Endpoint, Settings, DeploymentConfig, str]:
    endpoint = resolve_endpoint(
        args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
    )
    print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
    settings, config, source = function_settings(endpoint, Path(args.state_dir), BACKFILL_FUNCTION)
    return endpoint, settings, config, source


def run_backfill_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ledgerlink.deal_sync.backfill import BackfillError, BackfillOptions
    from ledgerlink.deal_sync.backfill_checkpoint import CheckpointConflict
    from ledgerlink.deal_sync.backfill_progress import ProgressView, summary_lines

    if not args.connection:
        print("ledgerlink backfill: name the connection to backfill (--connection NAME)", file=sys.stderr)
        return EXIT_FAILED
    view = ProgressView(out, tty=_is_tty(out), clock=time.monotonic)
    try:
        endpoint, settings, config, source = _context(args, out)
        options = BackfillOptions(
            since=args.since,
            entities=tuple(e.strip() for e in args.entities.split(",") if e.strip()),
            restart=args.restart,
        )
        if args.in_aws:
            return _start_job(args, options, endpoint, settings, config, out)
        print(f"backfilling {args.connection} with the settings of {source}", file=out, flush=True)
        from ledgerlink.deal_sync.backfill_run import build_backfill, run_backfill
        from ledgerlink.secrets import PowertoolsSecretStore

        run = build_backfill(
            settings,
            config,
            args.connection,
            secrets=PowertoolsSecretStore(max_age_seconds=0, client=aws_client("secretsmanager", endpoint)),
            options=options,
            dynamodb=aws_client("dynamodb", endpoint),
            events=aws_client("events", endpoint),
            progress=view.update,
        )
        checkpoint = run_backfill(run)
        view.end()
        for line in summary_lines(checkpoint):
            print(line, file=out)
        out.flush()
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_OK
    except (EndpointError, BackfillError, CheckpointConflict) as error:
        view.end()
        print(f"ledgerlink backfill: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS, QBO and the flow's errors: say what failed, no traceback
        view.end()
        print(f"ledgerlink backfill: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    failed = sum(counts.failed for counts in checkpoint.counts.values())
    if failed:
        print(f"ledgerlink backfill: {failed} document(s) failed (listed above)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _start_job(
    args: argparse.Namespace,
    options: BackfillOptions,
    endpoint: Endpoint,
    settings: Settings,
    config: DeploymentConfig,
    out: TextIO,
) -> int:
    """Send the job's start to the backfill-jobs queue; the qbo_backfill Lambda runs it."""
    from ledgerlink.deal_sync.backfill import BackfillError
    from ledgerlink.deal_sync.backfill_job import JobMessage, SqsJobQueue
    from ledgerlink.deal_sync.backfill_run import find_connection

    checked = options.checked()
    find_connection(config, args.connection)
    if not settings.backfill_queue_name:
        raise BackfillError("no LEDGERLINK_BACKFILL_QUEUE_NAME in the qbo-backfill function's settings")
    message = JobMessage(
        args.connection, since=checked.since, entities=checked.entities, restart=checked.restart
    )
    SqsJobQueue(aws_client("sqs", endpoint), settings.backfill_queue_name).send(message)
    print(
        f"backfill of {args.connection} sent to {settings.backfill_queue_name}; follow it with "
        f"`ledgerlink backfill status --connection {args.connection}`",
        file=out,
    )
    return EXIT_OK


def run_status_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ledgerlink.deal_sync.backfill_progress import summary_lines
    from ledgerlink.deal_sync.backfill_run import checkpoint_store

    try:
        endpoint, settings, config, _ = _context(args, out)
        names = [c.name for c in config.connections]
        if args.connection is not None:
            if args.connection not in names:
                raise EndpointError(
                    f"no connection {args.connection!r} in {config.source} (connections: {', '.join(names)})"
                )
            names = [args.connection]
        store = checkpoint_store(settings, aws_client("dynamodb", endpoint))
        for name in names:
            checkpoint = store.get(name)
            if checkpoint is None:
                print(f"{name}: no backfill", file=out)
                continue
            for line in summary_lines(checkpoint):
                print(line, file=out)
            print(f"  started {checkpoint.started_at}, updated {checkpoint.updated_at}", file=out)
        out.flush()
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_OK
    except EndpointError as error:
        print(f"ledgerlink backfill status: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS errors: say what failed, no traceback
        print(f"ledgerlink backfill status: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _is_tty(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
