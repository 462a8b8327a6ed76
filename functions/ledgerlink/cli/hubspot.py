"""``ledgerlink hubspot setup``: create the property group and custom properties LedgerLink needs.

Idempotent (a second run creates nothing) and explicit about what it did. Where the portal is:

1. ``--base-url`` and ``--token`` (or ``--token-file``), for any portal;
2. else, unless ``--aws``, the local stack's ``<state-dir>/local.json`` (the portal of ``--connection``
   there, else its first connection's: ``hubspot.base_url``, ``hubspot.access_token``);
3. else the deployment's settings: ``LEDGERLINK_HUBSPOT_BASE_URL`` and the access token in the
   connection's Secrets Manager secret (``ledgerlink/<stage>/connections/<name>/hubspot``).

Exit status: 0 when the portal is ready, 1 when a property conflicts with what LedgerLink needs (listed,
never changed) or the portal could not be reached, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR
from ledgerlink.http.errors import VendorError
from ledgerlink.http.factory import in_process_client
from ledgerlink.http.policy import HUBSPOT_SEARCH, VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.hubspot.client import HubSpotClient
from ledgerlink.hubspot.setup import setup_portal


class TargetError(ValueError):
    """No portal to talk to could be determined; the message says what to pass."""


@dataclass(frozen=True)
class Target:
    base_url: str
    token: str
    source: str

    def __repr__(self) -> str:
        return f"Target(base_url={self.base_url!r}, source={self.source!r}, token=<redacted>)"


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    setup = commands.add_parser(
        "setup",
        help="create the HubSpot property group and custom properties LedgerLink needs (idempotent)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    setup.add_argument("--base-url", help="HubSpot API base URL, e.g. https://api.hubapi.com")
    setup.add_argument("--token", help="private-app access token (prefer --token-file: argv is visible)")
    setup.add_argument("--token-file", type=Path, help="file holding the private-app access token")
    setup.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the local stack's state directory")
    setup.add_argument("--connection", help="the connection whose portal to set up")
    setup.add_argument(
        "--aws",
        action="store_true",
        help="the deployment's portal (its settings and secret) even when a local stack is running",
    )
    setup.set_defaults(func=run_setup)


def resolve_target(args: argparse.Namespace) -> Target:
    token = args.token
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise TargetError(f"cannot read --token-file {args.token_file}: {error.strerror}") from None
    if args.base_url or token:
        if not (args.base_url and token):
            raise TargetError("--base-url and --token (or --token-file) go together")
        return Target(str(args.base_url).rstrip("/"), token, "command line")
    connection = getattr(args, "connection", None)
    local_json = Path(args.state_dir) / "local.json"
    if not getattr(args, "aws", False) and local_json.is_file():
        return _local_target(local_json, connection)
    return _deployed_target(connection)


def _local_target(local_json: Path, connection: str | None) -> Target:
    """The local stack's portal: ``connection``'s from the file's ``connections``, else the first one's."""
    try:
        described = json.loads(local_json.read_text(encoding="utf-8"))
        connections = [c for c in described.get("connections", []) if isinstance(c, dict)]
        hubspot = described["hubspot"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TargetError(f"{local_json} has no hubspot.base_url / hubspot.access_token") from None
    if connection is not None:
        named = [c for c in connections if c.get("name") == connection]
        if not named:
            names = ", ".join(str(c.get("name")) for c in connections)
            raise TargetError(f"the local stack has no connection {connection!r} (connections: {names})")
        hubspot = named[0].get("hubspot")
    try:
        return Target(str(hubspot["base_url"]).rstrip("/"), str(hubspot["access_token"]), str(local_json))
    except (KeyError, TypeError):
        raise TargetError(f"{local_json} has no hubspot.base_url / hubspot.access_token") from None


def _deployed_target(connection_name: str | None) -> Target:
    """The portal of a connection of the deployment's configuration file (the only one, or --connection)."""
    from ledgerlink.config import ConfigError, get_settings
    from ledgerlink.configfile import deployment_config
    from ledgerlink.secrets import SecretError, get_secret_json

    try:
        settings = get_settings()
        config = deployment_config()
        connections = [c for c in config.connections if connection_name in (None, c.name)]
        if len(connections) != 1:
            names = ", ".join(c.name for c in config.connections)
            raise TargetError(f"name one connection with --connection (connections: {names})")
        secret_name = connections[0].secret_name(settings.stage, "hubspot")
        secret = get_secret_json(secret_name)
    except (ConfigError, SecretError) as error:
        raise TargetError(
            f"no portal given and no deployment configuration usable ({error}); pass --base-url and --token"
        ) from None
    token = secret.get("access_token")
    if not token:
        raise TargetError(f"secret {secret_name!r} has no access_token")
    return Target(settings.hubspot_base_url, str(token), f"secret {secret_name}")


def client_for(target: Target) -> HubSpotClient:
    policy = VendorPolicy(
        vendor="hubspot",
        base_url=target.base_url,
        rate_limits={DEFAULT_GROUP: (RateLimit(100, 10.0),), HUBSPOT_SEARCH: (RateLimit(4, 1.0),)},
    )

    def auth(*, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {target.token}"}

    return HubSpotClient(in_process_client(policy, auth), scope="cli")


def run_setup(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        target = resolve_target(args)
    except TargetError as error:
        print(f"ledgerlink hubspot setup: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"portal: {target.base_url} (from {target.source})", file=out)
    try:
        report = setup_portal(client_for(target))
    except VendorError as error:
        print(f"ledgerlink hubspot setup: {error}", file=sys.stderr)
        return EXIT_FAILED
    for line in report.lines():
        print(line, file=out)
    if not report.changed and not report.conflicts:
        print("nothing to do: the portal already has everything LedgerLink needs", file=out)
    return EXIT_FAILED if report.conflicts else EXIT_OK
