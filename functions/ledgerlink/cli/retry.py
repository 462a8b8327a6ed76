"""``ledgerlink retry invoice <DocNumber or Id>`` / ``ledgerlink retry deal <id>``: run a record's waiting
retry now instead of when its delay ends.

A record that failed with a retryable error stays in its queue, invisible until the delay the consumer
gave it ends (:mod:`ledgerlink.consumer.redelivery`); its history row says when (``next attempt``) and
holds the receipt handle of that receive and the queue's ARN. This command finds the record's latest
attempt in each flow (:mod:`ledgerlink.history`) and, for each one still waiting, sets the message's
visibility to 0 with ``ChangeMessageVisibility`` and that handle: SQS delivers the same message at once,
with its receive count, idempotency key and correlation id (nothing is re-published, so no duplicate
can appear and the queue's ``maxReceiveCount`` still bounds the retries). AWS documents that a handle
is only valid while its receive is in flight: a record that was delivered again meanwhile (or is done)
answers ``ReceiptHandleIsInvalid`` / ``MessageNotInflight``, and the command says it is no longer
waiting. A dead-lettered record is not waiting: the command names ``ledgerlink dlq replay``.

Flags, endpoints and connections as ``ledgerlink trace``. Exit status 0 when at least one retry was
made due now, 1 when none could be, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK
from ledgerlink.cli.endpoints import aws_client, resolve_endpoint
from ledgerlink.cli.status import add_where
from ledgerlink.cli.trace import TraceError, open_history, trace_rows

if TYPE_CHECKING:
    from ledgerlink.history import HistoryRow

SERVICES: Final = ("sqs", "dynamodb")
# SQS's answers for a handle whose receive is over (delivered again, deleted, or visible already).
NOT_WAITING: Final = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "MessageNotInflight",
        "InvalidParameterValue",
        "AWS.SimpleQueueService.MessageNotInflight",
    }
)


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    for kind, what in (("invoice", "DOCNUMBER_OR_ID"), ("deal", "DEAL_ID")):
        command = commands.add_parser(
            kind,
            help=f"run the waiting retries of a{'n' if kind == 'invoice' else ''} {kind} now",
            description=description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_argument("reference", metavar=what)
        add_where(command)
        command.set_defaults(func=run_retry_command, kind=kind)


def latest_attempts(rows: list[HistoryRow]) -> list[HistoryRow]:
    """Each flow's latest row for each message of the record (rows come oldest first)."""
    latest: dict[tuple[str, str], HistoryRow] = {}
    for row in rows:
        latest[(row.flow.value, row.message_id)] = row
    return sorted(latest.values(), key=lambda row: row.row_id)


def make_due(sqs: Any, row: HistoryRow) -> str | None:
    """Set the waiting message's visibility to 0; None when done, else why it could not be."""
    from botocore.exceptions import ClientError

    if not row.queue_arn or not row.receipt_handle:
        return "no receipt handle on record"
    parts = row.queue_arn.split(":")
    if len(parts) < 6:
        return f"unreadable queue ARN {row.queue_arn!r}"
    try:
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=row.receipt_handle, VisibilityTimeout=0)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "Unknown"))
        if code in NOT_WAITING:
            return f"no longer waiting ({code}): it was delivered again or is done; see ledgerlink trace"
        return f"SQS refused ({code})"
    return None


def run_retry_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from ledgerlink.history import RecordOutcome

    try:
        store, connection, _where = open_history(args, "retry")
        rows = trace_rows(store, connection, args.kind, args.reference)
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        sqs = aws_client("sqs", endpoint)
    except TraceError as error:
        print(f"ledgerlink retry {args.kind}: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:  # noqa: BLE001 - AWS's errors: the reason, no traceback
        print(f"ledgerlink retry {args.kind}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    retried = 0
    considered = 0
    for row in latest_attempts(rows):
        label = f"{row.flow.value} {row.source} (message {row.message_id}, receive {row.receive_count})"
        if row.outcome is RecordOutcome.DEAD_LETTERED:
            considered += 1
            print(
                f"{label}: dead-lettered [{row.category.value}]: move it back with ledgerlink dlq replay "
                "<that flow's dead-letter queue> (ledgerlink status lists them)",
                file=out,
            )
            continue
        if row.outcome is not RecordOutcome.FAILED:
            continue
        considered += 1
        problem = make_due(sqs, row)
        if problem is None:
            retried += 1
            print(
                f"{label}: runs now (was due {row.next_attempt_at or 'after the visibility timeout'})",
                file=out,
            )
        else:
            print(f"{label}: {problem}", file=out)
    if not considered:
        print(
            f"{args.kind} {args.reference}: nothing is waiting for a retry in connection {connection}",
            file=out,
        )
    return EXIT_OK if retried else EXIT_FAILED
