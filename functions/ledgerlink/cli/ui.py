"""``ledgerlink ui [--port N]``: sync health in a browser, served from the operator's own machine.

A small web page on ``http://127.0.0.1:<port>/`` (loopback only: nothing is exposed to the network and no
endpoint is added to the cloud), reading AWS with the operator's own credentials, or the local stack,
found as every operator command finds it (:mod:`ledgerlink.cli.endpoints`). What it shows is what the
other commands print, read by their own functions:

- **health**: each connection's state from its recent history rows (:mod:`ledgerlink.history`;
  *healthy*, *failing* when a record's latest attempt failed, *idle* without rows), the queues and their
  dead-letter depths (``ledgerlink status``'s :func:`~ledgerlink.cli.status.queue_depths`), and a plot of
  throughput, latency and failures over time (:func:`series`);
- **failures**: the failed attempts grouped by reason category with the fix each needs
  (:func:`~ledgerlink.cli.status.failures_by_category`, docs/status.md#reason-categories), and the
  dead-letter queues' messages with their reasons (``ledgerlink dlq replay --dry-run``'s reading) and a
  Replay button (``ledgerlink dlq replay``'s :func:`~ledgerlink.cli.dlq.replay`);
- **trace**: every hop of an invoice or a deal (``ledgerlink trace``'s rows).

The page is one static HTML document with plain JavaScript (:mod:`ledgerlink.cli.ui_page`: no CDN, no
build step); it reads ``/api/status``, ``/api/series``, ``/api/dlq`` and ``/api/trace`` and posts
``/api/dlq/replay``. ``?view=health|failures|trace``, ``&connection=NAME``, ``&kind=invoice|deal&ref=...``
choose what it renders, so every view is a URL.

It is a local server that can move messages, so it checks who talks to it: the ``Host`` header must name
the loopback address it listens on (a DNS-rebinding page's requests name the attacker's host), and a POST
must carry the per-process random token the page embeds (``X-LedgerLink-Token``; a page of another origin
cannot read it, and a cross-origin request with that header needs a CORS preflight this server never
grants) and, when it sends one, an ``Origin`` of this server's own.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import math
import secrets as token_generator
import sys
import threading
import urllib.parse
import webbrowser
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TextIO

from aws_lambda_powertools import Logger

from ledgerlink.cli import EXIT_FAILED, EXIT_OK
from ledgerlink.cli.endpoints import (
    EndpointError,
    add_endpoint_arguments,
    aws_client,
    resolve_endpoint,
)
from ledgerlink.cli.status import DEFAULT_QUEUE_PREFIX, QueueDepth, failures_by_category, queue_depths

if TYPE_CHECKING:
    from ledgerlink.history import HistoryRow, HistoryStore

logger = Logger(child=True)

SERVICES: Final = ("sqs", "dynamodb")
LOOPBACK: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8470
TOKEN_HEADER: Final = "X-LedgerLink-Token"  # noqa: S105 - a header name, not a secret
# Rows each connection's health is read from, and the plot's (newest first in the table).
DEFAULT_HEALTH_ROWS: Final = 200
DEFAULT_SERIES_ROWS: Final = 2000
# Messages each dead-letter queue lists at most (its depth says how many more there are).
DLQ_MESSAGES_SHOWN: Final = 20
# The plot's bucket widths, and about how many buckets it aims for.
BUCKET_SECONDS: Final = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400)
TARGET_BUCKETS: Final = 48
MAX_BODY_BYTES: Final = 4096
_OK_OUTCOMES: Final = frozenset({"written", "unchanged", "skipped"})
_FAILED_OUTCOMES: Final = frozenset({"failed", "dead_lettered"})


# ---- what the page shows, from history rows (pure)


@dataclass(frozen=True)
class ConnectionHealth:
    """One connection's state, from its newest history rows."""

    connection: str
    state: str
    """``healthy`` (rows, and no record whose latest attempt failed), ``failing``, ``idle`` (no rows) or
    ``unreadable`` (``problem`` says why)."""
    attempts: int
    records: int
    written: int
    failed_attempts: int
    failing_records: int
    waiting_retries: int
    """Failing records whose latest attempt waits for its redelivery (``next_attempt_at``)."""
    dead_lettered_records: int
    last_success_at: str | None
    last_at: str | None
    failures: list[dict[str, Any]] = field(default_factory=list)
    """:func:`~ledgerlink.cli.status.failures_by_category` of the rows, each with its fix."""
    problem: str | None = None


def connection_health(connection: str, rows: Sequence[HistoryRow]) -> ConnectionHealth:
    """``connection``'s health from its rows (oldest first, as :meth:`HistoryStore.recent` gives them)."""
    latest: dict[tuple[str, str, str], HistoryRow] = {}
    for row in rows:
        latest[(row.flow.value, row.source_entity, row.source_id)] = row
    failing = [row for row in latest.values() if row.outcome.value in _FAILED_OUTCOMES]
    successes = [row.at for row in rows if row.outcome.value in _OK_OUTCOMES]
    return ConnectionHealth(
        connection=connection,
        state=("failing" if failing else "healthy") if rows else "idle",
        attempts=len(rows),
        records=len(latest),
        written=sum(1 for row in rows if row.outcome.value == "written"),
        failed_attempts=sum(1 for row in rows if row.outcome.value in _FAILED_OUTCOMES),
        failing_records=len(failing),
        waiting_retries=sum(1 for row in failing if row.outcome.value == "failed" and row.next_attempt_at),
        dead_lettered_records=sum(1 for row in failing if row.outcome.value == "dead_lettered"),
        last_success_at=max(successes) if successes else None,
        last_at=max((row.at for row in rows), default=None),
        failures=[asdict(count) for count in failures_by_category(rows)],
    )


def _epoch(at: str) -> float:
    return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def bucket_width(span_seconds: float) -> int:
    """The narrowest of :data:`BUCKET_SECONDS` that cuts ``span_seconds`` into at most
    :data:`TARGET_BUCKETS` buckets (the widest for longer spans)."""
    for width in BUCKET_SECONDS:
        if span_seconds / width <= TARGET_BUCKETS:
            return width
    return BUCKET_SECONDS[-1]


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def series(rows: Iterable[HistoryRow], bucket_seconds: int | None = None) -> dict[str, Any]:
    """Throughput, latency and failures per time bucket, from history rows.

    Per bucket (by each row's ``at``, every bucket from the first row's to the last row's, empty ones
    too, so the time axis is even): ``throughput``, the attempts settled without failure (written,
    unchanged, skipped); ``failures``, the failed and dead-lettered attempts; ``latency_p50_ms`` and
    ``latency_p95_ms``, of the rows that know when their message was queued (``at`` minus
    ``queued_at``: time in the queue, retries' delays and the work itself), None when none does. The
    bucket width is :func:`bucket_width` of the rows' span unless ``bucket_seconds`` says."""
    timed = [(_epoch(row.at), row) for row in rows]
    if not timed:
        return {"bucket_seconds": bucket_seconds or BUCKET_SECONDS[0], "buckets": []}
    first = min(moment for moment, _ in timed)
    last = max(moment for moment, _ in timed)
    width = bucket_seconds or bucket_width(last - first)
    start = math.floor(first / width) * width
    count = int((last - start) // width) + 1
    throughput = [0] * count
    failures = [0] * count
    latencies: list[list[float]] = [[] for _ in range(count)]
    for moment, row in timed:
        index = int((moment - start) // width)
        if row.outcome.value in _FAILED_OUTCOMES:
            failures[index] += 1
        else:
            throughput[index] += 1
        if row.queued_at:
            latencies[index].append(max(0.0, (moment - _epoch(row.queued_at)) * 1000))
    return {
        "bucket_seconds": width,
        "buckets": [
            {
                "start": _iso(start + index * width),
                "throughput": throughput[index],
                "failures": failures[index],
                "latency_p50_ms": round(_percentile(latencies[index], 0.5)) if latencies[index] else None,
                "latency_p95_ms": round(_percentile(latencies[index], 0.95)) if latencies[index] else None,
            }
            for index in range(count)
        ],
    }


# ---- where the page's data comes from


class HealthSource(Protocol):
    """What the page reads and does (:class:`AwsHealthSource`; tests may give their own)."""

    connections: tuple[str, ...]

    def status(self) -> dict[str, Any]: ...

    def series(self, connection: str, bucket_seconds: int | None) -> dict[str, Any]: ...

    def trace(self, connection: str, kind: str, reference: str) -> dict[str, Any]: ...

    def dead_letters(self) -> dict[str, Any]: ...

    def replay(self, queue: str) -> dict[str, Any]: ...


class UiRequestError(ValueError):
    """A request the page should not have sent (unknown connection, queue or kind): a 400 with this."""


class ReplayBusy(RuntimeError):
    """Another replay is running in this process: the page says so (409)."""


@dataclass
class AwsHealthSource:
    """The history in the links table, the queues and dead-letter queues of one endpoint."""

    sqs: Any
    store: HistoryStore
    connections: tuple[str, ...]
    where: str
    queue_prefix: str | None = DEFAULT_QUEUE_PREFIX
    health_rows: int = DEFAULT_HEALTH_ROWS
    series_rows: int = DEFAULT_SERIES_ROWS
    _replaying: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _connection(self, name: str) -> str:
        if name not in self.connections:
            raise UiRequestError(f"no connection {name!r} (connections: {', '.join(self.connections)})")
        return name

    def _queues(self) -> tuple[list[QueueDepth], str | None]:
        try:
            return queue_depths(self.sqs, self.queue_prefix), None
        except Exception as error:  # noqa: BLE001 - the rest of the page stands; say what is missing
            return [], f"queues unreadable: {_describe_error(error)}"

    def status(self) -> dict[str, Any]:
        healths = []
        for connection in self.connections:
            try:
                rows = self.store.recent(connection, self.health_rows)
            except Exception as error:  # noqa: BLE001 - one connection's table error, shown on its row
                healths.append(asdict(_unreadable(connection, _describe_error(error))))
                continue
            healths.append(asdict(connection_health(connection, rows)))
        depths, problem = self._queues()
        return {
            "where": self.where,
            "connections": healths,
            "queues": [asdict(depth) for depth in depths],
            "problems": [problem] if problem else [],
        }

    def series(self, connection: str, bucket_seconds: int | None) -> dict[str, Any]:
        rows = self.store.recent(self._connection(connection), self.series_rows)
        return {"connection": connection, **series(rows, bucket_seconds)}

    def trace(self, connection: str, kind: str, reference: str) -> dict[str, Any]:
        from ledgerlink.cli.trace import trace_rows

        if kind not in ("invoice", "deal"):
            raise UiRequestError(f"kind is invoice or deal, not {kind!r}")
        if not reference or "#" in reference:
            raise UiRequestError("ref names the invoice (DocNumber or Id) or the deal (id)")
        rows = trace_rows(self.store, self._connection(connection), kind, reference)
        return {
            "connection": connection,
            "kind": kind,
            "reference": reference,
            "hops": [row.to_json() for row in rows],
        }

    def dead_letters(self) -> dict[str, Any]:
        from ledgerlink.consumer.deadletter import describe, peek

        depths, problem = self._queues()
        queues = []
        for depth in depths:
            if not depth.dlq_name:
                continue
            messages: list[dict[str, Any]] = []
            unreadable = None
            if depth.dlq_visible:
                try:
                    url = self.sqs.get_queue_url(QueueName=depth.dlq_name)["QueueUrl"]
                    messages = [
                        asdict(describe(message)) for message in peek(self.sqs, url, DLQ_MESSAGES_SHOWN)
                    ]
                except Exception as error:  # noqa: BLE001 - the queue's depth still shows
                    unreadable = _describe_error(error)
            queues.append(
                {
                    "queue": depth.name,
                    "dlq": depth.dlq_name,
                    "depth": depth.dlq_visible,
                    "messages": messages,
                    "problem": unreadable,
                }
            )
        return {"queues": queues, "problems": [problem] if problem else []}

    def replay(self, queue: str) -> dict[str, Any]:
        from ledgerlink.cli.dlq import find_pair, replay

        depths, problem = self._queues()
        if problem:
            raise RuntimeError(problem)
        if queue not in {depth.dlq_name for depth in depths if depth.dlq_name}:
            # Only what the page lists: a request cannot point the replay at any other queue.
            raise UiRequestError(f"{queue!r} is not one of the dead-letter queues listed")
        if not self._replaying.acquire(blocking=False):
            raise ReplayBusy("a replay is already running; wait for it to end")
        try:
            pair = find_pair(self.sqs, queue)
            report = replay(self.sqs, pair)
        finally:
            self._replaying.release()
        logger.info(
            "dead letters replayed from the ui",
            extra={
                "dlq": pair.dlq_name,
                "source_queue": pair.source_name,
                "moved": report.moved,
                "skipped": report.skipped,
                "failed": report.failed,
            },
        )
        return {"dlq": pair.dlq_name, "source_queue": pair.source_name, **asdict(report)}


def _unreadable(connection: str, problem: str) -> ConnectionHealth:
    return ConnectionHealth(connection, "unreadable", 0, 0, 0, 0, 0, 0, 0, None, None, problem=problem)


def _describe_error(error: Exception) -> str:
    """An AWS error as the page shows it: its type and message (boto3's never hold a secret)."""
    return f"{type(error).__name__}: {error}"


# ---- the server


class UiServer(ThreadingHTTPServer):
    """The page and its JSON API on the loopback address (module docstring for the checks)."""

    daemon_threads = True

    def __init__(self, source: HealthSource, port: int = DEFAULT_PORT, token: str | None = None) -> None:
        super().__init__((LOOPBACK, port), UiRequestHandler)
        self.source = source
        self.token = token or token_generator.token_urlsafe(32)
        self.port = int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset({f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"})


class UiRequestHandler(BaseHTTPRequestHandler):
    server: UiServer
    server_version = "ledgerlink-ui"
    sys_version = ""

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        parts = urllib.parse.urlsplit(self.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(parts.query).items()}
        routes: dict[str, Callable[[Mapping[str, str]], Any]] = {
            "/api/status": lambda _query: self.server.source.status(),
            "/api/series": self._series,
            "/api/trace": lambda q: self.server.source.trace(
                q.get("connection") or self._default_connection(), q.get("kind", "invoice"), q.get("ref", "")
            ),
            "/api/dlq": lambda _query: self.server.source.dead_letters(),
        }
        if parts.path == "/":
            self._page()
        elif parts.path in routes:
            self._answer(lambda: routes[parts.path](query))
        elif parts.path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {parts.path}"})

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        sent = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self.server.token.encode()):
            self._json(HTTPStatus.FORBIDDEN, {"error": f"missing or wrong {TOKEN_HEADER}: reload the page"})
            return
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in {
            f"http://{host}" for host in self.server.allowed_hosts
        }:
            self._json(HTTPStatus.FORBIDDEN, {"error": "requests from other origins are refused"})
            return
        if urllib.parse.urlsplit(self.path).path != "/api/dlq/replay":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action: {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            queue = str(body["queue"]) if isinstance(body, dict) else ""
        except (ValueError, KeyError):
            queue = ""
        if not queue:
            self._json(HTTPStatus.BAD_REQUEST, {"error": 'send {"queue": "<dead-letter queue>"}'})
            return
        self._answer(lambda: self.server.source.replay(queue))

    def _host_allowed(self) -> bool:
        # A DNS-rebinding page reaches 127.0.0.1 under its own host name: refuse every other Host.
        if self.headers.get("Host", "") in self.server.allowed_hosts:
            return True
        self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "this server answers to 127.0.0.1 only"})
        return False

    def _default_connection(self) -> str:
        connections = self.server.source.connections
        return connections[0] if connections else ""

    def _series(self, query: Mapping[str, str]) -> Any:
        bucket = query.get("bucket")
        if bucket is not None and (not bucket.isdigit() or int(bucket) < 1):
            raise UiRequestError("bucket is a whole number of seconds")
        return self.server.source.series(
            query.get("connection") or self._default_connection(), int(bucket) if bucket else None
        )

    def _answer(self, produce: Callable[[], Any]) -> None:
        try:
            document = produce()
        except UiRequestError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
        except ReplayBusy as error:
            self._json(HTTPStatus.CONFLICT, {"error": str(error)})
        except Exception as error:  # noqa: BLE001 - AWS's errors: the reason on the page, no traceback
            logger.warning("ui request failed", extra={"path": self.path, "error": _describe_error(error)})
            self._json(HTTPStatus.BAD_GATEWAY, {"error": _describe_error(error)})
        else:
            self._json(HTTPStatus.OK, document)

    def _page(self) -> None:
        from ledgerlink.cli.ui_page import render_page

        nonce = token_generator.token_urlsafe(16)
        body = render_page(token=self.server.token, nonce=nonce, connections=self.server.source.connections)
        self._send(
            HTTPStatus.OK,
            body.encode("utf-8"),
            "text/html; charset=utf-8",
            {
                "Content-Security-Policy": (
                    f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
                    "frame-ancestors 'none'"
                ),
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
            },
        )

    def _json(self, status: HTTPStatus, document: Any) -> None:
        self._send(status, json.dumps(document).encode("utf-8"), "application/json")

    def _send(
        self, status: HTTPStatus, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("ui request", extra={"request": format % args})


# ---- the command


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0: any free one), got {value}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n", 1)[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--connection",
        action="append",
        metavar="NAME",
        help="a connection to show (repeatable; default: every connection of the configuration file)",
    )
    parser.add_argument(
        "--queue-prefix",
        default=DEFAULT_QUEUE_PREFIX,
        metavar="PREFIX",
        help="queues whose names start with this (default ledgerlink-)",
    )
    parser.add_argument("--no-browser", action="store_true", help="print the address; open no browser")
    add_endpoint_arguments(parser)
    parser.set_defaults(func=run_ui_command)


def open_source(args: argparse.Namespace) -> AwsHealthSource:
    """The page's source at the endpoint ``args`` name (``ledgerlink status``'s rules); raises
    :class:`~ledgerlink.cli.audit.AuditCommandError` or :class:`EndpointError` saying what to pass."""
    from ledgerlink.cli.audit import ConnectionChoiceError, audit_source, choose_connection
    from ledgerlink.history import HistoryStore

    endpoint = resolve_endpoint(
        args.endpoint_url, args.region, args.aws, Path(args.state_dir), services=SERVICES
    )
    source = audit_source(endpoint)
    if args.connection:
        connections = tuple(choose_connection(name, source) for name in dict.fromkeys(args.connection))
    elif source.connections:
        connections = source.connections
    else:
        raise ConnectionChoiceError(
            "name the connections with --connection, or set LEDGERLINK_CONFIG_FILE to the deployment's "
            f"configuration file (infra/config/<stage>.toml): {source.config_problem}"
        )
    return AwsHealthSource(
        sqs=aws_client("sqs", endpoint),
        store=HistoryStore(source.table_name, aws_client("dynamodb", endpoint)),
        connections=connections,
        where=f"{endpoint.url or 'AWS'} (from {endpoint.source})",
        queue_prefix=None if endpoint.local else args.queue_prefix,
    )


def run_ui_command(
    args: argparse.Namespace,
    out: TextIO | None = None,
    *,
    open_browser: Callable[[str], Any] | None = None,
    ready: Callable[[UiServer], None] | None = None,
) -> int:
    """Serve the page until Ctrl-C (``ready`` gets the server once it listens: tests stop it from there)."""
    out = out or sys.stdout
    from ledgerlink.cli.audit import AuditCommandError

    try:
        source = open_source(args)
    except AuditCommandError as error:
        print(f"ledgerlink ui: {error}", file=sys.stderr)
        return error.exit_code
    except EndpointError as error:
        print(f"ledgerlink ui: {error}", file=sys.stderr)
        return EXIT_FAILED
    try:
        server = UiServer(source, args.port)
    except OSError as error:
        print(
            f"ledgerlink ui: cannot listen on {LOOPBACK}:{args.port} ({error.strerror or error}); "
            "choose another --port (0: any free one)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"ledgerlink ui: {server.url} reading {source.where}", file=out)
    print(f"  connections: {', '.join(source.connections)}; Ctrl-C stops it", file=out, flush=True)
    logger.info("ui serving", extra={"url": server.url, "connections": list(source.connections)})
    browser = open_browser if open_browser is not None else (None if args.no_browser else webbrowser.open)
    if browser is not None:
        browser(server.url)
    if ready is not None:
        ready(server)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK
