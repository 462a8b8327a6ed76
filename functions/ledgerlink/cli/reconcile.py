"""``ledgerlink reconcile`` and ``ledgerlink plan``: the books against the CRM, and a mapping change before it ships.

Both run the deal flow's diff (:mod:`ledgerlink.deal_sync.diff`) from the operator's machine, against the
local stack or AWS, found as every operator command finds it (:mod:`ledgerlink.cli.endpoints`), with the
hubspot_deal_sync function's settings (the local stack's own, or this environment's ``LEDGERLINK_*``
variables and ``LEDGERLINK_CONFIG_FILE``). docs/reconcile.md has the checks, causes and JSON shape.

``ledgerlink reconcile [--connection NAME] [--since DATE] [--repair] [--format table|json]`` reports every
drifted record (table, or one JSON object whose ``drift`` list has one entry per drifted record);
``--repair`` re-syncs them through the deal flow and checks again. Exit status 0 when clean (after a
repair: when the repair left nothing drifted), 1 on drift or failure.

``ledgerlink plan [--connection NAME] [--config FILE] [--limit N]`` lists the deal property changes (record,
property, old -> new) a sync under ``FILE`` (default: the deployed file) would make now; it writes
nothing. Exit status 0 (1 when it cannot run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, silence_closed_pipe
from ledgerlink.cli.endpoints import (
    EndpointError,
    add_endpoint_arguments,
    aws_client,
    function_settings,
    resolve_endpoint,
)
from ledgerlink.http.errors import VendorError

# The function whose settings (tables, vendors' URLs, secrets) the commands run the deal flow with.
DEAL_SYNC_FUNCTION = "hubspot_deal_sync"
SERVICES = ("dynamodb", "events", "secretsmanager")


class CommandError(RuntimeError):
    """The command cannot run (an unknown connection, a bad date); the message says what to do."""


def _common(parser: argparse.ArgumentParser, doc_part: int) -> None:
    parts = (__doc__ or "").split("\n\n")
    parser.description = parts[doc_part] if len(parts) > doc_part else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--connection", metavar="NAME", help="this connection only (default: all)")
    add_endpoint_arguments(parser)
    parser.add_argument(
        "--since", metavar="DATE", help="documents dated on or after DATE (default: 400 days ago)"
    )


def register(parser: argparse.ArgumentParser) -> None:
    _common(parser, 2)
    parser.add_argument(
        "--repair", action="store_true", help="re-sync the drifted records through the deal flow"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=run_reconcile_command)


def register_plan(parser: argparse.ArgumentParser) -> None:
    _common(parser, 3)
    parser.add_argument(
        "--config", metavar="FILE", help="the configuration file to plan (default: the deployed one)"
    )
    parser.add_argument("--limit", type=int, metavar="N", help="show at most N records")
    parser.set_defaults(func=run_plan_command)


@contextmanager
def _deal_flow(args: argparse.Namespace, out: TextIO) -> Iterator[tuple[Any, Any, list[Any]]]:
    """The deal flow built at the endpoint, its configuration, and the connections asked for."""
    from ledgerlink.deal_sync.factory import build_deal_sync
    from ledgerlink.secrets import PowertoolsSecretStore

    endpoint = resolve_endpoint(
        args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
    )
    settings, config, source = function_settings(endpoint, Path(args.state_dir), DEAL_SYNC_FUNCTION)
    print(
        f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source}); settings of {source}", file=sys.stderr
    )
    names = [connection.name for connection in config.connections]
    if args.connection is not None and args.connection not in names:
        raise CommandError(
            f"no connection {args.connection!r} in {config.source} (connections: {', '.join(names)})"
        )
    parts = build_deal_sync(
        settings,
        secrets=PowertoolsSecretStore(max_age_seconds=0, client=aws_client("secretsmanager", endpoint)),
        config=config,
        dynamodb=aws_client("dynamodb", endpoint),
        events=aws_client("events", endpoint),
        # The flow's dead-letter router needs SQS too: built here so it gets the endpoint's region
        # (local.json's, for the local stack) rather than boto3's default, which may have none.
        sqs=aws_client("sqs", endpoint),
    )
    try:
        yield parts, config, [c for c in config.connections if args.connection in (None, c.name)]
    finally:
        parts.close()


def _since(args: argparse.Namespace) -> date:
    from ledgerlink.deal_sync.reconcile import default_since

    if not args.since:
        return default_since(datetime.now(UTC).date())
    try:
        return date.fromisoformat(args.since)
    except ValueError:
        raise CommandError(f"--since {args.since!r} is not a date (YYYY-MM-DD)") from None


def _guarded(name: str, body: Callable[[], int], out: TextIO) -> int:
    try:
        return body()
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_OK
    except (EndpointError, CommandError) as error:
        print(f"ledgerlink {name}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS, the vendors and the flow: say what failed, no traceback
        print(f"ledgerlink {name}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_reconcile_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    return _guarded("reconcile", lambda: _reconcile(args, stream), stream)


def _reconcile(args: argparse.Namespace, out: TextIO) -> int:
    from ledgerlink.deal_sync.reconcile import reconcile, repair, run_id_now

    since = _since(args)
    report: dict[str, Any] = {"since": since.isoformat(), "connections": [], "drift": []}
    drifted = 0
    with _deal_flow(args, out) as (parts, config, connections):
        for connection in connections:
            service = parts.connections[connection.name].service
            _progress(f"reconciling {connection.name} (realm {connection.realm_id}) since {since}")
            result = reconcile(service, connection.realm_id, since, progress=_progress)
            summary: dict[str, Any] = {
                "name": connection.name,
                "realm_id": connection.realm_id,
                **result.counts(),
            }
            final = result
            if args.repair and result.drift:
                fixed = repair(
                    service,
                    parts.service,
                    result,
                    qbo_wins=config.reconcile.qbo_wins,
                    run_id=run_id_now(),
                    progress=_progress,
                )
                summary["repair"] = fixed.describe()
                assert fixed.after is not None
                final = fixed.after
                # The counts are the check after the repair; the first check's stay beside them.
                summary["before_repair"] = result.counts()
                summary.update(final.counts())
                if args.format == "table":
                    _print_repair(fixed.describe(), out)
            report["connections"].append(summary)
            entries = [record.describe() for record in (result.drift if not args.repair else final.drift)]
            report["drift"].extend(entries)
            drifted += len(final.drift)
    report["drift_count"] = len(report["drift"])
    if args.format == "json":
        print(json.dumps(report, indent=2, sort_keys=False), file=out)
    else:
        _print_table(report, out)
    return EXIT_FAILED if drifted else EXIT_OK


def _print_table(report: dict[str, Any], out: TextIO) -> None:
    for each in report["connections"]:
        before = each.get("before_repair")
        after_repair = (
            f" after the repair ({before['drifted_records']} before it)" if isinstance(before, dict) else ""
        )
        print(
            f"{each['name']}: {each['invoices']} invoices, {each['estimates']} estimates, {each['deals']} deals, "
            f"{each['drifted_records']} drifted records{after_repair} (since {report['since']})",
            file=out,
        )
    if not report["drift"]:
        print("clean: QBO and HubSpot agree", file=out)
        return
    rows = [("RECORD", "HUBSPOT", "FIELD", "QBO", "HUBSPOT VALUE", "CAUSE")]
    for entry in report["drift"]:
        qbo = entry["qbo"]
        record = f"{qbo['type']} {qbo['id']}" + (f" #{qbo['number']}" if qbo["number"] else "")
        hubspot = f"{entry['hubspot']['type']} {','.join(entry['hubspot']['ids']) or '-'}"
        for field in entry["fields"]:
            rows.append(
                (
                    record,
                    hubspot,
                    field["field"],
                    str(field["qbo"] or "-"),
                    str(field["hubspot"] or "-"),
                    field["cause"],
                )
            )
            record = hubspot = ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out
        )
    causes = {f["cause"]: f["detail"] for e in report["drift"] for f in e["fields"]}
    for cause, detail in causes.items():
        print(f"  {cause}: {detail}", file=out)


def _print_repair(described: dict[str, Any], out: TextIO) -> None:
    print(f"repaired through the deal flow: {', '.join(described['repaired']) or 'none'}", file=out)
    print(f"fixed (clean on the check after): {', '.join(described['fixed']) or 'none'}", file=out)
    for left in described["left"]:
        print(f"left: {left['qbo_id']}: {left['reason']}", file=out)
    for failed in described["failed"]:
        print(f"failed: {failed['qbo_id']}: {failed['reason']}", file=out)


def run_plan_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    stream = out or sys.stdout
    return _guarded("plan", lambda: _plan(args, stream), stream)


def _plan(args: argparse.Namespace, out: TextIO) -> int:
    from ledgerlink.configfile import load
    from ledgerlink.deal_sync.factory import sync_config
    from ledgerlink.deal_sync.plan import plan

    since = _since(args)
    with _deal_flow(args, out) as (parts, deployed, connections):
        planned = load(args.config) if args.config else deployed
        for connection in connections:
            target = planned.by_name(connection.name)
            if target is None:
                raise CommandError(f"{args.config} has no connection {connection.name!r}")
            result = plan(
                parts.connections[connection.name].service,
                connection.realm_id,
                sync_config(target, planned),
                since,
                progress=_progress,
            )
            print(
                f"{connection.name}: {len(result.records)} deals would change ({result.changes} properties) "
                f"of {result.documents} documents, under {planned.source} (version {planned.version})",
                file=out,
            )
            shown = result.records[: args.limit] if args.limit is not None else result.records
            labels = _stage_labels(parts.connections[connection.name].service.hubspot, shown)
            for record in shown:
                action = f"deal {record.deal_id}" if record.deal_id else "new deal"
                print(f"{record.qbo_type} {record.qbo_id} #{record.number} -> {action}", file=out)
                for change in record.changes:
                    old, new = (
                        (_labelled(change.old, labels), _labelled(change.new, labels))
                        if change.property == "dealstage"
                        else (change.old or "(empty)", change.new or "(empty)")
                    )
                    print(f"    {change.property}: {old} -> {new}", file=out)
            if len(shown) < len(result.records):
                print(f"... {len(result.records) - len(shown)} more (--limit {args.limit})", file=out)
            for qbo_id, why in result.unmappable:
                print(f"cannot map {qbo_id}: {why}", file=out)
    return EXIT_OK


def _stage_labels(hubspot: Any, records: Sequence[Any]) -> dict[str, str]:
    """The portal's stage labels when a shown change moves a deal's stage (one read), else none."""
    if not any(change.property == "dealstage" for record in records for change in record.changes):
        return {}
    try:
        return dict(hubspot.deal_stage_labels())
    except VendorError:  # labels are a courtesy: the ids alone are still the plan
        return {}


def _labelled(stage_id: str | None, labels: Mapping[str, str]) -> str:
    if not stage_id:
        return "(empty)"
    label = labels.get(stage_id)
    return f"{stage_id} ({label})" if label and label != stage_id else stage_id
