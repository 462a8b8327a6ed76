"""``ledgerlink connect qbo|hubspot|microsoft --connection NAME``: connect a connection's accounts.

Each command checks the credentials against the vendor before it stores anything, then writes them to
the connection's own secret (the shapes the Lambdas read, docs/connect.md), and works the same against
the local stack (its sandboxes and moto) and AWS, found as every operator command finds it
(:mod:`ledgerlink.cli.endpoints`; the settings are those of the function that uses the secret).

- ``qbo``: Intuit's OAuth 2.0 authorization-code flow from the operator's machine. The authorize URL
  (the app's client id, scope ``com.intuit.quickbooks.accounting``, a random ``state``) is opened in a
  browser (``--no-browser`` prints it); Intuit redirects to ``http://localhost:<port>/callback``, a
  one-request server on 127.0.0.1, with ``code``, ``state`` and ``realmId``; the state is checked, the
  code exchanged at the token endpoint (HTTP Basic client authentication) and the company read with
  the new token. A company other than the connection's configured realm is refused and nothing is
  stored. The refresh token and the realm go into the connection's QBO secret, and the new access token
  into the shared token state the Lambdas use, so they use the new grant on their next call.
- ``hubspot``: a private-app token: the portal it opens (``GET /account-info/v3/details``) must be the
  connection's, and it must hold every scope LedgerLink needs (:data:`HUBSPOT_SCOPES`; HubSpot's
  ``POST /oauth/v2/private-apps/get/access-token-info``), missing ones named. Stored with the app's
  webhook signing secret (``client_secret``).
- ``microsoft``: the app's client credentials: an app-only token from the tenant's token endpoint, and
  each configured mailbox's calendar opened with it (``GET /users/{mailbox}/calendar``). The calendar
  permission is either an Entra app role (``Calendars.ReadWrite`` in the token's ``roles``: every mailbox
  of the tenant) or an Exchange RBAC for Applications role assignment scoped to the finance mailboxes,
  which is not in the token at all: so a missing role fails nothing by itself; a mailbox whose calendar
  is refused does. ``--check-write`` also creates and deletes a private event dated 2000-01-01 in each
  mailbox (a scoped "Application Calendars.Read" assignment passes the read). ``--teams-online-meetings``
  requires ``OnlineMeetings.ReadWrite.All`` in the token (Teams' access policy, not Exchange RBAC, scopes
  that one).

Credentials come from the flags, else the environment (:data:`ENV_QBO_CLIENT_SECRET` ...), else the
connection's current secret (client ids and secrets a reconnect keeps), else a prompt that does not echo.
Exit status 0 when stored, 1 with the reason when not.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import getpass
import hmac
import http.server
import json
import os
import secrets as token_generator
import sys
import threading
import time
import urllib.parse
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import requests

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
    from ledgerlink.configfile import Connection, DeploymentConfig

# ---- Intuit (../shared/api-notes.md §2 "OAuth 2.0"; Intuit's OAuth 2.0 and redirect-URI pages)
INTUIT_AUTHORIZE_URL: Final = "https://appcenter.intuit.com/connect/oauth2"
INTUIT_TOKEN_HOST: Final = "oauth.platform.intuit.com"  # noqa: S105 (a host name)
QBO_SCOPE: Final = "com.intuit.quickbooks.accounting"
# Intuit redirects only to a registered URI, matched exactly (port included), so the default port is
# fixed: register http://localhost:8765/callback among the app's redirect URIs. Intuit accepts http
# localhost for development (sandbox) keys only; production keys need https (see --redirect-uri).
DEFAULT_CALLBACK_PORT: Final = 8765
CALLBACK_PATH: Final = "/callback"
DEFAULT_WAIT_SECONDS: Final = 300.0
# ---- HubSpot: the private-app scopes LedgerLink's calls need (docs/connect.md says which call needs
# which), HubSpot's scope names. Unverified: whether creating line-item properties (`ledgerlink hubspot
# setup`) needs a scope beyond these (no crm.schemas.line_items.write is listed), so none is required.
HUBSPOT_SCOPES: Final = (
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.line_items.read",
    "crm.objects.line_items.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.owners.read",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.line_items.read",
)
HUBSPOT_ACCOUNT_PATH: Final = "/account-info/v3/details"
# Documented on HubSpot's private-apps page; the response's field names (hubId, appId, userId, scopes)
# are unverified (seen in third-party clients only).
HUBSPOT_TOKEN_INFO_PATH: Final = "/oauth/v2/private-apps/get/access-token-info"  # noqa: S105 (a path)
# ---- Microsoft Graph (../shared/api-notes.md §4)
GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
CALENDAR_ROLE: Final = "Calendars.ReadWrite"
ONLINE_MEETINGS_ROLE: Final = "OnlineMeetings.ReadWrite.All"
# The function whose settings (vendor URLs, stage, tables) each command runs with: the one reading the secret.
SETTINGS_FUNCTION: Final = {
    "qbo": "hubspot_deal_sync",
    "hubspot": "hubspot_deal_sync",
    "microsoft": "outlook_calendar_sync",
}
SECRET_KIND: Final = {"qbo": "qbo-oauth", "hubspot": "hubspot", "microsoft": "graph"}
SERVICES: Final = ("secretsmanager", "dynamodb")
# Where a value not given as a flag is read from (a flag's value shows in the process list).
ENV_QBO_CLIENT_ID: Final = "LEDGERLINK_QBO_CLIENT_ID"
ENV_QBO_CLIENT_SECRET: Final = "LEDGERLINK_QBO_CLIENT_SECRET"  # noqa: S105 (a variable's name)
ENV_HUBSPOT_TOKEN: Final = "LEDGERLINK_HUBSPOT_TOKEN"  # noqa: S105
ENV_HUBSPOT_CLIENT_SECRET: Final = "LEDGERLINK_HUBSPOT_CLIENT_SECRET"  # noqa: S105
ENV_GRAPH_CLIENT_ID: Final = "LEDGERLINK_GRAPH_CLIENT_ID"
ENV_GRAPH_CLIENT_SECRET: Final = "LEDGERLINK_GRAPH_CLIENT_SECRET"  # noqa: S105
HTTP_TIMEOUT_SECONDS: Final = 15.0
# What the placeholder the CDK stack creates holds besides real fields (infra/secret_store.py).
PLACEHOLDER_KEYS: Final = ("configured", "placeholder")


class ConnectError(RuntimeError):
    """The connection cannot be made; the message says why and what to do (never a secret's value)."""


@dataclass
class Target:
    """Where a command's connection lives: its settings, its configuration entry and its secret."""

    endpoint: Endpoint
    settings: Settings
    config: DeploymentConfig
    connection: Connection
    secret_name: str
    secrets_client: Any
    source: str


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    vendors = parser.add_subparsers(dest="command", metavar="<vendor>", required=True)

    qbo = vendors.add_parser("qbo", help="authorize LedgerLink in a QuickBooks Online company (OAuth 2.0)")
    _common(qbo)
    qbo.add_argument(
        "--client-id", help=f"the Intuit app's client id (else ${ENV_QBO_CLIENT_ID}, the secret's)"
    )
    qbo.add_argument(
        "--client-secret",
        help=f"the app's client secret (else ${ENV_QBO_CLIENT_SECRET}, the secret's, a prompt)",
    )
    qbo.add_argument(
        "--port",
        type=int,
        default=DEFAULT_CALLBACK_PORT,
        help=f"loopback port of the redirect http://localhost:PORT{CALLBACK_PATH} (default {DEFAULT_CALLBACK_PORT}; 0: any free one)",
    )
    qbo.add_argument(
        "--no-browser", action="store_true", help="print the authorize URL instead of opening it"
    )
    qbo.add_argument(
        "--redirect-uri",
        help="a registered redirect URI that is not this machine's loopback (production keys need https): "
        "paste the URL the browser lands on when asked",
    )
    qbo.add_argument(
        "--authorize-url", help="the authorize endpoint (default: Intuit's, or the local sandbox's)"
    )
    qbo.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds to wait for the redirect"
    )
    qbo.set_defaults(func=run_connect_qbo)

    hubspot = vendors.add_parser("hubspot", help="check and store a HubSpot private-app token")
    _common(hubspot)
    hubspot.add_argument(
        "--token", help=f"the private app's access token (else ${ENV_HUBSPOT_TOKEN}, a prompt)"
    )
    hubspot.add_argument(
        "--client-secret",
        help=f"the app's client secret, which signs its webhooks (else ${ENV_HUBSPOT_CLIENT_SECRET}, the secret's)",
    )
    hubspot.set_defaults(func=run_connect_hubspot)

    microsoft = vendors.add_parser("microsoft", help="check and store a Microsoft Entra app's credentials")
    _common(microsoft)
    microsoft.add_argument(
        "--client-id", help=f"the app's client id (else ${ENV_GRAPH_CLIENT_ID}, the secret's)"
    )
    microsoft.add_argument(
        "--client-secret",
        help=f"the app's client secret (else ${ENV_GRAPH_CLIENT_SECRET}, the secret's, a prompt)",
    )
    microsoft.add_argument(
        "--mailbox",
        action="append",
        default=[],
        metavar="UPN",
        help="a further mailbox to check (the connection's accounts-receivable and finance mailboxes always are)",
    )
    microsoft.add_argument(
        "--check-write",
        action="store_true",
        help="also create and delete a private event dated 2000-01-01 in each mailbox (proves write access)",
    )
    microsoft.add_argument(
        "--teams-online-meetings",
        action="store_true",
        help=f"also require {ONLINE_MEETINGS_ROLE} (standalone Teams meetings)",
    )
    microsoft.set_defaults(func=run_connect_microsoft)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connection", required=True, metavar="NAME", help="the connection (configuration file)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="store in AWS even when a local stack is running")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    parser.add_argument("--region", help="AWS region")
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )


# ---------------------------------------------------------------------------- shared steps


def find_target(args: argparse.Namespace, vendor: str) -> Target:
    endpoint = resolve_endpoint(args.endpoint_url, args.region, args.aws, Path(args.state_dir), SERVICES)
    settings, config, source = function_settings(endpoint, Path(args.state_dir), SETTINGS_FUNCTION[vendor])
    connection = config.by_name(args.connection)
    if connection is None:
        names = ", ".join(each.name for each in config.connections)
        raise ConnectError(f"no connection {args.connection!r} in {config.source} (connections: {names})")
    return Target(
        endpoint=endpoint,
        settings=settings,
        config=config,
        connection=connection,
        secret_name=connection.secret_name(settings.stage, SECRET_KIND[vendor]),
        secrets_client=aws_client("secretsmanager", endpoint),
        source=source,
    )


def read_secret(target: Target) -> dict[str, Any]:
    """The secret's current JSON fields (without the CDK placeholder's); the secret must exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        raw = target.secrets_client.get_secret_value(SecretId=target.secret_name).get("SecretString") or "{}"
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "ClientError")
        if code == "ResourceNotFoundException":
            raise ConnectError(
                f"secret {target.secret_name} does not exist: deploy the stack for this configuration "
                "(it creates every connection's secrets) or start the local stack"
            ) from None
        raise ConnectError(f"secret {target.secret_name} could not be read ({code})") from None
    except BotoCoreError as error:
        raise ConnectError(
            f"secret {target.secret_name} could not be read ({type(error).__name__})"
        ) from None
    try:
        value = json.loads(raw)
    except ValueError:
        value = {}  # not JSON (hand-edited): replaced by the JSON object the Lambdas read
    if not isinstance(value, dict):
        value = {}
    return {key: item for key, item in value.items() if key not in PLACEHOLDER_KEYS}


def store_secret(target: Target, value: Mapping[str, Any]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        target.secrets_client.put_secret_value(
            SecretId=target.secret_name,
            SecretString=json.dumps(dict(value), separators=(",", ":"), sort_keys=True),
        )
    except (ClientError, BotoCoreError) as error:
        code = (
            error.response.get("Error", {}).get("Code", "ClientError")
            if isinstance(error, ClientError)
            else type(error).__name__
        )
        raise ConnectError(f"secret {target.secret_name} could not be stored ({code})") from None


def credential(
    flag: str | None,
    env_name: str,
    stored: Any,
    what: str,
    *,
    prompt: Callable[[str], str] | None,
) -> str:
    """A credential from the flag, the environment, the stored secret, or a prompt, in that order."""
    for value in (flag, os.environ.get(env_name), stored):
        if isinstance(value, str) and value.strip():
            return value.strip()
    if prompt is not None:
        value = prompt(f"{what}: ").strip()
        if value:
            return value
    raise ConnectError(f"no {what}: pass it as a flag or set ${env_name}")


def interactive_prompt() -> Callable[[str], str] | None:
    """A non-echoing prompt on a terminal; None when stdin is not one (a script, a test)."""
    return getpass.getpass if sys.stdin is not None and sys.stdin.isatty() else None


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)


def _run(name: str, args: argparse.Namespace, out: TextIO | None, body: Callable[[TextIO], None]) -> int:
    out = out or sys.stdout
    try:
        body(out)
    except BrokenPipeError:
        silence_closed_pipe(out)
        return EXIT_FAILED
    except (EndpointError, ConnectError) as error:
        print(f"ledgerlink connect {name}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except requests.RequestException as error:
        print(f"ledgerlink connect {name}: cannot reach the vendor ({type(error).__name__})", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS and vendor errors: say what failed, no traceback
        print(f"ledgerlink connect {name}: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------------------- QBO


@dataclass
class CallbackResult:
    """What the redirect brought (one request), or why it was refused."""

    params: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    arrived: threading.Event = field(default_factory=threading.Event)


class CallbackServer:
    """The loopback redirect target: answers ``GET /callback`` once with a short page, then stops waiting.

    Bound to 127.0.0.1 only (never reachable from the network); the redirect URI says ``localhost``,
    which is what Intuit's development keys accept and register.
    """

    def __init__(self, port: int, expected_state: str) -> None:
        result = CallbackResult()
        self.result = result

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name for it
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self._page(404, "Not the LedgerLink callback.")
                    return
                params = {key: values[0] for key, values in urllib.parse.parse_qs(parts.query).items()}
                if result.arrived.is_set():
                    self._page(409, "LedgerLink already received an answer; close this tab.")
                    return
                result.params = params
                if not hmac.compare_digest(params.get("state", ""), expected_state):
                    # Not the answer to this run's request (a forged or stale redirect): refuse it.
                    result.error = (
                        "the redirect's state does not match this request's (a stale or forged redirect)"
                    )
                    self._page(400, "LedgerLink refused this answer: its state does not match the request.")
                elif "error" in params:
                    result.error = f"Intuit answered {params['error']}" + (
                        f" ({params['error_description']})" if params.get("error_description") else ""
                    )
                    self._page(400, f"Not connected: {params['error']}.")
                elif not params.get("code") or not params.get("realmId"):
                    result.error = "the redirect carries no code or no realmId"
                    self._page(400, "Not connected: the answer carries no code or no company.")
                else:
                    self._page(200, "LedgerLink received the authorization. You can close this tab.")
                result.arrived.set()

            def _page(self, status: int, text: str) -> None:
                body = f"<!doctype html><title>LedgerLink</title><p>{text}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # silent: the query holds the code
                return None

        try:
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as error:
            raise ConnectError(
                f"cannot listen on 127.0.0.1:{port} for the redirect ({error.strerror or error}); "
                "choose another --port (and register its redirect URI with the app)"
            ) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="connect-callback", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        return f"http://localhost:{self.port}{CALLBACK_PATH}"

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def authorize_endpoint(settings: Settings, override: str | None) -> str:
    """Intuit's authorize URL when the token endpoint is Intuit's; else the sandbox's, beside its token URL."""
    if override:
        return override
    parts = urllib.parse.urlsplit(settings.qbo_token_url)
    if parts.hostname == INTUIT_TOKEN_HOST:
        return INTUIT_AUTHORIZE_URL
    return f"{parts.scheme}://{parts.netloc}/connect/oauth2"


def authorize_url(endpoint: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": QBO_SCOPE,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def exchange_code(
    token_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str
) -> dict[str, Any]:
    """The token endpoint's answer to the authorization code (HTTP Basic client authentication)."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    response = requests.post(
        token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    body = _json(response)
    if response.status_code != 200:
        error = body.get("error", "no error code")
        hint = {
            "invalid_client": "the client id or secret is wrong",
            "invalid_grant": "the code expired, was used already, or the redirect URI differs",
        }.get(str(error), "")
        raise ConnectError(
            f"the token endpoint refused the code (HTTP {response.status_code} {error}"
            + (f": {hint}" if hint else "")
            + ")"
        )
    if not body.get("refresh_token") or not body.get("access_token"):
        raise ConnectError("the token endpoint answered without refresh_token/access_token")
    return body


def company_name(settings: Settings, realm_id: str, access_token: str) -> str | None:
    """The company's name read with the new token (proof that the grant opens the books), or None."""
    url = (
        f"{settings.qbo_base_url.rstrip('/')}/v3/company/{urllib.parse.quote(realm_id)}/companyinfo/"
        f"{urllib.parse.quote(realm_id)}"
    )
    response = requests.get(
        url,
        params={"minorversion": str(settings.qbo_minor_version)},
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if response.status_code != 200:
        raise ConnectError(
            f"the new grant could not read company {realm_id} (HTTP {response.status_code}); nothing was stored"
        )
    info = _json(response).get("CompanyInfo") or {}
    name = info.get("CompanyName") if isinstance(info, dict) else None
    return str(name) if name else None


def paste_redirect(read: Callable[[str], str], expected_state: str) -> dict[str, str]:
    """The redirect's parameters, from the URL the operator pastes (a non-loopback redirect URI)."""
    pasted = read("paste the full URL your browser was sent to: ").strip()
    params = {
        key: values[0] for key, values in urllib.parse.parse_qs(urllib.parse.urlsplit(pasted).query).items()
    }
    if not hmac.compare_digest(params.get("state", ""), expected_state):
        raise ConnectError("the pasted URL's state does not match this request's (a stale or other redirect)")
    if "error" in params:
        raise ConnectError(f"Intuit answered {params['error']}")
    if not params.get("code") or not params.get("realmId"):
        raise ConnectError("the pasted URL carries no code or no realmId")
    return params


def seed_token_state(target: Target, access_token: str, expires_in: float, refresh_token: str) -> str | None:
    """Put the new grant's tokens in the shared token state (what every Lambda reads before the secret),
    clearing a revocation mark; why not, when it cannot (the token state is an optimisation: the Lambdas
    also find the new grant in the secret when Intuit refuses the old one)."""
    from ledgerlink.qbo.oauth import DynamoDBTokenStateStore, state_key

    try:
        store = DynamoDBTokenStateStore(
            target.settings.vendor_state_table_name, aws_client("dynamodb", target.endpoint)
        )
        store.store_token(
            state_key(target.secret_name), access_token, time.time() + expires_in, refresh_token
        )
    except Exception as error:  # noqa: BLE001 - reported, never fatal (see the docstring)
        return f"{type(error).__name__}: {error}"
    return None


def connect_qbo(
    args: argparse.Namespace,
    out: TextIO,
    *,
    open_browser: Callable[[str], Any] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> None:
    target = find_target(args, "qbo")
    connection, settings = target.connection, target.settings
    _say(out, f"endpoint: {target.endpoint.url or 'AWS'} (from {target.endpoint.source})")
    _say(
        out,
        f"connection {connection.name}: QBO company {connection.realm_id}, secret {target.secret_name} "
        f"(settings of {target.source})",
    )
    current = read_secret(target)
    client_id = credential(
        args.client_id, ENV_QBO_CLIENT_ID, current.get("client_id"), "QBO app client id", prompt=prompt
    )
    client_secret = credential(
        args.client_secret,
        ENV_QBO_CLIENT_SECRET,
        current.get("client_secret"),
        "QBO app client secret",
        prompt=prompt,
    )
    state = token_generator.token_urlsafe(24)
    endpoint = authorize_endpoint(settings, args.authorize_url)
    deadline = max(1.0, float(args.timeout))
    if args.redirect_uri and not _is_loopback(args.redirect_uri):
        redirect_uri = args.redirect_uri
        url = authorize_url(endpoint, client_id, redirect_uri, state)
        _say(out, "open this URL in a browser, sign in and pick the company:")
        _say(out, f"  {url}")
        if prompt is None:
            raise ConnectError("--redirect-uri needs a terminal to paste the redirected URL into")
        params = paste_redirect(prompt, state)
    else:
        with CallbackServer(_loopback_port(args), state) as server:
            redirect_uri = server.redirect_uri
            url = authorize_url(endpoint, client_id, redirect_uri, state)
            _say(out, f"waiting up to {deadline:.0f} s for Intuit's redirect to {redirect_uri}")
            # Printed even when a browser is opened: one that cannot start (no display, a remote shell)
            # still leaves the operator the URL.
            if open_browser is None:
                _say(out, "open this URL in a browser, sign in and pick the company:")
            else:
                _say(out, "opening this URL in the browser (open it yourself if none appears):")
            _say(out, f"  {url}")
            if open_browser is not None:
                # After the URL is printed: a browser that cannot start still leaves the operator a way.
                with contextlib.suppress(Exception):
                    open_browser(url)
            if not server.result.arrived.wait(deadline):
                raise ConnectError(
                    f"no redirect to {redirect_uri} within {deadline:.0f} s (is that URI registered with the "
                    "app? did the browser reach this machine?)"
                )
            if server.result.error:
                raise ConnectError(server.result.error)
            params = dict(server.result.params)
    realm_id = params["realmId"]
    _say(out, f"authorized: company {realm_id}, state checked")
    if realm_id != connection.realm_id:
        raise ConnectError(
            f"the company picked (realm {realm_id}) is not connection {connection.name}'s (realm "
            f"{connection.realm_id} in {target.config.source}); nothing was stored. Run it again and pick "
            "that company, or change the connection's qbo.realm_id"
        )
    granted = exchange_code(settings.qbo_token_url, client_id, client_secret, params["code"], redirect_uri)
    lifetime = granted.get("x_refresh_token_expires_in")
    _say(
        out,
        f"code exchanged at {settings.qbo_token_url}"
        + (
            f": refresh token valid for {int(lifetime) // 86400} days"
            if isinstance(lifetime, int | float)
            else ""
        ),
    )
    name = company_name(settings, realm_id, str(granted["access_token"]))
    _say(out, f"company {realm_id}: {name or '(no name)'}")
    store_secret(
        target,
        {
            **current,
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": str(granted["refresh_token"]),
            "realm_id": realm_id,
        },
    )
    _say(out, f"stored in {target.secret_name}: client_id, client_secret, refresh_token, realm_id")
    expires_in = granted.get("expires_in")
    problem = seed_token_state(
        target,
        str(granted["access_token"]),
        float(expires_in) if isinstance(expires_in, int | float) else 3600.0,
        str(granted["refresh_token"]),
    )
    if problem is None:
        _say(
            out,
            f"shared token state updated ({target.settings.vendor_state_table_name}): the Lambdas use the new grant on their next call",
        )
    else:
        _say(
            out,
            f"shared token state not updated ({problem}); the Lambdas switch to the new grant when Intuit "
            "refuses the old one",
        )


def _is_loopback(uri: str) -> bool:
    host = urllib.parse.urlsplit(uri).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _loopback_port(args: argparse.Namespace) -> int:
    if args.redirect_uri:
        port = urllib.parse.urlsplit(args.redirect_uri).port
        if port is None:
            raise ConnectError("a loopback --redirect-uri needs an explicit port")
        return port
    return int(args.port)


def run_connect_qbo(
    args: argparse.Namespace,
    out: TextIO | None = None,
    *,
    open_browser: Callable[[str], Any] | None = None,
    prompt: Callable[[str], str] | None = None,
) -> int:
    browser = open_browser if open_browser is not None else (None if args.no_browser else webbrowser.open)
    ask = prompt if prompt is not None else interactive_prompt()
    return _run("qbo", args, out, lambda stream: connect_qbo(args, stream, open_browser=browser, prompt=ask))


# ---------------------------------------------------------------------------- HubSpot


def hubspot_token_info(base_url: str, token: str) -> dict[str, Any]:
    """The token's portal and scopes (HubSpot's private-app token info; the token goes in the body, as
    documented, and in the Authorization header, which EU-hosted tokens need: unverified)."""
    response = requests.post(
        base_url.rstrip("/") + HUBSPOT_TOKEN_INFO_PATH,
        json={"tokenKey": token},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if response.status_code in (401, 403):
        raise ConnectError(
            f"HubSpot refused the token (HTTP {response.status_code}): a wrong or rotated token"
        )
    if response.status_code != 200:
        raise ConnectError(f"HubSpot's token info answered HTTP {response.status_code}")
    return _json(response)


def hubspot_portal(base_url: str, token: str) -> dict[str, Any]:
    response = requests.get(
        base_url.rstrip("/") + HUBSPOT_ACCOUNT_PATH,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if response.status_code == 401:
        raise ConnectError("HubSpot refused the token (HTTP 401): a wrong or rotated token")
    if response.status_code != 200:
        raise ConnectError(f"HubSpot's account details answered HTTP {response.status_code}")
    return _json(response)


def missing_scopes(granted: Sequence[str]) -> list[str]:
    have = set(granted)
    return [scope for scope in HUBSPOT_SCOPES if scope not in have]


def connect_hubspot(
    args: argparse.Namespace, out: TextIO, *, prompt: Callable[[str], str] | None = None
) -> None:
    target = find_target(args, "hubspot")
    connection, settings = target.connection, target.settings
    _say(out, f"endpoint: {target.endpoint.url or 'AWS'} (from {target.endpoint.source})")
    _say(
        out,
        f"connection {connection.name}: HubSpot portal {connection.portal_id}, secret {target.secret_name}",
    )
    current = read_secret(target)
    token = credential(args.token, ENV_HUBSPOT_TOKEN, None, "HubSpot private-app access token", prompt=prompt)
    client_secret = credential(
        args.client_secret,
        ENV_HUBSPOT_CLIENT_SECRET,
        current.get("client_secret"),
        "HubSpot app client secret (signs its webhooks)",
        prompt=prompt,
    )
    details = hubspot_portal(settings.hubspot_base_url, token)
    portal_id = str(details.get("portalId", ""))
    _say(
        out,
        f"token opens portal {portal_id} ({details.get('uiDomain', 'no domain')}, {details.get('companyCurrency', '?')})",
    )
    if portal_id != connection.portal_id:
        raise ConnectError(
            f"the token opens portal {portal_id}, not connection {connection.name}'s ({connection.portal_id} in "
            f"{target.config.source}); nothing was stored"
        )
    info = hubspot_token_info(settings.hubspot_base_url, token)
    scopes = [str(scope) for scope in info.get("scopes") or []]
    missing = missing_scopes(scopes)
    if missing:
        raise ConnectError(
            f"the private app lacks {len(missing)} scope(s) LedgerLink needs: {', '.join(missing)}; add them in "
            "HubSpot (Development > Legacy apps > the app > Scopes), then run this again with the rotated token"
        )
    _say(out, f"scopes: all {len(HUBSPOT_SCOPES)} LedgerLink needs are granted")
    store_secret(
        target, {**current, "access_token": token, "client_secret": client_secret, "portal_id": portal_id}
    )
    _say(out, f"stored in {target.secret_name}: access_token, client_secret, portal_id")


def run_connect_hubspot(
    args: argparse.Namespace, out: TextIO | None = None, *, prompt: Callable[[str], str] | None = None
) -> int:
    ask = prompt if prompt is not None else interactive_prompt()
    return _run("hubspot", args, out, lambda stream: connect_hubspot(args, stream, prompt=ask))


# ---------------------------------------------------------------------------- Microsoft


def graph_token(settings: Settings, tenant_id: str, client_id: str, client_secret: str) -> str:
    url = settings.graph_token_url.replace("{tenant}", urllib.parse.quote(tenant_id, safe=""))
    response = requests.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": GRAPH_SCOPE,
        },
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    body = _json(response)
    if response.status_code != 200 or not body.get("access_token"):
        description = str(body.get("error_description") or "")
        code = description.split(":", 1)[0] if description.startswith("AADSTS") else ""
        raise ConnectError(
            f"Microsoft Entra ID refused the app's credentials (HTTP {response.status_code} "
            f"{body.get('error', 'no error code')}{' ' + code if code else ''})"
        )
    return str(body["access_token"])


def token_roles(access_token: str) -> list[str]:
    """The ``roles`` claim of an app-only token (its application permissions); read, never verified:
    only Graph checks the signature."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        raise ConnectError("the token is not a JWT: cannot read its roles") from None
    roles = claims.get("roles") if isinstance(claims, dict) else None
    return [str(role) for role in roles] if isinstance(roles, list) else []


def mailbox_problem(settings: Settings, access_token: str, mailbox: str) -> str | None:
    """Why the app cannot open ``mailbox``'s calendar (``GET /users/{mailbox}/calendar``), or None. A
    calendar call, not ``GET /users/{mailbox}``: that needs the directory permission User.Read.All, and
    only the calendar call shows what the app's calendar permission reaches, Entra's or Exchange's."""
    response = requests.get(
        f"{_mailbox_url(settings, mailbox)}/calendar",
        params={"$select": "id,name,canEdit"},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    return None if response.status_code == 200 else _graph_problem(response)


# The write check's event: private, no attendees (nobody is invited or notified), a day long ago, and
# deleted at once; its transactionId makes a retried create the same event.
WRITE_CHECK_EVENT: Final = {
    "subject": "LedgerLink connection check (deleted at once)",
    "sensitivity": "private",
    "showAs": "free",
    "isReminderOn": False,
    "start": {"dateTime": "2000-01-01T00:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2000-01-01T00:15:00", "timeZone": "UTC"},
}


def write_problem(settings: Settings, access_token: str, mailbox: str) -> str | None:
    """Why the app cannot write to ``mailbox``'s calendar (it creates :data:`WRITE_CHECK_EVENT`, then
    deletes it), or None."""
    headers = {"Authorization": f"Bearer {access_token}"}
    body = {**WRITE_CHECK_EVENT, "transactionId": f"ledgerlink-connect-check-{mailbox.lower()}"}
    created = requests.post(
        f"{_mailbox_url(settings, mailbox)}/events", json=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS
    )
    if created.status_code != 201:
        return _graph_problem(created)
    event_id = str(_json(created).get("id", ""))
    deleted = requests.delete(
        f"{_mailbox_url(settings, mailbox)}/events/{urllib.parse.quote(event_id, safe='')}",
        headers=headers,
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    if deleted.status_code not in (204, 404):
        return (
            f"created the check event but could not delete it ({_graph_problem(deleted)}): delete it by hand"
        )
    return None


def _mailbox_url(settings: Settings, mailbox: str) -> str:
    return f"{settings.graph_base_url.rstrip('/')}/users/{urllib.parse.quote(mailbox, safe='@')}"


def _graph_problem(response: requests.Response) -> str:
    error = _json(response).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return f"HTTP {response.status_code} {code or ''}".strip()


def connect_microsoft(
    args: argparse.Namespace, out: TextIO, *, prompt: Callable[[str], str] | None = None
) -> None:
    target = find_target(args, "microsoft")
    connection, settings = target.connection, target.settings
    if not connection.tenant_id:
        raise ConnectError(f"connection {connection.name} has no Microsoft tenant (microsoft.tenant_id)")
    _say(out, f"endpoint: {target.endpoint.url or 'AWS'} (from {target.endpoint.source})")
    _say(
        out,
        f"connection {connection.name}: Microsoft tenant {connection.tenant_id}, secret {target.secret_name}",
    )
    current = read_secret(target)
    client_id = credential(
        args.client_id, ENV_GRAPH_CLIENT_ID, current.get("client_id"), "Entra app client id", prompt=prompt
    )
    client_secret = credential(
        args.client_secret,
        ENV_GRAPH_CLIENT_SECRET,
        current.get("client_secret"),
        "Entra app client secret",
        prompt=prompt,
    )
    token = graph_token(settings, connection.tenant_id, client_id, client_secret)
    roles = token_roles(token)
    _say(out, f"app-only token: roles {', '.join(sorted(roles)) or '(none)'}")
    if CALENDAR_ROLE in roles:
        _say(
            out,
            f"calendar permission: {CALENDAR_ROLE} granted in Entra, which opens every mailbox of the tenant; "
            "to limit it to the finance mailboxes use Exchange RBAC for Applications (docs/infra.md)",
        )
    else:
        _say(
            out,
            f"calendar permission: {CALENDAR_ROLE} is not in the token, as with an Exchange RBAC for "
            "Applications role assignment; each mailbox's calendar below shows what the app reaches",
        )
    problems = (
        [f"the app lacks the application permission {ONLINE_MEETINGS_ROLE}"]
        if args.teams_online_meetings and ONLINE_MEETINGS_ROLE not in roles
        else []
    )
    mailboxes = list(
        dict.fromkeys(
            [
                *([connection.accounts_receivable_mailbox] if connection.accounts_receivable_mailbox else []),
                *connection.follow_up.finance_attendees,
                *args.mailbox,
            ]
        )
    )
    for mailbox in mailboxes:
        problem = mailbox_problem(settings, token, mailbox)
        if problem is None and args.check_write:
            written = write_problem(settings, token, mailbox)
            _say(out, f"mailbox {mailbox}: {'ok, calendar read and written' if written is None else written}")
            if written is not None:
                problems.append(f"the app cannot write to the calendar of {mailbox} ({written})")
            continue
        _say(out, f"mailbox {mailbox}: {'ok, calendar open' if problem is None else problem}")
        if problem is not None:
            problems.append(
                f"the app cannot open the calendar of {mailbox} ({_calendar_hint(problem, roles)})"
            )
    if problems:
        raise ConnectError("; ".join(problems) + "; nothing was stored")
    store_secret(
        target,
        {
            **current,
            "tenant_id": connection.tenant_id,
            "client_id": client_id,
            "client_secret": client_secret,
            **(
                {"calendar_user": connection.accounts_receivable_mailbox}
                if connection.accounts_receivable_mailbox and not current.get("calendar_user")
                else {}
            ),
        },
    )
    _say(out, f"stored in {target.secret_name}: tenant_id, client_id, client_secret")


def _calendar_hint(problem: str, roles: Sequence[str]) -> str:
    if problem.startswith("HTTP 403"):
        where = (
            "a legacy Exchange application access policy (New-ApplicationAccessPolicy) that leaves it out"
            if CALENDAR_ROLE in roles
            else f"no {CALENDAR_ROLE} in Entra and no Exchange RBAC for Applications role assignment covering it"
        )
        return f"{problem}: {where}"
    if problem.startswith("HTTP 404"):
        return f"{problem}: no such user, or the user has no Exchange Online mailbox"
    return problem


def run_connect_microsoft(
    args: argparse.Namespace, out: TextIO | None = None, *, prompt: Callable[[str], str] | None = None
) -> int:
    ask = prompt if prompt is not None else interactive_prompt()
    return _run("microsoft", args, out, lambda stream: connect_microsoft(args, stream, prompt=ask))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
