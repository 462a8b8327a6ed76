"""Test support for the HTTP layer: a scripted vendor server, a top-of-range random source, harnesses."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ledgerlink.clock import ManualClock
from ledgerlink.http.backoff import RandomSource
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.policy import VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, InMemoryRateLimitStore, RateLimit
from tests.conftest import FIXTURES

HTTP_FIXTURES = FIXTURES / "http"


def fixture_body(name: str) -> bytes:
    return (HTTP_FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    # Close the connection without answering (the vendor dropped us mid-call).
    drop: bool = False


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedVendor:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.url = ""

    def will(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            return self.replies.popleft() if self.replies else Reply()


def start_server(scripted: ScriptedVendor) -> ThreadingHTTPServer:
    """Serve ``scripted`` on 127.0.0.1 (a free port) in a daemon thread; the caller shuts it down."""
    handler = type("Handler", (_Handler,), {"vendor": scripted})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    vendor: ScriptedVendor
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY each keep-alive response
    # waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.vendor.next_reply(request)
        if reply.delay_seconds:
            time.sleep(reply.delay_seconds)
        if reply.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UpperBound:
    """A random source that always draws the top of the range: full-jitter delays become their ceilings."""

    def __init__(self) -> None:
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return b


def make_policy(base_url: str, **overrides: object) -> VendorPolicy:
    settings: dict[str, object] = {
        "vendor": "testvendor",
        "base_url": base_url,
        "rate_limits": {DEFAULT_GROUP: (RateLimit(1000, 1.0),)},
        "connect_timeout_seconds": 0.5,
        "read_timeout_seconds": 0.5,
        "max_attempts": 4,
    }
    settings.update(overrides)
    return VendorPolicy(**settings)  # type: ignore[arg-type]


@dataclass
class Harness:
    client: VendorHttpClient
    clock: ManualClock
    rng: RandomSource
    rate_limits: InMemoryRateLimitStore
    breakers: InMemoryBreakerStore


def make_harness(policy: VendorPolicy, rng: RandomSource | None = None, **client_kwargs: object) -> Harness:
    """A client on in-process stores, a manual clock and (by default) a top-of-range random source."""
    clock = ManualClock()
    rng = rng if rng is not None else UpperBound()
    rate_limits = InMemoryRateLimitStore()
    breakers = InMemoryBreakerStore()
    client = VendorHttpClient(
        policy,
        rate_limit_store=rate_limits,
        breaker_store=breakers,
        clock=clock,
        rng=rng,
        **client_kwargs,  # type: ignore[arg-type]
    )
    return Harness(client, clock, rng, rate_limits, breakers)


# ----------------------------------------------------------------------------- rolling-window checks


def busiest_window(admissions: list[float], window_seconds: float) -> int:
    """The most admissions any rolling window ``[t, t + window)`` holds (it suffices to start at one)."""
    ordered = sorted(admissions)
    busiest = 0
    for start, first in enumerate(ordered):
        inside = sum(1 for t in ordered[start:] if t < first + window_seconds - 1e-6)
        busiest = max(busiest, inside)
    return busiest


def earliest_admission(earlier: list[float], limits: tuple[RateLimit, ...], asked_at: float) -> float:
    """When a call asked for at ``asked_at`` could first go, given the admissions before it: for each
    limit, not before its limit-th newest earlier admission has left the window."""
    ordered = sorted(earlier)
    earliest = asked_at
    for rate_limit in limits:
        if len(ordered) >= rate_limit.limit:
            earliest = max(earliest, ordered[-rate_limit.limit] + rate_limit.window_seconds)
    return earliest


# ----------------------------------------------------------------------------- requests in flight


class GatedVendor:
    """A vendor that holds every request until the test opens the gate, counting requests in flight.

    ``peak`` is the most requests it ever had in flight at once: what a vendor's concurrency limit
    sees. Tests wait on :meth:`wait_in_flight` for the effect instead of sleeping.
    """

    def __init__(self, hold_timeout_seconds: float = 30.0) -> None:
        self.url = ""
        self.in_flight = 0
        self.peak = 0
        self.served = 0
        self._hold_timeout = hold_timeout_seconds
        self._gate = threading.Event()
        self._changed = threading.Condition()

    def open(self) -> None:
        self._gate.set()

    def wait_in_flight(self, count: int, timeout: float = 10.0) -> bool:
        """True once exactly ``count`` requests are in flight (False if that never happened in time)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.in_flight == count, timeout=timeout)

    def serve(self) -> None:
        with self._changed:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._changed.notify_all()
        try:
            self._gate.wait(self._hold_timeout)
        finally:
            with self._changed:
                self.in_flight -= 1
                self.served += 1
                self._changed.notify_all()


def start_gated_server(gated: GatedVendor) -> ThreadingHTTPServer:
    """Serve ``gated`` on 127.0.0.1 (a free port): every request waits for the gate, then gets 200 {}."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            gated.serve()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gated.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server
