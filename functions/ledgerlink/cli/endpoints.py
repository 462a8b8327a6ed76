"""Where an operator command's AWS calls go: AWS itself or the local stack, found the same way by every
command (``ledgerlink dlq replay``, ``ledgerlink followups sweep``; status, backfill and catch-up next).

:func:`function_settings` finds the settings and configuration file a command runs a function's code
with, at that endpoint: the local stack's own variables for that function, or the deployment's.

Order: ``--endpoint-url``; then boto3's own ``AWS_ENDPOINT_URL`` / AWS config; then the local stack
described by ``<state dir>/local.json`` (unless ``--aws``); then AWS.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ledgerlink.config import Settings
    from ledgerlink.configfile import DeploymentConfig

DEFAULT_STATE_DIR: Final = ".ledgerlink"
# What marks the checkout's root, where `make run` keeps the state directory.
CHECKOUT_MARKER: Final = "pyproject.toml"
# What the local stack's own clients use; moto accepts any value, it is no secret.
LOCAL_DUMMY_CREDENTIAL: Final = "ledgerlink-local"


def default_state_dir(start: Path | None = None) -> Path:
    """Where the local stack's state is when no ``--state-dir`` says: the nearest ``.ledgerlink``
    directory from ``start`` (the working directory) up to the checkout's root (the directory holding
    ``pyproject.toml``), else ``.ledgerlink`` at that root; so a command finds the stack ``make run``
    started from any directory of the checkout. Outside a checkout: ``./.ledgerlink``. Returned as
    ``.ledgerlink`` when that is the working directory's own, so messages stay as short as before."""
    here = Path.cwd() if start is None else start
    for directory in (here, *here.absolute().parents):
        found = directory / DEFAULT_STATE_DIR
        if found.is_dir() or (directory / CHECKOUT_MARKER).is_file():
            return Path(DEFAULT_STATE_DIR) if directory == here and start is None else found.absolute()
    return Path(DEFAULT_STATE_DIR) if start is None else here / DEFAULT_STATE_DIR


class EndpointError(RuntimeError):
    """No usable endpoint (a broken local.json, no region); the message says what to pass."""


class SettingsUnavailable(EndpointError):
    """No settings to run a function's code with (no LEDGERLINK_* variables, a broken local stack)."""


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    region: str | None
    source: str
    local: bool


def add_endpoint_arguments(parser: Any) -> None:
    """The options every command that talks to AWS takes: ``--aws`` | ``--endpoint-url``, ``--region``,
    ``--state-dir`` (what :func:`resolve_endpoint` is given)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--aws", action="store_true", help="run against AWS even when a local stack is running"
    )
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )


def resolve_endpoint(
    endpoint_url: str | None,
    region: str | None,
    use_aws: bool,
    state_dir: Path,
    services: Sequence[str] = ("sqs",),
) -> Endpoint:
    """Where to send the calls of ``services`` (boto3 client names): the flag, then boto3's own
    ``AWS_ENDPOINT_URL[_<SERVICE>]``/config, then the local stack described by ``<state_dir>/local.json``
    (unless ``use_aws``), then AWS itself."""
    if endpoint_url:
        return Endpoint(endpoint_url, region, "--endpoint-url", local=False)
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider

    session = botocore.session.Session()
    configured = next(
        (
            found
            for found in (
                ConfiguredEndpointProvider(
                    full_config=session.full_config,
                    scoped_config=session.get_scoped_config(),
                    client_name=name,
                ).provide()
                for name in services
            )
            if found
        ),
        None,
    )
    if configured:
        # boto3 applies it by itself (AWS_ENDPOINT_URL[_SQS] or the profile's endpoint_url).
        return Endpoint(None, region, f"AWS_ENDPOINT_URL / AWS config ({configured})", local=False)
    local_json = state_dir / "local.json"
    if not use_aws and local_json.is_file():
        try:
            aws = json.loads(local_json.read_text(encoding="utf-8"))["aws"]
            return Endpoint(str(aws["endpoint_url"]), region or str(aws["region"]), str(local_json), True)
        except (ValueError, KeyError, TypeError):
            raise EndpointError(
                f"{local_json} is not a local stack description (no aws.endpoint_url)"
            ) from None
    return Endpoint(None, region, "AWS", local=False)


def aws_client(service: str, endpoint: Endpoint) -> Any:
    """A boto3 client of ``service`` (``"sqs"``, ``"dynamodb"``, ``"events"``) at ``endpoint``."""
    import boto3

    session = boto3.session.Session()
    if not (endpoint.region or session.region_name):
        raise EndpointError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    key_id = secret = None
    if endpoint.local and session.get_credentials() is None:
        # moto takes any credentials; a developer without an AWS profile still gets to use the local stack.
        key_id = secret = LOCAL_DUMMY_CREDENTIAL
    return session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


def sqs_client(endpoint: Endpoint) -> Any:
    return aws_client("sqs", endpoint)


def function_settings(
    endpoint: Endpoint, state_dir: Path, function_key: str
) -> tuple[Settings, DeploymentConfig, str]:
    """The settings and configuration a command runs function ``function_key``'s code with (its
    ``infra/topology.py`` key, e.g. ``teams_invite``), and where they came from: against the local stack,
    that function's own variables there (the local topology's names, ``local/config/local.toml``);
    otherwise the deployment's ``LEDGERLINK_*`` variables and ``LEDGERLINK_CONFIG_FILE`` in this
    process's environment. Raises :class:`SettingsUnavailable` saying what to set."""
    from ledgerlink.config import ConfigError, Settings, get_settings
    from ledgerlink.configfile import ConfigFileError, deployment_config, load

    if endpoint.local:
        local_json = state_dir / "local.json"
        from ledgerlink_local.stack.wiring import WiringError, local_config_file, local_function_variables

        try:
            description = json.loads(local_json.read_text(encoding="utf-8"))
            variables = local_function_variables(function_key, description)
            return Settings.from_env(variables), load(local_config_file()), f"the local stack ({local_json})"
        except (OSError, ValueError, KeyError, TypeError, WiringError) as error:
            # ConfigError and ConfigFileError are ValueErrors: a broken local.json or local.toml
            raise SettingsUnavailable(f"the local stack's settings are unusable ({error})") from None
    try:
        settings = get_settings()
        config = deployment_config()
    except (ConfigError, ConfigFileError) as error:
        function = function_key.replace("_", "-")
        raise SettingsUnavailable(
            f"no deployment settings ({error}); set the {function} function's LEDGERLINK_* variables and "
            "LEDGERLINK_CONFIG_FILE (infra/config/<stage>.toml), or run it against the local stack"
        ) from None
    return settings, config, f"stage {settings.stage} ({settings.config_file})"
