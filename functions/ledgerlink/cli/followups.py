"""``ledgerlink followups sweep``: run the follow-up sweep now, instead of waiting for its schedule.

The Teams invite Lambda sweeps on an EventBridge schedule (``followup_sweep_schedule`` in cdk.json, daily
by default): it reads the owed invoices of each connection from the links table's due-date index and
publishes a ``ledgerlink.followup.due`` event for each follow-up rule that came due since the last sweep
(:func:`ledgerlink.followups.sweep.run_sweep`). This command runs the same sweep from the operator's
machine, for every connection or one (``--connection``), against the local stack or AWS, found as every
operator command finds it (:mod:`ledgerlink.cli.endpoints`):

- the local stack of ``--state-dir`` (its ``local.json``): the sweep runs with the local Teams invite's
  own variables (the local topology's names, ``local/config/local.toml``);
- AWS (``--aws``, or no local stack) or ``--endpoint-url``: with the deployment's ``LEDGERLINK_*``
  variables and configuration file in this process's environment, as ``ledgerlink hubspot setup`` reads
  them (the Teams invite function's environment: ``aws lambda get-function-configuration
  --function-name ledgerlink-<stage>-teams-invite``; ``LEDGERLINK_CONFIG_FILE=infra/config/<stage>.toml``).

The sweep publishes what overlapping sweeps would publish alike (the events' ids are derived from the
connection, invoice, rule and day), so running it next to the scheduled one makes no second meeting.
Exit status 0 when the sweep ran, 1 with the reason when it could not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK
from ledgerlink.cli.endpoints import (
    DEFAULT_STATE_DIR,
    Endpoint,
    EndpointError,
    SettingsUnavailable,
    aws_client,
    function_settings,
    resolve_endpoint,
)

if TYPE_CHECKING:
    from ledgerlink.config import Settings
    from ledgerlink.configfile import DeploymentConfig

# The local Teams invite, whose variables the sweep runs with against the local stack (infra/topology.py).
TEAMS_INVITE_FUNCTION = "teams_invite"
# The AWS services the sweep calls: the links table's index, and the bus it publishes followup.due on.
SERVICES = ("dynamodb", "events")


class SweepReport(Protocol):
    """What :func:`ledgerlink.followups.sweep.run_sweep` returns (the parts this command prints)."""

    @property
    def per_connection(self) -> Mapping[str, int]:
        """Connection name -> the followup.due events the sweep published for it."""
        ...

    def lines(self) -> list[str]: ...


class RunSweep(Protocol):
    def __call__(
        self,
        settings: Settings,
        config: DeploymentConfig,
        *,
        dynamodb: Any,
        events: Any,
        connection: str | None = None,
        now: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> SweepReport: ...


class SweepCommandError(RuntimeError):
    """The sweep cannot run (no settings, an unknown connection); the message says what to do."""


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    sweep = commands.add_parser(
        "sweep",
        help="run the follow-up sweep now: publish followup.due for the follow-ups that came due",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--connection", metavar="NAME", help="sweep this connection only (default: all)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="sweep in AWS even when a local stack is running")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    sweep.add_argument("--region", help="AWS region")
    sweep.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )
    sweep.set_defaults(func=run_followups_sweep)


def load_run_sweep() -> RunSweep:
    """The flow's sweep, imported only when this command runs (the flow room imports its own world)."""
    from ledgerlink.followups.sweep import run_sweep

    sweep: RunSweep = run_sweep
    return sweep


def sweep_settings(endpoint: Endpoint, state_dir: Path) -> tuple[Settings, DeploymentConfig, str]:
    """The settings and configuration the sweep runs with at ``endpoint``, and where they came from."""
    try:
        return function_settings(endpoint, state_dir, TEAMS_INVITE_FUNCTION)
    except SettingsUnavailable as error:
        raise SweepCommandError(str(error)) from None


def run_followups_sweep(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
        settings, config, source = sweep_settings(endpoint, Path(args.state_dir))
        names = [connection.name for connection in config.connections]
        if args.connection is not None and args.connection not in names:
            raise SweepCommandError(
                f"no connection {args.connection!r} in {config.source} (connections: {', '.join(names)})"
            )
        chosen = [args.connection] if args.connection is not None else names
        print(
            f"sweeping {', '.join(chosen)} with the settings of {source}: owed invoices from "
            f"{settings.links_table_name}, followup.due to {settings.event_bus_name}",
            file=out,
            flush=True,
        )
        run_sweep = load_run_sweep()
        progressed: list[str] = []

        def progress(line: str) -> None:
            # Each connection's line as soon as it is swept (a long sweep shows how far it is).
            progressed.append(line)
            print(line, file=out, flush=True)

        report = run_sweep(
            settings,
            config,
            dynamodb=aws_client("dynamodb", endpoint),
            events=aws_client("events", endpoint),
            connection=args.connection,
            progress=progress,
        )
    except (EndpointError, SweepCommandError) as error:
        print(f"ledgerlink followups sweep: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # the reader of the output has gone: ledgerlink.cli.main ends the command quietly
    except Exception as error:  # noqa: BLE001 - AWS and the flow's errors: say what failed, no traceback
        print(f"ledgerlink followups sweep: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    for line in report.lines():
        if line not in progressed:  # what progress printed already is not repeated
            print(line, file=out)
    counts = dict(report.per_connection)
    total = sum(counts.values())
    each = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    print(f"swept: {total} followup.due published" + (f" ({each})" if each else ""), file=out)
    return EXIT_OK
