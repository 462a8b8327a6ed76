"""API Gateway HTTP API, emulated: requests in, payload format 2.0 events to the functions, responses out.

:func:`build_event` turns one HTTP request into the event the deployed API sends a Lambda proxy
integration: ``version`` "2.0", ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, header
names lower-cased with duplicates joined by commas, ``queryStringParameters`` likewise,
``requestContext`` (``accountId``, ``apiId``, ``domainName``, ``domainPrefix``, ``http``,
``requestId``, ``routeKey``, ``stage`` "$default", ``time``, ``timeEpoch``), ``pathParameters``,
``body`` and ``isBase64Encoded`` (true unless the content type is text, as HTTP APIs decide).
:func:`integration_response` reads the function's answer as payload format 2.0 does (a dict with
``statusCode``, or any other JSON value as a 200 ``application/json`` body).

:class:`ApiFront` serves it on 127.0.0.1 with the gateway's own answers around the functions: 404
``{"message":"Not Found"}`` for an unknown route, 429 ``{"message":"Too Many Requests"}`` past the
stage's throttle (a token bucket: ``rate_limit`` tokens a second, ``burst_limit`` deep), 413 past
the 10 MB payload limit, 500 ``{"message":"Internal Server Error"}`` when the function fails.

Request framing (:meth:`_Handler._read_body`), as HTTP/1.1 (RFC 9112 section 6) frames a request body,
answered with the gateway's JSON bodies and the connection closed (its framing can no longer be
trusted), never a traceback or a hung thread:

- ``Content-Length`` must be one header holding a decimal number (``-1``, ``1e3``, ``5, 5``, two
  headers, more than 19 digits: 400 ``{"message":"Bad Request"}``); past 10 MB it is 413 before any of
  the body is read.
- ``Transfer-Encoding: chunked`` is decoded (hex sizes, chunk extensions ignored, trailers read and
  dropped), the 10 MB limit counted while reading (413); broken chunk framing is 400. AWS documents
  nothing about chunked request bodies on HTTP APIs (searched: the developer guide, re:Post; no 411,
  no refusal), and HTTP/1.1 requires a server to accept them, so the emulation decodes what real
  clients send (``requests`` with a generator body, ``curl -H 'Transfer-Encoding: chunked'``).
  Another coding before ``chunked`` is 501 ``{"message":"Not Implemented"}``; ``chunked`` not last,
  twice, or on an HTTP/1.0 request is 400.
- Both headers on one request is 400 (the request-smuggling guard: RFC 9112 lets a server reject it).
- Neither header: the body is empty, as HTTP/1.1 defines it (no 411: nothing documents one).
- Each read from the client waits at most ``read_timeout`` seconds (``ApiFront(read_timeout=...)``,
  30 s by default: a bound of the emulation, AWS documents no number): a client that stops sending
  its body gets 408 ``{"message":"Request Timeout"}``; one that sends no request (an idle keep-alive
  connection, headers never finished) is closed without an answer.

A request line or headers the standard library cannot parse get its status (400, 414, 431, 501)
with the same JSON body instead of its HTML page.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from ledgerlink_local.stack.runtime import InvocationResult

MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
NOT_FOUND: Final = (404, {"message": "Not Found"})
TOO_MANY_REQUESTS: Final = (429, {"message": "Too Many Requests"})
TOO_LARGE: Final = (413, {"message": "Request Entity Too Large"})
INTERNAL_ERROR: Final = (500, {"message": "Internal Server Error"})
BAD_REQUEST: Final = (400, {"message": "Bad Request"})
REQUEST_TIMEOUT: Final = (408, {"message": "Request Timeout"})
NOT_IMPLEMENTED: Final = (501, {"message": "Not Implemented"})
DEFAULT_READ_TIMEOUT_SECONDS: Final = 30.0
# 1*DIGIT, and no more digits than a 64-bit length has: a longer number is no real body's length.
_CONTENT_LENGTH: Final = re.compile(r"[0-9]{1,19}")
# chunk-size [chunk-ext] CRLF (RFC 9112 section 7.1.1), extensions as tokens or quoted strings.
_TOKEN: Final = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED: Final = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE: Final = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*)\r\n"
)
_FIELD_LINE: Final = re.compile(rb"" + _TOKEN + rb":[^\r\n]*\r\n")
# The standard library's own header limits, applied to the lines of a chunked body too.
_MAX_LINE: Final = 65536
_MAX_TRAILERS: Final = 100
# After refusing a request: how long and how much of the rest of it to read before closing.
_DRAIN_SECONDS: Final = 2.0
_DRAIN_BYTES: Final = 2 * MAX_PAYLOAD_BYTES
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Content types an HTTP API passes as text; every other body (no content type included) is base64.
_TEXT_TYPES: Final = frozenset(
    {"application/json", "application/javascript", "application/xml", "application/ecmascript"}
)
# Connection-level headers the gateway does not forward.
_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "te"})


class TokenBucket:
    """API Gateway throttling: ``rate`` tokens a second refill a bucket holding at most ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("throttling needs a positive rate and a burst of at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return int(self._burst)

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclass(frozen=True)
class Route:
    """A route key ``METHOD /path`` (``{name}`` and ``{name+}`` path variables) and its function."""

    method: str
    path: str
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        pattern = "^"
        for piece in re.split(r"(\{[^}]+\})", self.path):
            if piece.startswith("{") and piece.endswith("+}"):
                pattern += f"(?P<{piece[1:-2]}>.+)"
            elif piece.startswith("{"):
                pattern += f"(?P<{piece[1:-1]}>[^/]+)"
            else:
                pattern += re.escape(piece)
        found = re.match(pattern + "$", path)
        return None if found is None else dict(found.groupdict())


def find_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The most specific matching route: exact paths before variables, as API Gateway picks."""
    candidates = []
    for route in routes:
        params = route.match(method, path)
        if params is not None:
            candidates.append((len(params), route.method == "ANY", route, params))
    if not candidates:
        return None
    candidates.sort(key=lambda item: (item[0], item[1]))
    return candidates[0][2], candidates[0][3]


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def api_id(api_name: str) -> str:
    """A stable 10-character id, like the ones API Gateway assigns, derived from the API's name."""
    return hashlib.sha256(api_name.encode("utf-8")).hexdigest()[:10]


def new_request_id() -> str:
    """API Gateway request ids look like ``JKJaXmPLvHcESHA=``."""
    return base64.b64encode(secrets.token_bytes(10)).decode("ascii")


def gateway_time(moment: datetime) -> str:
    """``requestContext.time``: ``25/Nov/2026:14:33:17 +0000``, in English whatever the locale."""
    utc = moment.astimezone(UTC)
    return f"{utc:%d}/{_MONTHS[utc.month - 1]}/{utc:%Y:%H:%M:%S} +0000"


@dataclass(frozen=True)
class HttpRequestIn:
    """An HTTP request as it reached the gateway (headers in order, names as sent)."""

    method: str
    target: str  # path and query, as on the request line
    headers: tuple[tuple[str, str], ...]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


def build_event(
    request: HttpRequestIn,
    route: Route,
    path_parameters: Mapping[str, str],
    *,
    account_id: str,
    api: str,
    request_id: str,
    now: datetime,
    server_port: int,
) -> dict[str, Any]:
    """The payload format 2.0 event of ``request`` on ``route`` (see the module docstring)."""
    raw_path, _, raw_query = request.target.partition("?")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower in _HOP_BY_HOP:
            continue
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    # The gateway's own headers, as the deployed API adds them.
    headers.setdefault("x-forwarded-for", request.source_ip)
    headers["x-forwarded-port"] = str(server_port)
    headers["x-forwarded-proto"] = "http"
    headers["x-amzn-trace-id"] = f"Root=1-{int(now.timestamp()):08x}-{secrets.token_hex(12)}"
    domain = headers.get("host", f"127.0.0.1:{server_port}")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": request.method,
            "path": urllib.parse.unquote(raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": gateway_time(now),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if request.body:
        text = is_text(headers.get("content-type"))
        event["body"] = (
            request.body.decode("utf-8", errors="replace")
            if text
            else base64.b64encode(request.body).decode("ascii")
        )
        event["isBase64Encoded"] = not text
    else:
        event["isBase64Encoded"] = False
    return event


@dataclass(frozen=True)
class HttpResponseOut:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def gateway_response(status: int, body: Mapping[str, Any]) -> HttpResponseOut:
    return HttpResponseOut(
        status, (("content-type", "application/json"),), json.dumps(body, separators=(",", ":")).encode()
    )


def integration_response(result: InvocationResult) -> HttpResponseOut:
    """The HTTP response for a function's result, read as payload format 2.0 does."""
    if not result.ok:
        return gateway_response(*INTERNAL_ERROR)
    value = result.payload
    if not isinstance(value, dict) or "statusCode" not in value:
        # No statusCode: the whole JSON value is the body of a 200.
        return HttpResponseOut(
            200, (("content-type", "application/json"),), json.dumps(value).encode("utf-8")
        )
    try:
        status = int(value["statusCode"])
        raw_body = value.get("body")
        if raw_body is None:
            body = b""
        elif value.get("isBase64Encoded"):
            body = base64.b64decode(str(raw_body), validate=True)
        else:
            body = (raw_body if isinstance(raw_body, str) else json.dumps(raw_body)).encode("utf-8")
        headers = [(str(name), str(item)) for name, item in (value.get("headers") or {}).items()]
        headers.extend(("set-cookie", str(cookie)) for cookie in value.get("cookies") or [])
    except (TypeError, ValueError, AttributeError):
        # A malformed integration response is the gateway's 500, as in the cloud.
        return gateway_response(*INTERNAL_ERROR)
    if not 100 <= status <= 599:
        return gateway_response(*INTERNAL_ERROR)
    return HttpResponseOut(status, tuple(headers), body)


class FramingError(Exception):
    """The request's body cannot be framed; ``answer`` is the gateway's (status, JSON body)."""

    def __init__(self, answer: tuple[int, Mapping[str, Any]], reason: str) -> None:
        super().__init__(reason)
        self.answer = answer
        self.reason = reason


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


def _line(stream: _Reader, what: str) -> bytes:
    line = stream.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise FramingError(BAD_REQUEST, f"{what} longer than {_MAX_LINE} bytes")
    if not line.endswith(b"\r\n"):
        # No CRLF: the client closed mid-line, or ended it with a bare LF (lenient parsers differ on
        # that, which is what smuggling exploits, so it is refused).
        raise FramingError(BAD_REQUEST, f"{what} not ended by CRLF")
    return line


def read_chunked(stream: _Reader, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 section 7.1), read from ``stream`` up to its end.

    Chunk extensions are checked and ignored; trailer fields are read and dropped (the event has no
    place for them). More than ``limit`` bytes of data is 413, found from the chunk sizes before the
    data is read; anything out of the grammar is 400. Read timeouts propagate (:class:`TimeoutError`).
    """
    body = bytearray()
    while True:
        line = _line(stream, "chunk size line")
        found = _CHUNK_LINE.fullmatch(line)
        if found is None:
            raise FramingError(BAD_REQUEST, "malformed chunk size line")
        digits = found.group(1).lstrip(b"0")
        # Compare digit counts first: a size of many hex digits is never parsed into a huge number.
        if len(digits) > 16 or len(body) + int(digits or b"0", 16) > limit:
            raise FramingError(TOO_LARGE, f"chunked body over {limit} bytes")
        size = int(digits or b"0", 16)
        if size == 0:
            break
        data = stream.read(size)
        if len(data) < size:
            raise FramingError(BAD_REQUEST, "connection closed inside a chunk")
        body += data
        if stream.read(2) != b"\r\n":
            raise FramingError(BAD_REQUEST, "chunk data not followed by CRLF")
    for _ in range(_MAX_TRAILERS + 1):
        line = _line(stream, "trailer field")
        if line == b"\r\n":
            return bytes(body)
        if _FIELD_LINE.fullmatch(line) is None:
            raise FramingError(BAD_REQUEST, "malformed trailer field")
    raise FramingError(BAD_REQUEST, f"more than {_MAX_TRAILERS} trailer fields")


def body_framing(content_lengths: list[str], transfer_codings: list[str], protocol: str) -> int | None:
    """How the request's body is framed: its length, or None for chunked. :class:`FramingError` if
    the headers frame it badly (see the module docstring)."""
    if content_lengths and transfer_codings:
        raise FramingError(BAD_REQUEST, "both Content-Length and Transfer-Encoding")
    if transfer_codings:
        if protocol == "HTTP/1.0":
            # RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding is faulty framing.
            raise FramingError(BAD_REQUEST, "Transfer-Encoding on an HTTP/1.0 request")
        codings = [
            coding.strip(" \t").lower()
            for value in transfer_codings
            for coding in value.split(",")
            if coding.strip(" \t")
        ]
        if not codings or codings[-1] != "chunked" or codings.count("chunked") > 1:
            raise FramingError(BAD_REQUEST, "Transfer-Encoding does not end with chunked once")
        if len(codings) > 1:
            raise FramingError(NOT_IMPLEMENTED, "a transfer coding other than chunked")
        return None
    if not content_lengths:
        return 0
    if len(content_lengths) > 1:
        raise FramingError(BAD_REQUEST, "more than one Content-Length")
    raw = content_lengths[0].strip(" \t")
    if _CONTENT_LENGTH.fullmatch(raw) is None:
        raise FramingError(BAD_REQUEST, "Content-Length is not a decimal length")
    length = int(raw)
    if length > MAX_PAYLOAD_BYTES:
        raise FramingError(TOO_LARGE, f"Content-Length over {MAX_PAYLOAD_BYTES} bytes")
    return length


Invoker = Callable[[str, dict[str, Any], str], InvocationResult]
"""(function key, event, request id) -> result."""
RequestListener = Callable[["RequestRecord"], None]


@dataclass(frozen=True)
class RequestRecord:
    """What the gateway did with one request (for the hop log)."""

    request_id: str
    method: str
    path: str
    route_key: str | None
    function: str | None
    status: int | None
    """None when the request has just arrived (``phase`` "in"); the answer's status otherwise."""
    duration_ms: float
    error: str | None = None
    phase: str = "out"
    body_bytes: int = 0


class ApiFront:
    """The HTTP API's ``$default`` stage on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        routes: Iterable[Route],
        invoke: Invoker,
        *,
        throttle: TokenBucket,
        account_id: str,
        api_name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: RequestListener | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
    ) -> None:
        if read_timeout <= 0:
            raise ValueError("the read timeout must be positive")
        self.routes = tuple(routes)
        self.read_timeout = read_timeout
        self.invoke = invoke
        self.throttle = throttle
        self.account_id = account_id
        self.api_id = api_id(api_name)
        self.on_request = on_request
        self._server = _Server((host, port), _Handler)
        self._server.front = self
        self.host = str(self._server.server_address[0])
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiFront:
        self._thread = threading.Thread(target=self._server.serve_forever, name="api-front", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        # shutdown() waits for the serving loop to end: one never started (a stack failing to start
        # between binding the port and serving) would wait forever.
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def reject(self, method: str, target: str, answer: tuple[int, Mapping[str, Any]]) -> HttpResponseOut:
        """The gateway's answer to a request it could not read (framing, timeout), in the hop log too."""
        request_id = new_request_id()
        status, body = answer
        response = gateway_response(status, body)
        if self.on_request is not None:
            self.on_request(
                RequestRecord(
                    request_id=request_id,
                    method=method,
                    path=target.partition("?")[0],
                    route_key=None,
                    function=None,
                    status=status,
                    duration_ms=0.0,
                )
            )
        return HttpResponseOut(status, (*response.headers, ("apigw-requestid", request_id)), response.body)

    def handle(self, request: HttpRequestIn) -> HttpResponseOut:
        started = time.perf_counter()
        request_id = new_request_id()
        path = request.target.partition("?")[0]
        route_key: str | None = None
        function: str | None = None
        error: str | None = None
        if len(request.body) > MAX_PAYLOAD_BYTES:
            response = gateway_response(*TOO_LARGE)
        elif not self.throttle.take():
            response = gateway_response(*TOO_MANY_REQUESTS)
        else:
            found = find_route(self.routes, request.method, urllib.parse.unquote(path))
            if found is None:
                response = gateway_response(*NOT_FOUND)
            else:
                route, params = found
                route_key, function = route.route_key, route.function
                if self.on_request is not None:
                    self.on_request(
                        RequestRecord(
                            request_id=request_id,
                            method=request.method,
                            path=path,
                            route_key=route_key,
                            function=function,
                            status=None,
                            duration_ms=0.0,
                            phase="in",
                            body_bytes=len(request.body),
                        )
                    )
                event = build_event(
                    request,
                    route,
                    params,
                    account_id=self.account_id,
                    api=self.api_id,
                    request_id=request_id,
                    now=datetime.now(UTC),
                    server_port=self.port,
                )
                result = self.invoke(route.function, event, request_id)
                if not result.ok:
                    error = f"{result.error_type}: {result.error_message}"
                response = integration_response(result)
        response = HttpResponseOut(
            response.status, (*response.headers, ("apigw-requestid", request_id)), response.body
        )
        if self.on_request is not None:
            self.on_request(
                RequestRecord(
                    request_id=request_id,
                    method=request.method,
                    path=path,
                    route_key=route_key,
                    function=function,
                    status=response.status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                    error=error,
                )
            )
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Every read from the client (request line, headers, body) waits at most this long.
        self.connection.settimeout(self.server.front.read_timeout)

    def log_message(self, format: str, *args: Any) -> None:  # the hop log says what happened
        return

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except FramingError as error:
            self._refuse(error.answer)
            return
        request = HttpRequestIn(
            method=self.command.upper(),
            target=self.path,
            headers=tuple(self.headers.items()),
            body=body,
            source_ip=str(self.client_address[0]),
            protocol=self.request_version,
        )
        self._send(self.server.front.handle(request))

    def _read_body(self) -> bytes:
        length = body_framing(
            self.headers.get_all("Content-Length") or [],
            self.headers.get_all("Transfer-Encoding") or [],
            self.request_version,
        )
        try:
            if length is None:
                return read_chunked(self.rfile)
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            raise FramingError(REQUEST_TIMEOUT, "the client stopped sending its body") from None
        if len(body) < length:
            raise FramingError(BAD_REQUEST, "connection closed before Content-Length bytes")
        return body

    def _refuse(self, answer: tuple[int, Mapping[str, Any]]) -> None:
        """Answer, then close: what is left of the request cannot be told from a next request."""
        self.close_connection = True
        response = self.server.front.reject(self.command.upper(), self.path, answer)
        try:
            self._send(response, close=True)
            self.wfile.flush()
        except OSError:
            return  # the client is gone; nothing left to tell it
        self._drain()

    def _drain(self) -> None:
        """Read and drop what the client still sends before the socket closes: closing with unread
        data makes the kernel send a reset, which can destroy the answer before the client reads it.
        Bounded in time and bytes, so a client that keeps sending cannot keep the thread."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + min(self.server.front.read_timeout, _DRAIN_SECONDS)
            drained = 0
            while drained <= _DRAIN_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65536)
                if not chunk:
                    return
                drained += len(chunk)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, headers too long, unknown method),
        with the gateway's JSON body instead of an HTML page."""
        self.close_connection = True
        if not str(getattr(self, "request_version", "")).startswith("HTTP/1."):
            # An unreadable request line leaves the HTTP/0.9 default, which answers without a status
            # line; the gateway speaks HTTP/1.1 to whatever arrives.
            self.request_version = "HTTP/1.1"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        command = getattr(self, "command", "") or ""
        path = getattr(self, "path", "") or ""
        self._send(self.server.front.reject(command.upper(), path, (code, {"message": phrase})), close=True)

    def _send(self, response: HttpResponseOut, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    front: ApiFront
