"""The Lambda emulation: one subprocess per execution environment, its own environment, Lambda's errors."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledgerlink_local.stack.runtime import FunctionPool, FunctionRuntime, LambdaWorker, lambda_environment

CODE_ROOT = Path(__file__).resolve().parent / "lambda_code"


def _runtime(
    tmp_path: Path, handler: str = "probe_fn.handler.lambda_handler", timeout: float = 10
) -> FunctionRuntime:
    environment = lambda_environment(
        function_name="ledgerlink-local-probe",
        handler=handler,
        memory_mb=256,
        function_variables={"LEDGERLINK_STAGE": "local", "POWERTOOLS_SERVICE_NAME": "probe"},
        code_root=CODE_ROOT,
        aws_endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        account="123456789012",
        python_version="3.14",
    )
    return FunctionRuntime(
        key="probe",
        name="ledgerlink-local-probe",
        handler=handler,
        timeout_seconds=timeout,
        memory_mb=256,
        environment=environment,
        code_root=CODE_ROOT,
        log_path=tmp_path / "logs" / "probe.log",
    )


@pytest.fixture
def worker(tmp_path: Path):
    calls: list[dict[str, Any]] = []
    worker = LambdaWorker(
        _runtime(tmp_path), on_call=lambda _runtime, _request, message: calls.append(message)
    )
    worker.calls = calls  # type: ignore[attr-defined]
    yield worker
    worker.stop()


def test_the_function_sees_its_own_environment_and_nothing_of_the_parents(worker, monkeypatch):
    # given a variable only the developer's shell has
    monkeypatch.setenv("LEDGERLINK_PARENT_ONLY", "leak")
    worker.start()
    # when the function reads its environment
    result = worker.invoke(
        {
            "action": "env",
            "names": [
                "LEDGERLINK_STAGE",
                "LEDGERLINK_PARENT_ONLY",
                "AWS_ENDPOINT_URL",
                "AWS_LAMBDA_FUNCTION_NAME",
                "_HANDLER",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_CONFIG_FILE",
            ],
        }
    )
    # then it has the function's variables and the runtime's, and not the shell's
    assert result.ok, result
    assert result.payload == {
        "LEDGERLINK_STAGE": "local",
        "LEDGERLINK_PARENT_ONLY": None,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_LAMBDA_FUNCTION_NAME": "ledgerlink-local-probe",
        "_HANDLER": "probe_fn.handler.lambda_handler",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_CONFIG_FILE": "/dev/null",
    }


def test_the_context_object_and_one_cold_start_per_environment(worker):
    first = worker.invoke({"action": "context"}, request_id="req-1")
    second = worker.invoke({"action": "context"}, request_id="req-2")
    assert first.payload["aws_request_id"] == "req-1" and second.payload["aws_request_id"] == "req-2"
    assert first.payload["function_name"] == "ledgerlink-local-probe"
    assert first.payload["memory_limit_in_mb"] == "256"
    assert first.payload["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-local-probe"
    )
    assert 0 < first.payload["remaining_ms"] <= 10_000
    assert first.payload["initialised_at"] == second.payload["initialised_at"]  # imported once


def test_an_unhandled_error_is_reported_with_lambdas_error_type_and_message(worker):
    result = worker.invoke({"action": "raise", "message": "the invoice has no customer"})
    assert not result.ok
    assert (result.error_type, result.error_message) == ("ValueError", "the invoice has no customer")
    # and the environment serves the next invocation
    assert worker.invoke({"action": "context"}).ok


def test_a_value_lambda_cannot_serialise_is_a_marshal_error(worker):
    result = worker.invoke({"action": "unserialisable"})
    assert not result.ok and result.error_type == "Runtime.MarshalError"


def test_an_invocation_past_the_timeout_is_stopped_and_the_environment_replaced(tmp_path):
    worker = LambdaWorker(_runtime(tmp_path, timeout=0.5))
    try:
        assert worker.invoke({"action": "context"}).ok  # cold start outside the timed invocation
        result = worker.invoke({"action": "sleep", "seconds": 30})
        assert result.timed_out and result.error_message == "Task timed out after 0.50 seconds"
        assert not worker.alive
        # the next invocation gets a fresh environment
        assert worker.invoke({"action": "context"}).ok
    finally:
        worker.stop()


def test_a_handler_that_cannot_be_imported_is_an_import_module_error(tmp_path):
    worker = LambdaWorker(_runtime(tmp_path, handler="missing_fn.handler.lambda_handler"))
    try:
        result = worker.invoke({})
        assert not result.ok and result.error_type == "Runtime.ImportModuleError"
        assert "missing_fn" in (result.error_message or "")
    finally:
        worker.stop()


def test_what_the_function_prints_goes_to_its_log_file(worker, tmp_path):
    assert worker.invoke({"action": "print", "text": "hello from the function"}).ok
    worker.stop()  # closes the pipes, so the log is flushed
    assert "hello from the function" in (tmp_path / "logs" / "probe.log").read_text()


def test_http_calls_the_function_makes_are_reported_without_query_strings(worker):
    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v3/company/1/invoice/130?minorversion=75&token=x"
        assert worker.invoke({"action": "http", "url": url}).payload == 204
    finally:
        server.shutdown()
        server.server_close()
    http = [call for call in worker.calls if call["kind"] == "http"]
    assert len(http) == 1
    assert http[0]["url"] == f"http://127.0.0.1:{server.server_address[1]}/v3/company/1/invoice/130"
    assert (http[0]["method"], http[0]["status"], http[0]["ok"]) == ("GET", 204, True)


def test_a_pool_runs_an_invocation_in_a_second_environment_while_the_first_is_busy(tmp_path):
    pool = FunctionPool(_runtime(tmp_path), max_concurrency=2)
    busy: list[Any] = []
    try:
        pool.prewarm()
        first_pid = pool.invoke({"action": "pid"}).payload
        # given the first environment busy with a long invocation
        thread = threading.Thread(
            target=lambda: busy.append(pool.invoke({"action": "sleep", "seconds": 1.5}))
        )
        thread.start()
        taken = threading.Event()
        while not taken.wait(0.01):  # until the long invocation has taken the only environment
            if not pool._idle:
                taken.set()
        # when another invocation comes
        second_pid = pool.invoke({"action": "pid"}).payload
        thread.join(30)
        # then it ran in another execution environment, and the busy one finished its own
        assert busy[0].payload == first_pid
        assert second_pid != first_pid
    finally:
        pool.close()
