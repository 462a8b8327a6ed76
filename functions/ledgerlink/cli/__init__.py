"""The ``ledgerlink`` command: groups of subcommands, each group in its own module, imported only when used.

``ledgerlink <group> <command> ...``. A group is one entry of :data:`COMMAND_GROUPS`: a name, a help
line and ``"<module>:<function>"``, a function that receives the group's ``argparse`` parser and
adds the group's commands to it, each setting ``func`` (``args -> exit code``) as its default::

    def register(parser: argparse.ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
        setup = commands.add_parser("setup", help="create the HubSpot properties LedgerLink needs")
        setup.set_defaults(func=run_setup)

Adding a group is that module plus one line in :data:`COMMAND_GROUPS`. Only the chosen group's module
is imported, so ``ledgerlink dlq replay`` never imports the local stack (moto, the sandboxes), and
nothing the Lambda asset ships imports this module.

The package has a module per group (``dlq``, ``config``, ``hubspot``, ``followups``, ``replay``, ``audit``, ``connect``;
``local`` lives with the local stack in ``local/``) and :mod:`ledgerlink.cli.endpoints`, which finds AWS
or the local stack the same way for every command that talks to AWS. A group that runs a flow's code (``followups`` runs
the follow-up sweep, ``replay`` the ingests' parse and publish) imports it inside its command, and is named among that flow's importers in
tests/unit/test_layout.py.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TextIO


@dataclass(frozen=True)
class CommandGroup:
    name: str
    register: str
    """``"<module>:<function>"``; the function takes the group's parser (see the module docstring)."""
    help: str


COMMAND_GROUPS: Final[tuple[CommandGroup, ...]] = (
    CommandGroup(
        "local",
        "ledgerlink_local.stack.commands:register",
        "run the whole choreography on this machine (make run) and inspect it",
    ),
    CommandGroup(
        "dlq", "ledgerlink.cli.dlq:register", "dead-letter queues: move messages back to their queue"
    ),
    CommandGroup(
        "config",
        "ledgerlink.cli.config:register",
        "the configuration file: validate it, and its secrets and stages where reachable",
    ),
    CommandGroup(
        "hubspot", "ledgerlink.cli.hubspot:register", "HubSpot portal: create LedgerLink's properties"
    ),
    CommandGroup(
        "followups",
        "ledgerlink.cli.followups:register",
        "payment follow-ups: run the sweep for follow-ups that came due now",
    ),
    CommandGroup(
        "replay",
        "ledgerlink.cli.replay:register",
        "archived raw webhook deliveries: ingest a time window of them again",
    ),
    CommandGroup(
        "catchup",
        "ledgerlink.cli.catchup:register",
        "QBO CDC catch-up: publish the changes no webhook brought, now",
    ),
    CommandGroup(
        "backfill",
        "ledgerlink.cli.backfill:register",
        "historical backfill: sync a connection's QBO documents into HubSpot, resumably",
    ),
    CommandGroup(
        "audit",
        "ledgerlink.cli.audit:register",
        "the audit trail: what the HubSpot -> QBO flow decided about a deal, and why",
    ),
    CommandGroup(
        "connect",
        "ledgerlink.cli.connect:register",
        "connect a connection's accounts: QBO (OAuth), HubSpot (private-app token), Microsoft (app)",
    ),
    CommandGroup(
        "reconcile",
        "ledgerlink.cli.reconcile:register",
        "QBO against HubSpot: report drift per record with its cause; --repair re-syncs through the flow",
    ),
    CommandGroup(
        "plan",
        "ledgerlink.cli.reconcile:register_plan",
        "the HubSpot changes a sync under a configuration file would make, without writing anything",
    ),
    CommandGroup(
        "status",
        "ledgerlink.cli.status:register",
        "sync health: queues, DLQs, failures by reason, recent records (local stack or AWS)",
    ),
    CommandGroup(
        "trace",
        "ledgerlink.cli.trace:register",
        "every hop of an invoice or a deal across the four flows, in time order",
    ),
    CommandGroup(
        "retry",
        "ledgerlink.cli.retry:register",
        "run a record's waiting retry now (its message's visibility to 0)",
    ),
    CommandGroup(
        "ui",
        "ledgerlink.cli.ui:register",
        "a web page on 127.0.0.1: health per connection, failures, dead letters (replay), traces, a plot",
    ),
)

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every command shares the endings handled here: Ctrl-C is 130, and a reader that
    closed its end of the pipe (``ledgerlink local status | head``) ends the command quietly with
    :data:`EXIT_OK`, as a command that handles it itself does (``replay``, ``audit``)."""
    try:
        try:
            return _run(list(sys.argv[1:] if argv is None else argv))
        finally:
            # What is still buffered (also after --help or --version) reaches the pipe now, while a
            # closed one can still be caught here rather than by the interpreter's last flush.
            sys.stdout.flush()
    except BrokenPipeError:
        silence_closed_pipe(sys.stdout)
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def version() -> str:
    """The installed package's version (its metadata: pyproject.toml's ``[project] version``)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("ledgerlink")
    except PackageNotFoundError:  # running from a tree that was never installed
        return "unknown (not installed)"


def _run(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ledgerlink",
        description="LedgerLink: keeps QuickBooks Online and HubSpot in step.",
    )
    parser.add_argument("--version", action="version", version=f"ledgerlink {version()}")
    groups = parser.add_subparsers(dest="group", metavar="<group>")
    group_parsers = {
        group.name: groups.add_parser(group.name, help=group.help, description=group.help)
        for group in COMMAND_GROUPS
    }
    chosen = next((group for group in COMMAND_GROUPS if arguments[:1] == [group.name]), None)
    if chosen is not None:
        try:
            _load(chosen.register)(group_parsers[chosen.name])
        except ImportError as error:
            print(
                f"ledgerlink {chosen.name}: cannot load its commands ({error}); "
                "install the development dependencies with `pip install -e '.[dev]'`",
                file=sys.stderr,
            )
            return EXIT_USAGE
    args = parser.parse_args(arguments)
    from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR, default_state_dir

    if getattr(args, "state_dir", None) == DEFAULT_STATE_DIR:
        # Every command's default state directory is the checkout's, found from wherever it runs.
        args.state_dir = str(default_state_dir())
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        (group_parsers[chosen.name] if chosen else parser).print_help(sys.stderr)
        return EXIT_USAGE
    from ledgerlink.config import ConfigError, cli_log_level_setting
    from ledgerlink.observability import operator_shell_logging

    try:
        level = cli_log_level_setting()
    except ConfigError as error:
        print(f"ledgerlink: {error}", file=sys.stderr)
        return EXIT_USAGE
    # The flows' JSON log lines are for CloudWatch; in the shell, stdout is the command's own output.
    with operator_shell_logging(level):
        return func(args)


def silence_closed_pipe(out: TextIO) -> None:
    """After a ``BrokenPipeError`` (``| head`` read what it wanted): point ``out`` at /dev/null, so the
    interpreter's last flush does not report the closed pipe too."""
    try:
        descriptor = out.fileno()
    except (OSError, ValueError, AttributeError):
        return  # not a real file (a test's buffer): nothing will flush to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _load(reference: str) -> Callable[[argparse.ArgumentParser], None]:
    module_name, _, function_name = reference.partition(":")
    function: Callable[[argparse.ArgumentParser], None] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


if __name__ == "__main__":
    sys.exit(main())
