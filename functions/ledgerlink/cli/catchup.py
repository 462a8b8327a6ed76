"""``ledgerlink catchup``: run the QBO CDC catch-up now, instead of waiting for its schedule.

The qbo_catchup Lambda runs on an EventBridge schedule (``catchup_schedule`` in cdk.json, every 15
minutes by default): per connection it reads QBO change data capture from its cursor and publishes a
``qbo.entity.changed`` event for every change LedgerLink has not synced at that version
(:func:`ledgerlink.catchup.run.run_catchup`, docs/catchup.md). This command runs the same function from
the operator's machine, for every connection or one (``--connection``), against the local stack or AWS,
found as every operator command finds it (:mod:`ledgerlink.cli.endpoints`):

- the local stack of ``--state-dir`` (its ``local.json``): with the local qbo_catchup's own variables;
- AWS (``--aws``, or no local stack) or ``--endpoint-url``: with the deployment's ``LEDGERLINK_*``
  variables and configuration file in this process's environment (the qbo-catchup function's
  environment: ``aws lambda get-function-configuration --function-name ledgerlink-<stage>-qbo-catchup``;
  ``LEDGERLINK_CONFIG_FILE=infra/config/<stage>.toml``).

It prints, per connection and entity, how many changes CDC listed, how many it published and how many
it skipped as already synced. A run next to the scheduled one publishes the same event ids for the same
versions, which the deal sync deduplicates. Exit status 0 when it ran, 1 with the reason when not (a
gap beyond CDC's 30 days is printed and also exits 1: run ``ledgerlink backfill``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK
from ledgerlink.cli.endpoints import (
    Endpoint,
    EndpointError,
    add_endpoint_arguments,
    aws_client,
    resolve_endpoint,
)

if TYPE_CHECKING:
    from ledgerlink.config import Settings
    from ledgerlink.configfile import DeploymentConfig

# The local function whose variables the catch-up runs with against the local stack (infra/topology.py).
CATCHUP_FUNCTION = "qbo_catchup"
# The AWS services the catch-up calls: its cursor and the crosswalk, the bus, each connection's QBO grant.
SERVICES = ("dynamodb", "events", "secretsmanager")


class CatchupCommandError(RuntimeError):
    """The catch-up cannot run (no settings, an unknown connection); the message says what to do."""


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--connection", metavar="NAME", help="catch up this connection only (default: all)")
    add_endpoint_arguments(parser)
    parser.set_defaults(func=run_catchup_command)


def catchup_settings(endpoint: Endpoint, state_dir: Path) -> tuple[Settings, DeploymentConfig, str]:
    """The settings and configuration the catch-up runs with at ``endpoint``, and where they came from."""
    from ledgerlink.config import ConfigError, Settings, get_settings
    from ledgerlink.configfile import ConfigFileError, deployment_config, load

    if endpoint.local:
        local_json = state_dir / "local.json"
        from ledgerlink_local.stack.wiring import WiringError, local_config_file, local_function_variables

        try:
            description = json.loads(local_json.read_text(encoding="utf-8"))
            variables = local_function_variables(CATCHUP_FUNCTION, description)
            return Settings.from_env(variables), load(local_config_file()), f"the local stack ({local_json})"
        except (OSError, ValueError, KeyError, TypeError, WiringError) as error:
            raise CatchupCommandError(f"the local stack's settings are unusable ({error})") from None
    try:
        return get_settings(), deployment_config(), "this environment's LEDGERLINK_* variables"
    except (ConfigError, ConfigFileError) as error:
        raise CatchupCommandError(
            f"no deployment settings ({error}); set the qbo-catchup function's LEDGERLINK_* variables and "
            "LEDGERLINK_CONFIG_FILE (infra/config/<stage>.toml), or run it against the local stack"
        ) from None


def run_catchup_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        endpoint = resolve_endpoint(
            args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
        )
        print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
        settings, config, source = catchup_settings(endpoint, Path(args.state_dir))
        names = [connection.name for connection in config.connections]
        if args.connection is not None and args.connection not in names:
            raise CatchupCommandError(
                f"no connection {args.connection!r} in {config.source} (connections: {', '.join(names)})"
            )
        print(f"catching up {args.connection or ', '.join(names)} with the settings of {source}", file=out)
        from ledgerlink.catchup.run import run_catchup
        from ledgerlink.secrets import PowertoolsSecretStore

        report = run_catchup(
            settings,
            config,
            dynamodb=aws_client("dynamodb", endpoint),
            events=aws_client("events", endpoint),
            secrets=PowertoolsSecretStore(max_age_seconds=0, client=aws_client("secretsmanager", endpoint)),
            connection=args.connection,
            progress=lambda line: print(line, file=out, flush=True),
        )
    except (EndpointError, CatchupCommandError) as error:
        print(f"ledgerlink catchup: {error}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # the reader of the output has gone: ledgerlink.cli.main ends the command quietly
    except Exception as error:  # noqa: BLE001 - AWS, QBO and the flow's errors: say what failed, no traceback
        print(f"ledgerlink catchup: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if report.failures:
        print(
            "ledgerlink catchup: failed for " + ", ".join(sorted(report.failures)) + " (see above)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    total = sum(each.published for each in report.connections)
    print(f"caught up: {total} qbo.entity.changed published", file=out)
    if report.gaps:
        print(
            "ledgerlink catchup: gap beyond CDC's 30 days for "
            + ", ".join(each.connection for each in report.gaps)
            + ": run ledgerlink backfill for them",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK
