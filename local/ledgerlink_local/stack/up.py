"""``ledgerlink local up`` (what ``make run`` runs): the sandboxes, the stack, the demo, in the foreground.

In order: the three vendor sandboxes (seeded with their demo companies, portals and tenant; each
connection of ``local/config/local.toml`` names one QBO company and one HubSpot portal, and each portal
gets LedgerLink's custom properties, as ``ledgerlink hubspot setup`` does), the local stack (moto, the
topology's resources with each connection's own credentials in its secrets, the functions, the
gateway, the pollers), the QBO sandbox's webhook pointed at the gateway, each connection's HubSpot
portal's webhooks pointed at the gateway's ``POST /v1/webhooks/hubspot`` with
:data:`HUBSPOT_WEBHOOK_SUBSCRIPTIONS` (signed with that portal's app client secret, which its
connection's HubSpot secret holds as ``client_secret``), then ``<state dir>/local.json``
(endpoints and local credentials: :data:`LOCAL_JSON_KEYS` for the first connection, then
``connections``, one object per connection; its QBO refresh tokens are the person's own grants, never
the app's), a summary of where everything is, and one line per hop of every event until Ctrl-C, which
stops everything in the reverse order. With the demo on, the QBO sandbox makes a few realistic changes
in each company over the first minute.

Each vendor package ``ledgerlink_local.sandboxes.<vendor>`` provides the sandbox class and a
``DemoCredentials`` built by ``for_sandbox(url)`` (or ``DemoCredentials(base_url=url)``) with an
``as_dict()`` holding at least the keys of the vendor's section of ``local.json``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

from ledgerlink_local.stack.aws import ensure_port_free
from ledgerlink_local.stack.settings import (
    EVENT_LOG,
    LOG_DIR,
    PREVIOUS_DIR,
    RUN_STAMP_FORMAT,
    RUN_STARTED,
    LocalSettings,
)
from ledgerlink_local.stack.stack import LocalStack, StackOptions
from ledgerlink_local.stack.wiring import LOCAL_REGION, topology_module, vendor_urls

if TYPE_CHECKING:
    from infra.topology import RedeliveryPolicy
    from ledgerlink.configfile import Connection

# The keys of .ledgerlink/local.json, exactly (issue 5); other tools read this file.
LOCAL_JSON_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "qbo": (
        "base_url",
        "token_url",
        "realm_id",
        "client_id",
        "client_secret",
        "refresh_token",
        "verifier_token",
    ),
    "hubspot": ("base_url", "access_token", "client_secret", "portal_id"),
    "graph": ("base_url", "token_url", "tenant_id", "client_id", "client_secret", "calendar_user"),
    "aws": ("endpoint_url", "region"),
}
# The sections each object of local.json's "connections" has (besides its "name"), with the keys above.
LOCAL_JSON_VENDORS: Final = ("qbo", "hubspot", "graph")
WEBHOOK_PATH: Final = "/v1/webhooks/qbo"
HUBSPOT_WEBHOOK_PATH: Final = "/v1/webhooks/hubspot"
# What each connection's HubSpot sandbox portal subscribes its webhooks to: the deal and line-item
# events the HubSpot ingest publishes, of those the sandbox emits (it sends creations, deletions and
# property changes; HubSpot's merge, restore and association-change events it does not).
HUBSPOT_WEBHOOK_SUBSCRIPTIONS: Final[tuple[Mapping[str, str], ...]] = (
    {"subscriptionType": "deal.propertyChange", "propertyName": "dealstage"},
    {"subscriptionType": "deal.deletion"},
    {"subscriptionType": "line_item.creation"},
    {"subscriptionType": "line_item.propertyChange", "propertyName": "quantity"},
    {"subscriptionType": "line_item.propertyChange", "propertyName": "price"},
    {"subscriptionType": "line_item.deletion"},
)
# ``ledgerlink local up`` without --verbose prints one line per record outcome; -v every hop; -vv also
# every AWS call the functions make.
VERBOSITY_HOPS: Final = 1
VERBOSITY_CALLS: Final = 2
# A rotated run's directory: its start, and "-2", "-3" ... for runs started within the same second.
_RUN_DIR: Final = re.compile(r"(\d{8}T\d{6}Z)(?:-(\d+))?")


@dataclass(frozen=True)
class VendorSandbox:
    name: str
    module: str
    sandbox_class: str


VENDORS: Final = (
    VendorSandbox("qbo", "ledgerlink_local.sandboxes.qbo", "QboSandbox"),
    # Every demo portal behind one API host, as HubSpot serves every account (routed by token).
    VendorSandbox("hubspot", "ledgerlink_local.sandboxes.hubspot", "HubSpotPortals"),
    VendorSandbox("graph", "ledgerlink_local.sandboxes.graph", "GraphSandbox"),
)


class UpError(RuntimeError):
    """The stack cannot start; the message says why and what to do."""


@dataclass
class RunningSandboxes:
    servers: dict[str, Any] = field(default_factory=dict)
    # Each vendor's default demo credentials (the first connection's), by vendor.
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each connection of local/config/local.toml: its credentials by vendor (its company, its portal).
    connections: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop every sandbox at once (each shutdown waits up to half a second for its server loop)."""

        def stop_one(server: Any) -> None:
            with contextlib.suppress(Exception):
                server.stop()

        threads = [threading.Thread(target=stop_one, args=(server,)) for server in self.servers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        self.servers.clear()

    def sandbox(self, vendor: str) -> Any:
        return self.servers[vendor].sandbox


def start_sandboxes(
    host: str, ports: Mapping[str, int], connections: tuple[Connection, ...] | None = None
) -> RunningSandboxes:
    """Start each vendor sandbox on its port, seeded with its demo data, and read its demo credentials:
    the vendor's default ones, and each connection's (by default those of local/config/local.toml)."""
    from ledgerlink_local.sandboxes.core import SandboxServer

    running = RunningSandboxes()
    modules: dict[str, Any] = {}
    try:
        for vendor in VENDORS:
            try:
                module = importlib.import_module(vendor.module)
            except ImportError as error:
                raise UpError(
                    f"the {vendor.name} sandbox ({vendor.module}) is not available: {error}"
                ) from None
            modules[vendor.name] = module
            sandbox = getattr(module, vendor.sandbox_class)()
            with _port_in_use_error(vendor.name, ports):
                server = SandboxServer(sandbox, host, ports[vendor.name])
            running.servers[vendor.name] = server.start()
            make_credentials = getattr(module.DemoCredentials, "for_sandbox", None)
            demo = (
                make_credentials(server.url)
                if make_credentials
                else module.DemoCredentials(base_url=server.url)
            )
            credentials = demo.as_dict()
            running.credentials[vendor.name] = {key: str(value) for key, value in credentials.items()}
            missing = [key for key in LOCAL_JSON_KEYS[vendor.name] if key not in credentials]
            if missing:
                raise UpError(f"the {vendor.name} sandbox's DemoCredentials lack {missing}")
        if connections is None:
            connections = _local_connections()
        for connection in connections:
            running.connections[connection.name] = connection_credentials(connection, running, modules)
    except BaseException:
        running.stop()
        raise
    return running


def _local_connections() -> tuple[Connection, ...]:
    from ledgerlink.configfile import load
    from ledgerlink_local.stack.wiring import local_config_file

    return load(local_config_file()).connections


def connection_credentials(
    connection: Connection, running: RunningSandboxes, modules: Mapping[str, Any]
) -> dict[str, dict[str, str]]:
    """The credentials of ``connection``'s own QBO company and HubSpot portal (found by realm and portal
    id among the sandboxes' demo companies and portals) and of the Graph tenant."""
    qbo_url, hubspot_url = running.servers["qbo"].url, running.servers["hubspot"].url
    company = next(
        (c for c in getattr(modules["qbo"], "DEMO_COMPANIES", ()) if c.realm_id == connection.realm_id), None
    )
    if company is None:
        raise UpError(
            f"local/config/local.toml: connection {connection.name!r} names realm {connection.realm_id}, "
            "which is none of the QBO sandbox's demo companies"
        )
    portal = next(
        (
            p
            for p in getattr(modules["hubspot"], "DEMO_PORTALS", ())
            if str(p.portal_id) == connection.portal_id
        ),
        None,
    )
    if portal is None:
        raise UpError(
            f"local/config/local.toml: connection {connection.name!r} names portal {connection.portal_id}, "
            "which is none of the HubSpot sandbox's demo portals"
        )
    graph = running.credentials["graph"]
    if connection.tenant_id is not None and connection.tenant_id != graph["tenant_id"]:
        raise UpError(
            f"local/config/local.toml: connection {connection.name!r} names tenant {connection.tenant_id}, "
            f"not the Graph sandbox's ({graph['tenant_id']})"
        )
    qbo = modules["qbo"].DemoCredentials.for_sandbox(qbo_url, company).as_dict()
    hubspot = modules["hubspot"].DemoCredentials.for_portal(hubspot_url, portal).as_dict()
    return {
        "qbo": {key: str(value) for key, value in qbo.items()},
        "hubspot": {key: str(value) for key, value in hubspot.items()},
        "graph": dict(graph),
    }


@contextlib.contextmanager
def _port_in_use_error(what: str, ports: Mapping[str, int]) -> Iterator[None]:
    """Turn "address in use" into an error that names the port and how to choose another."""
    try:
        yield
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UpError(
                f"port {ports.get(what)} ({what}) is in use: another stack or program has it; "
                f"choose another with --{what}-port or LEDGERLINK_LOCAL_{what.upper()}_PORT"
            ) from None
        raise


def secret_values(
    credentials: Mapping[str, Mapping[str, str]],
    connections: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> dict[str, str]:
    """What goes in each Secrets Manager secret of the topology (by secret key), as JSON objects: the
    deployment's webhook verifier, and each connection's (``<name>:qbo-oauth`` ...) from its own
    credentials (``connections``; by default one connection "demo" with ``credentials``). The QBO secret
    holds the app's refresh token (``app_refresh_token``), never the person's of local.json."""
    if connections is None:
        connections = {"demo": credentials}
    values: dict[str, Mapping[str, str]] = {
        "qbo-webhook": {"verifier_token": credentials["qbo"]["verifier_token"]}
    }
    for name, own in connections.items():
        values.update(_connection_secrets(name, own["qbo"], own["hubspot"], own["graph"]))
    return {key: json.dumps(value) for key, value in values.items()}


def _connection_secrets(
    name: str, qbo: Mapping[str, str], hubspot: Mapping[str, str], graph: Mapping[str, str]
) -> dict[str, Mapping[str, str]]:
    return {
        f"{name}:qbo-oauth": {
            "client_id": qbo["client_id"],
            "client_secret": qbo["client_secret"],
            "refresh_token": qbo["app_refresh_token"],
            "realm_id": qbo["realm_id"],
        },
        f"{name}:hubspot": {
            "access_token": hubspot["access_token"],
            "client_secret": hubspot["client_secret"],
            "portal_id": hubspot["portal_id"],
        },
        f"{name}:graph": {
            "tenant_id": graph["tenant_id"],
            "client_id": graph["client_id"],
            "client_secret": graph["client_secret"],
            "calendar_user": graph["calendar_user"],
        },
    }


def local_description(
    gateway_url: str,
    credentials: Mapping[str, Mapping[str, str]],
    endpoint_url: str,
    region: str,
    connections: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
) -> dict[str, Any]:
    """The content of ``local.json``: exactly :data:`LOCAL_JSON_KEYS`, in that order (the first
    connection's), then ``connections``: per connection its ``name`` and the same three sections."""
    if connections is None:
        connections = {"demo": credentials}
    description: dict[str, Any] = {"gateway_url": gateway_url}
    for vendor in LOCAL_JSON_VENDORS:
        description[vendor] = {key: credentials[vendor][key] for key in LOCAL_JSON_KEYS[vendor]}
    description["aws"] = {"endpoint_url": endpoint_url, "region": region}
    description["connections"] = [
        {
            "name": name,
            **{
                vendor: {key: own[vendor][key] for key in LOCAL_JSON_KEYS[vendor]}
                for vendor in LOCAL_JSON_VENDORS
            },
        }
        for name, own in connections.items()
    ]
    return description


def write_local_json(path: Path, description: Mapping[str, Any]) -> None:
    """Atomically, readable by the developer only (it holds the local credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(description, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def prepare_hubspot_portal(credentials: Mapping[str, str]) -> list[str]:
    """What ``ledgerlink hubspot setup`` does for a real portal, done for the demo portal: LedgerLink's
    property group and custom properties (the deal sync upserts on them). Returns the report's lines."""
    from ledgerlink.cli.hubspot import Target, client_for
    from ledgerlink.hubspot.setup import setup_portal

    report = setup_portal(
        client_for(Target(credentials["base_url"], credentials["access_token"], "local stack"))
    )
    if report.conflicts:
        raise UpError(
            f"the HubSpot sandbox's demo portal conflicts with LedgerLink's properties: {report.conflicts}"
        )
    return report.lines()


def refuse_if_running(local_json: Path) -> None:
    """Two stacks must not share a state directory: refuse if the one described there still answers."""
    if not local_json.is_file():
        return
    try:
        endpoint = json.loads(local_json.read_text(encoding="utf-8"))["aws"]["endpoint_url"]
    except (ValueError, KeyError, TypeError):
        return
    parts = urllib.parse.urlsplit(str(endpoint))
    with (
        contextlib.suppress(OSError),
        socket.create_connection((parts.hostname, parts.port or 80), timeout=0.5),
    ):
        raise UpError(
            f"a local stack already runs with state directory {local_json.parent} (its AWS answers at "
            f"{endpoint}); stop it, or start this one with another --state-dir and other ports"
        )


def fresh_state_dir(settings: LocalSettings, now: datetime | None = None) -> Path | None:
    """Each run starts from nothing (moto keeps nothing): the previous run's hop log and function logs
    move to ``previous/`` (:func:`rotate_previous_run`), and this run's start is noted for its own
    rotation. Returns where the previous run's logs went (None: there were none, or none are kept)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    rotated = rotate_previous_run(settings.state_dir, settings.keep_runs)
    started = (now or datetime.now(UTC)).astimezone(UTC)
    (settings.state_dir / RUN_STARTED).write_text(started.strftime(RUN_STAMP_FORMAT) + "\n", "utf-8")
    return rotated


def rotate_previous_run(state_dir: Path, keep: int) -> Path | None:
    """Move the previous run's ``events.jsonl`` and ``logs/`` to ``previous/<its start, UTC>/`` (so a
    crash leaves its evidence), then keep only the newest ``keep`` runs there. Returns the previous
    run's directory, or None when it left nothing or ``keep`` is 0."""
    event_log, log_dir = state_dir / EVENT_LOG, state_dir / LOG_DIR
    left = [path for path in (event_log, log_dir) if path.exists()]
    files = [event_log] if event_log.is_file() else []
    if log_dir.is_dir():
        files += [path for path in log_dir.rglob("*") if path.is_file()]
    destination: Path | None = None
    if files:
        destination = _new_run_dir(state_dir / PREVIOUS_DIR, _run_stamp(state_dir / RUN_STARTED, files))
        for path in left:
            path.rename(destination / path.name)
    elif log_dir.is_dir():
        shutil.rmtree(log_dir)  # an empty logs/ is no evidence
    kept = prune_previous_runs(state_dir / PREVIOUS_DIR, keep)
    return destination if destination in kept else None


def prune_previous_runs(previous: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run directories (only those named as rotation names them);
    returns the ones kept, oldest first."""
    if not previous.is_dir():
        return []
    runs = []
    for path in previous.iterdir():
        found = _RUN_DIR.fullmatch(path.name)
        if found is not None and path.is_dir():
            runs.append(((found.group(1), int(found.group(2) or 1)), path))
    runs.sort()
    cut = max(len(runs) - keep, 0)
    for _, path in runs[:cut]:
        shutil.rmtree(path)
    return [path for _, path in runs[cut:]]


def _run_stamp(marker: Path, files: list[Path]) -> str:
    """The run's start as noted by :func:`fresh_state_dir`; for a state directory from before runs
    were noted, the last time the run wrote a log."""
    with contextlib.suppress(OSError, ValueError):
        noted = marker.read_text(encoding="utf-8").strip()
        found = _RUN_DIR.fullmatch(noted)
        if found is not None and found.group(2) is None:
            datetime.strptime(noted, RUN_STAMP_FORMAT)  # a real date, or ValueError
            return noted
    last = max(path.stat().st_mtime for path in files)
    return datetime.fromtimestamp(last, UTC).strftime(RUN_STAMP_FORMAT)


def _new_run_dir(previous: Path, stamp: str) -> Path:
    number = 1
    while True:
        candidate = previous / (stamp if number == 1 else f"{stamp}-{number}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            number += 1
            continue
        return candidate


def start_demo(sandbox: Any, out: TextIO, stop: threading.Event) -> threading.Thread | None:
    """Run the QBO sandbox's demo activity (a few realistic changes over the first minute)."""
    runner = getattr(sandbox, "run_demo_activity", None)
    if runner is None:
        print("demo     the QBO sandbox offers no demo activity; make changes through its API", file=out)
        return None

    def run() -> None:
        try:
            runner(stop)
        except Exception as error:  # noqa: BLE001 - the demo must never take the stack down
            print(f"demo     stopped: {type(error).__name__}: {error}", file=out, flush=True)

    thread = threading.Thread(target=run, name="demo-activity", daemon=True)
    thread.start()
    return thread


def start_sales_demo(sandbox: Any, out: TextIO, stop: threading.Event) -> threading.Thread | None:
    """Run the HubSpot sandbox's salesperson: one deal to the quote stage, then to Closed Won."""
    runner = getattr(sandbox, "run_demo_activity", None)
    if runner is None:
        return None

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    def run() -> None:
        try:
            runner(stop, say=say)
        except Exception as error:  # noqa: BLE001 - the demo must never take the stack down
            print(f"demo     HubSpot stopped: {type(error).__name__}: {error}", file=out, flush=True)

    thread = threading.Thread(target=run, name="sales-demo", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True)
class Tuning:
    """What the end-to-end tests change (the defaults are what ``make run`` does)."""

    visibility_timeout_seconds: int | None = None
    batching_window_seconds: float | None = None
    redelivery: RedeliveryPolicy | None = None
    function_variables: Mapping[str, str] = field(default_factory=dict)
    start_pollers: bool = True
    secret_overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LocalEnvironment:
    """Everything ``up`` starts: the sandboxes and the stack, wired to each other."""

    sandboxes: RunningSandboxes
    stack: LocalStack
    description: dict[str, Any]
    # Each connection's portal preparation (``ledgerlink hubspot setup``): its report's lines.
    hubspot_setup: dict[str, list[str]] = field(default_factory=dict)

    def stop(self) -> None:
        """The stack first (its functions call the sandboxes), then the sandboxes."""
        self.stack.stop()
        self.sandboxes.stop()


def start_environment(
    settings: LocalSettings,
    console: TextIO | None,
    *,
    verbose: bool = False,
    record_lines: bool = False,
    tuning: Tuning | None = None,
) -> LocalEnvironment:
    """Start the sandboxes and the stack, point the QBO webhook at the gateway, write ``local.json``."""
    tuning = tuning or Tuning()
    ports = {
        "qbo": settings.ports.qbo,
        "hubspot": settings.ports.hubspot,
        "graph": settings.ports.graph,
        "gateway": settings.ports.gateway,
        "aws": settings.ports.aws,
    }
    for what in ("gateway", "aws"):
        with _port_in_use_error(what, ports):
            ensure_port_free(settings.host, ports[what])
    sandboxes = start_sandboxes(settings.host, ports)
    try:
        options = StackOptions(
            vendors=vendor_urls(sandboxes.credentials),
            secret_values={
                **secret_values(sandboxes.credentials, sandboxes.connections),
                **tuning.secret_overrides,
            },
            host=settings.host,
            gateway_port=settings.ports.gateway,
            aws_port=settings.ports.aws,
            state_dir=settings.state_dir,
            console=console,
            verbose=verbose,
            record_lines=record_lines,
            stage_labels=stage_labels(sandboxes) if record_lines else {},
            visibility_timeout_seconds=tuning.visibility_timeout_seconds,
            batching_window_seconds=tuning.batching_window_seconds,
            redelivery=tuning.redelivery,
            function_variables=tuning.function_variables,
            start_pollers=tuning.start_pollers,
            schedule_seconds={
                rule: seconds
                for rule, seconds in (
                    (topology_module().FOLLOWUP_SWEEP_RULE, settings.sweep_seconds),
                    (topology_module().CATCHUP_RULE, settings.catchup_seconds),
                    (topology_module().RECONCILE_RULE, settings.reconcile_seconds),
                )
                if seconds is not None
            },
        )
        stack = LocalStack(options).start()
    except BaseException:
        sandboxes.stop()
        raise
    environment = LocalEnvironment(sandboxes, stack, {})
    try:
        for name, own in sandboxes.connections.items():
            environment.hubspot_setup[name] = prepare_hubspot_portal(own["hubspot"])
        sandboxes.sandbox("qbo").update_config({"webhook_url": stack.gateway_url + WEBHOOK_PATH})
        point_hubspot_webhooks(sandboxes, stack.gateway_url + HUBSPOT_WEBHOOK_PATH)
        environment.description = local_description(
            stack.gateway_url, sandboxes.credentials, stack.endpoint_url, LOCAL_REGION, sandboxes.connections
        )
        write_local_json(settings.local_json, environment.description)
    except BaseException:
        environment.stop()
        raise
    return environment


def stage_labels(sandboxes: RunningSandboxes) -> dict[str, str]:
    """Each connection's HubSpot portal's deal stages, id -> label ("880015" -> "Invoice Open"), as
    they are when the stack starts: the record lines name a deal's stage by them."""
    labels: dict[str, str] = {}
    hubspot = sandboxes.sandbox("hubspot")
    for own in sandboxes.connections.values():
        with contextlib.suppress(AttributeError, KeyError, ValueError):
            portal = hubspot.portal_sandbox(own["hubspot"]["portal_id"]).portal
            for pipeline in portal.live_pipelines("deals"):
                labels.update({stage.id: stage.label for stage in pipeline.live_stages()})
    return labels


def point_hubspot_webhooks(sandboxes: RunningSandboxes, url: str) -> None:
    """Each connection's HubSpot portal sends its webhooks to ``url``, for :data:`HUBSPOT_WEBHOOK_SUBSCRIPTIONS`
    (as an operator sets the app's target URL and subscriptions in HubSpot)."""
    hubspot = sandboxes.sandbox("hubspot")
    for own in sandboxes.connections.values():
        portal = hubspot.portal_sandbox(own["hubspot"]["portal_id"])
        portal.update_config(
            {
                "webhook_url": url,
                "webhook_subscriptions": [
                    dict(subscription) for subscription in HUBSPOT_WEBHOOK_SUBSCRIPTIONS
                ],
            }
        )


def run_up(settings: LocalSettings, out: TextIO, *, verbosity: int = 0) -> int:
    """Start everything, print where it is and then, until Ctrl-C (SIGINT) or SIGTERM, one line per
    record outcome (``verbosity`` 0), every hop (1), every hop and AWS call (2)."""
    started = time.perf_counter()
    stop = threading.Event()
    # Every thread of the stack prints here; once the reader has gone (`make run | head`), the stack stops.
    out = cast("TextIO", ClosedPipeStops(out, stop))
    previous = _install_signal_handlers(stop)
    environment: LocalEnvironment | None = None
    try:
        refuse_if_running(settings.local_json)
        previous_run = fresh_state_dir(settings)
        environment = start_environment(
            settings, out, verbose=verbosity >= VERBOSITY_CALLS, record_lines=verbosity < VERBOSITY_HOPS
        )
        _print_summary(
            out, settings, environment, time.perf_counter() - started, previous_run, verbosity=verbosity
        )
        if settings.demo:
            start_demo(environment.sandboxes.sandbox("qbo"), out, stop)
            # The demo portal's salesperson: a deal quoted, then won (the HubSpot -> QBO flow).
            start_sales_demo(environment.sandboxes.sandbox("hubspot"), out, stop)
        else:
            print("demo     off (LEDGERLINK_DEMO=0): the sandboxes hold their base data only", file=out)
        out.flush()
        stop.wait()
        print("\nstopping: gateway, pollers, functions, AWS, sandboxes ...", file=out, flush=True)
        return 0
    except UpError as error:
        print(f"ledgerlink local up: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop.set()
        if environment is not None:
            environment.stop()
        _restore_signal_handlers(previous)


class ClosedPipeStops(io.TextIOBase):
    """The console of ``local up``: writes go to ``out`` until its reader closes the pipe (``| head``);
    then nothing more is written (no thread of the stack fails on it) and ``stop`` is set, so the stack
    stops as a pipeline's writer does."""

    def __init__(self, out: TextIO, stop: threading.Event) -> None:
        super().__init__()
        self._out = out
        self._stop = stop
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            with self._closed_pipe_stops():
                self._out.write(text)
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            with self._closed_pipe_stops():
                self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()

    @contextlib.contextmanager
    def _closed_pipe_stops(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            from ledgerlink.cli import silence_closed_pipe

            self.closed_pipe = True
            silence_closed_pipe(self._out)  # the interpreter's last flush must not report it either
            self._stop.set()


def _print_summary(
    out: TextIO,
    settings: LocalSettings,
    environment: LocalEnvironment,
    seconds: float,
    previous_run: Path | None = None,
    *,
    verbosity: int = VERBOSITY_HOPS,
) -> None:
    stack, sandboxes = environment.stack, environment.sandboxes
    assert stack.topology is not None
    topology = stack.topology
    routes = "   ".join(f"{route.route_key} -> {route.function}" for route in topology.api.routes)
    lines = [
        f"LedgerLink local stack ready in {seconds:.1f}s (stage {topology.stage}; Ctrl-C stops everything)",
        f"  gateway    {stack.gateway_url}   {routes}"
        f"   throttle {topology.api.throttle.rate_limit:g}/s burst {topology.api.throttle.burst_limit}",
        f"  aws        {stack.endpoint_url}   (moto: S3, SQS, EventBridge, DynamoDB, Secrets Manager)",
    ]
    for vendor in ("qbo", "hubspot", "graph"):
        lines.append(
            f"  {vendor:<10} {sandboxes.servers[vendor].url}   admin {sandboxes.servers[vendor].url}/_admin"
        )
    for name, own in sandboxes.connections.items():
        realm, portal = own["qbo"]["realm_id"], own["hubspot"]["portal_id"]
        setup = environment.hubspot_setup.get(name)
        prepared = f"; portal prepared (ledgerlink hubspot setup): {setup[-1]}" if setup else ""
        lines.append(f"  connection {name:<10} QBO realm {realm}   HubSpot portal {portal}{prepared}")
    lines.append(f"  bus        {topology.event_bus.name}")
    for rule in topology.rules:
        queue = topology.queue(rule.target_queue)
        when = ""
        if rule.schedule_expression:
            every = stack.options.schedule_seconds.get(rule.key)
            local = f"; here every {every:g} s" if every is not None else ""
            when = f" [{rule.schedule_expression}{local}]"
        lines.append(f"  rule       {rule.name}{when} -> {queue.name} (dead letters: {queue.dlq_name})")
    for source in topology.queue_sources:
        queue = topology.queue(source.queue)
        lines.append(
            f"  poller     {queue.name} -> {source.function} (batch {source.batch_size}, "
            f"window {source.max_batching_window_seconds}s, max receives {queue.max_receive_count})"
        )
    lines += [
        f"  state      {settings.local_json} (endpoints, local credentials), "
        f"{settings.event_log} (hops), {settings.log_dir}/ (function logs)",
        f"  previous   {previous_run_line(settings, previous_run)}",
        *hint_lines(settings),
        "",
        *console_header(verbosity),
    ]
    print("\n".join(lines), file=out, flush=True)


def console_header(verbosity: int) -> list[str]:
    """What the lines after the summary are, and how to see more."""
    if verbosity >= VERBOSITY_HOPS:
        return [f"{'time':<12}  {'correlation id':<36}  {'hop':<11} what"]
    return [
        "One line per record outcome (ledgerlink local up --verbose: every hop; -vv: and every AWS call)",
        f"{'time':<8}  {'connection':<8} what it became",
    ]


def hint_lines(settings: LocalSettings) -> list[str]:
    """The commands the summary suggests, with the flags they need to find this stack (its state
    directory, when it is not the one they find by themselves), ready to paste."""
    flags = state_dir_flags(settings.state_dir)
    return [f"  inspect    ledgerlink local status{flags}   |   replay: ledgerlink dlq replay <queue>{flags}"]


def state_dir_flags(state_dir: Path) -> str:
    """`` --state-dir <absolute path>`` for a state directory other commands would not find without it
    (one from ``--state-dir`` or ``LEDGERLINK_LOCAL_STATE_DIR``); empty for the checkout's own."""
    from ledgerlink.cli.endpoints import default_state_dir

    if os.path.abspath(state_dir) == os.path.abspath(default_state_dir()):
        return ""
    return f" --state-dir {shlex.quote(os.path.abspath(state_dir))}"


def previous_run_line(settings: LocalSettings, previous_run: Path | None) -> str:
    """Where the previous run's logs went, for the summary."""
    if settings.keep_runs == 0:
        return "earlier runs' logs are not kept (LEDGERLINK_LOCAL_KEEP_RUNS=0)"
    kept = f"the last {settings.keep_runs} runs are kept" if settings.keep_runs > 1 else "one run is kept"
    if previous_run is None:
        return f"{settings.previous_dir}/ (no logs from a previous run; {kept})"
    return f"{previous_run}/ (the previous run's hops and function logs; {kept})"


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous  # only the main thread may set handlers (tests run up in a thread)

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handle)
    return previous


def _restore_signal_handlers(previous: Mapping[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
