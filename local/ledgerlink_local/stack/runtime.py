"""Lambda, emulated: each function runs in its own worker subprocesses with its own environment.

:class:`FunctionPool` keeps up to ``max_concurrency`` :class:`LambdaWorker` processes of one function
(a Lambda execution environment each: cold start once, then one invocation at a time) and invokes
the function synchronously, the way API Gateway and an SQS event source mapping do. A worker's
environment is built by :func:`lambda_environment` from nothing but the function's variables, the
runtime's own (``AWS_LAMBDA_FUNCTION_NAME``, ``_HANDLER``, ...) and the local AWS endpoint, so a
function that reads a variable the stack does not give it fails here as it would in the cloud.

An invocation that outlives the function's timeout is stopped (the worker is killed and replaced,
as Lambda does) and reported as ``Task.TimedOut``; a handler exception is reported with Lambda's
``errorType``/``errorMessage``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from ledgerlink_local.stack.aws import LOCAL_CREDENTIALS

# Lambda gives a function's init phase 10 s; a cold import on a busy 2-core machine may need more.
INIT_TIMEOUT_SECONDS: Final = 30.0
WORKER_MODULE: Final = "ledgerlink_local.stack.worker"

CallListener = Callable[["FunctionRuntime", str, dict[str, Any]], None]
LogListener = Callable[["FunctionRuntime", str], None]


@dataclass(frozen=True)
class FunctionRuntime:
    """What a worker needs to run one function."""

    key: str
    name: str
    handler: str
    timeout_seconds: float
    memory_mb: int
    environment: Mapping[str, str]
    code_root: Path
    log_path: Path | None = None
    function_variables: Mapping[str, str] = field(default_factory=dict)
    """The function's own variables (the deployed function's ``Environment``), part of ``environment``."""


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.error_type == "Task.TimedOut"


def lambda_environment(
    *,
    function_name: str,
    handler: str,
    memory_mb: int,
    function_variables: Mapping[str, str],
    code_root: Path,
    aws_endpoint_url: str,
    region: str,
    account: str,
    python_version: str,
) -> dict[str, str]:
    """The complete environment of a worker (see the module docstring); nothing comes from ``os.environ``
    except ``PATH`` (to find the interpreter's tools)."""
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": str(code_root),
        "PYTHONUNBUFFERED": "1",
        "LAMBDA_TASK_ROOT": str(code_root),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python_version}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        # The developer's own AWS profile must never leak into a local function.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # No X-Ray daemon here; the Tracer would otherwise try to reach one.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "_LEDGERLINK_ACCOUNT": account,
    }
    environment.update(function_variables)
    return environment


class LambdaWorker:
    """One execution environment (a subprocess running :mod:`ledgerlink_local.stack.worker`)."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        on_call: CallListener | None = None,
        on_log: LogListener | None = None,
        python: str = sys.executable,
    ) -> None:
        self.runtime = runtime
        self._on_call = on_call
        self._on_log = on_log
        self._python = python
        self._process: subprocess.Popen[str] | None = None
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._ready = False
        self._current_request: str | None = None
        self._log_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn the process (its cold start runs in the background until the first invocation)."""
        self._messages = queue.Queue()
        self._ready = False
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [self._python, "-m", WORKER_MODULE, self.runtime.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(self.runtime.environment),
            cwd=str(self.runtime.code_root),
            text=True,
            encoding="utf-8",
            bufsize=1,
            # Its own session: Ctrl-C in the terminal reaches the stack, which stops workers in order.
            start_new_session=True,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        # Each process gets its own queue: a killed worker's reader must not speak into the next one's.
        threading.Thread(
            target=self._read_protocol, args=(self._process.stdout, self._messages), daemon=True
        ).start()
        threading.Thread(target=self._read_log, args=(self._process.stderr,), daemon=True).start()

    def invoke(self, event: Any, request_id: str | None = None) -> InvocationResult:
        request_id = request_id or str(uuid.uuid4())
        started = time.perf_counter()
        if not self.alive:
            self.start()
        if not self._ready:
            failure = self._await_ready(request_id)
            if failure is not None:
                return failure
        deadline = time.time() + self.runtime.timeout_seconds
        self._current_request = request_id
        line = json.dumps({"event": event, "request_id": request_id, "deadline_ms": int(deadline * 1000)})
        try:
            assert self._process is not None and self._process.stdin is not None
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            return self._failure(request_id, "Runtime.ExitError", "the execution environment exited", started)
        while True:
            remaining = deadline - time.time()
            try:
                message = self._messages.get(timeout=max(0.0, remaining))
            except queue.Empty:
                self.stop()  # Lambda discards an environment whose invocation timed out
                return self._failure(
                    request_id,
                    "Task.TimedOut",
                    f"Task timed out after {self.runtime.timeout_seconds:.2f} seconds",
                    started,
                )
            if message is None:
                self.stop()
                return self._failure(
                    request_id, "Runtime.ExitError", "the execution environment exited", started
                )
            if message.get("type") == "result":
                self._current_request = None
                return self._result(request_id, message, started)

    def _await_ready(self, request_id: str) -> InvocationResult | None:
        started = time.perf_counter()
        try:
            message = self._messages.get(timeout=INIT_TIMEOUT_SECONDS)
        except queue.Empty:
            self.stop()
            return self._failure(request_id, "Runtime.InitTimeout", "init phase timed out", started)
        if message is not None and message.get("type") == "ready":
            self._ready = True
            return None
        self.stop()
        if message is None:
            return self._failure(request_id, "Runtime.ExitError", "exited during init", started)
        error_type = str(message.get("errorType"))
        lambda_type = (
            "Runtime.ImportModuleError"
            if error_type in ("ModuleNotFoundError", "ImportError", "SyntaxError")
            else "Runtime.HandlerNotFound"
            if error_type == "AttributeError"
            else f"Runtime.InitError ({error_type})"
        )
        return self._failure(request_id, lambda_type, str(message.get("errorMessage")), started)

    def _result(self, request_id: str, message: dict[str, Any], started: float) -> InvocationResult:
        duration = round((time.perf_counter() - started) * 1000, 1)
        if message.get("ok"):
            return InvocationResult(request_id, True, json.loads(message["payload"]), duration_ms=duration)
        return InvocationResult(
            request_id,
            False,
            error_type=str(message.get("errorType")),
            error_message=str(message.get("errorMessage")),
            duration_ms=duration,
        )

    @staticmethod
    def _failure(request_id: str, error_type: str, message: str, started: float) -> InvocationResult:
        duration = round((time.perf_counter() - started) * 1000, 1)
        return InvocationResult(
            request_id, False, error_type=error_type, error_message=message, duration_ms=duration
        )

    def _read_protocol(self, stream: IO[str], messages: queue.Queue[dict[str, Any] | None]) -> None:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("type") == "call":
                if self._on_call is not None:
                    self._on_call(self.runtime, self._current_request or "", message)
                continue
            messages.put(message)
        messages.put(None)  # the process is gone

    def _read_log(self, stream: IO[str]) -> None:
        log_file = None
        if self.runtime.log_path is not None:
            self.runtime.log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = self.runtime.log_path.open("a", encoding="utf-8")
        try:
            for line in stream:
                if log_file is not None:
                    with self._log_lock:
                        log_file.write(line)
                        log_file.flush()
                if self._on_log is not None:
                    self._on_log(self.runtime, line.rstrip("\n"))
        finally:
            if log_file is not None:
                log_file.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        self._ready = False
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):  # a killed process always goes
            process.wait(timeout=5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class FunctionPool:
    """Up to ``max_concurrency`` workers of one function; :meth:`invoke` waits for a free one."""

    def __init__(
        self,
        runtime: FunctionRuntime,
        max_concurrency: int = 1,
        on_call: CallListener | None = None,
        on_log: LogListener | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("a function needs a concurrency of at least 1")
        self.runtime = runtime
        self._max = max_concurrency
        self._on_call = on_call
        self._on_log = on_log
        self._idle: list[LambdaWorker] = []
        self._all: list[LambdaWorker] = []
        self._available = threading.Condition()
        self._closed = False

    def prewarm(self) -> None:
        """Start one worker now so that its cold start overlaps the rest of the stack's start."""
        with self._available:
            if self._all:
                return
            worker = self._new_worker()
            self._idle.append(worker)
        worker.start()

    def invoke(self, event: Any, request_id: str | None = None) -> InvocationResult:
        worker = self._acquire()
        try:
            return worker.invoke(event, request_id)
        finally:
            self._release(worker)

    def _new_worker(self) -> LambdaWorker:
        worker = LambdaWorker(self.runtime, self._on_call, self._on_log)
        self._all.append(worker)
        return worker

    def _acquire(self) -> LambdaWorker:
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"function {self.runtime.key} is shut down")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) < self._max:
                    return self._new_worker()
                self._available.wait()

    def _release(self, worker: LambdaWorker) -> None:
        with self._available:
            if self._closed:
                worker.stop()
                return
            self._idle.append(worker)
            self._available.notify()

    def close(self) -> None:
        with self._available:
            self._closed = True
            workers = list(self._all)
            self._available.notify_all()
        for worker in workers:
            worker.stop()
