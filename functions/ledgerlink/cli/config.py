"""``ledgerlink config validate [FILE ...]``: is a configuration file right, and does it fit its environment?

Each file is checked against its schema and the rules :mod:`ledgerlink.configfile` adds (every error
names the file, the field's path and why). Then, where the file's environment can be reached, its
cross-references: every connection's secrets exist (``ledgerlink/<stage>/connections/<name>/...``),
and every stage its stage maps name is a stage of that pipeline in the connection's HubSpot portal
(read with the connection's own token). The environment is found as every operator command finds it
(:mod:`ledgerlink.cli.endpoints`): the local stack of ``--state-dir`` for ``local/config/local.toml``
(stage ``local``), AWS with ``--aws``; a file's stage is its name (``infra/config/prod.toml`` ->
``prod``) unless ``--stage`` says otherwise. ``--offline`` checks the files alone.

Without FILE, every file the repository ships (``infra/config/*.toml``, ``local/config/*.toml``,
from the current directory). Exit status 0 when every file is valid and every reachable check passed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR, Endpoint, EndpointError, resolve_endpoint
from ledgerlink.configfile import ConfigFileError, Connection, DeploymentConfig, load, shipped_files

LOCAL_STAGE = "local"
HUBSPOT_API = "https://api.hubapi.com"


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    validate = commands.add_parser(
        "validate",
        help="check configuration files, and their secrets and stages where the environment is reachable",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("files", nargs="*", type=Path, metavar="FILE", help="default: the shipped files")
    validate.add_argument("--stage", help="the environment the files are for (default: each file's name)")
    validate.add_argument("--offline", action="store_true", help="check the files alone")
    validate.add_argument("--aws", action="store_true", help="check against AWS, not the local stack")
    validate.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local stack's moto)")
    validate.add_argument("--region", help="AWS region")
    validate.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the local stack's state directory")
    validate.set_defaults(func=run_validate)


@dataclass(frozen=True)
class Problem:
    source: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.path}: {self.reason}"


def run_validate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    files = list(args.files) or shipped_files(Path.cwd())
    if not files:
        print("ledgerlink config validate: no configuration file here; name one", file=sys.stderr)
        return EXIT_USAGE
    failed = False
    for path in files:
        try:
            config = load(path)
        except ConfigFileError as error:
            print(f"invalid  {error}", file=out)
            failed = True
            continue
        names = ", ".join(connection.name for connection in config.connections)
        print(
            f"valid    {path}: version {config.version}, {len(config.connections)} connection(s): {names}",
            file=out,
        )
        if args.offline:
            continue
        stage = args.stage or path.stem
        environment = _environment(args, stage)
        if environment is None:
            print(
                f"         {path}: cross-references not checked (no {stage} environment reachable)", file=out
            )
            continue
        problems = list(_cross_references(config, stage, environment))
        for problem in problems:
            print(f"invalid  {problem}", file=out)
        if problems:
            failed = True
        else:
            print(f"         {path}: secrets and stages checked against {environment.label}", file=out)
    return EXIT_FAILED if failed else EXIT_OK


@dataclass(frozen=True)
class Environment:
    label: str
    endpoint: Endpoint
    hubspot_base_url: str


def _environment(args: argparse.Namespace, stage: str) -> Environment | None:
    """The environment of ``stage`` this command can reach, or None."""
    try:
        endpoint = resolve_endpoint(args.endpoint_url, args.region, args.aws, Path(args.state_dir))
    except EndpointError:
        return None
    if endpoint.local:
        if stage != LOCAL_STAGE:
            return None
        local = json.loads((Path(args.state_dir) / "local.json").read_text(encoding="utf-8"))
        return Environment(
            f"the local stack ({endpoint.source})", endpoint, str(local["hubspot"]["base_url"])
        )
    if not (args.aws or args.endpoint_url):
        return None
    return Environment(f"AWS ({endpoint.source})", endpoint, HUBSPOT_API)


def _cross_references(config: DeploymentConfig, stage: str, environment: Environment) -> Iterator[Problem]:
    secrets = _secrets_client(environment.endpoint)
    for index, connection in enumerate(config.connections):
        where = f"connections[{index}]"
        kinds = ["qbo-oauth", "hubspot"] + (["graph"] if connection.tenant_id else [])
        missing = [
            connection.secret_name(stage, kind)
            for kind in kinds
            if not _secret_exists(secrets, connection.secret_name(stage, kind))
        ]
        if missing:
            yield Problem(
                config.source,
                where,
                f"connection {connection.name!r} has no secret {', '.join(missing)} in {environment.label}",
            )
            continue
        yield from _stages(config.source, where, connection, secrets, stage, environment)


def _secrets_client(endpoint: Endpoint) -> Any:
    import boto3

    options: dict[str, Any] = {}
    if endpoint.url:
        options["endpoint_url"] = endpoint.url
    if endpoint.region:
        options["region_name"] = endpoint.region
    if endpoint.local:
        from ledgerlink.cli.endpoints import LOCAL_DUMMY_CREDENTIAL

        options.update(aws_access_key_id=LOCAL_DUMMY_CREDENTIAL, aws_secret_access_key=LOCAL_DUMMY_CREDENTIAL)
    return boto3.client("secretsmanager", **options)


def _secret_exists(secrets: Any, name: str) -> bool:
    try:
        secrets.describe_secret(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        return False
    return True


def _stages(
    source: str, where: str, connection: Connection, secrets: Any, stage: str, environment: Environment
) -> Iterator[Problem]:
    from ledgerlink.cli.hubspot import Target, client_for
    from ledgerlink.http.errors import VendorError

    secret = json.loads(
        secrets.get_secret_value(SecretId=connection.secret_name(stage, "hubspot"))["SecretString"]
    )
    token = str(secret.get("access_token") or "")
    if not token:
        yield Problem(source, where, f"secret {connection.secret_name(stage, 'hubspot')} has no access_token")
        return
    try:
        pipelines = client_for(Target(environment.hubspot_base_url, token, "secret")).deal_pipelines()
    except VendorError as error:
        yield Problem(source, where, f"portal {connection.portal_id} could not be read: {error}")
        return
    for document, stage_map in (
        ("invoice", connection.invoice_stages),
        ("estimate", connection.estimate_stages),
    ):
        for status, target in stage_map.by_status.items():
            path = f"{where}.stages.{document}.stages.{status}"
            if target.pipeline not in pipelines:
                yield Problem(
                    source,
                    path,
                    f"pipeline {target.pipeline!r} is not a deal pipeline of portal {connection.portal_id}",
                )
            elif target.stage not in pipelines[target.pipeline]:
                yield Problem(
                    source,
                    path,
                    f"stage {target.stage!r} is not a stage of pipeline {target.pipeline!r} in portal "
                    f"{connection.portal_id}",
                )
