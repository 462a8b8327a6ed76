"""One Lambda execution environment: a subprocess that imports one handler and runs it per event.

Started by :class:`ledgerlink_local.stack.runtime.LambdaWorker` as
``python -m ledgerlink_local.stack.worker <module.function>`` with exactly the function's environment
(nothing inherited from the developer's shell, as in Lambda). Like the Lambda runtime it imports the
handler once (the cold start) and then serves one invocation at a time.

Protocol, one JSON object a line: the parent writes ``{"event", "request_id", "deadline_ms"}`` to
stdin; the worker answers on the file descriptor that was its stdout with ``{"type": "ready"}`` or
``{"type": "init_error", ...}`` once, then per invocation any number of ``{"type": "call", ...}``
(an AWS API call or an HTTP request the handler made: what the hop log shows) and one
``{"type": "result", ...}``. The handler's own stdout (Powertools' JSON logs) goes to stderr, which
the parent keeps as the function's log, like CloudWatch Logs.

What a ``call`` carries is chosen so that no secret can leave: service, operation and resource names,
status codes, URL paths without query strings, from PutEvents the envelope's identifiers, and from
SendMessage(Batch) the event's identifiers and LedgerLink's failure attributes (a dead letter's reason
and kind, written secret-free by ``ledgerlink.consumer.deadletter``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import urllib.parse
from collections.abc import Callable
from typing import IO, Any, Final

# Fields of an event payload worth showing on a hop line (identifiers and states, never amounts, names
# or addresses): a QBO change's entity and operation, a deal.synced's invoice and status, a
# calendar.synced's invoice and action, a followup.due's invoice key and follow-up rule.
SUMMARY_FIELDS: Final = (
    "entity",
    "entity_id",
    "operation",
    "delivery_id",
    "invoice_id",
    "status",
    "action",
    "invoice_key",
    "rule",
    # What ``make run``'s one line per record (ledgerlink_local.stack.records) is made of: the
    # connection, the invoice's number, its deal and stage, the Graph event id, a HubSpot change's object.
    "connection",
    "realm_id",
    "doc_number",
    "deal_id",
    "deal_stage",
    "event_id",
    "object_type",
    "object_id",
    "change",
)


class LambdaContext:
    """The context object the Python runtime passes (the attributes Powertools and handlers read)."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # The runtime passes the memory size as the environment variable's text.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        region = os.environ.get("AWS_REGION", "us-east-1")
        account = os.environ.get("_LEDGERLINK_ACCOUNT", "123456789012")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _Channel:
    """Writes protocol messages on the saved stdout; one lock-free writer (one invocation at a time)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.current_request_id: str | None = None

    def send(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message, default=str, separators=(",", ":")) + "\n")
        self._stream.flush()


def _correlation_id() -> str | None:
    """The correlation id the function's Powertools logger holds right now, if it has one."""
    if "ledgerlink.observability" not in sys.modules:
        return None
    service = os.environ.get("POWERTOOLS_SERVICE_NAME")
    if not service:
        return None
    try:
        value = sys.modules["ledgerlink.observability"].get_logger(service).get_correlation_id()
    except Exception:  # noqa: BLE001 - instrumentation must never break the handler
        return None
    return str(value) if value else None


def _aws_call_message(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "call", "kind": "aws", "service": service, "operation": operation}
    if service == "s3":
        message["resource"] = f"{params.get('Bucket', '')}/{params.get('Key', '')}".rstrip("/")
    elif service == "events" and operation == "PutEvents":
        message["entries"] = [_event_summary(entry) for entry in params.get("Entries", [])]
    elif service == "sqs":
        message["resource"] = str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if operation == "SendMessage":
            message["entries"] = [_sent_message_summary(params)]
        elif operation == "SendMessageBatch":
            message["entries"] = [_sent_message_summary(entry) for entry in params.get("Entries", [])]
    elif service == "dynamodb":
        message["resource"] = str(params.get("TableName", ""))
    elif service == "secretsmanager":
        message["resource"] = str(params.get("SecretId", ""))
    return message


# LedgerLink's failure attributes on a dead letter (ledgerlink.consumer.deadletter), shown on its hop line.
FAILURE_FIELDS: Final = {
    "ledgerlink.failure_reason": "reason",
    "ledgerlink.failure_kind": "kind",
    "ledgerlink.receive_count": "receive_count",
}


def _sent_message_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """An SQS message a function sends: its batch entry id, the event it carries, its failure fields."""
    summary: dict[str, Any] = {"id": entry.get("Id")}
    try:
        body = json.loads(entry.get("MessageBody") or "")
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        summary["correlation_id"] = detail.get("correlation_id")
        payload = detail.get("payload")
        if isinstance(payload, dict):
            summary["payload"] = {name: payload[name] for name in SUMMARY_FIELDS if name in payload}
    for name, field_name in FAILURE_FIELDS.items():
        value = (entry.get("MessageAttributes") or {}).get(name) or {}
        if value.get("StringValue") is not None:
            summary[field_name] = value["StringValue"]
    return summary


def _event_summary(entry: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "source": entry.get("Source"),
        "detail_type": entry.get("DetailType"),
        "bus": entry.get("EventBusName"),
    }
    try:
        detail = json.loads(entry.get("Detail") or "{}")
    except ValueError:
        return summary
    if isinstance(detail, dict):
        summary["correlation_id"] = detail.get("correlation_id")
        summary["event_id"] = detail.get("event_id")
        payload = detail.get("payload")
        if isinstance(payload, dict):
            summary["payload"] = {name: payload[name] for name in SUMMARY_FIELDS if name in payload}
        # The whole event as EventBridge would see it, so the parent can tell which rules match it.
        summary["event"] = {
            "source": entry.get("Source"),
            "detail-type": entry.get("DetailType"),
            "detail": detail,
        }
    return summary


def instrument(channel: _Channel) -> None:
    """Report every AWS API call and every HTTP request the handler makes (see the module docstring)."""
    from botocore.client import BaseClient

    original_call: Callable[..., Any] = BaseClient._make_api_call  # type: ignore[attr-defined]

    def make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        started = time.perf_counter()
        message = _aws_call_message(self.meta.service_model.service_name, operation_name, api_params)
        message["correlation_id"] = _correlation_id()
        if operation_name == "PutEvents":
            # EventBridge delivers while the call is in flight; announcing it first keeps the hop
            # lines in the order things happen (published, then queued). The end message follows.
            channel.send({**message, "phase": "start"})
        message["phase"] = "end"
        try:
            result = original_call(self, operation_name, api_params)
        except Exception as error:
            message.update(ok=False, error=type(error).__name__, ms=_elapsed(started))
            channel.send(message)
            raise
        message.update(ok=True, ms=_elapsed(started))
        if operation_name == "PutEvents" and isinstance(result, dict):
            message["failed_entry_count"] = result.get("FailedEntryCount", 0)
        if operation_name == "SendMessageBatch" and isinstance(result, dict):
            message["failed_ids"] = [item.get("Id") for item in result.get("Failed", [])]
        channel.send(message)
        return result

    BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]

    try:
        import requests
    except ImportError:  # a function without requests makes no HTTP calls to report
        return
    original_send: Callable[..., Any] = requests.Session.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        parts = urllib.parse.urlsplit(str(request.url))
        message: dict[str, Any] = {
            "type": "call",
            "kind": "http",
            "method": request.method,
            "url": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "correlation_id": _correlation_id(),
        }
        try:
            response = original_send(self, request, **kwargs)
        except Exception as error:
            message.update(ok=False, error=type(error).__name__, ms=_elapsed(started))
            channel.send(message)
            raise
        message.update(ok=response.status_code < 400, status=response.status_code, ms=_elapsed(started))
        if request.method == "POST" and response.status_code < 300 and not kwargs.get("stream"):
            message.update(created_identity(response))
        channel.send(message)
        return response

    requests.Session.send = send  # type: ignore[method-assign]


def created_identity(response: Any) -> dict[str, str]:
    """What a POST created, by its identifiers only: a Graph or HubSpot object's ``id``
    (``created_id``), or a QBO entity's ``Id`` and ``DocNumber`` (``{"Estimate": {"Id": ...}}``:
    ``created_entity``, ``created_id``, ``created_number``). Empty for anything else."""
    if "json" not in str(response.headers.get("Content-Type", "")):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    if isinstance(body.get("id"), str | int):
        return {"created_id": str(body["id"])}
    for name, value in body.items():
        if isinstance(value, dict) and isinstance(value.get("Id"), str) and name[:1].isupper():
            created = {"created_entity": name, "created_id": value["Id"]}
            if isinstance(value.get("DocNumber"), str):
                created["created_number"] = value["DocNumber"]
            return created
    return {}


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _error(kind: str, error: BaseException) -> dict[str, Any]:
    """Lambda's error shape: errorType, errorMessage, stackTrace."""
    return {
        "type": kind,
        "ok": False,
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error),
    }


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {spec!r} must be <module>.<function>")
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise AttributeError(f"module {module_name} has no handler function {function_name!r}")
    return handler


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m ledgerlink_local.stack.worker <module.function>", file=sys.stderr)
        return 2
    # Protocol on the real stdout; anything the handler prints goes to stderr (its log).
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1)
    channel = _Channel(protocol)
    instrument(channel)
    try:
        handler = load_handler(arguments[0])
    except Exception as error:  # noqa: BLE001 - reported like Lambda's Runtime.ImportModuleError
        channel.send(_error("init_error", error))
        return 1
    channel.send({"type": "ready"})
    for line in sys.stdin:
        if not line.strip():
            continue
        invocation = json.loads(line)
        context = LambdaContext(invocation["request_id"], int(invocation["deadline_ms"]))
        try:
            value = handler(invocation["event"], context)
        except Exception as error:  # noqa: BLE001 - an unhandled error is the invocation's result
            sys.stdout.flush()
            channel.send(_error("result", error))
            continue
        sys.stdout.flush()
        try:
            payload = json.dumps(value)
        except (TypeError, ValueError) as error:
            # Lambda cannot serialise the value either and reports this error type.
            message = _error("result", error)
            message["errorType"] = "Runtime.MarshalError"
            channel.send(message)
            continue
        channel.send({"type": "result", "ok": True, "payload": payload})
    return 0


if __name__ == "__main__":
    sys.exit(main())
