"""What the three vendor sandboxes share: HTTP serving, routing, auth hooks, rate limiting,
fault injection, a controllable clock, the request log, the admin API and webhook delivery.

A vendor sandbox is a subclass of :class:`Sandbox` that registers its vendor-shaped routes
with :meth:`Sandbox.route` and implements a few hooks (authentication, rate-limit scopes,
the vendor's own error bodies). :class:`SandboxServer` serves one sandbox over HTTP/1.1 on
127.0.0.1, on a chosen port or a free one.

Admin API (never under a vendor path; all JSON):

| method | path | what |
|---|---|---|
| GET | /_admin/health | liveness |
| POST | /_admin/reset | back to the seeded base data; clears the request log, faults, webhook log |
| POST | /_admin/seed | vendor-specific: add objects (body is vendor-specific) |
| GET | /_admin/state | vendor-specific dump of the stored objects |
| GET | /_admin/requests | request log (``?since=<seq>``, ``?path_prefix=``): method, path, status, ms |
| DELETE | /_admin/requests | clear the request log |
| GET, POST, DELETE | /_admin/faults | list, add (kind, rate, path_prefix, method, count, delay_seconds), clear (which also lets held requests go) |
| GET, PATCH | /_admin/config | read / change options (rate limits on or off, limits, webhook URL, ...) |
| POST | /_admin/clock | ``{"advance_seconds": n}`` moves the sandbox clock forward (token expiry, CDC) |
| GET | /_admin/webhooks | webhook deliveries attempted: url, status, attempt, body |
| any | /_admin/<other> | vendor-specific actions (:meth:`Sandbox.admin_action`), else 404 |
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

JsonBody = Any

ADMIN_PREFIX = "/_admin"
# "hold" keeps a matching request waiting (in flight) until the faults are cleared or delay_seconds pass,
# then serves it normally: how tests put requests in flight at once without timing races.
FAULT_KINDS = ("429", "500", "503", "slow", "drop", "hold")


# --------------------------------------------------------------------------- clock


class SandboxClock:
    """Wall-clock time plus an offset that tests move forward through the admin API."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0


# --------------------------------------------------------------------------- request / response


class Headers:
    """Case-insensitive header lookup (HTTP header names are case-insensitive)."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = [(k, v) for k, v in items]
        self._lower = {k.lower(): v for k, v in self._items}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._lower.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclass
class Request:
    method: str
    path: str
    raw_path: str  # path + query exactly as the client sent it (HubSpot v3 signatures use it)
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    principal: Any = None  # what authenticate() returned

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter (first value); names compared case-sensitively like the vendors do."""
        values = self.query.get(name)
        return values[0] if values else default

    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> JsonBody:
        """The body as JSON with numbers as Decimal (money never becomes float); raises ValueError."""
        return json.loads(self.body.decode("utf-8"), parse_float=Decimal)


@dataclass
class Response:
    status: int
    body: JsonBody | bytes | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, default=_json_default, separators=(",", ":")).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Integral decimals stay integers; others keep their digits exactly.
        return int(value) if value == value.to_integral_value() and "E" not in str(value) else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class HttpError(Exception):
    """Raised anywhere in a route to answer with a vendor-shaped error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


# --------------------------------------------------------------------------- rate limiting


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per ``window_seconds`` for one scope (e.g. one QBO company)."""

    scope: str
    limit: int
    window_seconds: float
    policy: str = ""  # vendor's name for the policy, e.g. HubSpot's TEN_SECONDLY_ROLLING


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: RateLimit | None = None
    remaining: int = 0
    retry_after: float = 0.0


class SlidingWindowLimiter:
    """Rolling-window counters (the vendors describe their limits as rolling windows)."""

    def __init__(self, clock: SandboxClock) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, float], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, limits: Iterable[RateLimit]) -> list[RateDecision]:
        """Admit the request only if every limit has room; count it against all of them."""
        now = self._clock.time()
        with self._lock:
            decisions: list[RateDecision] = []
            windows = []
            for rate in limits:
                window = self._hits.setdefault((rate.scope, rate.window_seconds), deque())
                while window and window[0] <= now - rate.window_seconds:
                    window.popleft()
                windows.append((rate, window))
                if len(window) >= rate.limit:
                    retry_after = max(0.0, window[0] + rate.window_seconds - now)
                    return [RateDecision(False, rate, 0, retry_after)]
            for rate, window in windows:
                window.append(now)
                decisions.append(RateDecision(True, rate, rate.limit - len(window)))
            return decisions

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    kind: str
    rate: float = 1.0
    path_prefix: str = ""
    method: str | None = None
    count: int | None = None  # stop after this many injections (None: forever)
    delay_seconds: float = 2.0  # for "slow"; for "hold", the longest a request is held
    injected: int = 0
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.injected >= self.count:
            return False
        if self.method and self.method.upper() != method:
            return False
        return path.startswith(self.path_prefix)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rate": self.rate,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "count": self.count,
            "delay_seconds": self.delay_seconds,
            "injected": self.injected,
        }


def parse_fault(body: Mapping[str, Any]) -> Fault:
    kind = str(body.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    rate = float(body.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be between 0 and 1")
    count = body.get("count")
    return Fault(
        kind=kind,
        rate=rate,
        path_prefix=str(body.get("path_prefix", "")),
        method=body.get("method"),
        count=None if count is None else int(count),
        delay_seconds=float(body.get("delay_seconds", 2.0)),
    )


class _DropConnection(Exception):
    """Close the socket without answering (the "drop" fault)."""


# --------------------------------------------------------------------------- webhooks


@dataclass
class WebhookAttempt:
    url: str
    attempt: int
    status: int | None
    error: str | None
    body: str
    headers: dict[str, str]
    at: str


class WebhookDispatcher:
    """Batches outgoing webhook events over a short window and retries failed deliveries.

    The vendor supplies ``build`` (events → body bytes + headers, signing included) and the
    retry schedule; ``time_factor`` compresses every wait (window and retries) for tests.
    """

    def __init__(
        self,
        build: Callable[[list[Any]], tuple[bytes, dict[str, str]]],
        retry_schedule_seconds: list[float],
        batch_window_seconds: float,
        group_key: Callable[[Any], str] = lambda _event: "",
        build_attempt: Callable[[list[Any], int], tuple[bytes, dict[str, str]]] | None = None,
    ) -> None:
        self.build = build
        # Optional: rebuild the request for every attempt (attempt counts from 1), for vendors
        # whose retries carry a fresh timestamp/signature or an attempt counter (HubSpot).
        self.build_attempt = build_attempt
        self.retry_schedule_seconds = retry_schedule_seconds
        self.batch_window_seconds = batch_window_seconds
        self.group_key = group_key
        self.url: str | None = None
        self.time_factor = 1.0
        self.attempts: list[WebhookAttempt] = []
        self._pending: dict[str, list[Any]] = {}
        self._lock = threading.Condition()
        self._stopped = False
        self._generation = 0
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()
        self._session = requests.Session()

    def enqueue(self, event: Any) -> None:
        with self._lock:
            if not self.url:
                return
            self._pending.setdefault(self.group_key(event), []).append(event)
            self._lock.notify_all()

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()
            self.attempts.clear()
            self._generation += 1  # deliveries in flight from before the reset are abandoned

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()

    def flush_now(self) -> None:
        """Deliver what is pending without waiting for the batch window (tests)."""
        with self._lock:
            batches = list(self._pending.values())
            self._pending.clear()
            generation = self._generation
        for batch in batches:
            self._deliver(batch, generation)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopped:
                    self._lock.wait()
                if self._stopped:
                    return
            # Let more changes join the batch, as the vendors do.
            time.sleep(self.batch_window_seconds * self.time_factor)
            with self._lock:
                batches = list(self._pending.values())
                self._pending.clear()
                generation = self._generation
            for batch in batches:
                threading.Thread(target=self._deliver, args=(batch, generation), daemon=True).start()

    def _deliver(self, events: list[Any], generation: int) -> None:
        body, headers = self.build(events) if self.build_attempt is None else (b"", {})
        waits = [0.0, *self.retry_schedule_seconds]
        for attempt, wait in enumerate(waits, start=1):
            if wait:
                time.sleep(wait * self.time_factor)
            with self._lock:
                if self._stopped or generation != self._generation or not self.url:
                    return
                url = self.url
            if self.build_attempt is not None:
                body, headers = self.build_attempt(events, attempt)
            status: int | None = None
            error: str | None = None
            try:
                reply = self._session.post(url, data=body, headers=headers, timeout=10)
                status = reply.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            with self._lock:
                self.attempts.append(
                    WebhookAttempt(
                        url=url,
                        attempt=attempt,
                        status=status,
                        error=error,
                        body=body.decode("utf-8"),
                        headers=headers,
                        at=datetime.now(UTC).isoformat(),
                    )
                )
            if status is not None and 200 <= status < 300:
                return


# --------------------------------------------------------------------------- the sandbox


Handler = Callable[[Request], Response]


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    authenticated: bool


@dataclass
class RequestLogEntry:
    seq: int
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    at: str
    fault: str | None = None

    def describe(self) -> dict[str, Any]:
        return self.__dict__.copy()


class Sandbox:
    """Base class of a vendor sandbox. Subclasses register routes in ``__init__`` and
    override the hooks below; state mutations happen under ``self.lock``."""

    vendor = "sandbox"

    def __init__(self, *, rate_limits_enabled: bool = True, clock: SandboxClock | None = None) -> None:
        self.clock = clock or SandboxClock()
        self.lock = threading.RLock()
        self.limiter = SlidingWindowLimiter(self.clock)
        self.rate_limits_enabled = rate_limits_enabled
        self.faults: list[Fault] = []
        self.request_log: deque[RequestLogEntry] = deque(maxlen=100_000)
        self._seq = 0
        self._routes: list[_Route] = []
        self._random = random.Random()
        self.webhooks: WebhookDispatcher | None = None
        self.base_url = ""  # set by SandboxServer when it starts

    # ---- routing

    def route(
        self, method: str, path_pattern: str, *, authenticated: bool = True
    ) -> Callable[[Handler], Handler]:
        """Register a handler; ``{name}`` in the pattern matches one path segment."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path_pattern) + "/?$"

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), re.compile(regex), handler, authenticated))
            return handler

        return register

    def add_route(
        self, method: str, path_pattern: str, handler: Handler, *, authenticated: bool = True
    ) -> None:
        self.route(method, path_pattern, authenticated=authenticated)(handler)

    # ---- hooks for subclasses

    def authenticate(self, request: Request) -> Any:
        """Return the principal (token owner, company, ...) or raise HttpError with the vendor's 401."""
        return None

    def rate_limits(self, request: Request) -> list[RateLimit]:
        """The limits this request counts against (empty: none)."""
        return []

    def rate_limited_response(self, request: Request, decision: RateDecision) -> Response:
        return Response(
            429, {"error": "rate limited"}, {"Retry-After": str(max(1, round(decision.retry_after)))}
        )

    def rate_limit_headers(self, request: Request, decisions: list[RateDecision]) -> dict[str, str]:
        """Headers the vendor adds to every admitted response (e.g. X-HubSpot-RateLimit-*)."""
        return {}

    def response_headers(self, request: Request, response: Response) -> dict[str, str]:
        """Headers the vendor adds to every answer, errors included (e.g. request/correlation ids)."""
        return {}

    def error_response(self, status: int, message: str) -> Response:
        """The vendor's error body for a status (used for injected faults, 404s and crashes)."""
        return Response(status, {"error": message})

    def not_found(self, request: Request) -> Response:
        return self.error_response(404, f"no route for {request.method} {request.path}")

    def reset_state(self) -> None:
        """Back to the seeded base data."""

    def seed(self, body: JsonBody) -> JsonBody:
        raise HttpError(Response(400, {"error": "this sandbox does not take seed data"}))

    def dump_state(self) -> JsonBody:
        return {}

    def admin_action(self, method: str, action: str, body: JsonBody, request: Request) -> Response | None:
        """Vendor-specific admin actions under ``/_admin/<action>`` (e.g. revoke a token).

        Return None when ``action`` is not one of them (the admin API then answers 404).
        """
        return None

    def config(self) -> dict[str, Any]:
        return {
            "rate_limits_enabled": self.rate_limits_enabled,
            "webhook_url": self.webhooks.url if self.webhooks else None,
            "webhook_time_factor": self.webhooks.time_factor if self.webhooks else None,
        }

    def update_config(self, changes: Mapping[str, Any]) -> None:
        """Apply admin config changes; subclasses extend (call super) for vendor options."""
        if "rate_limits_enabled" in changes:
            self.rate_limits_enabled = bool(changes["rate_limits_enabled"])
        if self.webhooks is not None:
            if "webhook_url" in changes:
                self.webhooks.url = changes["webhook_url"] or None
            if "webhook_time_factor" in changes:
                self.webhooks.time_factor = float(changes["webhook_time_factor"])

    # ---- the request pipeline

    def clear_faults(self) -> None:
        """Remove every fault; requests a "hold" fault keeps waiting go on at once."""
        with self.lock:
            for fault in self.faults:
                fault.released.set()
            self.faults.clear()

    def reset(self) -> None:
        with self.lock:
            self.reset_state()
            self.clear_faults()
            self.request_log.clear()
            self.limiter.reset()
            self.clock.reset()
            if self.webhooks is not None:
                self.webhooks.reset()

    def handle(self, request: Request) -> Response:
        """Admin paths, then faults, auth, rate limits and the vendor route. Raises _DropConnection."""
        if request.path.startswith(ADMIN_PREFIX + "/") or request.path == ADMIN_PREFIX:
            return self._admin(request)
        started = time.perf_counter()
        fault = self._pick_fault(request)
        try:
            response = self._vendor_response(request, fault)
        except _DropConnection:
            self._log(request, 0, started, fault)
            raise
        response.headers.update(self.response_headers(request, response))
        self._log(request, response.status, started, fault)
        return response

    def _vendor_response(self, request: Request, fault: Fault | None) -> Response:
        if fault is not None:
            if fault.kind == "drop":
                raise _DropConnection()
            if fault.kind == "slow":
                time.sleep(fault.delay_seconds)
            elif fault.kind == "hold":
                fault.released.wait(fault.delay_seconds)
            elif fault.kind == "429":
                return self.rate_limited_response(request, RateDecision(False, None, 0, 1.0))
            else:
                return self.error_response(int(fault.kind), "injected fault")
        try:
            match = self._match(request)
            if match is None:
                return self.not_found(request)
            route, params = match
            request.path_params = params
            if route.authenticated:
                request.principal = self.authenticate(request)
            decisions: list[RateDecision] = []
            if self.rate_limits_enabled:
                decisions = self.limiter.check(self.rate_limits(request))
                if decisions and not decisions[0].allowed:
                    return self.rate_limited_response(request, decisions[0])
            with self.lock:
                response = route.handler(request)
            response.headers.update(self.rate_limit_headers(request, decisions))
            return response
        except HttpError as error:
            return error.response

    def _match(self, request: Request) -> tuple[_Route, dict[str, str]] | None:
        # Match on the path as sent (still percent-encoded) and decode each parameter once, so an
        # encoded slash stays inside its segment and "%2525" arrives as "%25", as on the real APIs.
        encoded_path = urllib.parse.urlsplit(request.raw_path).path or request.path
        path_matched = False
        for route in self._routes:
            found = route.pattern.match(encoded_path)
            if found is None:
                continue
            path_matched = True
            if route.method == request.method:
                return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        if path_matched:
            raise HttpError(
                self.error_response(405, f"method {request.method} not allowed on {request.path}")
            )
        return None

    def _pick_fault(self, request: Request) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(request.method, request.path) and self._random.random() < fault.rate:
                    fault.injected += 1
                    return fault
        return None

    def _log(self, request: Request, status: int, started: float, fault: Fault | None) -> None:
        with self.lock:
            self._seq += 1
            self.request_log.append(
                RequestLogEntry(
                    seq=self._seq,
                    method=request.method,
                    path=request.path,
                    query=urllib.parse.urlencode(request.query, doseq=True),
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    at=self.clock.now().isoformat(),
                    fault=fault.kind if fault else None,
                )
            )

    # ---- admin API

    def _admin(self, request: Request) -> Response:
        action = request.path[len(ADMIN_PREFIX) :].strip("/")
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return Response(400, {"error": "admin body must be JSON"})
        try:
            return self._admin_action(request.method, action, body, request)
        except (ValueError, TypeError, KeyError) as exc:
            return Response(400, {"error": str(exc)})
        except HttpError as error:
            return error.response

    def _admin_action(self, method: str, action: str, body: Any, request: Request) -> Response:
        if action == "health":
            return Response(200, {"status": "ok", "vendor": self.vendor})
        if action == "reset" and method == "POST":
            self.reset()
            return Response(200, {"status": "reset"})
        if action == "seed" and method == "POST":
            with self.lock:
                return Response(200, self.seed(body))
        if action == "state" and method == "GET":
            with self.lock:
                return Response(200, self.dump_state())
        if action == "requests":
            if method == "DELETE":
                with self.lock:
                    self.request_log.clear()
                return Response(200, {"status": "cleared"})
            since = int(request.arg("since", "0") or 0)
            prefix = request.arg("path_prefix", "") or ""
            with self.lock:
                entries = [
                    e.describe() for e in self.request_log if e.seq > since and e.path.startswith(prefix)
                ]
            return Response(200, {"requests": entries, "count": len(entries)})
        if action == "faults":
            with self.lock:
                if method == "POST":
                    self.faults.append(parse_fault(body))
                elif method == "DELETE":
                    self.clear_faults()
                return Response(200, {"faults": [f.describe() for f in self.faults]})
        if action == "config":
            if method in ("PATCH", "POST", "PUT"):
                with self.lock:
                    self.update_config(body)
            return Response(200, self.config())
        if action == "clock" and method == "POST":
            self.clock.advance(float(body.get("advance_seconds", 0)))
            return Response(200, {"now": self.clock.now().isoformat()})
        if action == "webhooks":
            if self.webhooks is None:
                return Response(200, {"attempts": []})
            if method == "POST":  # flush
                self.webhooks.flush_now()
            with self.webhooks._lock:
                attempts = [a.__dict__.copy() for a in self.webhooks.attempts]
            return Response(200, {"attempts": attempts, "count": len(attempts)})
        vendor_response = self.admin_action(method, action, body, request)
        if vendor_response is not None:
            return vendor_response
        return Response(404, {"error": f"unknown admin action {method} {action}"})

    def close(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()


# --------------------------------------------------------------------------- HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real APIs
    # Headers and body leave in separate writes; with Nagle on, a keep-alive client (requests.Session)
    # then waits for the delayed ACK, about 40 ms per response. TCP_NODELAY removes that stall.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the request log replaces stderr noise
        return

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(self.path)
        request = Request(
            method=self.command.upper(),
            path=urllib.parse.unquote(parsed.path),
            raw_path=self.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=Headers(self.headers.items()),
            body=body,
        )
        try:
            response = sandbox.handle(request)
        except _DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception as exc:  # noqa: BLE001 - a sandbox bug must answer 500, not hang the client
            response = sandbox.error_response(500, f"sandbox error: {type(exc).__name__}: {exc}")
        payload = response.encode()
        self.send_response(response.status)
        if payload or response.status not in (204, 304):
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: Sandbox


class SandboxServer:
    """Serves one sandbox on host:port (port 0 picks a free port) in a background thread."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._server = _Server((host, port), _Handler)
        self._server.sandbox = sandbox
        self.host = str(self._server.server_address[0])
        self.port = int(self._server.server_address[1])
        sandbox.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.sandbox.vendor + "-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sandbox.close()
        self._server.shutdown()
        self._server.server_close()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def iso_now(clock: SandboxClock, offset: timedelta | None = None) -> str:
    moment = clock.now() + (offset or timedelta())
    return moment.isoformat(timespec="milliseconds")


def run_from_command_line(
    factory: Callable[[argparse.Namespace], Sandbox],
    description: str,
    default_port: int,
    argv: list[str] | None = None,
    extra_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """``python -m ledgerlink_local.sandboxes.<vendor> --port N``: serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the vendor's rate limits off")
    if extra_arguments is not None:
        extra_arguments(parser)
    arguments = parser.parse_args(argv)
    sandbox = factory(arguments)
    sandbox.rate_limits_enabled = not arguments.no_rate_limits
    server = SandboxServer(sandbox, arguments.host, arguments.port)
    print(
        json.dumps({"vendor": sandbox.vendor, "url": server.url, "admin": server.url + ADMIN_PREFIX}),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
