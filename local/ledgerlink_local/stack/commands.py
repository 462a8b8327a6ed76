"""The ``ledgerlink local`` command group: ``up`` (what ``make run`` runs) and ``status``.

Registered in :data:`ledgerlink.cli.COMMAND_GROUPS`; imported only when ``ledgerlink local`` runs.
"""

from __future__ import annotations

import argparse
import sys

from ledgerlink_local.stack.settings import DEFAULT_PORTS, LocalSettingsError, resolve, state_dir_from


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    up = commands.add_parser(
        "up",
        help="start everything in the foreground (Ctrl-C stops it)",
        description=(
            "Start the QBO, HubSpot and Graph sandboxes, AWS (moto) with every resource of the stack, the "
            "functions, the API gateway and the queue pollers; print one line per record outcome (what an "
            "invoice became: deal, stage, Outlook event, Teams meeting; --verbose: every hop). Ports and "
            "the state directory also come from LEDGERLINK_LOCAL_* variables; LEDGERLINK_DEMO=0 turns the "
            "demo activity off."
        ),
    )
    for variable, default in DEFAULT_PORTS.items():
        name = variable.name.removesuffix("_PORT").lower()
        up.add_argument(
            f"--{name}-port",
            type=int,
            default=None,
            help=f"default {default}, or {variable.value} (0: any free port)",
        )
    up.add_argument(
        "--state-dir", default=None, help="where local.json, the hop log and logs go (.ledgerlink)"
    )
    up.add_argument(
        "--demo", action=argparse.BooleanOptionalAction, default=None, help="demo activity (default: on)"
    )
    up.add_argument(
        "--sweep-seconds",
        type=float,
        default=None,
        help="run the follow-up sweep every so many seconds (or LEDGERLINK_LOCAL_SWEEP_SECONDS; "
        "default: its deployed schedule, daily)",
    )
    up.add_argument(
        "--catchup-seconds",
        type=float,
        default=None,
        help="run the QBO CDC catch-up every so many seconds (or LEDGERLINK_LOCAL_CATCHUP_SECONDS; "
        "default: its deployed schedule, every 15 minutes)",
    )
    up.add_argument(
        "--reconcile-seconds",
        type=float,
        default=None,
        help="run the scheduled reconciliation (a report of drift, no repair) every so many seconds (or "
        "LEDGERLINK_LOCAL_RECONCILE_SECONDS; default: its deployed schedule, daily)",
    )
    up.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="every hop of every event instead of one line per record outcome; twice (-vv): also every "
        "AWS call the functions make",
    )
    up.set_defaults(func=run_up_command)

    status = commands.add_parser(
        "status",
        help="queue depths, dead letters and recent events of the running local stack",
        description="Read the running stack (local.json, moto) and its hop log; print tables.",
    )
    status.add_argument("--state-dir", default=None, help="the stack's state directory (.ledgerlink)")
    status.add_argument("--limit", type=int, default=15, help="how many recent webhooks and events to show")
    status.set_defaults(func=run_status_command)


def run_up_command(args: argparse.Namespace) -> int:
    from ledgerlink_local.stack.up import run_up

    try:
        settings = resolve(
            gateway_port=args.gateway_port,
            aws_port=args.aws_port,
            qbo_port=args.qbo_port,
            hubspot_port=args.hubspot_port,
            graph_port=args.graph_port,
            state_dir=args.state_dir,
            demo=args.demo,
            sweep_seconds=args.sweep_seconds,
            catchup_seconds=args.catchup_seconds,
            reconcile_seconds=args.reconcile_seconds,
        )
    except LocalSettingsError as error:
        print(f"ledgerlink local up: {error}", file=sys.stderr)
        return 2
    return run_up(settings, sys.stdout, verbosity=args.verbose)


def run_status_command(args: argparse.Namespace) -> int:
    from ledgerlink_local.stack.status import run_status

    return run_status(state_dir_from(args.state_dir), sys.stdout, limit=args.limit)
