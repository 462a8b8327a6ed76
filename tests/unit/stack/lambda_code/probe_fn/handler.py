"""A probe Lambda handler: does what the event asks, so the runtime tests can observe the sandbox."""

from __future__ import annotations

import os
import time
from typing import Any

import requests

INITIALISED_AT = time.time()  # module scope runs once per execution environment (the cold start)


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    action = event["action"]
    if action == "env":
        return {name: os.environ.get(name) for name in event["names"]}
    if action == "context":
        return {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "initialised_at": INITIALISED_AT,
        }
    if action == "print":
        print(event["text"])
        return "printed"
    if action == "raise":
        raise ValueError(event["message"])
    if action == "sleep":
        time.sleep(event["seconds"])
        return os.getpid()
    if action == "pid":
        return os.getpid()
    if action == "http":
        return requests.get(event["url"], timeout=5).status_code
    if action == "unserialisable":
        return {1, 2}
    raise KeyError(action)
