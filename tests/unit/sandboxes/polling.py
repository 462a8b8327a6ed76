"""Waiting for what the sandboxes do on their own threads (webhook deliveries and their log)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll until an asynchronous effect (a webhook delivery) shows up."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
