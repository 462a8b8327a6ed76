"""What the stack tests share: the worker's report of a function's AWS and HTTP calls, kept in a list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.client import BaseClient

from ledgerlink_local.stack import worker


class Recorder:
    """The worker's channel to the parent, kept in a list."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(json.loads(json.dumps(message, default=str)))

    def drain(self) -> list[dict[str, Any]]:
        """The messages so far, forgotten here (each is handed to the hop log once)."""
        messages, self.messages = self.messages, []
        return messages


@pytest.fixture
def reported() -> Iterator[Recorder]:
    """Every AWS call made in the test, reported as the worker process reports it to the stack."""
    original_call, original_send = BaseClient._make_api_call, requests.Session.send  # type: ignore[attr-defined]
    channel = Recorder()
    worker.instrument(channel)  # type: ignore[arg-type]
    try:
        yield channel
    finally:
        BaseClient._make_api_call = original_call  # type: ignore[attr-defined]
        requests.Session.send = original_send  # type: ignore[method-assign]
